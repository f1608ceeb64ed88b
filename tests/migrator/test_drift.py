"""`persistor drift`: the migrations built in a scratch database, compared with the target."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import url_as
from tests.migrator.conftest import write

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL DEFAULT 'x',
    qty integer NOT NULL DEFAULT 0 CHECK (qty >= 0)
);
CREATE INDEX ix_items_name ON items (name);
CREATE FUNCTION item_total() RETURNS bigint LANGUAGE sql AS $$ SELECT sum(qty) FROM items $$;
CREATE VIEW item_names AS SELECT name FROM items;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();
REVOKE ALL ON items FROM PUBLIC;
GRANT SELECT ON items TO ${reader};
"""

HAND_CHANGES = (
    "ALTER TABLE items ADD COLUMN note text",
    "DROP INDEX ix_items_name",
    "CREATE OR REPLACE FUNCTION item_total() RETURNS bigint LANGUAGE sql "
    "AS $$ SELECT count(*) FROM items $$",
    "ALTER TABLE items ALTER COLUMN qty SET DEFAULT 5",
    "CREATE TABLE extra_stuff (a int PRIMARY KEY, b bigint GENERATED ALWAYS AS IDENTITY)",
    "REVOKE SELECT ON items FROM {reader}",
)


def _run(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _scratch_databases(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'persistor\\_drift\\_%'"
        ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.fixture
def deployed(cli: Any, pg_url: str, role: str, migrations: Path) -> list[str]:
    """Migrate the SCHEMA into pg_url (granting to `role`); return the drift command's words."""
    write(migrations, "V1__items.sql", SCHEMA)
    args = ["--url", pg_url, "-l", str(migrations), "-p", f"reader={role}"]
    assert cli("migrate", *args).code == 0
    return args


def test_an_untouched_database_has_no_drift(cli: Any, pg_url: str, deployed: list[str]) -> None:
    before = _scratch_databases(pg_url)
    # persistor's own tables are not the migrations' business: changing them is no drift.
    _run(pg_url, "CREATE INDEX ix_history_version ON schema_history (version)")
    result = cli("drift", *deployed)
    assert result.code == 0, result.err
    assert "No drift: the database holds what its migrations produce." in result.out
    assert cli("drift", *deployed, "--json").json()["differences"] == []
    assert _scratch_databases(pg_url) == before


def test_each_change_made_by_hand_is_reported_and_drift_exits_8(
    cli: Any, pg_url: str, role: str, deployed: list[str]
) -> None:
    before = _scratch_databases(pg_url)
    _run(pg_url, *(s.format(reader=role) for s in HAND_CHANGES))
    result = cli("drift", *deployed, "--json")
    assert result.code == 8, result.err
    found = {(d["change"], d["kind"], d["name"]): d for d in result.json()["differences"]}
    assert set(found) == {
        ("extra", "column", "items.note"),
        ("missing", "index", "ix_items_name"),
        ("changed", "function", "item_total()"),
        ("changed", "column", "items.qty"),
        ("extra", "table", "extra_stuff"),
        ("changed", "privileges", "TABLE items"),
    }
    assert found[("changed", "column", "items.qty")]["expected"] == "integer NOT NULL DEFAULT 0"
    assert found[("changed", "column", "items.qty")]["actual"] == "integer NOT NULL DEFAULT 5"
    grants = found[("changed", "privileges", "TABLE items")]
    assert grants["expected"].endswith(f"; {role}: SELECT")
    assert grants["actual"] == grants["expected"].removesuffix(f"; {role}: SELECT")
    function = found[("changed", "function", "item_total()")]
    assert "SELECT sum(qty) FROM items" in function["expected"]
    assert "SELECT count(*) FROM items" in function["actual"]
    assert "the database differs from what its migrations produce" in result.err
    assert _scratch_databases(pg_url) == before


def test_drift_text_shows_both_definitions_of_a_changed_object(
    cli: Any, pg_url: str, deployed: list[str]
) -> None:
    _run(pg_url, "ALTER TABLE items ALTER COLUMN name SET DEFAULT 'y'")
    result = cli("drift", *deployed)
    assert result.code == 8
    assert result.out.splitlines()[1:] == [
        "changed  column items.name",
        "    migrations:",
        "      text NOT NULL DEFAULT 'x'::text",
        "    database:",
        "      text NOT NULL DEFAULT 'y'::text",
        "Drift: 1 difference(s) (1 changed).",
    ]
    assert "error: the database differs from what its migrations produce (1 changed)" in result.err


def test_without_createdb_drift_says_so_and_leaves_nothing(
    cli: Any, pg_url: str, role: str, deployed: list[str]
) -> None:
    before = _scratch_databases(pg_url)
    _run(pg_url, f"GRANT SELECT ON schema_history TO {role}")  # drift reads what is applied
    args = ["--url", url_as(pg_url, role), *deployed[2:]]
    result = cli("drift", *args, "--json")
    assert result.code == 1
    message = result.json()["error"]["message"]
    assert message.startswith(f"role {role} may not create databases (it lacks CREATEDB)")
    assert f"Run `ALTER ROLE {role} CREATEDB` as a superuser" in message
    assert message.endswith("Nothing was changed")
    assert result.json()["error"]["type"] == "PrivilegeError"
    assert _scratch_databases(pg_url) == before


def test_a_migration_failing_in_the_scratch_database_drops_it_and_says_where(
    cli: Any, pg_url: str, deployed: list[str], migrations: Path
) -> None:
    before = _scratch_databases(pg_url)
    write(migrations, "V2__bad.sql", "CREATE TABLE broken (id nosuchtype);")
    result = cli("drift", *deployed)
    assert result.code == 4
    assert "building the migrations in the scratch database failed: " in result.err
    assert "nosuchtype" in result.err
    assert _scratch_databases(pg_url) == before


def test_drift_on_sqlite_is_a_usage_error(cli: Any, sqlite_url: str, migrations: Path) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    result = cli("drift", "--url", sqlite_url, "-l", str(migrations))
    assert result.code == 2
    assert "drift is PostgreSQL-only" in result.err


def test_policies_column_grants_and_types_in_another_schema(
    cli: Any, pg_url: str, role: str, migrations: Path
) -> None:
    write(
        migrations,
        "V1__app.sql",
        "CREATE TYPE mood AS ENUM ('calm', 'busy');\n"
        "CREATE TABLE notes (id int PRIMARY KEY, owner_name text, body text, m mood);\n"
        "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n"
        "CREATE POLICY own_notes ON notes USING (owner_name = current_user);\n",
    )
    args = ["--url", pg_url, "-l", str(migrations), "--schema", "app"]
    assert cli("migrate", *args).code == 0
    assert cli("drift", *args).code == 0
    _run(
        pg_url,
        "ALTER TYPE app.mood ADD VALUE 'asleep'",
        "ALTER POLICY own_notes ON app.notes USING (true)",
        f"GRANT SELECT (body) ON app.notes TO {role}",
        "CREATE TABLE public.elsewhere (a int)",  # another schema: not this target's business
    )
    result = cli("drift", *args, "--json")
    assert result.code == 8
    found = {(d["change"], d["kind"], d["name"]): d for d in result.json()["differences"]}
    assert set(found) == {
        ("changed", "type", "mood"),
        ("changed", "policy", "notes.own_notes"),
        ("extra", "privileges", "COLUMN notes.body"),
    }
    assert found[("changed", "type", "mood")]["actual"] == "ENUM ('calm', 'busy', 'asleep')"
    assert found[("extra", "privileges", "COLUMN notes.body")]["actual"] == f"{role}: SELECT"


def test_a_pending_script_shows_as_missing_with_a_note(
    cli: Any, pg_url: str, deployed: list[str], migrations: Path
) -> None:
    write(migrations, "V2__more.sql", "CREATE TABLE more_items (id int);")
    result = cli("drift", *deployed)
    assert result.code == 8
    assert "missing  table more_items" in result.out
    assert "Note: the target is not up to date (1 pending script(s))" in result.out
    assert cli("drift", *deployed, "--json").json()["unsettled_scripts"] == {"pending": 1}


def test_no_password_in_dump_or_drift_output(cli: Any, pg_url: str, deployed: list[str]) -> None:
    # Both servers trust these connections, so any password logs in; it still travels in the URL.
    secret = "Pw-" + "5e3c7a1f9b2d4e60"
    user = urlsplit(pg_url).username or "postgres"
    url = url_as(pg_url, user, secret)
    _run(pg_url, "ALTER TABLE items ADD COLUMN note text")
    for args, code in ((("dump",), 0), (("drift",), 8)):
        for flags in (("-vv",), ("--json",)):
            result = cli(*args, "--url", url, *deployed[2:], *flags)
            assert result.code == code, result.err
            assert secret not in result.out + result.err


def test_the_packaged_ecliptix_database_untouched_has_no_drift(cli: Any, pg_url: str) -> None:
    assert cli("migrate", "--url", pg_url, "-q").code == 0
    result = cli("drift", "--url", pg_url, "--json")
    assert result.code == 0, result.out + result.err
    assert result.json()["differences"] == []
    _run(pg_url, "ALTER TABLE app_devices ALTER COLUMN device_type SET DEFAULT 2")
    drifted = cli("drift", "--url", pg_url, "--json")
    assert drifted.code == 8
    [difference] = drifted.json()["differences"]
    assert (difference["change"], difference["name"]) == ("changed", "app_devices.device_type")


def test_an_adopted_tools_history_table_is_not_drift(
    cli: Any, pg_url: str, deployed: list[str]
) -> None:
    """After `baseline` adopted Flyway's history, its table stays: that is no drift."""
    from tests.migrator.adopt_tables import create

    create(pg_url, "flyway")
    result = cli("drift", *deployed, "--json")
    assert result.code == 0, result.out
    assert result.json()["differences"] == []
    _run(pg_url, "CREATE TABLE not_flyway (a int)")  # any other table still is
    assert cli("drift", *deployed).code == 8
