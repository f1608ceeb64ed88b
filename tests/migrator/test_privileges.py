"""Migrating as a least-privilege role: what it needs, and what it is told when it lacks it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import url_as
from tests.migrator.conftest import tables, write

pytestmark = pytest.mark.postgres


def _as_admin(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.mark.parametrize("lock_mode", ["session", "table"])
def test_role_that_may_create_in_its_schema_only_can_migrate(
    cli: Any, pg_url: str, role: str, migrations: Path, lock_mode: str
) -> None:
    # The usual least-privilege set-up: CREATE on the schema, not on the
    # database. CREATE SCHEMA IF NOT EXISTS would need the latter.
    _as_admin(pg_url, f"GRANT CREATE ON SCHEMA public TO {role}")
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    url = url_as(pg_url, role)
    result = cli("migrate", "--url", url, "-l", str(migrations), "--lock-mode", lock_mode)
    assert result.code == 0, result.err
    assert "a" in tables(pg_url)


def test_role_that_may_not_create_the_history_table_is_told_the_grant(
    cli: Any, pg_url: str, role: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    result = cli("migrate", "--url", url_as(pg_url, role), "-l", str(migrations))
    assert result.code == 1
    assert f"role {role} may not create the history table" in result.err
    assert f'GRANT CREATE ON SCHEMA "public" TO {role}' in result.err
    assert "unexpected error" not in result.err
    assert tables(pg_url) == set()


def test_role_that_may_not_read_the_history_is_told_the_grant(
    cli: Any, pg_url: str, role: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    result = cli("status", "--url", url_as(pg_url, role), "-l", str(migrations))
    assert result.code == 1
    assert f"role {role} may not read the history table" in result.err
    assert f'GRANT SELECT ON "public"."schema_history" TO {role}' in result.err


def test_another_tools_table_as_history_table_is_a_usage_error(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    _as_admin(
        pg_url,
        "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version text, "
        "description text, type text, script text, checksum int, installed_by text, "
        "installed_on timestamp, execution_time int, success boolean)",
    )
    args = ("--url", pg_url, "-l", str(migrations), "--history-table", "flyway_schema_history")
    result = cli("status", *args)
    assert result.code == 2
    assert '"public"."flyway_schema_history" is not a persistor history table' in result.err
    assert "persistor baseline" in result.err


def _failed_run(cli: Any, pg_url: str, migrations: Path) -> None:
    """As the owner: V1 applied, V2 (no-transaction) failed, so repair has a row to delete."""
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V2__b.sql", "-- persistor:no-transaction\nCREATE TABLE b (id nosuchtype);")
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 4


def test_repair_without_delete_on_the_history_is_told_the_grant(
    cli: Any, pg_url: str, role: str, migrations: Path
) -> None:
    _failed_run(cli, pg_url, migrations)
    _as_admin(pg_url, f"GRANT SELECT, INSERT, UPDATE ON schema_history TO {role}")
    result = cli("repair", "--url", url_as(pg_url, role), "-l", str(migrations), "--json")
    assert result.code == 1
    assert "unexpected error" not in result.err
    assert f"role {role} may not delete from the history table" in result.err
    assert f'GRANT DELETE ON "public"."schema_history" TO {role}' in result.err
    error = result.json()["error"]
    assert error["type"] == "PrivilegeError" and error["sqlstate"] == "42501"
    # nothing changed: the failed row is still there for a role that may delete it
    assert cli("repair", "--url", pg_url, "-l", str(migrations)).code == 0


@pytest.mark.parametrize("lock_mode", ["session", "table"])
def test_role_that_may_read_but_not_write_the_history_is_told_the_grant(
    cli: Any, pg_url: str, role: str, migrations: Path, lock_mode: str
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    args = ("-l", str(migrations), "--lock-mode", lock_mode)
    assert cli("migrate", "--url", pg_url, *args).code == 0
    # the table lock's own table belongs to the owner here: let the role use it
    _as_admin(
        pg_url,
        f"GRANT SELECT ON schema_history TO {role}",
        f"GRANT CREATE ON SCHEMA public TO {role}",
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE INSERT ON schema_history FROM {role}",
    )
    write(migrations, "V2__b.sql", "CREATE TABLE b (id int);")
    result = cli("migrate", "--url", url_as(pg_url, role), *args, "--json")
    assert result.code == 1, result.err
    assert f"role {role} may not insert into the history table" in result.err
    assert f'GRANT INSERT ON "public"."schema_history" TO {role}' in result.err
    assert "V2__b.sql failed" not in result.err
    assert result.json()["error"]["type"] == "PrivilegeError"
    assert "b" not in tables(pg_url)


def test_clean_as_a_role_that_does_not_own_the_schema_is_told_what_it_needs(
    cli: Any, pg_url: str, role: str, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    _as_admin(pg_url, f"GRANT SELECT ON schema_history TO {role}")
    monkeypatch.setenv("PERSISTOR_CLEAN_ENABLED", "1")
    result = cli("clean", "--yes", "--url", url_as(pg_url, role), "-l", str(migrations), "--json")
    assert result.code == 1
    assert "unexpected error" not in result.err
    assert f'role {role} may not clean schema "public"' in result.err
    assert "Nothing was dropped" in result.err
    error = result.json()["error"]
    assert error["type"] == "PrivilegeError" and error["sqlstate"] == "42501"
    assert tables(pg_url) == {"a"}


def test_role_that_may_not_use_the_schema_is_told_the_grant(
    cli: Any, pg_url: str, role: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    assert cli("migrate", "--url", pg_url, "-l", str(migrations), "--schema", "app").code == 0
    _as_admin(pg_url, f"GRANT SELECT ON app.schema_history TO {role}")
    args = ("--url", url_as(pg_url, role), "-l", str(migrations), "--schema", "app")
    result = cli("status", *args)
    assert result.code == 1
    assert "unexpected error" not in result.err
    assert f'GRANT USAGE ON SCHEMA "app" TO {role}' in result.err
