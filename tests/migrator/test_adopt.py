"""Arriving from another tool: never run a script twice, and `baseline` imports the history.

The other tools' tables are written with their documented layouts
(tests/migrator/adopt_tables.py), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from persistor.adopt import flyway_checksum
from persistor.errors import PrivilegeError
from tests.conftest import url_as
from tests.migrator import adopt_tables
from tests.migrator.adopt_tables import query, run, table_names
from tests.migrator.conftest import write

TOOLS = {
    "flyway": ("Flyway", "flyway_schema_history"),
    "dbup": ("DbUp", "SchemaVersions"),
    "dbmate": ("dbmate", "schema_migrations"),
    "golang-migrate": ("golang-migrate", "schema_migrations"),
}


@pytest.mark.parametrize("tool", list(TOOLS))
def test_nothing_runs_over_another_tools_history(
    cli: Any, db_url: str, migrations: Path, tool: str
) -> None:
    adopt_tables.create(db_url, tool)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    before = table_names(db_url)
    args = ("--url", db_url, "--location", str(migrations))
    name, table = TOOLS[tool]
    for command in (["migrate"], ["migrate", "--dry-run"], ["validate"], ["status"]):
        result = cli(*command, *args)
        assert result.code == 5, (command, result.out, result.err)
        assert table.lower() in result.err.lower() and f"is {name}'s history" in result.err
        assert f"`persistor baseline --from {tool}`" in result.err
    assert table_names(db_url) == before  # nothing run, no history table created


def test_an_empty_history_table_does_not_hide_another_tools(
    cli: Any, db_url: str, migrations: Path
) -> None:
    # An older persistor created its (empty) history table over a dbmate database.
    adopt_tables.create(db_url, "dbmate")
    run(db_url, ["INSERT INTO schema_migrations VALUES ('20200101000000')"])
    write(migrations, "V20200101000000__a.sql", "CREATE TABLE a (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    assert cli("baseline", *args, "--from", "none", "--baseline-version", "0").code == 0
    run(db_url, ["DELETE FROM schema_history"])
    result = cli("migrate", *args)
    assert result.code == 5 and "`persistor baseline --from dbmate`" in result.err
    assert "a" not in table_names(db_url)


def test_flyway_checksum_is_crc32_over_lines_without_their_ends() -> None:
    assert flyway_checksum(b"CREATE TABLE a (id int);\n") == -623083431
    # CRC32(b"ab") as Java's signed int: line ends and a leading BOM do not count.
    assert flyway_checksum(b"a\nb") == -1635563411
    assert flyway_checksum(b"a\r\nb\r\n") == -1635563411
    assert flyway_checksum(b"\xef\xbb\xbfa\rb\n\n") == -1635563411
    assert flyway_checksum(b"") == 0


def _flyway_row(rank: int, version: str | None, script: str, **kw: Any) -> str:
    kind = kw.get("type", "SQL")
    checksum = kw.get("checksum")
    desc = kw.get("description", script)
    ok = "true" if kw.get("success", True) else "false"
    return (
        f"INSERT INTO flyway_schema_history VALUES ({rank}, "
        f"{'NULL' if version is None else repr(version)}, '{desc}', '{kind}', '{script}', "
        f"{'NULL' if checksum is None else checksum}, 'flyway_user', '2024-01-02 03:04:05', "
        f"{rank * 10}, {ok})"
    )


def test_baseline_imports_flyway_history(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__create_a.sql", "CREATE TABLE a (id int);\n")
    write(
        migrations,
        "R__view.sql",
        "CREATE TABLE IF NOT EXISTS r1 (n int);\nINSERT INTO r1 VALUES (1);\n",
    )
    write(
        migrations,
        "R__changed.sql",
        "CREATE TABLE IF NOT EXISTS r2 (n int);\nINSERT INTO r2 VALUES (2);\n",
    )
    write(migrations, "V4__d.sql", "CREATE TABLE d (id int);")
    write(migrations, "V5__e.sql", "CREATE TABLE e (id int);")
    adopt_tables.create(db_url, "flyway")
    # The checksums Flyway stored: CRC32 of each file's lines (see the test above).
    run(
        db_url,
        [
            _flyway_row(1, "1", "V1__create_a.sql", checksum=-623083431, description="create a"),
            _flyway_row(2, "2", "db.migration.V2__load_data", type="JDBC", description="load data"),
            _flyway_row(3, "3", "V3__gone.sql", checksum=12345, description="gone"),
            _flyway_row(4, None, "R__view.sql", checksum=-1951545713, description="view"),
            _flyway_row(5, None, "R__changed.sql", checksum=1754550652, description="changed"),
            _flyway_row(6, "4", "V4__d.sql", checksum=1, description="d", success=False),
            "CREATE TABLE a (id int)",
            "CREATE TABLE r1 (n int)",
            "INSERT INTO r1 VALUES (1)",
            "CREATE TABLE r2 (n int)",
            "INSERT INTO r2 VALUES (1)",
        ],
    )
    args = ("--url", db_url, "--location", str(migrations))
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    assert "Imported 5 row(s) from Flyway (flyway_schema_history); now at version 3." in adopted.out
    assert "db.migration.V2__load_data: applied, no file needed" in adopted.out
    assert "V3__gone.sql: applied, no file needed" in adopted.out
    assert "V4__d.sql: failed under Flyway (success = false), so it is not imported" in adopted.out

    doc = cli("status", *args, "--json").json()
    assert {m["script"]: m["state"] for m in doc["migrations"]} == {
        "V1__create_a.sql": "applied",
        "db.migration.V2__load_data": "applied_no_file",
        "V3__gone.sql": "applied_no_file",
        "V4__d.sql": "pending",
        "V5__e.sql": "pending",
        "R__changed.sql": "outdated",
        "R__view.sql": "applied",
    }
    assert doc["problems"] == []
    shown = cli("status", *args)
    assert "applied (no file)" in shown.out and "restore the file" not in shown.out + shown.err
    assert cli("validate", *args).code == 0

    migrated = cli("migrate", *args, "--json")
    assert migrated.code == 0, migrated.err
    assert [a["script"] for a in migrated.json()["applied"]] == [
        "V4__d.sql",
        "V5__e.sql",
        "R__changed.sql",
    ]
    assert query(db_url, "SELECT count(*) FROM r1") == [(1,)]  # unchanged: not run again
    assert query(db_url, "SELECT count(*) FROM r2") == [(2,)]
    by = query(
        db_url, "SELECT installed_by, execution_time_ms FROM schema_history WHERE version = '1'"
    )
    assert by == [("flyway_user", 10)]
    again = cli("status", *args, "--json").json()
    assert again["problems"] == [] and {m["state"] for m in again["migrations"]} == {
        "applied",
        "applied_no_file",
    }


def test_baseline_imports_golang_migrate_version(cli: Any, db_url: str, migrations: Path) -> None:
    adopt_tables.create(db_url, "golang-migrate")
    run(
        db_url,
        [
            "INSERT INTO schema_migrations VALUES (2, false)",
            "CREATE TABLE a (id int)",
            "CREATE TABLE b (id int)",
        ],
    )
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V2__b.sql", "CREATE TABLE b (id int);")
    write(migrations, "V3__c.sql", "CREATE TABLE c (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    assert "from golang-migrate (schema_migrations); now at version 2" in adopted.out
    migrated = cli("migrate", *args, "--json")
    assert [a["script"] for a in migrated.json()["applied"]] == ["V3__c.sql"]


def test_a_dirty_golang_migrate_database_is_not_adopted(
    cli: Any, db_url: str, migrations: Path
) -> None:
    adopt_tables.create(db_url, "golang-migrate")
    run(db_url, ["INSERT INTO schema_migrations VALUES (2, true)"])
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    before = table_names(db_url)
    refused = cli("baseline", *args)
    assert refused.code == 5
    assert "golang-migrate left version 2 dirty" in refused.err
    assert "`migrate force 2`" in refused.err
    assert table_names(db_url) - {"schema_history_lock"} == before
    assert cli("migrate", *args).code == 5  # still refused: nothing was adopted


def test_baseline_imports_dbmate_versions(cli: Any, db_url: str, migrations: Path) -> None:
    adopt_tables.create(db_url, "dbmate")
    run(
        db_url,
        [
            "INSERT INTO schema_migrations VALUES ('20200101000000')",
            "INSERT INTO schema_migrations VALUES ('20200102000000')",
            "CREATE TABLE a (id int)",
        ],
    )
    write(migrations, "V20200101000000__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V20200103000000__c.sql", "CREATE TABLE c (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    adopted = cli("baseline", *args, "--from", "dbmate")
    assert adopted.code == 0, adopted.err
    doc = cli("status", *args, "--json").json()
    assert [(m["version"], m["state"]) for m in doc["migrations"]] == [
        ("20200101000000", "applied"),
        ("20200102000000", "applied_no_file"),
        ("20200103000000", "pending"),
    ]
    assert cli("migrate", *args).code == 0
    assert "c" in table_names(db_url)


def test_two_histories_need_from(cli: Any, db_url: str, migrations: Path) -> None:
    adopt_tables.create(db_url, "flyway")
    adopt_tables.create(db_url, "dbmate")
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    ambiguous = cli("baseline", *args)
    assert ambiguous.code == 2
    assert "found Flyway (flyway_schema_history) and dbmate (schema_migrations)" in ambiguous.err
    absent = cli("baseline", *args, "--from", "dbup")
    assert absent.code == 2 and "no DbUp history table" in absent.err
    # The tables belong to other applications: persistor keeps its own history beside them.
    beside = cli("baseline", *args, "--from", "none", "--baseline-version", "0")
    assert beside.code == 0, beside.err
    migrated = cli("migrate", *args, "--json")
    assert [a["script"] for a in migrated.json()["applied"]] == ["V1__a.sql"]


def test_java_rows_and_unchanged_repeatables_do_not_block_the_next_run(
    cli: Any, db_url: str, migrations: Path
) -> None:
    """Issue 11, problem 4: a Flyway Java row needs no file; an unchanged repeatable stays."""
    write(migrations, "V1__create_a.sql", "CREATE TABLE a (id int);\n")
    write(
        migrations,
        "R__view.sql",
        "CREATE TABLE IF NOT EXISTS r1 (n int);\nINSERT INTO r1 VALUES (1);\n",
    )
    write(migrations, "V3__c.sql", "CREATE TABLE c (id int);")
    adopt_tables.create(db_url, "flyway")
    run(
        db_url,
        [
            _flyway_row(1, "1", "V1__create_a.sql", checksum=-623083431),
            _flyway_row(2, "2", "db.migration.V2__Load", type="JDBC"),
            _flyway_row(3, None, "R__view.sql", checksum=-1951545713, description="view"),
            "CREATE TABLE a (id int)",
            "CREATE TABLE r1 (n int)",
            "INSERT INTO r1 VALUES (1)",
        ],
    )
    args = ("--url", db_url, "--location", str(migrations))
    assert cli("baseline", *args).code == 0
    migrated = cli("migrate", *args, "--json")
    assert migrated.code == 0, migrated.err
    assert [a["script"] for a in migrated.json()["applied"]] == ["V3__c.sql"]
    assert query(db_url, "SELECT count(*) FROM r1") == [(1,)]


def test_flyway_baselines_deletes_and_changed_files(
    cli: Any, db_url: str, migrations: Path
) -> None:
    """A B script or Flyway's baseline covers what is below it; Flyway's DELETE rows stay deleted."""
    write(migrations, "V1__old.sql", "CREATE TABLE old (id int);")
    write(migrations, "V2__create_a.sql", "CREATE TABLE a (id int); -- edited after Flyway ran it")
    write(migrations, "V4__d.sql", "CREATE TABLE d (id int);")
    adopt_tables.create(db_url, "flyway")
    run(
        db_url,
        [
            _flyway_row(0, None, "<< Flyway Schema Creation >>", type="SCHEMA"),
            _flyway_row(1, "1", "B1__base.sql", type="SQL_BASELINE", checksum=7),
            _flyway_row(2, "2", "V2__create_a.sql", checksum=-623083431),
            _flyway_row(3, "3", "V3__dropped.sql", checksum=5),
            _flyway_row(4, "3", "V3__dropped.sql", type="DELETE", checksum=5),
            "CREATE TABLE a (id int)",
        ],
    )
    args = ("--url", db_url, "--location", str(migrations))
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    assert "V2__create_a.sql: differs from what Flyway applied" in adopted.out
    doc = cli("status", *args, "--json").json()
    assert [(m["script"], m["state"]) for m in doc["migrations"]] == [
        ("B1__base.sql", "baseline"),
        ("V1__old.sql", "below_baseline"),
        ("V2__create_a.sql", "applied"),
        ("V4__d.sql", "pending"),
    ]
    assert doc["problems"] == []
    migrated = cli("migrate", *args, "--json")
    assert [a["script"] for a in migrated.json()["applied"]] == ["V4__d.sql"]


def test_baseline_imports_dbup_script_names(cli: Any, db_url: str, migrations: Path) -> None:
    adopt_tables.create(db_url, "dbup")
    names = (
        "App.Migrations.V001__Init.sql",
        "App.Migrations.V002__Gone.sql",
        "App.Seed - data.sql",
    )
    run(
        db_url,
        [
            f"INSERT INTO SchemaVersions VALUES ({n}, '{name}', '2024-01-02 03:04:05')"
            for n, name in enumerate(names, start=1)
        ],
    )
    write(migrations, "V001__init.sql", "SELECT 1;")
    write(migrations, "V003__next.sql", "CREATE TABLE nxt (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    assert "App.Seed - data.sql: no version in its name, so it is not imported" in adopted.out
    doc = cli("status", *args, "--json").json()
    assert [(m["script"], m["state"]) for m in doc["migrations"]] == [
        ("V001__init.sql", "applied"),
        ("App.Migrations.V002__Gone.sql", "applied_no_file"),
        ("V003__next.sql", "pending"),
    ]


@pytest.mark.parametrize("tool", ["dbmate", "golang-migrate"])
def test_an_empty_history_is_adopted_once(
    cli: Any, db_url: str, migrations: Path, tool: str
) -> None:
    adopt_tables.create(db_url, tool)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    args = ("--url", db_url, "--location", str(migrations))
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    migrated = cli("migrate", *args, "--json")
    assert migrated.code == 0, migrated.err
    assert [a["script"] for a in migrated.json()["applied"]] == ["V1__a.sql"]


def test_a_role_that_may_not_read_the_history_is_told_the_grant(
    cli: Any, pg_url: str, migrations: Path, role: str
) -> None:
    adopt_tables.create(pg_url, "flyway")
    args = ("--url", url_as(pg_url, role), "--location", str(migrations))
    denied = cli("baseline", *args)
    assert denied.code == PrivilegeError.exit_code
    table = '"public"."flyway_schema_history"'
    assert f"role {role} may not read {table}, Flyway's history" in denied.err
    assert f"GRANT SELECT ON {table} TO {role}" in denied.err
    assert "schema_history" not in {t for t in table_names(pg_url) if t != "flyway_schema_history"}
