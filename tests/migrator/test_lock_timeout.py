"""Never queue behind a lock for long: lock_timeout on every statement, retries that name the blocker.

Every test here holds a real lock in a second session (an open transaction
that read the table), the way a long report or a forgotten transaction does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from persistor import api
from persistor.core.no_transaction import blocks_no_traffic
from persistor.core.retry import pause
from persistor.errors import MigrationError, UsageError
from persistor.results import Event
from persistor.settings import Settings, load_settings
from tests.migrator.conftest import history, write

pytestmark = pytest.mark.postgres

HOLDER_QUERY = "SELECT count(*) FROM t /* nightly report */"
FAST = {"lock_timeout_ms": 200, "lock_retry_max_delay_s": 0.1}


class Holder:
    """A session in an open transaction that read table t: it blocks ALTER TABLE t."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute(HOLDER_QUERY)
        self.pid = self.conn.info.backend_pid

    def release_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.conn.rollback)
        timer.start()
        return timer


@pytest.fixture
def table_t(pg_url: str, migrations: Path) -> Iterator[Settings]:
    """A database at V1 (table t), and settings with short lock timeouts and pauses."""
    write(migrations, "V1__t.sql", "CREATE TABLE t (id int);")
    settings = Settings(url=pg_url, locations=(migrations,), **FAST)  # type: ignore[arg-type]
    api.migrate(settings)
    yield settings


@pytest.fixture
def holder(pg_url: str, table_t: Settings) -> Iterator[Holder]:
    held = Holder(pg_url)
    yield held
    held.conn.close()


def columns(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 "
            "ORDER BY attnum"
        ).fetchall()
    return [r[0] for r in rows]


def migrate(settings: Settings, **changes: Any) -> tuple[list[Event], Any]:
    events: list[Event] = []
    result = api.migrate(Settings(**{**settings.__dict__, **changes}), on_event=events.append)
    return [e for e in events if e.kind == "retry"], result


@pytest.mark.parametrize("lock_mode", ["session", "table"])
def test_a_blocked_script_is_retried_naming_the_blocker_and_completes_once_it_lets_go(
    table_t: Settings, holder: Holder, migrations: Path, lock_mode: str
) -> None:
    write(migrations, "V2__alter.sql", "ALTER TABLE t ADD COLUMN v int;")
    holder.release_after(1.0)
    retries, result = migrate(table_t, lock_retries=30, lock_mode=lock_mode)
    assert [a.script for a in result.applied] == ["V2__alter.sql"]
    assert columns(table_t.url or "") == ["id", "v"]
    assert retries, "the script never waited"
    first = retries[0]
    assert first.message.startswith("V2__alter.sql:1: gave up waiting for a lock, blocked by ")
    assert f"pid {holder.pid} (" in first.message
    assert "idle in transaction" in first.message and HOLDER_QUERY in first.message
    assert (first.done, first.total) == (1, 30)


def test_spent_retries_exit_4_naming_the_blocker_and_keep_nothing(
    table_t: Settings, holder: Holder, migrations: Path, cli: Any
) -> None:
    write(
        migrations, "V2__alter.sql", "CREATE TABLE u (id int);\nALTER TABLE t ADD COLUMN v int;\n"
    )
    url = table_t.url or ""
    shown = cli(
        "migrate", "--url", url, "-l", str(migrations),
        "--lock-timeout-ms", "150", "--lock-retries", "2", "--lock-retry-max-delay", "0.05",
    )  # fmt: skip
    assert shown.code == 4
    assert shown.err.count("gave up waiting for a lock") == 2  # one line per retry
    error = shown.err[shown.err.index("error: ") :]
    assert error.startswith(
        "error: V2__alter.sql failed at V2__alter.sql:2: it could not get a lock "
        "(canceling statement due to lock timeout, SQLSTATE 55P03), 3 tries over "
    )
    assert f"blocked by pid {holder.pid} (" in error and HOLDER_QUERY in error
    assert "Nothing of this script was applied." in error
    assert history(url) == [("1", "t", "SQL", "V1__t.sql", True)]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('u')").fetchone() == (None,)
    assert columns(url) == ["id"]


def test_json_error_of_spent_retries_carries_the_sqlstate(
    table_t: Settings, holder: Holder, migrations: Path, cli: Any
) -> None:
    write(migrations, "V2__alter.sql", "ALTER TABLE t ADD COLUMN v int;")
    shown = cli(
        "migrate", "--json", "--url", table_t.url or "", "-l", str(migrations),
        "--lock-timeout-ms", "100", "--lock-retries", "0",
    )  # fmt: skip
    assert shown.code == 4
    error = shown.json()["error"]
    assert (error["type"], error["exit_code"], error["sqlstate"]) == ("MigrationError", 4, "55P03")
    assert f"pid {holder.pid}" in error["message"]


