"""What the batched data path must keep: BEGIN and SET LOCAL travel with a
script's first statement and its history row with COMMIT, yet errors point at
the right line, each script starts from the target schema, and a failure
leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.migrator.conftest import history, tables, write


def _tables_in(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows} - {"schema_history", "schema_history_lock"}


@pytest.mark.postgres
def test_error_in_a_first_statement_points_at_its_line(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    # The statement goes out behind BEGIN and SET LOCAL: the server's
    # position counts from them, the message must not.
    write(migrations, "V1__a.sql", "-- header\nCREATE TABLE a (\n  id int,\n  v nosuchtype\n);\n")
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 4
    assert "V1__a.sql failed at V1__a.sql:4:" in result.err
    assert tables(pg_url) == set()


@pytest.mark.postgres
@pytest.mark.parametrize("lock_mode", ["session", "table"])
def test_each_script_starts_from_the_target_schema(
    cli: Any, pg_url: str, migrations: Path, lock_mode: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other")
    write(
        migrations, "V1__wander.sql", "SET search_path TO other;\nCREATE TABLE in_other (id int);"
    )
    write(migrations, "V2__home.sql", "CREATE TABLE at_home (id int);")
    args = ("--url", pg_url, "-l", str(migrations), "--schema", "app", "--lock-mode", lock_mode)
    result = cli("migrate", *args)
    assert result.code == 0, result.err
    assert _tables_in(pg_url, "other") == {"in_other"}
    assert _tables_in(pg_url, "app") == {"at_home"}


def test_a_script_with_no_statements_is_recorded(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__nothing_yet.sql", "-- filled in later\n")
    write(migrations, "V2__a.sql", "CREATE TABLE a (id int);")
    assert cli("migrate", "--url", db_url, "-l", str(migrations)).code == 0
    assert [r[3] for r in history(db_url)] == ["V1__nothing_yet.sql", "V2__a.sql"]
    assert tables(db_url) == {"a"}


def test_single_transaction_failing_in_a_later_script_keeps_nothing_and_leaves_no_lock(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__nothing_yet.sql", "-- filled in later\n")
    write(migrations, "V2__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V3__b.sql", "INSERT INTO nowhere VALUES (1);")
    args = ("--url", db_url, "-l", str(migrations))
    result = cli("migrate", *args, "--single-transaction")
    assert result.code == 4
    assert "V3__b.sql failed at V3__b.sql:1" in result.err
    assert tables(db_url) == set() and history(db_url) == []
    write(migrations, "V3__b.sql", "CREATE TABLE b (id int);")
    again = cli("migrate", *args, "--single-transaction", "--lock-timeout", "5")
    assert again.code == 0, again.err
    assert tables(db_url) == {"a", "b"}
    assert [r[3] for r in history(db_url)] == ["V1__nothing_yet.sql", "V2__a.sql", "V3__b.sql"]
