"""Live traffic: a long transaction holds a table, a migration alters it, 16 clients query it.

    bash reliability/live_traffic.sh [--hold 15] [--clients 16] [--no-doc]

One run, three phases on the same table, each with the same long
transaction (an open transaction that read the table, like a long report):
no migration; `persistor migrate` with its defaults (lock_timeout_ms 2000,
10 retries); and `psql -f` of the same ALTER TABLE (no lock timeout). The
client sessions' query latencies in each phase show how long the application
waited; the migration's end shows when it got through. Writes
reliability/results/live_traffic.json and reliability/LIVE_TRAFFIC.md, and
puts that section into docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from reliability import harness as h

ROOT = Path(__file__).resolve().parent.parent
SECTION = Path(__file__).with_name("LIVE_TRAFFIC.md")
HEADING = "## Live traffic: a migration behind a long transaction"
ROWS = 10_000
INTERVAL = 0.05  # seconds: each client's queries are due this often
ALTER = "ALTER TABLE orders ADD COLUMN note text;\n"
REPORT = "SELECT count(*) FROM orders /* long report */"


class Clients:
    """Client sessions querying the table in a loop; each query's start and latency is kept."""

    def __init__(self, url: str, count: int) -> None:
        self.samples: list[tuple[float, float]] = []  # (started, seconds), monotonic clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(url, n), daemon=True) for n in range(count)
        ]

    def __enter__(self) -> Clients:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _loop(self, url: str, n: int) -> None:
        # Open loop: query k is due at start + k * INTERVAL whether or not the one
        # before has returned, and its wait counts from when it was due. A
        # client stuck behind a lock thus reports every query it could not send.
        with psycopg.connect(url, autocommit=True, application_name="app") as conn:
            start = time.monotonic() + n * INTERVAL / max(1, len(self._threads))
            k = 0
            while not self._stop.is_set():
                due = start + k * INTERVAL
                time.sleep(max(0.0, due - time.monotonic()))
                conn.execute(
                    "SELECT id, v FROM orders WHERE id = %s", (k * 7 % ROWS + 1,)
                ).fetchall()
                with self._lock:
                    self.samples.append((due, time.monotonic() - due))
                k += 1


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def waits(samples: list[tuple[float, float]], start: float, end: float) -> dict[str, Any]:
    """Summarise the waits of the queries due within [start, end]."""
    took = [s for t, s in samples if start <= t <= end]
    return {
        "queries": len(took),
        "p50_ms": round(percentile(took, 0.50) * 1000, 1),
        "p99_ms": round(percentile(took, 0.99) * 1000, 1),
        "max_ms": round(max(took, default=0.0) * 1000, 1),
        "over_1s": sum(1 for s in took if s >= 1.0),
    }


def run_phase(
    url: str, clients: int, hold: float, migrate: Callable[[], subprocess.Popen[str]] | None
) -> dict[str, Any]:
    """Hold the table for `hold` seconds while clients query it and `migrate` runs (if any)."""
    ended: dict[str, float] = {}
    output: dict[str, Any] = {}
    with Clients(url, clients) as app:
        time.sleep(1.0)  # the clients are up before the table is held
        holder = psycopg.connect(url, application_name="long-report")
        holder.execute(REPORT)
        held = time.monotonic()
        time.sleep(1.0)  # the migration arrives behind an open transaction
        waiter = None
        began = time.monotonic()
        if migrate is not None:
            proc = migrate()

            def wait() -> None:
                out, err = proc.communicate(timeout=600)
                ended["migration"] = time.monotonic()
                output.update(code=proc.returncode, stdout=out, stderr=err)

            waiter = threading.Thread(target=wait)
            waiter.start()
        time.sleep(max(0.0, held + hold - time.monotonic()))
        holder.rollback()
        released = time.monotonic()
        holder.close()
        if waiter is not None:
            waiter.join()
        end = ended.get("migration", released)
        time.sleep(max(0.0, end + 1.0 - time.monotonic()))  # the late ones come back
        samples = list(app.samples)
    result = {"held_s": round(released - held, 2), **waits(samples, began, end)}
    if migrate is not None:
        result["exit_code"] = output.get("code")
        result["migration_done_after_release_s"] = round(ended["migration"] - released, 2)
        result["stderr"] = [line for line in str(output.get("stderr", "")).splitlines() if line]
    return result


def _setup(url: str, folder: Path) -> None:
    (folder / "V1__orders.sql").write_text(
        "CREATE TABLE orders (id int PRIMARY KEY, v text);\n"
        f"INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;\n"
    )
    done = subprocess.run(
        h.persistor_cmd("migrate", url, folder),
        env=h.persistor_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (folder / "V2__note.sql").write_text(ALTER)


def measure(admin: str, clients: int, hold: float) -> dict[str, Any]:
    """Run the three phases on a fresh database (dropped afterwards); return their figures."""
    url = h.with_db(admin, "retry_live_" + uuid.uuid4().hex[:10])
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {h.db_name(url)}")  # our own name, not input
    folder = Path(tempfile.mkdtemp(prefix="persistor-live-"))
    try:
        _setup(url, folder)
        env = h.persistor_env()
        phases = {"none": run_phase(url, clients, hold, None)}
        phases["persistor"] = run_phase(
            url,
            clients,
            hold,
            lambda: subprocess.Popen(
                h.persistor_cmd("migrate", url, folder),
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ),
        )  # fmt: skip
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE orders DROP COLUMN note")  # psql adds it again
        phases["psql"] = run_phase(
            url,
            clients,
            hold,
            lambda: subprocess.Popen(
                ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url,
                 "-f", str(folder / "V2__note.sql")],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ),
        )  # fmt: skip
        return {"clients": clients, "hold_s": hold, "phases": phases}
    finally:
        h.drop_database(admin, url)


