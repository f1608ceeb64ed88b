"""A server lost mid-run (crash, failover) is exit 3, "outcome unknown, run again"; a rerun completes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.migrator.conftest import tables, write

pytestmark = pytest.mark.postgres


def _end_persistor_sessions(url: str, after: float) -> None:
    time.sleep(after)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'persistor' AND datname = current_database()"
        )


def test_connection_lost_mid_script_says_run_again(cli: Any, pg_url: str, migrations: Path) -> None:
    write(migrations, "V1__first.sql", "CREATE TABLE first (id int);\n")
    write(migrations, "V2__slow.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(5);\n")
    killer = threading.Thread(target=_end_persistor_sessions, args=(pg_url, 1.5))
    killer.start()
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    killer.join()
    assert result.code == 3, result.err
    assert "lost the connection to the database" in result.err
    assert "The outcome is unknown, run again" in result.err
    assert "failed at V2__slow.sql" not in result.err  # not the script's fault
    assert "slow" not in tables(pg_url)
    write(migrations, "V2__slow.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(0);\n")
    again = cli("migrate", "--url", pg_url, "--location", str(migrations), "-q")
    assert again.code == 0, again.err
    assert tables(pg_url) == {"first", "slow"}
