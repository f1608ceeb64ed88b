"""Flyway's SQL callbacks: run at their moments, in the transactions Flyway uses, never recorded."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from tests.migrator.conftest import history, tables, write

# Each callback notes its moment in cb_log; beforeValidate runs first of all,
# so it creates the table. The count makes the order visible on both engines.
_NOTE = "INSERT INTO cb_log SELECT count(*), '{event}' FROM cb_log;\n"
CALLBACKS = {
    "beforeValidate.sql": "CREATE TABLE IF NOT EXISTS cb_log (n integer, event text);\n"
    + _NOTE.format(event="beforeValidate"),
    "afterValidate.sql": _NOTE.format(event="afterValidate"),
    "beforeMigrate.sql": _NOTE.format(event="beforeMigrate"),
    "beforeEachMigrate.sql": _NOTE.format(event="beforeEachMigrate ${flyway:filename}"),
    "afterEachMigrate.sql": _NOTE.format(event="afterEachMigrate"),
    "afterMigrate.sql": _NOTE.format(event="afterMigrate"),
    "afterMigrate__second.sql": _NOTE.format(event="afterMigrate second"),
    "afterMigrateError.sql": _NOTE.format(event="afterMigrateError"),
}


def _log(url: str) -> list[str]:
    query = "SELECT event FROM cb_log ORDER BY n"
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return [r[0] for r in conn.execute(query).fetchall()]
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(query).fetchall()]


def _run(cli: Any, url: str, folder: Path, *args: str) -> Any:
    return cli(*args, "--url", url, "--location", str(folder))


def _write_callbacks(folder: Path) -> None:
    for name, text in CALLBACKS.items():
        write(folder, name, text)


def test_callbacks_run_at_their_moments_and_are_not_recorded(
    cli: Any, db_url: str, migrations: Path
) -> None:
    _write_callbacks(migrations)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    write(migrations, "V2__b.sql", "CREATE TABLE b (id integer);\n")
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 0, result.err
    assert _log(db_url) == [
        "beforeValidate",
        "afterValidate",
        "beforeMigrate",
        "beforeEachMigrate beforeEachMigrate.sql",
        "afterEachMigrate",
        "beforeEachMigrate beforeEachMigrate.sql",
        "afterEachMigrate",
        "afterMigrate",
        "afterMigrate second",
    ]
    assert [r[3] for r in history(db_url)] == ["V1__a.sql", "V2__b.sql"]
    status = _run(cli, db_url, migrations, "status", "--json").json()
    assert status["counts"] == {"applied": 2} and status["warnings"] == []


def test_after_migrate_runs_when_nothing_is_pending(
    cli: Any, db_url: str, migrations: Path
) -> None:
    _write_callbacks(migrations)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    assert _run(cli, db_url, migrations, "migrate").code == 0
    before = len(_log(db_url))
    assert _run(cli, db_url, migrations, "migrate").code == 0
    assert _log(db_url)[before:] == [
        "beforeValidate",
        "afterValidate",
        "beforeMigrate",
        "afterMigrate",
        "afterMigrate second",
    ]


def test_validate_runs_its_callbacks(cli: Any, db_url: str, migrations: Path) -> None:
    _write_callbacks(migrations)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    if db_url.startswith("sqlite"):  # validate leaves a missing SQLite file missing
        sqlite3.connect(db_url[len("sqlite:///") :]).close()
    result = _run(cli, db_url, migrations, "validate")
    assert result.code == 0, result.err
    assert _log(db_url) == ["beforeValidate", "afterValidate"]


def test_a_failed_script_rolls_back_its_each_callbacks_and_runs_after_migrate_error(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    _write_callbacks(migrations)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    write(
        migrations, "V2__bad.sql", "CREATE TABLE b (id integer);\nINSERT INTO nowhere VALUES (1);\n"
    )
    result = _run(cli, pg_url, migrations, "migrate")
    assert result.code == 4
    assert "V2__bad.sql failed at V2__bad.sql:2" in result.err
    assert _log(pg_url) == [
        "beforeValidate",
        "afterValidate",
        "beforeMigrate",
        "beforeEachMigrate beforeEachMigrate.sql",
        "afterEachMigrate",
        "afterMigrateError",  # V2's beforeEachMigrate went with its transaction
    ]
    assert tables(pg_url) == {"a", "cb_log"}


def test_a_failing_callback_names_its_file_and_line(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "afterEachMigrate__check.sql", "SELECT 1;\nSELECT * FROM missing_table;\n")
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 4
    assert "afterEachMigrate__check.sql failed at afterEachMigrate__check.sql:2" in result.err
    assert tables(db_url) == set()  # the script went with its callback's failure
