"""A primary and a synchronous streaming standby on loopback, and a primary failing mid-migrate.

The servers are the machine's PostgreSQL binaries (initdb, pg_ctl,
pg_basebackup), on free loopback ports, in a temporary directory removed on
close; as root they run as the `postgres` user (initdb refuses root). A round
starts `persistor migrate` on the multi-host URL, SIGKILLs the primary (the
postmaster and every backend: a machine gone) at a random moment, promotes the
standby, then checks the new primary and runs migrate again; the old primary
comes back as the new standby (pg_basebackup) for the next round.

    python -m reliability.failover --rounds 20     # writes reliability/results/failover.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from persistor.settings_table import environment_variables

ROWS = 20_000  # rows each script inserts: a script then takes ~50-100 ms
SCRIPTS = 15


def pg_bindir() -> Path | None:
    """Return the newest /usr/lib/postgresql/N/bin holding initdb, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One server's data directory and port."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.dir = cluster.base / name
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.cluster.base}"
        log = self.cluster.base / f"{self.dir.name}.log"
        # Seen once in CI: the old primary, rebuilt as standby right after its
        # SIGKILL, failed to start; try again before giving up, and say why.
        for attempt in range(3):
            try:
                self.cluster.run(
                    "pg_ctl", "-D", str(self.dir), "-w", "-l", str(log), "-o", opts, "start"
                )  # fmt: skip
                return
            except subprocess.CalledProcessError as exc:
                if attempt == 2:
                    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                    raise RuntimeError(
                        f"pg_ctl start of {self.dir} failed: {exc.stderr or exc.stdout}\n{tail}"
                    ) from None
                time.sleep(2)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children at once, as a crashed machine would."""
        pid = int((self.dir / "postmaster.pid").read_text().split()[0])
        children = [p for p in _pids() if _ppid(p) == pid]
        for p in (pid, *children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in (pid, *children)) and time.monotonic() < deadline:
            time.sleep(0.02)

    def promote(self) -> None:
        self.cluster.run("pg_ctl", "-D", str(self.dir), "-w", "promote")

    def stop(self) -> None:
        if (self.dir / "postmaster.pid").exists():
            self.cluster.run("pg_ctl", "-D", str(self.dir), "-m", "immediate", "stop", check=False)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Cluster:
    """A primary and a synchronous standby; `url` names both, read-write wanted."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="persistor-failover-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.base, "postgres", "postgres")
        self.primary = Node(self, "a")
        self.standby = Node(self, "b")

    def run(self, tool: str, *args: str, check: bool = True) -> None:
        cmd = [*self.as_user, str(self.bindir / tool), *args]
        subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120, cwd="/")

    @property
    def url(self) -> str:
        """The libpq multi-host URL of both servers; libpq finds the one that takes writes."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"

    def start(self) -> Cluster:
        p = self.primary
        self.run("initdb", "-D", str(p.dir), "-U", "postgres", "--auth=trust", "-N")
        conf = [
            "listen_addresses = '127.0.0.1'",
            "wal_level = replica",
            "max_wal_senders = 4",
            "synchronous_standby_names = '*'",  # every commit that waits, waits for the standby
            "fsync = off",  # a process killed, not a machine's power: the OS keeps what was written
            "max_connections = 40",
            "shared_buffers = 32MB",
        ]
        with (p.dir / "postgresql.conf").open("a") as f:
            f.write("\n".join(conf) + "\n")
        with (p.dir / "pg_hba.conf").open("a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        p.start()
        self.add_standby()
        return self

    def add_standby(self) -> None:
        """Make the standby a fresh copy of the primary, streaming, and wait until it is sync."""
        s = self.standby
        if s.dir.exists():
            shutil.rmtree(s.dir)
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(s.dir), "-R", "-X", "stream", "--no-sync", "-c", "fast",
        )  # fmt: skip
        s.start()
        deadline = time.monotonic() + 30
        with psycopg.connect(self.primary.url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
                ).fetchone()
                if row and row[0]:
                    return
                time.sleep(0.05)
        raise RuntimeError("the standby did not become synchronous within 30 s")

    def fail_over(self) -> None:
        """Kill the primary, promote the standby: the roles swap; the old one is gone."""
        self.primary.kill()
        self.standby.promote()
        self.primary, self.standby = self.standby, self.primary

    def close(self) -> None:
        for node in (self.primary, self.standby):
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def write_scripts(folder: Path, count: int = SCRIPTS) -> Path:
    """Scripts that each create a table and fill it: present whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        (folder / f"V{i:03d}__t{i}.sql").write_text(
            f"CREATE TABLE t{i} (id int PRIMARY KEY, v text);\n"
            f"INSERT INTO t{i} SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g;\n"
        )
    return folder


