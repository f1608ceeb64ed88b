"""Drive `python -m persistor migrate` as a subprocess and check the database after it.

Everything here talks to 127.0.0.1 only and is bounded in count and time.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from persistor.settings_table import environment_variables
from reliability.scripts import CIC_INDEX, MigrationSet

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WAIT_TEXT = "waiting for the migration lock"
HISTORY = "schema_history"

_CWD = tempfile.mkdtemp(prefix="persistor-rel-cwd-")  # no stray persistor.toml


def admin_url() -> str:
    return os.environ.get("PERSISTOR_TEST_URL") or DEFAULT_ADMIN_URL


def with_db(url: str, dbname: str) -> str:
    return urlsplit(url)._replace(path="/" + dbname).geturl()


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    user = f"{parts.username}@" if parts.username else ""
    return parts._replace(netloc=f"{user}{host}:{port}").geturl()


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def create_database(admin: str) -> str:
    name = "rel_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # our own name, not input
    return with_db(admin, name)


def drop_database(admin: str, url: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name(url)} WITH (FORCE)")


def server_version(admin: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute("SELECT version()").fetchone()
    return str(row[0]) if row else "?"


def persistor_env(lock_mode: str | None = None, pgoptions: str | None = None) -> dict[str, str]:
    # Settings the caller's environment could carry into the subprocess.
    scrub = {*environment_variables(os.environ), "PGOPTIONS"}
    env = {k: v for k, v in os.environ.items() if k not in scrub}
    env["NO_COLOR"] = "1"
    if lock_mode:
        env["PERSISTOR_LOCK_MODE"] = lock_mode
    if pgoptions:
        env["PGOPTIONS"] = pgoptions
    return env


def persistor_cmd(command: str, url: str, location: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "persistor",
        command,
        "--url",
        url,
        "--location",
        str(location),
        *extra,
    ]


def spawn(
    command: str,
    url: str,
    location: Path,
    *extra: str,
    lock_mode: str | None = None,
    pgoptions: str | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        persistor_cmd(command, url, location, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=persistor_env(lock_mode, pgoptions),
        cwd=_CWD,
    )


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def waited(self) -> bool:
        return WAIT_TEXT in self.err


def run(
    command: str,
    url: str,
    location: Path,
    *extra: str,
    timeout: float = 120,
    lock_mode: str | None = None,
) -> Run:
    started = time.monotonic()
    p = spawn(command, url, location, *extra, lock_mode=lock_mode)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Run(-999, out, err + f"\n[harness] timed out after {timeout} s", timeout)
    return Run(p.returncode, out, err, time.monotonic() - started)


def lock_mode_supported() -> bool:
    """Whether this persistor has `migrate --lock-mode` (the table lock for poolers)."""
    out = subprocess.run(
        [sys.executable, "-m", "persistor", "migrate", "--help"],
        capture_output=True,
        text=True,
        env=persistor_env(),
        cwd=_CWD,
        timeout=60,
    ).stdout
    return "--lock-mode" in out


# --------------------------------------------------------------------------- state


@dataclass
class State:
    """What the database holds: history rows and each script's effects."""

    rows: list[tuple[int, str | None, str, bool]]  # rank, version, script, success
    tables: set[int]
    markers: set[int]
    extra_column: set[int]
    row_counts: dict[int, int]
    indexes: dict[str, bool]  # name -> indisvalid
    advisory_locks: int
    persistor_sessions: int

    def success_versions(self) -> list[int]:
        return [int(v) for _, v, _, ok in self.rows if ok and v is not None]

    def failed_versions(self) -> list[int]:
        return [int(v) for _, v, _, ok in self.rows if not ok and v is not None]

    @property
    def cic_index(self) -> str:
        if CIC_INDEX not in self.indexes:
            return "none"
        return "valid" if self.indexes[CIC_INDEX] else "INVALID"


