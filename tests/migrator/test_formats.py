"""dbmate and golang-migrate folders, read natively; one format per location (issue #11, 3 and 5).

Each format gets a folder written here that uses every feature of the format,
applied by persistor and by psql (the same files in version order, as the
tool itself would send them) and compared object by object; then undone
down by down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.migrator.conftest import history, tables, write
from tests.migrator.formats_support import pg_schema, psql, up_section

# dbmate: every feature: up/down sections, transaction:false on both markers,
# comments above the up marker, a dollar-quoted function, an enum, seed data.
DBMATE = {
    "20240101090000_create_accounts.sql": (
        "-- accounts of the service\n"
        "-- migrate:up\n"
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n"
        "INSERT INTO accounts VALUES (1, 'a@example.org'), (2, 'b@example.org');\n"
        "\n"
        "-- migrate:down\n"
        "DROP TABLE accounts;\n"
    ),
    "20240102090000_email_index.sql": (
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n"
        "\n"
        "-- migrate:down transaction:false\n"
        "DROP INDEX CONCURRENTLY accounts_email;\n"
    ),
    "20240103090000_status.sql": (
        "-- migrate:up\n"
        "CREATE TYPE account_status AS ENUM ('active', 'closed');\n"
        "ALTER TABLE accounts ADD COLUMN status account_status NOT NULL DEFAULT 'active';\n"
        "CREATE FUNCTION close_account(p_id bigint) RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  -- a semicolon inside the body; does not end the statement\n"
        "  UPDATE accounts SET status = 'closed' WHERE id = p_id;\n"
        "END $$;\n"
        "SELECT close_account(2);\n"
        "-- migrate:down\n"
        "DROP FUNCTION close_account(bigint);\n"
        "ALTER TABLE accounts DROP COLUMN status;\n"
        "DROP TYPE account_status;\n"
    ),
}

# golang-migrate: every feature: up/down pairs, unpadded and padded numbers,
# multi-statement files, a function, a version with no down file.
GOLANG = {
    "1_create_items.up.sql": (
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);\n"
        "INSERT INTO items (name) VALUES ('first'), ('second');\n"
    ),
    "1_create_items.down.sql": "DROP TABLE items;\n",
    "0002_price.up.sql": (
        "ALTER TABLE items ADD COLUMN price numeric(10, 2) NOT NULL DEFAULT 0;\n"
        "CREATE FUNCTION total() RETURNS numeric LANGUAGE sql AS $$ SELECT sum(price) FROM items $$;\n"
    ),
    "0002_price.down.sql": "DROP FUNCTION total();\nALTER TABLE items DROP COLUMN price;\n",
    "3_tags.up.sql": "CREATE TABLE tags (item integer REFERENCES items, tag text);\n",
    "3_tags.down.sql": "DROP TABLE tags;\n",
    "10_view.up.sql": "CREATE VIEW cheap AS SELECT name FROM items WHERE price < 10;\n",
}


def _write_all(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        write(folder, name, text)


def _run(cli: Any, url: str, folder: Path, *args: str) -> Any:
    return cli(*args, "--url", url, "--location", str(folder))


def _golang_ups() -> list[str]:
    ups = [n for n in GOLANG if n.endswith(".up.sql")]
    return sorted(ups, key=lambda n: int(n.split("_", 1)[0]))


def test_dbmate_folder_is_applied_as_psql_applies_its_up_sections(
    cli: Any, pg_url: str, pg_server: Any, migrations: Path
) -> None:
    _write_all(migrations, DBMATE)
    result = _run(cli, pg_url, migrations, "migrate")
    assert result.code == 0, result.err
    assert "Applied 3 script(s); now at version 20240103090000." in result.out
    reference = pg_server.create_database()
    try:
        for name in sorted(DBMATE):  # dbmate's own order: the timestamps
            psql(reference, up_section(DBMATE[name]))
        assert pg_schema(pg_url, "accounts") == pg_schema(reference, "accounts")
    finally:
        pg_server.drop_database(reference)
    assert [r[0] for r in history(pg_url)] == sorted(n.split("_", 1)[0] for n in DBMATE)


def test_dbmate_down_sections_undo_version_by_version(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    _write_all(migrations, DBMATE)
    assert _run(cli, pg_url, migrations, "migrate").code == 0
    undone = _run(cli, pg_url, migrations, "undo")
    assert undone.code == 0, undone.err
    assert "Undid version 20240103090000 with 20240103090000_status.sql" in undone.out
    schema = pg_schema(pg_url)
    assert schema["types"] == [] and schema["functions"] == []
    assert _run(cli, pg_url, migrations, "undo").code == 0  # DROP INDEX CONCURRENTLY, no tx
    assert [i[0] for i in pg_schema(pg_url)["indexes"]] == ["accounts_pkey"]
    assert _run(cli, pg_url, migrations, "undo").code == 0
    assert tables(pg_url) == set()
    status = _run(cli, pg_url, migrations, "status", "--json").json()
    assert status["counts"] == {"pending": 3}


def test_dbmate_folder_on_every_engine(cli: Any, db_url: str, migrations: Path) -> None:
    write(
        migrations,
        "20240101090000_a.sql",
        "-- migrate:up\nCREATE TABLE a (id integer);\n-- migrate:down\nDROP TABLE a;\n",
    )
    write(
        migrations,
        "20240102090000_b.sql",
        "-- migrate:up transaction:false\nCREATE TABLE b (id integer);\n"
        "-- migrate:down\nDROP TABLE b;\n",
    )
    assert _run(cli, db_url, migrations, "migrate").code == 0
    assert tables(db_url) == {"a", "b"}
    assert _run(cli, db_url, migrations, "undo").code == 0
    assert tables(db_url) == {"a"}


def test_golang_migrate_pairs_are_applied_as_psql_applies_the_up_files(
    cli: Any, pg_url: str, pg_server: Any, migrations: Path
) -> None:
    _write_all(migrations, GOLANG)
    status = _run(cli, pg_url, migrations, "status")
    assert "Format: golang-migrate" in status.out
    result = _run(cli, pg_url, migrations, "migrate")
    assert result.code == 0, result.err
    assert "Applied 4 script(s); now at version 10." in result.out
    reference = pg_server.create_database()
    try:
        for name in _golang_ups():
            psql(reference, GOLANG[name])
        assert pg_schema(pg_url, "items") == pg_schema(reference, "items")
    finally:
        pg_server.drop_database(reference)


def test_golang_migrate_downs_undo_and_a_version_without_one_is_refused(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    _write_all(migrations, GOLANG)
    assert _run(cli, pg_url, migrations, "migrate").code == 0
    refused = _run(cli, pg_url, migrations, "undo")
    assert refused.code == 5
    assert "10_view.up.sql: has no undo script" in refused.err
    write(migrations, "10_view.down.sql", "DROP VIEW cheap;\n")
    for expected in ({"items", "tags"}, {"items"}, {"items"}, set()):
        done = _run(cli, pg_url, migrations, "undo")
        assert done.code == 0, done.err
        assert tables(pg_url) == expected
    assert pg_schema(pg_url)["functions"] == []


def test_problem_3_other_formats_are_no_longer_skipped_in_silence(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "1_init.up.sql", "CREATE TABLE t (id integer);\n")
    write(migrations, "1_init.down.sql", "DROP TABLE t;\n")
    write(migrations, "seed.sql", "INSERT INTO t VALUES (1);\n")
    checked = _run(cli, db_url, migrations, "validate")
    assert checked.code == 0, checked.err
    assert "Format: golang-migrate" in checked.out
    assert "Valid: 1 script(s) checked" in checked.out
    assert "seed.sql: is not a migration (the location's format: golang-migrate)" in checked.err
    doc = _run(cli, db_url, migrations, "validate", "--json").json()
    assert [w["script"] for w in doc["warnings"]] == ["seed.sql"]
    applied = _run(cli, db_url, migrations, "migrate")
    assert "Applied 1 script(s)" in applied.out
    assert "seed.sql: is not a migration" in applied.err  # migrate says so too
    assert tables(db_url) == {"t"}


def test_problem_3_a_location_holds_one_format_only(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    write(migrations, "2_b.up.sql", "CREATE TABLE b (id integer);\n")
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 5
    assert (
        "holds migrations of more than one format (flyway: V1__a.sql; golang-migrate: 2_b.up.sql)"
        in result.err
    )
    assert tables(db_url) == set()


def test_an_included_helper_is_no_stray_file(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__a.sql", "\\ir parts/01_table.sql\n")
    write(migrations, "parts/01_table.sql", "CREATE TABLE a (id integer);\n")
    checked = _run(cli, db_url, migrations, "validate")
    assert checked.code == 0, checked.err
    assert "Format: flyway" in checked.out and "warning" not in checked.err


def test_problem_5_a_flyway_named_file_with_dbmate_markers_is_refused(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(
        migrations,
        "V20240101090000__create_accounts.sql",
        "-- migrate:up\nCREATE TABLE accounts (id integer);\n\n-- migrate:down\nDROP TABLE accounts;\n",
    )
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 5
    assert (
        "V20240101090000__create_accounts.sql: line 4: '-- migrate:down' is a dbmate marker"
        in result.err
    )
    assert "move the down half into its own undo script" in result.err
    assert tables(db_url) == set()


def test_a_dbmate_file_with_sql_outside_its_sections_is_refused(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(
        migrations,
        "20240101090000_a.sql",
        "CREATE TABLE early (id integer);\n-- migrate:up\nCREATE TABLE a (id integer);\n",
    )
    result = _run(cli, db_url, migrations, "validate")
    assert result.code == 5
    assert (
        "20240101090000_a.sql: line 1: SQL before '-- migrate:up' belongs to no section"
        in result.err
    )


def test_an_unknown_dbmate_option_is_refused(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "20240101090000_a.sql", "-- migrate:up transaction:maybe\nSELECT 1;\n")
    result = _run(cli, db_url, migrations, "validate")
    assert result.code == 5
    assert "20240101090000_a.sql: line 1: unknown dbmate option 'transaction:maybe'" in result.err


def test_a_dbmate_failure_names_the_files_own_line(cli: Any, db_url: str, migrations: Path) -> None:
    write(
        migrations,
        "20240101090000_a.sql",
        "-- about a\n-- migrate:up\nCREATE TABLE a (id integer);\n"
        "INSERT INTO nowhere VALUES (1);\n-- migrate:down\nDROP TABLE a;\n",
    )
    write(migrations, "20240102090000_notes.sql", "-- no markers: not dbmate's\n")
    checked = _run(cli, db_url, migrations, "validate")
    assert "20240102090000_notes.sql: is not a migration (the location's format: dbmate)" in (
        checked.err
    )
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 4
    assert "20240101090000_a.sql failed at 20240101090000_a.sql:4" in result.err
    assert tables(db_url) == set()