def test_single_transaction_is_not_retried_but_names_the_blocker(
    table_t: Settings, holder: Holder, migrations: Path
) -> None:
    # A retry would keep the run's earlier locks (here on u) through every pause.
    write(migrations, "V2__u.sql", "CREATE TABLE u (id int);")
    write(migrations, "V3__alter.sql", "ALTER TABLE t ADD COLUMN v int;")
    events: list[Event] = []
    with pytest.raises(MigrationError) as info:
        api.migrate(table_t, single_transaction=True, on_event=events.append)
    assert [e for e in events if e.kind == "retry"] == []
    assert ": it could not get a lock (canceling statement due to lock timeout, SQLSTATE " in str(
        info.value
    )
    assert f"1 try over 0 s; the last one was blocked by pid {holder.pid} (" in str(info.value)
    assert [r[3] for r in history(table_t.url or "")] == ["V1__t.sql"]


def test_a_no_transaction_script_retries_only_the_statement_that_gave_up(
    table_t: Settings, holder: Holder, migrations: Path
) -> None:
    # Run twice, CREATE TABLE a would fail: only the ALTER may be tried again.
    write(
        migrations,
        "V2__outside.sql",
        "-- persistor:no-transaction\nCREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN v int;\n",
    )
    holder.release_after(1.0)
    retries, result = migrate(table_t, lock_retries=30)
    assert [a.script for a in result.applied] == ["V2__outside.sql"]
    assert retries and retries[0].message.startswith("V2__outside.sql:3: gave up waiting")
    assert f"pid {holder.pid}" in retries[0].message
    assert columns(table_t.url or "") == ["id", "v"]
    assert [r[3:] for r in history(table_t.url or "")] == [
        ("V1__t.sql", True),
        ("V2__outside.sql", True),
    ]


def test_a_no_transaction_script_out_of_retries_keeps_what_ran_and_resumes(
    table_t: Settings, holder: Holder, migrations: Path
) -> None:
    write(
        migrations,
        "V2__outside.sql",
        "-- persistor:no-transaction\nCREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN v int;\n",
    )
    with pytest.raises(MigrationError) as info:
        migrate(table_t, lock_retries=1)
    assert "The statements before it stay applied, and the next migrate resumes at this one" in str(
        info.value
    )
    holder.conn.rollback()
    _, result = migrate(table_t)
    assert [a.script for a in result.applied] == ["V2__outside.sql"]
    assert columns(table_t.url or "") == ["id", "v"]


def test_lock_timeout_0_waits_for_the_lock_as_long_as_it_takes(
    table_t: Settings, holder: Holder, migrations: Path
) -> None:
    write(migrations, "V2__alter.sql", "ALTER TABLE t ADD COLUMN v int;")
    holder.release_after(1.2)
    started = time.monotonic()
    retries, result = migrate(table_t, lock_timeout_ms=0, lock_retries=0)
    assert time.monotonic() - started >= 1.1
    assert retries == [] and [a.script for a in result.applied] == ["V2__alter.sql"]


def test_the_pause_before_a_retry_doubles_up_to_its_cap_and_is_drawn_below_it() -> None:
    highest = [pause(n, 3.0, lambda low, high: high) for n in range(1, 7)]
    assert highest == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert pause(1000, 60.0, lambda low, high: high) == 60.0
    assert pause(4, 60.0, lambda low, high: low) == 0.0  # full jitter: anywhere from 0


SEEN = (
    "CREATE TABLE {name} AS SELECT current_setting('lock_timeout') AS lock_timeout, "
    "current_setting('statement_timeout') AS statement_timeout;"
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ("2s", "0")),
        ({"lock_timeout_ms": 0}, ("0", "0")),
        ({"lock_timeout_ms": 1500, "statement_timeout_ms": 60000}, ("1500ms", "1min")),
    ],
)
def test_every_statement_runs_with_the_configured_timeouts(
    pg_url: str, migrations: Path, changes: dict[str, int], expected: tuple[str, str]
) -> None:
    write(migrations, "V1__inside.sql", SEEN.format(name="inside"))
    write(
        migrations, "V2__outside.sql", "-- persistor:no-transaction\n" + SEEN.format(name="outside")
    )
    api.migrate(load_settings({"url": pg_url, "locations": [str(migrations)], **changes}, env={}))
    with psycopg.connect(pg_url) as conn:
        for table in ("inside", "outside"):
            assert conn.execute(f"SELECT * FROM {table}").fetchone() == expected, table