def read_state(url: str, admin: str) -> State:
    with psycopg.connect(url, autocommit=True) as conn:
        has_hist = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY,)).fetchone()
        rows: list[tuple[int, str | None, str, bool]] = []
        if has_hist and has_hist[0]:
            rows = [
                (int(r[0]), r[1], str(r[2]), bool(r[3]))
                for r in conn.execute(
                    f"SELECT installed_rank, version, script, success FROM {HISTORY} "
                    "ORDER BY installed_rank"
                )
            ]
        tables = {
            int(r[0][2:])
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace AND relname ~ '^t_[0-9]+$'"
            )
        }
        markers: set[int] = set()
        has_markers = conn.execute("SELECT to_regclass('markers') IS NOT NULL").fetchone()
        if has_markers and has_markers[0]:
            markers = {int(r[0]) for r in conn.execute("SELECT script FROM markers")}
        extra = {
            int(r[0][2:])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'extra'"
            )
        }
        counts: dict[int, int] = {}
        for n in sorted(tables):
            row = conn.execute(f"SELECT count(*) FROM t_{n}").fetchone()
            counts[n] = int(row[0]) if row else 0
        indexes = {
            str(r[0]): bool(r[1])
            for r in conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relnamespace = 'public'::regnamespace"
            )
        }
    locks, sessions = server_side(admin, db_name(url))
    return State(rows, tables, markers, extra, counts, indexes, locks, sessions)


def server_side(admin: str, dbname: str) -> tuple[int, int]:
    """Advisory locks on the database, and persistor sessions connected to it."""
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "         WHERE l.locktype = 'advisory' AND d.datname = %s),"
            "       (SELECT count(*) FROM pg_stat_activity "
            "         WHERE datname = %s AND application_name = 'persistor')",
            (dbname, dbname),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def lock_rows(url: str) -> int:
    """Rows in the table-mode lock table (0 when it does not exist)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT to_regclass('{HISTORY}_lock') IS NOT NULL").fetchone()
        if not (row and row[0]):
            return 0
        row = conn.execute(f"SELECT count(*) FROM {HISTORY}_lock").fetchone()
    return int(row[0]) if row else 0


def in_flight(admin: str, dbname: str) -> list[str]:
    """The statements persistor sessions on the database are running right now."""
    with psycopg.connect(admin, autocommit=True) as conn:
        return [
            f"{r[0]}: {' '.join(str(r[1]).split())[:60]}"
            for r in conn.execute(
                "SELECT state, query FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'persistor'",
                (dbname,),
            )
        ]


def wait_sessions_gone(admin: str, dbname: str, timeout: float = 60) -> float:
    """Wait until no persistor session is connected to the database; return the seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server_side(admin, dbname)[1] == 0:
            return time.monotonic() - started
        time.sleep(0.01)
    return -1.0


def violations(state: State, ms: MigrationSet, complete: bool = False) -> list[str]:
    """Every broken invariant; no-transaction partial states are not violations here."""
    bad: list[str] = []
    ok = state.success_versions()
    dup = [v for v, c in Counter(ok).items() if c > 1]
    if dup:
        bad.append(f"duplicate successful history rows for versions {dup}")
    failed_tx = [v for v in state.failed_versions() if v != ms.cic]
    if failed_tx:
        bad.append(f"failed rows for transactional scripts {failed_tx}")
    applied = set(ok)
    if ok != sorted(ok):
        bad.append(f"history ranks out of version order: {ok}")
    if applied and applied != set(range(1, max(applied) + 1)):
        bad.append(f"applied versions are not a prefix: {sorted(applied)}")
    for n in ms.transactional:
        effects = {
            "table": n in state.tables,
            "marker": n in state.markers,
        }
        if ms.is_multi(n):
            effects["column"] = n in state.extra_column
            effects["index"] = f"t_{n}_v" in state.indexes
        if n in state.tables:
            effects["rows"] = state.row_counts.get(n) == ms.expected_rows(n)
        have = n in applied
        if have and not all(effects.values()):
            missing = [k for k, v in effects.items() if not v]
            bad.append(f"V{n:03d} has a success row but lacks {missing}")
        if not have and any(effects.values()):
            present = [k for k, v in effects.items() if v]
            bad.append(f"V{n:03d} has effects {present} but no success row (half-applied)")
    if ms.cic in applied and state.cic_index != "valid":
        bad.append(f"V{ms.cic:03d} recorded as applied but its index is {state.cic_index}")
    if complete:
        missing_v = sorted(set(range(1, ms.count + 1)) - applied)
        if missing_v:
            bad.append(f"not complete: versions {missing_v} missing")
    return bad


