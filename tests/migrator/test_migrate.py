"""`migrate` and `status` on both engines: applying, re-running, failures, checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.migrator.conftest import history, tables, write


def three_scripts(folder: Path) -> None:
    write(
        folder, "V1__create_users.sql", "CREATE TABLE users (id integer PRIMARY KEY, name text);\n"
    )
    write(
        folder,
        "V1.1__add_email.sql",
        "-- a comment; with a semicolon\nALTER TABLE users ADD COLUMN email text;\n",
    )
    write(
        folder,
        "R__users_view.sql",
        "DROP VIEW IF EXISTS user_names;\nCREATE VIEW user_names AS SELECT name FROM users;\n",
    )


def test_migrate_applies_in_order_then_has_nothing_to_do(
    cli: Any, db_url: str, migrations: Path
) -> None:
    three_scripts(migrations)
    first = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert first.code == 0, first.err
    assert "applied V1__create_users.sql" in first.out
    assert "Applied 3 script(s); now at version 1.1." in first.out
    assert [r[3] for r in history(db_url)] == [
        "V1__create_users.sql",
        "V1.1__add_email.sql",
        "R__users_view.sql",
    ]
    again = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert again.code == 0
    assert "Nothing to do" in again.out
    assert len(history(db_url)) == 3

    status = cli("status", "--url", db_url, "--location", str(migrations), "--json")
    assert status.code == 0
    doc = status.json()
    assert [m["state"] for m in doc["migrations"]] == ["applied"] * 3
    assert doc["current_version"] == "1.1"
    assert doc["counts"] == {"applied": 3}
    assert set(doc["migrations"][0]) >= {
        "type",
        "version",
        "description",
        "script",
        "state",
        "checksum",
        "installed_rank",
        "installed_at",
        "execution_time_ms",
    }


def test_versions_compare_numerically(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V10__ten.sql", "CREATE TABLE ten (id int);")
    write(migrations, "V9__nine.sql", "CREATE TABLE nine (id int);")
    write(migrations, "V2026_11_25__dated.sql", "CREATE TABLE dated (id int);")
    result = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert result.code == 0, result.err
    assert [r[0] for r in history(db_url)] == ["9", "10", "2026_11_25"]


def test_failing_statement_names_file_and_line_and_keeps_nothing(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__first.sql", "CREATE TABLE first (id int);\n")
    write(
        migrations,
        "V2__broken.sql",
        "CREATE TABLE second (id int);\n\nINSERT INTO second VALUES (1);\nSELEC oops FROM second;\n"
        "CREATE TABLE third (id int);\n",
    )
    result = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert result.code == 4
    assert "V2__broken.sql failed at V2__broken.sql:4" in result.err
    assert "Traceback" not in result.err
    assert tables(db_url) == {"first"}
    assert [r[3] for r in history(db_url)] == ["V1__first.sql"]
    if db_url.startswith("postgresql"):
        assert "SQLSTATE 42601" in result.err


DEFERRED_VIOLATION = (
    "CREATE TABLE parent (id int PRIMARY KEY);\n"
    "CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO child VALUES (42);\n"
)


def test_deferred_constraint_failing_at_commit_is_a_migration_error(
    cli: Any, db_url: str, migrations: Path
) -> None:
    # Every statement succeeds; the foreign key is checked only at COMMIT.
    write(migrations, "V1__first.sql", "CREATE TABLE first (id int);\n")
    write(migrations, "V2__deferred.sql", DEFERRED_VIOLATION)
    result = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert result.code == 4, result.err
    assert "failed at COMMIT, after its last statement" in result.err
    assert "Traceback" not in result.err and "unexpected error" not in result.err
    if db_url.startswith("sqlite"):
        # SQLite checks deferred keys when the run's one transaction commits
        assert "the run failed at COMMIT" in result.err
        assert "Nothing of this run was applied (V1__first.sql, V2__deferred.sql)" in result.err
        assert tables(db_url) == set()
        status = cli("status", "--url", db_url, "--location", str(migrations), "--json")
        assert status.json()["counts"] == {"pending": 2}
    else:
        assert "V2__deferred.sql failed at COMMIT" in result.err
        assert "SQLSTATE 23503" in result.err and "Key (pid)=(42)" in result.err
        assert tables(db_url) == {"first"}
        assert [r[3] for r in history(db_url)] == ["V1__first.sql"]


def test_single_transaction_failing_at_commit_keeps_nothing(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__first.sql", "CREATE TABLE first (id int);\n")
    write(migrations, "V2__deferred.sql", DEFERRED_VIOLATION)
    args = ("migrate", "--url", pg_url, "--location", str(migrations), "--single-transaction")
    result = cli(*args)
    assert result.code == 4, result.err
    assert "the run failed at COMMIT" in result.err and "SQLSTATE 23503" in result.err
    assert tables(pg_url) == set()


def test_connection_lost_at_commit_claims_nothing(cli: Any, pg_url: str, migrations: Path) -> None:
    # A deferred trigger ends the session during COMMIT: the client cannot know
    # whether the commit happened, so it must not say "nothing was applied".
    write(
        migrations,
        "V1__dies_at_commit.sql",
        "CREATE TABLE t (id int);\n"
        "CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$;\n"
        "CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON t\n"
        "  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die();\n"
        "INSERT INTO t VALUES (1);\n",
    )
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 3, result.err
    assert "lost the connection while committing" in result.err
    assert "Whether the last script was committed is unknown" in result.err
    assert "Nothing of this script was applied" not in result.err
    assert tables(pg_url) == set()  # here the server rolled it back


def test_error_in_included_file_points_into_it(cli: Any, pg_url: str, migrations: Path) -> None:
    write(
        migrations, "lib/tables.sql", "CREATE TABLE a (id int);\nCREATE TABLE b (id nosuchtype);\n"
    )
    write(migrations, "V1__with_include.sql", "-- tables come from lib\n\\ir lib/tables.sql\n")
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 4
    assert "failed at lib/tables.sql:2" in result.err
    assert 'type "nosuchtype" does not exist (SQLSTATE 42704)' in result.err
    assert tables(pg_url) == set()


def test_changed_script_fails_validation_but_crlf_and_bom_do_not(
    cli: Any, db_url: str, migrations: Path
) -> None:
    three_scripts(migrations)
    assert cli("migrate", "--url", db_url, "--location", str(migrations)).code == 0
    path = migrations / "V1__create_users.sql"
    original = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + original.replace(b"\n", b"\r\n"))
    for command in ("validate", "migrate"):
        result = cli(command, "--url", db_url, "--location", str(migrations))
        assert result.code == 0, result.err

    path.write_bytes(original.replace(b"name text", b"name varchar(10)"))
    for command in ("validate", "migrate"):
        result = cli(command, "--url", db_url, "--location", str(migrations))
        assert result.code == 5
        assert "V1__create_users.sql: was changed after it was applied" in result.err
    status = cli("status", "--url", db_url, "--location", str(migrations), "--json").json()
    assert status["migrations"][0]["state"] == "changed"

    repaired = cli("repair", "--url", db_url, "--location", str(migrations))
    assert repaired.code == 0
    assert "realigned checksum of V1__create_users.sql" in repaired.out
    assert cli("validate", "--url", db_url, "--location", str(migrations)).code == 0


def test_changed_repeatable_is_the_only_script_rerun(
    cli: Any, db_url: str, migrations: Path
) -> None:
    three_scripts(migrations)
    write(
        migrations,
        "R__other_view.sql",
        "DROP VIEW IF EXISTS ids;\nCREATE VIEW ids AS SELECT id FROM users;\n",
    )
    assert cli("migrate", "--url", db_url, "--location", str(migrations)).code == 0
    write(
        migrations,
        "R__users_view.sql",
        "DROP VIEW IF EXISTS user_names;\nCREATE VIEW user_names AS SELECT name, email FROM users;\n",
    )
    status = cli("status", "--url", db_url, "--location", str(migrations), "--json").json()
    states = {m["script"]: m["state"] for m in status["migrations"]}
    assert states["R__users_view.sql"] == "outdated"
    assert states["R__other_view.sql"] == "applied"
    result = cli("migrate", "--url", db_url, "--location", str(migrations), "--json")
    assert result.code == 0
    assert [a["script"] for a in result.json()["applied"]] == ["R__users_view.sql"]


def test_missing_applied_script_blocks_until_repair(
    cli: Any, db_url: str, migrations: Path
) -> None:
    three_scripts(migrations)
    assert cli("migrate", "--url", db_url, "--location", str(migrations)).code == 0
    (migrations / "V1.1__add_email.sql").unlink()
    result = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert result.code == 5
    assert (
        "V1.1__add_email.sql: was applied but its file is not in the migration locations"
        in result.err
    )
    repaired = cli("repair", "--url", db_url, "--location", str(migrations))
    assert "marked V1.1__add_email.sql deleted" in repaired.out
    assert cli("migrate", "--url", db_url, "--location", str(migrations)).code == 0


def test_lower_pending_version_needs_out_of_order(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V3__c.sql", "CREATE TABLE c (id int);")
    assert cli("migrate", "--url", db_url, "--location", str(migrations)).code == 0
    write(migrations, "V2__b.sql", "CREATE TABLE b (id int);")
    result = cli("migrate", "--url", db_url, "--location", str(migrations))
    assert result.code == 5
    assert "V2__b.sql: version 2 is lower than the highest applied version 3" in result.err
    status = cli("status", "--url", db_url, "--location", str(migrations), "--json").json()
    assert {m["script"]: m["state"] for m in status["migrations"]}["V2__b.sql"] == "ignored"
    ok = cli("migrate", "--url", db_url, "--location", str(migrations), "--out-of-order")
    assert ok.code == 0, ok.err
    assert "b" in tables(db_url)


def test_target_stops_after_that_version(cli: Any, db_url: str, migrations: Path) -> None:
    for n in (1, 2, 3):
        write(migrations, f"V{n}__t{n}.sql", f"CREATE TABLE t{n} (id int);")
    result = cli("migrate", "--url", db_url, "--location", str(migrations), "--target", "2")
    assert result.code == 0
    assert tables(db_url) == {"t1", "t2"}
    bad = cli("migrate", "--url", db_url, "--location", str(migrations), "--target", "two")
    assert bad.code == 2
    assert "--target 'two' is not a version" in bad.err


def test_dry_run_prints_sql_and_changes_nothing(cli: Any, db_url: str, migrations: Path) -> None:
    three_scripts(migrations)
    result = cli("migrate", "--url", db_url, "--location", str(migrations), "--dry-run")
    assert result.code == 0
    assert "would apply 3 script(s)" in result.out
    assert "CREATE TABLE users (id integer PRIMARY KEY, name text);" in result.out
    assert tables(db_url) == set()
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT to_regclass('public.schema_history')").fetchone()
        assert row == (None,)


def test_single_transaction_is_all_or_nothing(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V2__b.sql", "CREATE TABLE b (id int);\nINSERT INTO nowhere VALUES (1);")
    result = cli("migrate", "--url", db_url, "--location", str(migrations), "--single-transaction")
    assert result.code == 4
    assert tables(db_url) == set()
    assert history(db_url) == []


def test_per_script_atomicity_keeps_earlier_scripts(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V2__b.sql", "CREATE TABLE b (id int);\nINSERT INTO nowhere VALUES (1);")
    assert cli("migrate", "--url", db_url, "--location", str(migrations)).code == 4
    assert tables(db_url) == {"a"}
    assert [r[3] for r in history(db_url)] == ["V1__a.sql"]


def test_placeholders_are_replaced_and_undefined_ones_refused(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__p.sql", "CREATE TABLE ${table_name} (id int);")
    missing = cli("validate", "--url", db_url, "--location", str(migrations))
    assert missing.code == 5
    assert "placeholder ${table_name} is not defined" in missing.err
    result = cli(
        "migrate", "--url", db_url, "--location", str(migrations), "-p", "table_name=things"
    )
    assert result.code == 0, result.err
    assert tables(db_url) == {"things"}