def test_statement_timeout_cancels_a_long_statement_without_retry(
    table_t: Settings, migrations: Path
) -> None:
    write(migrations, "V2__slow.sql", "CREATE TABLE s (id int);\nSELECT pg_sleep(3);\n")
    started = time.monotonic()
    with pytest.raises(MigrationError) as info:
        migrate(table_t, lock_timeout_ms=100, statement_timeout_ms=300, lock_retries=5)
    assert time.monotonic() - started < 2.5
    assert info.value.sqlstate == "57014"
    assert "canceling statement due to statement timeout" in str(info.value)
    assert [r[3] for r in history(table_t.url or "")] == ["V1__t.sql"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"PERSISTOR_LOCK_TIMEOUT_MS": "2s"}, "lock_timeout_ms must be a whole number of milliseconds (0 = off), got '2s' from PERSISTOR_LOCK_TIMEOUT_MS"),
        ({"PERSISTOR_LOCK_TIMEOUT_MS": "-1"}, "lock_timeout_ms must be between 0 and 2147483647, got '-1'"),
        ({"PERSISTOR_STATEMENT_TIMEOUT_MS": "1.5"}, "statement_timeout_ms must be a whole number of milliseconds (0 = off), got '1.5'"),
        ({"PERSISTOR_LOCK_RETRIES": "many"}, "lock_retries must be a whole number (0 = no retry), got 'many'"),
        ({"PERSISTOR_LOCK_RETRIES": "1001"}, "lock_retries must be between 0 and 1000, got '1001'"),
        ({"PERSISTOR_LOCK_RETRY_MAX_DELAY": "-3"}, "lock_retry_max_delay_s must not be negative, got '-3'"),
        ({"PERSISTOR_STATEMENT_TIMEOUT_MS": "1000"}, "lock_timeout_ms (2000) must be below statement_timeout_ms (1000)"),
    ],
)  # fmt: skip
def test_bad_timeout_settings_are_refused_naming_the_setting(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as info:
        load_settings(env=values)
    assert message in str(info.value)


def test_timeout_settings_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "persistor.toml").write_text(
        "lock_timeout_ms = 500\nstatement_timeout_ms = 0\nlock_retries = 3\n"
        "lock_retry_max_delay_s = 2.5\n"
    )
    settings = load_settings(env={}, cwd=tmp_path)
    assert (settings.lock_timeout_ms, settings.statement_timeout_ms) == (500, 0)
    assert (settings.lock_retries, settings.lock_retry_max_delay_s) == (3, 2.5)


def test_bad_timeout_on_the_command_line_exits_2(cli: Any) -> None:
    shown = cli("migrate", "--url", "sqlite:///x.db", "--lock-retries", "-2")
    assert shown.code == 2
    assert "lock_retries must be between 0 and 1000, got '-2'" in shown.err


def test_create_index_concurrently_waits_instead_of_leaving_an_invalid_index(
    table_t: Settings, migrations: Path
) -> None:
    url = table_t.url or ""
    writer = psycopg.connect(url)
    writer.execute("INSERT INTO t VALUES (1)")  # CIC waits for open writers to finish
    timer = threading.Timer(1.0, writer.rollback)
    timer.start()
    write(
        migrations,
        "V2__index.sql",
        "-- persistor:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"
        "CREATE TABLE after_index AS SELECT current_setting('lock_timeout') AS lock_timeout;\n",
    )
    started = time.monotonic()
    try:
        retries, result = migrate(table_t, lock_retries=0)
    finally:
        timer.join()
        writer.close()
    assert retries == [] and [a.script for a in result.applied] == ["V2__index.sql"]
    with psycopg.connect(url) as conn:
        valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass")
        assert valid.fetchone() == (True,)
        # the statements after it have their lock timeout again
        assert conn.execute("SELECT * FROM after_index").fetchone() == ("200ms",)
    assert time.monotonic() - started >= 0.9  # it waited for the writer, past 200 ms


@pytest.mark.parametrize(
    ("statement", "waits"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (id)", True),
        ("create unique index concurrently if not exists i on t (id)", True),
        ("DROP INDEX CONCURRENTLY i", True),
        ("REINDEX (CONCURRENTLY) TABLE t", True),
        ("REINDEX INDEX CONCURRENTLY i", True),
        ("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", True),
        ("REINDEX SCHEMA s", False),
        ("VACUUM t", False),
        ("CREATE INDEX i ON t (id)", False),
        ("ALTER TABLE t ADD COLUMN concurrently int", False),
        ("-- CREATE INDEX CONCURRENTLY\nALTER TABLE t ADD COLUMN v int", False),
    ],
)
def test_which_statements_wait_for_locks_without_a_timeout(statement: str, waits: bool) -> None:
    assert blocks_no_traffic(statement) is waits