def cic_partial(state: State, ms: MigrationSet) -> str | None:
    """Describe a no-transaction script left half done (expected after some kills), else None."""
    row = "success" if ms.cic in state.success_versions() else "none"
    if ms.cic in state.failed_versions():
        row = "failed"
    index = state.cic_index
    if (row, index) in (("success", "valid"), ("none", "none")):
        return None
    return f"history row {row}, index {index}"


# --------------------------------------------------------------------------- kills


@dataclass
class KillStats:
    kills: int = 0
    finished_before_kill: int = 0
    iterations: int = 0
    violations: list[str] = field(default_factory=list)
    leftover_locks: int = 0  # advisory locks once the killed sessions had gone
    sessions_stuck: int = 0  # killed sessions still there after 60 s
    linger: list[float] = field(
        default_factory=list
    )  # seconds the killed session outlived its client
    follow_up_waited: int = 0
    follow_up_codes: Counter[int] = field(default_factory=Counter)
    final_codes: Counter[int] = field(default_factory=Counter)
    cic_partial_after_kill: Counter[str] = field(default_factory=Counter)
    failed_row_cases: int = 0
    failed_row_index: Counter[str] = field(default_factory=Counter)
    invalid_indexes: int = 0
    resumed: int = 0  # after dropping the leftover index, migrate resumed the script
    repaired: int = 0  # needed persistor repair as well
    lock_rows_left: int = 0  # table mode: lock rows left once the follow-up finished
    in_flight: Counter[str] = field(default_factory=Counter)
    applied_at_kill: Counter[int] = field(default_factory=Counter)
    follow_up_seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k, v in d.items():
            if isinstance(v, Counter):
                d[k] = dict(sorted(v.items(), key=lambda kv: str(kv[0])))
        d["linger_max"] = max(self.linger, default=0.0)
        d["linger_median"] = sorted(self.linger)[len(self.linger) // 2] if self.linger else 0.0
        return d


def _classify(statements: list[str]) -> str:
    if not statements:
        return "no session yet / between statements"
    text = " | ".join(statements).lower()
    for key, label in (
        ("create index concurrently", "CREATE INDEX CONCURRENTLY"),
        ("generate_series(1, 1", "bulk INSERT / multi-statement"),
        ("commit", "COMMIT with history row"),
        ("pg_sleep", "pg_sleep in a script"),
        ("pg_try_advisory_lock", "taking the lock"),
    ):
        if key in text and "active" in text:
            return label
    if "idle in transaction" in text:
        return "idle in transaction (client-side work)"
    return "idle (client-side work)"


def calibrate(admin: str, ms: MigrationSet) -> tuple[float, float]:
    """Return (seconds until the session appears, seconds of a full run)."""
    url = create_database(admin)
    try:
        started = time.monotonic()
        p = spawn("migrate", url, ms.path)
        appeared = 0.0
        while p.poll() is None:
            if not appeared and server_side(admin, db_name(url))[1]:
                appeared = time.monotonic() - started
            time.sleep(0.01)
        total = time.monotonic() - started
        if p.returncode != 0:
            raise RuntimeError(f"calibration run failed: {p.communicate()[1]}")
        return appeared or 0.3, total
    finally:
        drop_database(admin, url)


def kill_campaign(
    admin: str,
    ms: MigrationSet,
    kills: int,
    *,
    seed: int = 1,
    pgoptions: str | None = None,
    lock_mode: str | None = None,
    budget_s: float = 600,
    log: Any = None,
) -> KillStats:
    """SIGKILL migrate at random moments until `kills` kills landed; check after each."""
    rng = random.Random(seed)
    appear, full = calibrate(admin, ms)
    stats = KillStats()
    stats.notes.append(f"calibration: session after {appear:.2f} s, full run {full:.2f} s")
    deadline = time.monotonic() + budget_s
    # a killed table-mode migrator's lease (30 s) must run out before the next one goes on
    follow_timeout = "60" if lock_mode == "table" else "20"
    while stats.kills < kills and time.monotonic() < deadline:
        stats.iterations += 1
        url = create_database(admin)
        dbname = db_name(url)
        try:
            chain = rng.choice((1, 1, 2, 3))  # sometimes kill the re-run too
            for _ in range(chain):
                if stats.kills >= kills:
                    break
                at = rng.uniform(appear * 0.7, full * 1.05)
                p = spawn(
                    "migrate",
                    url,
                    ms.path,
                    "--lock-timeout",
                    follow_timeout,
                    pgoptions=pgoptions,
                    lock_mode=lock_mode,
                )
                started = time.monotonic()
                while p.poll() is None and time.monotonic() - started < at:
                    time.sleep(0.002)
                if p.poll() is not None:
                    p.communicate()
                    stats.finished_before_kill += 1
                    break
                doing = _classify(in_flight(admin, dbname))  # just before the kill
                if p.poll() is not None:
                    p.communicate()
                    stats.finished_before_kill += 1
                    break
                os.kill(p.pid, signal.SIGKILL)
                p.communicate()
                stats.kills += 1
                stats.in_flight[doing] += 1
                gone = wait_sessions_gone(admin, dbname)
                if gone < 0:
                    stats.sessions_stuck += 1
                else:
                    stats.linger.append(round(gone, 3))
                state = read_state(url, admin)
                stats.applied_at_kill[len(set(state.success_versions()))] += 1
                stats.leftover_locks += state.advisory_locks
                bad = violations(state, ms)
                stats.violations += [f"kill {stats.kills} (at {at:.2f} s): {b}" for b in bad]
                partial = cic_partial(state, ms)
                if partial:
                    stats.cic_partial_after_kill[partial] += 1
                    if state.cic_index == "INVALID":
                        stats.invalid_indexes += 1
                    break  # the next migrate will stop on it: go to the follow-up
            follow = run(
                "migrate", url, ms.path, "--lock-timeout", follow_timeout, lock_mode=lock_mode
            )
            stats.follow_up_codes[follow.code] += 1
            stats.follow_up_seconds.append(round(follow.seconds, 2))
            if follow.waited:
                stats.follow_up_waited += 1
            final = follow
            state = read_state(url, admin)
            if follow.code == 4 and ms.cic in state.failed_versions():
                # The no-transaction script re-ran on top of its own leftovers and
                # failed at the CIC. What an operator does: drop the leftover index,
                # then migrate (resumes at the failed statement); repair if that fails.
                stats.failed_row_cases += 1
                stats.failed_row_index[state.cic_index] += 1
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {CIC_INDEX}")
                final = run(
                    "migrate", url, ms.path, "--lock-timeout", follow_timeout, lock_mode=lock_mode
                )
                if final.code == 0:
                    stats.resumed += 1
                else:
                    rep = run("repair", url, ms.path, lock_mode=lock_mode)
                    final = run(
                        "migrate",
                        url,
                        ms.path,
                        "--lock-timeout",
                        follow_timeout,
                        lock_mode=lock_mode,
                    )
                    if rep.code == 0 and final.code == 0:
                        stats.repaired += 1
                state = read_state(url, admin)
            stats.final_codes[final.code] += 1
            if final.code != 0:
                stats.violations.append(
                    f"iteration {stats.iterations}: final migrate exit {final.code}: "
                    f"{final.err.strip()[-300:]}"
                )
            bad = violations(state, ms, complete=final.code == 0)
            if final.code == 0 and state.cic_index != "valid":
                bad.append(f"complete run left the CIC index {state.cic_index}")
            stats.violations += [f"iteration {stats.iterations} after follow-up: {b}" for b in bad]
            wait_sessions_gone(admin, dbname, 10)
            stats.leftover_locks += server_side(admin, dbname)[0]
            stats.lock_rows_left += lock_rows(url)
        finally:
            drop_database(admin, url)
        if log:
            log(
                f"  kills {stats.kills}/{kills}, violations {len(stats.violations)}, "
                f"failed-row cases {stats.failed_row_cases}"
            )
    return stats


# --------------------------------------------------------------------------- concurrency


@dataclass
class RoundResult:
    codes: list[int]
    duplicates: int
    missing: int
    violations: list[str]
    seconds: float
    waited: int
    leftover_locks: int
    errors: list[str]
    lock_rows_left: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def concurrent_round(
    admin: str,
    ms: MigrationSet,
    *,
    n: int = 10,
    via_url: Any = None,
    lock_mode: str | None = None,
    lock_timeout: float = 120,
    timeout: float = 180,
) -> RoundResult:
    """Start n migrators together on a fresh database; count what they left."""
    url = create_database(admin)
    target = via_url(url) if via_url else url
    try:
        started = time.monotonic()
        procs = [
            spawn(
                "migrate",
                target,
                ms.path,
                "--lock-timeout",
                str(lock_timeout),
                lock_mode=lock_mode,
            )
            for _ in range(n)
        ]
        outs: list[tuple[int, str]] = []
        for p in procs:
            try:
                _, err = p.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
                outs.append((p.returncode, err))
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                outs.append((-999, err + "[harness] timed out"))
        seconds = time.monotonic() - started
        state = read_state(url, admin)
        ok = Counter(state.success_versions())
        duplicates = sum(c - 1 for c in ok.values() if c > 1)
        missing = sum(1 for v in range(1, ms.count + 1) if v not in ok)
        errors = sorted(
            {_last_line(err) for code, err in outs if code != 0},
        )
        return RoundResult(
            codes=[c for c, _ in outs],
            duplicates=duplicates,
            missing=missing,
            violations=violations(state, ms, complete=True),
            seconds=round(seconds, 2),
            waited=sum(1 for _, err in outs if WAIT_TEXT in err),
            leftover_locks=state.advisory_locks,
            errors=errors,
            lock_rows_left=lock_rows(url),
        )
    finally:
        drop_database(admin, url)


def _last_line(err: str) -> str:
    """The error line of a failed run (the first line saying error), shortened."""
    lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "failed" in line.lower():
            return line[:160]
    return lines[-1][:160] if lines else "(no message)"


# --------------------------------------------------------------------------- CIC vs waiters


@dataclass
class CicResult:
    codes: list[int]
    waited: int
    index: str
    seconds: float
    cic_waited_on: list[str]
    violations: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def cic_with_waiters(
    admin: str, ms: MigrationSet, waiters: int = 9, timeout: float = 90
) -> CicResult:
    """One migrator runs the CIC script while `waiters` others wait for the lock.

    ms must come from write_migrations(..., cic_waiters=waiters, cic_sleep=S),
    so that the CIC waits (up to S seconds) until the waiters are polling.
    """
    url = create_database(admin)
    dbname = db_name(url)
    try:
        pre = run("migrate", url, ms.path, "--target", str(ms.cic - 1))
        if pre.code != 0:
            raise RuntimeError(f"pre-migrate failed: {pre.err}")
        started = time.monotonic()
        first = spawn("migrate", url, ms.path, "--lock-timeout", "120")
        # wait until the first one holds the lock (an advisory or any lock row)
        while time.monotonic() - started < 30 and server_side(admin, dbname)[0] == 0:
            time.sleep(0.01)
        others = [spawn("migrate", url, ms.path, "--lock-timeout", "120") for _ in range(waiters)]
        procs = [first, *others]
        seen: set[str] = set()
        while any(p.poll() is None for p in procs) and time.monotonic() - started < timeout:
            with psycopg.connect(admin, autocommit=True) as conn:
                for r in conn.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND query ILIKE 'create index concurrently%%' "
                    "AND wait_event_type = 'Lock'",
                    (dbname,),
                ):
                    seen.add(f"{r[0]}:{r[1]}")
            time.sleep(0.02)
        codes = []
        waited = 0
        for p in procs:
            if p.poll() is None:
                p.kill()
            _, err = p.communicate()
            codes.append(p.returncode if p.returncode is not None else -999)
            waited += WAIT_TEXT in err
        seconds = time.monotonic() - started
        state = read_state(url, admin)
        return CicResult(
            codes=codes,
            waited=waited,
            index=state.cic_index,
            seconds=round(seconds, 2),
            cic_waited_on=sorted(seen),
            violations=violations(state, ms, complete=True),
        )
    finally:
        drop_database(admin, url)