@dataclass
class Round:
    """What one kill-and-promote round found."""

    kill_after_s: float
    exit_code: int
    said_run_again: bool
    half_applied: int = 0
    acknowledged_lost: int = 0
    stuck_locks: int = 0
    follow_up_code: int = -1
    follow_up_complete: bool = False
    applied_before_kill: int = 0  # rows this run had committed (unacknowledged) when killed
    message: str = ""
    problems: list[str] = field(default_factory=list)


def _env() -> dict[str, str]:
    scrub = set(environment_variables(os.environ))
    return {k: v for k, v in os.environ.items() if k not in scrub} | {"NO_COLOR": "1"}


def migrate(url: str, schema: str, location: Path) -> subprocess.Popen[str]:
    """Start `persistor migrate` on one schema in a subprocess."""
    cmd = [sys.executable, "-m", "persistor", "migrate", "--url", url, "--schema", schema]
    return subprocess.Popen(
        [*cmd, "--location", str(location)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(), cwd=tempfile.gettempdir(),
    )  # fmt: skip


def inspect(url: str, schema: str, count: int) -> tuple[int, int, list[str]]:
    """Return (scripts applied, scripts half-applied, what is wrong) for one schema."""
    applied, half, wrong = 0, 0, []
    with psycopg.connect(url, autocommit=True) as conn:
        has_history = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_history",)
        ).fetchone()
        versions: set[str] = set()
        if has_history and has_history[0]:
            rows = conn.execute(
                f'SELECT version FROM "{schema}".schema_history WHERE success'
            ).fetchall()
            versions = {str(r[0]) for r in rows}
        for i in range(1, count + 1):
            table = conn.execute("SELECT to_regclass(%s)", (f"{schema}.t{i}",)).fetchone()
            exists = bool(table and table[0])
            n = conn.execute(f'SELECT count(*) FROM "{schema}".t{i}').fetchone() if exists else (0,)
            whole = exists and n is not None and n[0] == ROWS
            recorded = f"{i:03d}" in versions
            if exists != recorded or (exists and not whole):
                half += 1
                wrong.append(
                    f"{schema}.t{i}: table {'present' if exists else 'absent'}, history row {'present' if recorded else 'absent'}"
                )
            applied += recorded
    return applied, half, wrong


