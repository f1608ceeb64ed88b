"""Bugs the reliability harness found, kept as regression tests now that they are fixed.

1. A no-transaction script killed half way re-ran its completed statements.
2. A --lock-mode table migrator that lost its lease went on executing.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from reliability import harness as h

pytestmark = pytest.mark.postgres


def _wait_for_query(admin: str, dbname: str, fragment: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(admin, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                "AND application_name = 'persistor' AND query LIKE %s",
                (dbname, f"%{fragment}%"),
            ).fetchone()
        if row and row[0]:
            return True
        time.sleep(0.01)
    return False


def _no_tx_set(tmp_path: Path) -> Path:
    d = tmp_path / "notx"
    d.mkdir()
    (d / "V001__audit.sql").write_text("CREATE TABLE audit (step int NOT NULL);\n")
    (d / "V002__backfill.sql").write_text(
        "-- persistor:no-transaction\n"
        "INSERT INTO audit VALUES (1);\n"
        "SELECT pg_sleep(1.5);\n"
        "INSERT INTO audit VALUES (2);\n"
    )
    return d


def test_killed_no_transaction_script_is_not_silently_rerun(rel_admin: str, tmp_path: Path) -> None:
    loc = _no_tx_set(tmp_path)
    url = h.create_database(rel_admin)
    dbname = h.db_name(url)
    try:
        p = h.spawn("migrate", url, loc)
        assert _wait_for_query(rel_admin, dbname, "pg_sleep(1.5)")
        os.kill(p.pid, signal.SIGKILL)  # statement 1 committed, statement 2 running
        p.communicate()
        assert h.wait_sessions_gone(rel_admin, dbname) >= 0
        follow = h.run("migrate", url, loc, "--lock-timeout", "20")
        with psycopg.connect(url, autocommit=True) as conn:
            steps = [r[0] for r in conn.execute("SELECT step FROM audit ORDER BY step")]
        # Either the kill is visible (a failed row, migrate refuses until someone
        # looks) or migrate resumes after statement 1; never statement 1 twice.
        assert steps.count(1) == 1, (
            f"audit {steps}: statement 1 ran twice; follow-up exit {follow.code}"
        )
    finally:
        h.drop_database(rel_admin, url)


def _wait_for_lease_to_run_out(url: str, timeout: float = 30) -> None:
    """Return once the lock row's lease has ended by the server's clock."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT expires_at < now() FROM schema_history_lock").fetchone()
            if row is not None and row[0]:
                return
            time.sleep(0.1)
    raise AssertionError("the stopped migrator's lease never ran out")


def test_table_lock_holder_that_lost_its_lease_stops(rel_admin: str, tmp_path: Path) -> None:
    if not h.lock_mode_supported():
        pytest.skip("no --lock-mode in this persistor")
    loc = _no_tx_set(tmp_path)
    url = h.create_database(rel_admin)
    dbname = h.db_name(url)
    try:
        lease = ("--lock-lease", "3")
        first = h.spawn("migrate", url, loc, "--lock-timeout", "120", *lease, lock_mode="table")
        assert _wait_for_query(rel_admin, dbname, "pg_sleep(1.5)")
        os.kill(first.pid, signal.SIGSTOP)  # frozen inside the no-transaction script
        _wait_for_lease_to_run_out(url)
        second = h.run("migrate", url, loc, "--lock-timeout", "60", *lease, lock_mode="table")
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=60)
        with psycopg.connect(url, autocommit=True) as conn:
            steps = [r[0] for r in conn.execute("SELECT step FROM audit ORDER BY step")]
        assert second.code == 0, second.err
        # the second ran V002 (statement 2 once); the first lost the lock and
        # must not run statement 2 again
        assert steps.count(2) == 1, f"audit {steps}, first exit {first.returncode}: {err[-300:]}"
        # and the stalled migrator says what happened (exit 6), not a statement error
        assert first.returncode == 6, err[-300:]
        assert "lost the migration lock" in err
    finally:
        h.drop_database(rel_admin, url)