def naive_waiter_control(admin: str, ms: MigrationSet, timeout: float = 30) -> dict[str, Any]:
    """Control: a waiter that blocks on the lock inside a transaction, as a naive
    implementation would. Shows the deadlock the CIC test is there to catch."""
    from persistor.engines.postgres.lock import lock_key

    url = create_database(admin)
    dbname = db_name(url)
    try:
        pre = run("migrate", url, ms.path, "--target", str(ms.cic - 1))
        assert pre.code == 0, pre.err
        started = time.monotonic()
        first = spawn("migrate", url, ms.path, "--lock-timeout", "120")
        while time.monotonic() - started < 30 and server_side(admin, dbname)[0] == 0:
            time.sleep(0.01)
        outcome = "waiter got the lock"
        with psycopg.connect(url) as naive:  # not autocommit: a transaction stays open
            naive.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            try:
                naive.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("public", HISTORY),))
            except psycopg.Error as exc:
                outcome = f"waiter: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            naive.rollback()
        try:
            _, err = first.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            first.kill()
            _, err = first.communicate()
        state = read_state(url, admin)
        return {
            "waiter": outcome,
            "migrator_exit": first.returncode,
            "migrator_error": _last_line(err) if first.returncode else "",
            "index": state.cic_index,
            "seconds": round(time.monotonic() - started, 2),
        }
    finally:
        drop_database(admin, url)