def _row(label: str, p: dict[str, Any]) -> str:
    done = p.get("migration_done_after_release_s")
    after = "—" if done is None else f"exit {p['exit_code']}, {done:.1f} s after it ended"
    return (
        f"| {label} | {p['queries']} | {p['p50_ms']:.0f} | **{p['p99_ms']:.0f}** | "
        f"{p['max_ms']:.0f} | {p['over_1s']} | {after} |"
    )


def render(res: dict[str, Any]) -> str:
    """Return the docs/RELIABILITY.md section for one run's figures."""
    ph = res["phases"]
    retries = [line for line in ph["persistor"]["stderr"] if "gave up waiting" in line]
    example = retries[0] if retries else "(no retry line: the migration never waited)"
    m = res["machine"]
    return "\n".join(
        [
            HEADING,
            "",
            f"A transaction that read table `orders` ({ROWS:,} rows) stays open for "
            f"{res['hold_s']:g} s, like a long report. One second in, the migration "
            "`ALTER TABLE orders ADD COLUMN note text` starts; it needs an ACCESS EXCLUSIVE lock, "
            f"so it waits, and every query arriving after it queues behind it. {res['clients']} "
            "client sessions query the table by primary key all along, each one query every "
            "50 ms (open loop: a query is due on schedule even while the one before it is "
            "stuck, and its wait counts from when it was due, so a blocked client reports every "
            "query it could not send). The figures are for the queries due while the migration "
            "ran (no migration: from the same moment until the transaction ended). Three phases "
            "in one run, one after the other on the same table:",
            "",
            "| phase | client queries | p50 wait (ms) | p99 wait (ms) | max (ms) | queries waiting ≥ 1 s | migration |",
            "|---|---|---|---|---|---|---|",
            _row("long transaction, no migration", ph["none"]),
            _row(
                "`persistor migrate` (defaults: `lock_timeout_ms` 2000, 10 retries)",
                ph["persistor"],
            ),
            _row("`psql -f` of the same ALTER (no lock timeout)", ph["psql"]),
            "",
            f"persistor gave up on the lock {len(retries)} time(s) while the transaction was "
            "open, each time after `lock_timeout_ms`, letting the queued queries through, and "
            "reported the session in its way, e.g.:",
            "",
            "```",
            example,
            "```",
            "",
            "A query due while persistor waited queued for the rest of that try (at most "
            "`lock_timeout_ms`), one due between its tries ran at once: hence a p50 in the "
            "hundreds of milliseconds and a p99 just under the lock timeout. "
            "With `psql -f` the ALTER waits for the whole transaction, and so does every query "
            "behind it. persistor's run ends after the transaction ends, at its next try "
            "(the pause before a try is random, up to 0.5 s × 2^(n-1), at most 60 s).",
            "",
            "```bash",
            f"bash reliability/live_traffic.sh --hold {res['hold_s']:g} --clients {res['clients']}",
            "```",
            "",
            f"Machine: {m['nproc']} cores ({m['cpu']}), {m['postgresql']}; Python {m['python']}; "
            f"persistor {m['persistor_commit']}; run took {res['seconds']:.0f} s; other "
            "people's work shared the cores. Raw results: `reliability/results/live_traffic.json`.",
        ]
    )


def insert_section(doc: str, section: str) -> str:
    """Return doc with the live-traffic section replaced, or put before '## Findings'."""
    if HEADING in doc:
        start = doc.index(HEADING)
        nxt = doc.find("\n## ", start + len(HEADING))
        return doc[:start] + section.strip() + "\n" + (doc[nxt:] if nxt >= 0 else "")
    anchor = doc.find("\n## Findings")
    if anchor < 0:
        return doc.rstrip("\n") + "\n\n" + section.strip() + "\n"
    return doc[: anchor + 1] + section.strip() + "\n\n" + doc[anchor + 1 :]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hold", type=float, default=15.0, help="seconds the long transaction lasts")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--no-doc", action="store_true", help="do not write the Markdown")
    args = ap.parse_args(argv)
    from reliability.run import machine  # its figures of the machine, the same as the full run

    admin = h.admin_url()
    started = time.monotonic()
    res = measure(admin, args.clients, args.hold)
    res["seconds"] = round(time.monotonic() - started, 1)
    res["machine"] = machine(admin)
    out = ROOT / "reliability" / "results" / "live_traffic.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(
        json.dumps(
            {k: {x: y for x, y in v.items() if x != "stderr"} for k, v in res["phases"].items()},
            indent=1,
        )
    )
    if not args.no_doc:
        section = render(res)
        SECTION.write_text(section + "\n")
        doc = ROOT / "docs" / "RELIABILITY.md"
        doc.write_text(insert_section(doc.read_text(), section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