def _lock_holders(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    return int(row[0]) if row else 0


def failover_round(
    cluster: Cluster, location: Path, schema: str, done: dict[str, int], rng: random.Random
) -> Round:
    """Kill the primary during one migrate of `schema`; check everything; run migrate again.

    `done` maps the schemas of earlier rounds to the scripts their acknowledged
    (exit 0) runs applied: none of those may be missing after this failover.
    """
    count = len(list(location.glob("V*.sql")))
    proc = migrate(cluster.url, schema, location)
    delay = rng.uniform(0.3, 2.5)  # start-up ~0.4 s, then ~1.5 s of scripts
    time.sleep(delay)
    cluster.fail_over()
    _out, err = proc.communicate(timeout=120)
    r = Round(round(delay, 2), proc.returncode, "outcome is unknown, run again" in err)
    r.message = err.strip().splitlines()[-1][:300] if err.strip() else ""
    new = cluster.primary.url
    if proc.returncode == 0:  # finished before the kill: acknowledged, must all be there
        done[schema] = count
    r.applied_before_kill = inspect(new, schema, count)[0]
    for other, expected in done.items():
        applied, half, wrong = inspect(new, other, count)
        r.acknowledged_lost += max(0, expected - applied)
        r.half_applied += half
        r.problems += wrong
    applied, half, wrong = inspect(new, schema, count)
    r.half_applied += 0 if schema in done else half
    r.problems += [] if schema in done else wrong
    r.stuck_locks = _lock_holders(new)
    follow = subprocess.run(
        migrate(cluster.url, schema, location).args, capture_output=True, text=True,
        env=_env(), cwd=tempfile.gettempdir(), timeout=120,
    )  # fmt: skip
    r.follow_up_code = follow.returncode
    applied, half, _ = inspect(new, schema, count)
    r.follow_up_complete = follow.returncode == 0 and applied == count and half == 0
    if r.follow_up_complete:
        done[schema] = count
    cluster.add_standby()  # the old primary comes back as the new standby
    return r


def run_rounds(rounds: int, seed: int, location: Path | None = None) -> dict[str, Any]:
    """Run `rounds` failovers on a fresh cluster; return the figures and each round."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    rng = random.Random(seed)
    cluster = Cluster(bindir).start()
    scripts = location or write_scripts(cluster.base / "migrations")
    done: dict[str, int] = {}
    results: list[Round] = []
    started = time.monotonic()
    try:
        for n in range(rounds):
            results.append(failover_round(cluster, scripts, f"round_{n}", done, rng))
    finally:
        cluster.close()
    return summarise(results, seed, time.monotonic() - started, str(bindir))


def summarise(results: list[Round], seed: int, seconds: float, bindir: str) -> dict[str, Any]:
    codes: dict[str, int] = {}
    for r in results:
        codes[str(r.exit_code)] = codes.get(str(r.exit_code), 0) + 1
    return {
        "rounds": len(results),
        "seed": seed,
        "seconds": round(seconds, 1),
        "binaries": bindir,
        "exit_codes": codes,
        "said_run_again": sum(r.said_run_again for r in results),
        "half_applied": sum(r.half_applied for r in results),
        "acknowledged_lost": sum(r.acknowledged_lost for r in results),
        "stuck_locks": sum(r.stuck_locks for r in results),
        "follow_ups_completed": sum(r.follow_up_complete for r in results),
        "each": [asdict(r) for r in results],
    }


def markdown(res: dict[str, Any]) -> str:
    """Return the RELIABILITY.md section for a failover run."""
    codes = ", ".join(f"exit {c}: {n}" for c, n in sorted(res["exit_codes"].items()))
    return "\n".join(
        [
            "## 5. Failover: the primary killed mid-migrate, the standby promoted",
            "",
            f"{res['rounds']} rounds (seed {res['seed']}, {res['seconds']} s, binaries "
            f"`{res['binaries']}`), `python -m reliability.failover --rounds {res['rounds']}`. A "
            "primary and a streaming standby with `synchronous_standby_names = '*'` on loopback; "
            "each round runs `persistor migrate` of 15 scripts (each a table of 20,000 rows) on "
            "`postgresql://…@127.0.0.1:P1,127.0.0.1:P2/postgres?target_session_attrs=read-write` "
            "into a schema of its own, SIGKILLs the primary's postmaster and every backend 0.3-2.5 s "
            "after the start, promotes the standby (`pg_ctl promote`), checks the new primary, runs "
            "`migrate` again, and rebuilds the old primary as the standby (`pg_basebackup`).",
            "",
            "| figure | value |",
            "|---|---|",
            f"| rounds | {res['rounds']} |",
            f"| exit codes of the interrupted runs | {codes} |",
            f'| of those, said "outcome is unknown, run again" | {res["said_run_again"]} |',
            f"| scripts half-applied (table present xor history row) | {res['half_applied']} |",
            f"| acknowledged history rows lost (runs that exited 0, earlier rounds) | {res['acknowledged_lost']} |",
            f"| stuck locks on the new primary | {res['stuck_locks']} |",
            f"| follow-up runs that completed | {res['follow_ups_completed']} of {res['rounds']} |",
            "",
            "Scripts an interrupted run had committed but not yet acknowledged (persistor commits "
            "each script without waiting for its WAL and makes the run durable with one synchronous "
            "commit at the end) may be missing on the new primary, each together with its history "
            "row; the follow-up run applies them. A run that exited 0 waited for the standby.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "failover.json"
    )
    args = parser.parse_args()
    res = run_rounds(args.rounds, args.seed)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    section = Path(__file__).with_name("FAILOVER.md")
    section.write_text(markdown(res) + "\n")
    print(markdown(res))
    bad = res["half_applied"] + res["acknowledged_lost"] + res["stuck_locks"]
    return 0 if bad == 0 and res["follow_ups_completed"] == res["rounds"] else 1


if __name__ == "__main__":
    sys.exit(main())