# --------------------------------------------------------------------------- table-lock lease


def paused_holder(
    admin: str, ms: MigrationSet, pause: float = 40.0, via_url: Any = None
) -> dict[str, Any]:
    """Table lock mode: freeze (SIGSTOP) the lock holder mid-run for longer than the
    30 s lease, let a second migrator run meanwhile, then let the first go on.

    A frozen process (VM pause, stop-the-world, SIGSTOP, a network partition) is
    what a lease exists for; the question is whether the first migrator notices it
    lost the lock before writing anything more.
    """
    url = create_database(admin)
    target = via_url(url) if via_url else url
    try:
        first = spawn("migrate", target, ms.path, "--lock-timeout", "120", lock_mode="table")
        started = time.monotonic()
        # let it apply a few scripts, then freeze it inside the run
        while time.monotonic() - started < 20:
            st = read_state(url, admin)
            if len(st.success_versions()) >= 3:
                break
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGSTOP)
        frozen_at = len(set(read_state(url, admin).success_versions()))
        time.sleep(pause)
        second = run("migrate", target, ms.path, "--lock-timeout", "120", lock_mode="table")
        os.kill(first.pid, signal.SIGCONT)
        try:
            _, err1 = first.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            first.kill()
            _, err1 = first.communicate()
        state = read_state(url, admin)
        ok = Counter(state.success_versions())
        return {
            "pause_s": pause,
            "applied_when_frozen": frozen_at,
            "second_exit": second.code,
            "second_waited": second.waited,
            "second_seconds": round(second.seconds, 1),
            "first_exit": first.returncode,
            "first_error": _last_line(err1) if first.returncode else "",
            "duplicates": sum(c - 1 for c in ok.values() if c > 1),
            "missing": sum(1 for v in range(1, ms.count + 1) if v not in ok),
            "violations": violations(state, ms, complete=True),
        }
    finally:
        drop_database(admin, url)
