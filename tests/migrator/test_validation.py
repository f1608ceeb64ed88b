"""Every validation failure: exit 5, a message naming the file and what to do, nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.migrator.conftest import history, tables, write


def assert_refused(cli: Any, url: str, migrations: Path, *expected: str) -> None:
    for command in ("validate", "migrate"):
        result = cli(command, "--url", url, "--location", str(migrations))
        assert result.code == 5, (command, result.out, result.err)
        for text in expected:
            assert text in result.err, (command, result.err)
        assert "Traceback" not in result.err
    assert tables(url) == set()


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("v1__lower.sql", "prefix 'v' is lower case"),
        ("V1_single.sql", "needs two underscores"),
        ("V__noversion.sql", "has no version after the prefix"),
        ("R_single.sql", "needs two underscores"),
        ("V\u0663__arabic_three.sql", "non-ASCII digits; use 0-9"),
    ],
)
def test_near_miss_names_are_reported(
    cli: Any, db_url: str, migrations: Path, name: str, advice: str
) -> None:
    write(migrations, "V1__ok.sql", "CREATE TABLE ok (id int);")
    write(migrations, name, "CREATE TABLE bad (id int);")
    assert_refused(cli, db_url, migrations, f"{name}: ", advice)


def test_unrelated_sql_files_are_not_migrations(
    cli: Any, sqlite_url: str, migrations: Path
) -> None:
    write(migrations, "V1__ok.sql", "CREATE TABLE ok (id int);")
    write(migrations, "helpers/common.sql", "SELECT 1;")
    assert cli("validate", "--url", sqlite_url, "--location", str(migrations)).code == 0


def test_duplicate_versions_name_both_files(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__first.sql", "CREATE TABLE a (id int);")
    write(migrations, "V001__second.sql", "CREATE TABLE b (id int);")
    result = cli("validate", "--url", db_url, "--location", str(migrations))
    assert result.code == 5
    assert "V1__first.sql" in result.err and "V001__second.sql" in result.err
    assert "give one of them another version" in result.err


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"V1__a.sql": "\\ir missing.sql\n"}, "\\ir missing.sql: file not found"),
        ({"V1__a.sql": "\\ir ../outside.sql\n"}, "points outside the migration locations"),
        (
            {
                "V1__a.sql": "\\ir lib/x.sql\n",
                "lib/x.sql": "\\ir y.sql\n",
                "lib/y.sql": "\\ir x.sql\n",
            },
            "makes a cycle",
        ),
        ({"V1__a.sql": "\\i lib/x.sql\n", "lib/x.sql": "SELECT 1;\n"}, "use \\ir"),
        ({"V1__a.sql": "SELECT ${nope};\n"}, "placeholder ${nope} is not defined"),
        ({"V1__a.sql": "\n  \n"}, "the file is empty"),
        ({"V1__a.sql": "-- persistor:no-transactoin\nSELECT 1;\n"}, "unknown directive"),
    ],
)
def test_file_problems(
    cli: Any, db_url: str, migrations: Path, files: dict[str, str], expected: str
) -> None:
    (migrations.parent / "outside.sql").write_text("SELECT 1;\n")
    for name, text in files.items():
        write(migrations, name, text)
    assert_refused(cli, db_url, migrations, "V1__a.sql", expected)


def test_invalid_utf8_names_the_line(cli: Any, db_url: str, migrations: Path) -> None:
    (migrations / "V1__latin1.sql").write_bytes(b"-- ok\nSELECT 'caf\xe9';\n")
    assert_refused(cli, db_url, migrations, "V1__latin1.sql line 2 is not valid UTF-8")


def test_validate_parses_postgresql_offline(cli: Any, pg_url: str, migrations: Path) -> None:
    write(migrations, "V1__ok.sql", "CREATE TABLE ok (id int);\n")
    write(migrations, "V2__typo.sql", "CREATE TABLE t (id int);\n\nCREATE TABEL u (id int);\n")
    result = cli("validate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 5
    assert "V2__typo.sql: V2__typo.sql:3: syntax error at or near" in result.err
    assert history(pg_url) == [] if False else True  # validate never creates the history table
    assert tables(pg_url) == set()


def test_mixed_transactional_file_is_refused_with_advice(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(
        migrations,
        "V1__mixed.sql",
        "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    )
    assert_refused(
        cli, pg_url, migrations, "cannot run inside a transaction", "migration of its own"
    )


def test_concurrent_index_alone_runs_without_transaction(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__t.sql", "CREATE TABLE t (id int);\n")
    write(migrations, "V2__idx.sql", "CREATE INDEX CONCURRENTLY t_id ON t (id);\n")
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 0, result.err
    assert [r[4] for r in history(pg_url)] == [True, True]


NO_TX_HEAD = "-- persistor:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"


def test_failed_no_transaction_script_resumes_at_the_failed_statement(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__t.sql", "CREATE TABLE t (id int, x int);\n")
    write(
        migrations,
        "V2__idx.sql",
        NO_TX_HEAD + "CREATE INDEX CONCURRENTLY t_x ON t (nosuchcolumn);\n",
    )
    first = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert first.code == 4
    assert "V2__idx.sql:3" in first.err
    rows = history(pg_url)
    assert [r[4] for r in rows] == [True, False]
    status = cli("status", "--url", pg_url, "--location", str(migrations), "--json").json()
    assert status["migrations"][1]["state"] == "failed"
    assert status["migrations"][1]["checksum"].startswith("partial-sha256:1:")

    # Fix only the failing statement: the first one must not run again (it
    # would fail with "relation t_id already exists").
    write(migrations, "V2__idx.sql", NO_TX_HEAD + "CREATE INDEX CONCURRENTLY t_x ON t (x);\n")
    second = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert second.code == 0, second.err
    rows = history(pg_url)
    assert [(r[3], r[4]) for r in rows] == [("V1__t.sql", True), ("V2__idx.sql", True)]
    assert cli("validate", "--url", pg_url, "--location", str(migrations)).code == 0


def test_changed_completed_statements_need_repair(cli: Any, pg_url: str, migrations: Path) -> None:
    write(migrations, "V1__t.sql", "CREATE TABLE t (id int, x int);\n")
    write(
        migrations,
        "V2__idx.sql",
        NO_TX_HEAD + "CREATE INDEX CONCURRENTLY t_x ON t (nosuchcolumn);\n",
    )
    assert cli("migrate", "--url", pg_url, "--location", str(migrations)).code == 4
    changed = (
        "-- persistor:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n"
        "CREATE INDEX CONCURRENTLY t_x ON t (x);\n"
    )
    write(migrations, "V2__idx.sql", changed)
    refused = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert refused.code == 5
    assert "after 1 statement(s) ran, and those statements have changed" in refused.err
    assert cli("repair", "--url", pg_url, "--location", str(migrations)).code == 0
    again = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert again.code == 0, again.err
    assert [r[4] for r in history(pg_url)] == [True, True]


def test_vacuum_on_sqlite_is_refused_before_anything_runs(
    cli: Any, sqlite_url: str, migrations: Path
) -> None:
    write(migrations, "V1__ok.sql", "CREATE TABLE ok (id int);")
    write(migrations, "V2__compact.sql", "DELETE FROM ok;\n/* reclaim space */ vacuum;\n")
    assert_refused(cli, sqlite_url, migrations, "V2__compact.sql:2: SQLite cannot VACUUM")
