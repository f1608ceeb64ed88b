"""`status --exit-code`: a deploy pipeline's gate, exit 7 while anything is left to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.migrator.conftest import write


def test_status_exit_code_is_7_while_scripts_are_pending_and_0_once_applied(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "R__v.sql", "CREATE VIEW v AS SELECT 1 AS one;")
    args = ["--url", db_url, "-l", str(migrations)]
    assert cli("status", *args).code == 0  # without the flag status only reports
    pending = cli("status", *args, "--exit-code")
    assert pending.code == 7
    assert "error: the database is not up to date with its migrations (2 pending)" in pending.err
    assert "Current version: (none); 2 pending." in pending.out  # the table is still shown
    assert cli("migrate", *args).code == 0
    settled = cli("status", *args, "--exit-code")
    assert settled.code == 0, settled.err
    assert settled.err == ""


def test_status_exit_code_is_7_for_a_changed_or_missing_script(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    second = write(migrations, "V2__b.sql", "CREATE TABLE b (id int);")
    args = ["--url", db_url, "-l", str(migrations)]
    assert cli("migrate", *args).code == 0
    write(migrations, "V1__a.sql", "CREATE TABLE a (id bigint);")
    changed = cli("status", *args, "--exit-code", "--json")
    assert changed.code == 7
    assert changed.json()["counts"]["changed"] == 1  # one document: the status, not an error
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    second.unlink()
    missing = cli("status", *args, "--exit-code")
    assert missing.code == 7
    assert "(1 missing)" in missing.err


def test_status_exit_code_is_7_for_a_failed_script(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    args = ["--url", db_url, "-l", str(migrations)]
    assert cli("migrate", *args).code == 0
    if db_url.startswith("postgresql"):
        # Only a no-transaction script leaves a failed row behind.
        write(
            migrations,
            "V2__ix.sql",
            "CREATE INDEX CONCURRENTLY ix_a ON a (id);\nCREATE INDEX CONCURRENTLY ix_b ON nope (id);",
        )
        assert cli("migrate", *args).code == 4
        failed = cli("status", *args, "--exit-code")
        assert failed.code == 7
        assert "failed" in failed.err
