"""`persistor lint` exit codes and formats, and lint inside validate and migrate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.migrator.conftest import write

HAZARD = "CREATE INDEX ix_t_v ON t (v);\n"  # error: index-not-concurrent
WARNING = "ALTER TABLE t DROP COLUMN old;\n"  # warning: drop-column
BASE = "CREATE TABLE t (id bigint PRIMARY KEY, v text, old text);\n"


def test_clean_files_exit_0(cli: Any, migrations: Path) -> None:
    write(migrations, "V1__t.sql", BASE + "CREATE INDEX ix ON t (v);\n")
    result = cli("lint", str(migrations))
    assert result.code == 0, result.err
    assert "Linted 1 file(s), 2 statement(s): 0 error(s), 0 warning(s)." in result.out


def test_error_exits_5_with_statement_why_and_fix(cli: Any, migrations: Path) -> None:
    write(migrations, "V1__t.sql", BASE)
    write(migrations, "V2__ix.sql", "-- index\n" + HAZARD)
    result = cli("lint", str(migrations))
    assert result.code == 5
    assert (
        "migrations/V2__ix.sql:2: error [index-not-concurrent] index ix_t_v on existing table t"
        in result.out
    )
    assert "    | CREATE INDEX ix_t_v ON t (v)" in result.out
    assert "why: CREATE INDEX holds a SHARE lock" in result.out
    assert "instead: CREATE INDEX CONCURRENTLY" in result.out
    assert "lint found 1 error(s) and 0 warning(s)" in result.err


def test_warnings_pass_unless_strict(cli: Any, migrations: Path) -> None:
    write(migrations, "V2__drop.sql", WARNING)
    loose = cli("lint", str(migrations))
    assert loose.code == 0
    assert "warning [drop-column] t.old dropped" in loose.out
    strict = cli("lint", "--strict", str(migrations))
    assert strict.code == 5
    assert "--strict fails on warnings too" in strict.err


def test_json_format(cli: Any, migrations: Path) -> None:
    write(migrations, "V2__both.sql", HAZARD + WARNING)
    for args in (("--format", "json"), ("--json",)):
        result = cli("lint", *args, str(migrations))
        assert result.code == 5
        doc = json.loads(result.out)  # one document on stdout, even when failing
        assert (doc["errors"], doc["warnings"], doc["passed"]) == (1, 1, False)
        first = doc["findings"][0]
        assert first["rule"] == "index-not-concurrent" and first["line"] == 1
        assert first["statement"] == "CREATE INDEX ix_t_v ON t (v)"
        assert set(first) == {
            "rule",
            "severity",
            "file",
            "line",
            "statement",
            "message",
            "why",
            "fix",
        }


def test_github_format(cli: Any, migrations: Path, tmp_path: Path) -> None:
    write(migrations, "V2__both.sql", "\n" + HAZARD + WARNING)
    result = cli("lint", "--format", "github", "migrations")  # relative, as in CI
    assert result.code == 5
    error, warning = result.out.splitlines()
    assert error.startswith(
        "::error file=migrations/V2__both.sql,line=2,title=persistor lint index-not-concurrent::"
        "index ix_t_v on existing table t is not CONCURRENTLY."
    )
    assert warning.startswith("::warning file=migrations/V2__both.sql,line=3,")


def test_default_paths_are_the_configured_locations(cli: Any, migrations: Path) -> None:
    write(migrations, "V2__ix.sql", HAZARD)
    write(migrations, "notes.txt", "DROP TABLE t;")  # not a migration
    result = cli("lint", "--location", str(migrations))
    assert result.code == 5 and "1 file(s)" in result.out
    assert cli("lint").code == 0  # the packaged Ecliptix migrations lint clean


def test_bad_input_errors(cli: Any, migrations: Path, tmp_path: Path) -> None:
    write(migrations, "V2__bad.sql", "CREATE TABLE t (id bigint);\nALTER TABLE t ADD;\n")
    broken = cli("lint", str(migrations))
    assert broken.code == 5
    assert "V2__bad.sql:2: cannot be parsed" in broken.err
    missing = cli("lint", str(tmp_path / "nowhere"))
    assert missing.code == 2 and "is neither a file nor a folder" in missing.err
    (tmp_path / "persistor.toml").write_text('lint.error = ["no-such-rule"]\n')
    config = cli("lint", str(migrations))
    assert config.code == 2 and "lint error names unknown rule(s) no-such-rule" in config.err
    assert cli("lint", "--format", "xml").code == 2


def _existing_table(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(BASE)


def test_validate_prints_findings_of_pending_scripts_and_strict_fails(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__base.sql", BASE)
    args = ("--url", pg_url, "--location", str(migrations))
    assert cli("migrate", *args).code == 0
    write(migrations, "V1__base.sql", BASE)
    write(migrations, "V2__ix.sql", HAZARD)
    result = cli("validate", *args)
    assert result.code == 0
    assert "lint: " in result.err and "V2__ix.sql:1: error [index-not-concurrent]" in result.err
    assert cli("validate", "--json", *args).json()["lint"][0]["rule"] == "index-not-concurrent"
    strict = cli("validate", "--strict", *args)
    assert strict.code == 5
    assert "V2__ix.sql: line 1: error [index-not-concurrent]" in strict.err


def test_applied_scripts_are_history_not_linted(cli: Any, pg_url: str, migrations: Path) -> None:
    _existing_table(pg_url)
    write(migrations, "V1__ix.sql", HAZARD)
    args = ("--url", pg_url, "--location", str(migrations))
    first = cli("migrate", *args)
    assert first.code == 0  # lint warns, migrate still runs
    assert "lint: " in first.err and "[index-not-concurrent]" in first.err
    again = cli("validate", "--strict", *args)
    assert again.code == 0 and "lint" not in again.err


def test_migrate_prints_findings_and_json_carries_them(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    _existing_table(pg_url)
    write(migrations, "V1__ix.sql", HAZARD)
    write(migrations, "R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n")
    result = cli("migrate", "--json", "--url", pg_url, "--location", str(migrations))
    assert result.code == 0, result.err
    assert [f["rule"] for f in result.json()["lint"]] == ["index-not-concurrent"]


def test_migrate_refuses_an_unknown_rule_in_an_ignore_comment(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(
        migrations,
        "V1__t.sql",
        "CREATE TABLE made (id bigint);\n"
        "-- persistor:lint-ignore drop-tables\nDROP TABLE IF EXISTS x;\n",
    )
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 5
    assert "V1__t.sql:2: '-- persistor:lint-ignore' names unknown rule(s) drop-tables" in result.err
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT to_regclass('made') IS NULL").fetchone()
    assert row == (True,)  # nothing ran


def test_lint_is_quiet_on_sqlite(cli: Any, sqlite_url: str, migrations: Path) -> None:
    write(migrations, "V1__t.sql", BASE + "CREATE TABLE u (id integer PRIMARY KEY);\n")
    result = cli("migrate", "--url", sqlite_url, "--location", str(migrations))
    assert result.code == 0 and "lint" not in result.err


def test_a_no_op_migrate_imports_neither_lint_nor_the_parser(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__t.sql", BASE)
    args = ["migrate", "--url", pg_url, "--location", str(migrations), "-q"]
    assert cli(*args).code == 0
    code = (
        "import sys; from persistor.cli.main import main; code = main(sys.argv[1:]); "
        "print(code, sorted(m for m in sys.modules if 'lint' in m or m.startswith('pglast')))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.stdout.split("\n")[-2] == "0 []", proc.stdout + proc.stderr  # W2 stays as fast


def test_scripts_of_functions_and_data_are_not_parsed_but_ddl_still_is(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    """No rule looks at functions or data changes: migrate does not load the parser for them."""
    write(migrations, "V1__t.sql", BASE)
    assert cli("migrate", "--url", pg_url, "--location", str(migrations), "-q").code == 0
    write(
        migrations,
        "V2__fn.sql",
        "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
        "INSERT INTO t (id) VALUES (1);\n",
    )
    args = ["migrate", "--url", pg_url, "--location", str(migrations), "-q"]
    code = (
        "import sys; from persistor.cli.main import main; code = main(sys.argv[1:]); "
        "print(code, sorted(m for m in sys.modules if m == 'pglast'))"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.stdout.split("\n")[-2] == "0 []", proc.stdout + proc.stderr
    write(migrations, "V3__idx.sql", "CREATE INDEX ix_t_id ON t (id);\n")
    result = cli("migrate", "--url", pg_url, "--location", str(migrations))
    assert result.code == 0 and "index-not-concurrent" in result.err
