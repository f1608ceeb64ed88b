"""Python migrations (V…__name.py, R__name.py) on both engines: run, checksum, failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from tests.migrator.conftest import history, tables, write

CREATE = "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL);\n"

FILL = """\
def migrate(conn):
    for n, name in enumerate(["apple", "pear"], start=1):
        conn.execute(f"INSERT INTO items (id, name) VALUES ({n}, '{name}')")
"""


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Return the rows of a query on either engine."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return [tuple(r) for r in conn.execute(query).fetchall()]
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


def test_python_migration_runs_between_sql_ones(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__items.sql", CREATE)
    write(migrations, "V2__fill_items.py", FILL)
    write(migrations, "V3__more.sql", "INSERT INTO items VALUES (3, 'plum');\n")
    write(
        migrations,
        "R__count.py",
        "def migrate(conn):\n    conn.execute('CREATE TABLE IF NOT EXISTS counted (n integer)')\n",
    )
    first = cli("migrate", "--url", db_url, "-l", str(migrations))
    assert first.code == 0, first.err
    assert "applied V2__fill_items.py" in first.out
    assert rows(db_url, "SELECT id, name FROM items ORDER BY id") == [
        (1, "apple"),
        (2, "pear"),
        (3, "plum"),
    ]
    assert [r[3] for r in history(db_url)] == [
        "V1__items.sql",
        "V2__fill_items.py",
        "V3__more.sql",
        "R__count.py",
    ]
    assert cli("migrate", "--url", db_url, "-l", str(migrations)).out.count("Nothing to do") == 1
    status = cli("status", "--url", db_url, "-l", str(migrations), "--json").json()
    assert [m["state"] for m in status["migrations"]] == ["applied"] * 4


def test_edited_python_migration_is_refused_like_sql(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", CREATE)
    write(migrations, "V2__fill_items.py", FILL)
    assert cli("migrate", "--url", db_url, "-l", str(migrations)).code == 0
    # CRLF and a BOM are not edits, as for SQL.
    (migrations / "V2__fill_items.py").write_bytes(
        b"\xef\xbb\xbf" + FILL.replace("\n", "\r\n").encode()
    )
    assert cli("validate", "--url", db_url, "-l", str(migrations)).code == 0
    write(migrations, "V2__fill_items.py", FILL + "# edited\n")
    result = cli("migrate", "--url", db_url, "-l", str(migrations))
    assert result.code == 5
    assert "V2__fill_items.py: was changed after it was applied" in result.err


def test_python_migration_that_raises_keeps_nothing(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", CREATE)
    path = write(
        migrations,
        "V2__half.py",
        "def migrate(conn):\n"
        "    conn.execute(\"INSERT INTO items VALUES (1, 'kept?')\")\n"
        "    helper()\n"
        "\n"
        "def helper():\n"
        "    raise ValueError('no pears left')\n",
    )
    result = cli("migrate", "--url", db_url, "-l", str(migrations), "--json")
    assert result.code == 4
    error = result.json()["error"]
    assert error["location"] == {"path": str(path), "line": 6}
    assert "V2__half.py failed at" in error["message"]
    assert "ValueError: no pears left" in error["message"]
    assert "Nothing of this script was applied" in error["message"]
    assert rows(db_url, "SELECT count(*) FROM items") == [(0,)]
    assert [r[3] for r in history(db_url)] == ["V1__items.sql"]


def test_failed_statement_inside_python_migration_names_its_line(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", CREATE)
    path = write(
        migrations,
        "V2__dup.py",
        "def migrate(conn):\n"
        "    conn.execute(\"INSERT INTO items VALUES (1, 'a')\")\n"
        "    conn.execute(\"INSERT INTO items VALUES (1, 'b')\")\n",
    )
    result = cli("migrate", "--url", db_url, "-l", str(migrations))
    assert result.code == 4
    assert f"V2__dup.py failed at {path}:3" in result.err
    assert rows(db_url, "SELECT count(*) FROM items") == [(0,)]
    # Fixed, it runs from scratch.
    write(migrations, "V2__dup.py", FILL)
    assert cli("migrate", "--url", db_url, "-l", str(migrations)).code == 0
    assert rows(db_url, "SELECT count(*) FROM items") == [(2,)]


def test_import_failure_and_missing_function_fail_validation_before_anything_runs(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", CREATE)
    broken = write(migrations, "V2__broken.py", "import os\n\nx = 1 / 0\n")
    empty = write(migrations, "V3__empty.py", "NAME = 'no function here'\n")
    typo = write(migrations, "V4__typo.py", "def migrate(conn:\n    pass\n")
    for args in (("validate",), ("migrate",), ("migrate", "--dry-run")):
        result = cli(*args, "--url", db_url, "-l", str(migrations))
        assert result.code == 5, (args, result.err)
        assert f"{broken}:3: fails on import: ZeroDivisionError" in result.err
        assert f"{empty}:1: has no function migrate(conn)" in result.err
        assert f"{typo}:1: is not valid Python" in result.err
    assert tables(db_url) == set()


def test_migrate_with_wrong_arguments_is_refused(cli: Any, db_url: str, migrations: Path) -> None:
    path = write(migrations, "V1__two.py", "\n\ndef migrate(conn, extra):\n    pass\n")
    result = cli("validate", "--offline", "-l", str(migrations))
    assert result.code == 5
    assert f"{path}:3: migrate() must take exactly one argument" in result.err


def test_dry_run_says_what_it_would_call(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__items.sql", CREATE)
    path = write(migrations, "V2__fill_items.py", "# fills\n\n" + FILL)
    result = cli("migrate", "--dry-run", "--url", db_url, "-l", str(migrations))
    assert result.code == 0, result.err
    assert f"would call migrate(conn) from {path}:3, inside the script's transaction" in result.out
    assert "INSERT INTO" not in result.out  # the Python source is not passed off as SQL
    assert tables(db_url) == set()


def test_python_migration_outside_a_transaction(cli: Any, db_url: str, migrations: Path) -> None:
    write(migrations, "V1__items.sql", CREATE)
    write(
        migrations,
        "V2__outside.py",
        "TRANSACTION = False\n\n"
        "def migrate(conn):\n"
        "    conn.execute(\"INSERT INTO items VALUES (1, 'a')\")\n"
        "    raise RuntimeError('stop')\n",
    )
    dry = cli("migrate", "--dry-run", "--url", db_url, "-l", str(migrations))
    assert "outside a transaction (TRANSACTION = False)" in dry.out
    result = cli("migrate", "--url", db_url, "-l", str(migrations))
    assert result.code == 4
    assert "ran outside a transaction" in result.err and "persistor repair" in result.err
    if not db_url.startswith("sqlite"):
        # Autocommit: the insert stayed, and the failed row stops the next run.
        assert rows(db_url, "SELECT count(*) FROM items") == [(1,)]
        assert history(db_url)[-1][3:] == ("V2__outside.py", False)
        assert cli("migrate", "--url", db_url, "-l", str(migrations)).code == 5


def test_python_migration_outside_a_transaction_on_postgres_can_vacuum(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", CREATE)
    write(
        migrations,
        "V2__vacuum.py",
        "TRANSACTION = False\n\ndef migrate(conn):\n    conn.execute('VACUUM items')\n",
    )
    result = cli("migrate", "--url", pg_url, "-l", str(migrations))
    assert result.code == 0, result.err
    assert history(pg_url)[-1][3:] == ("V2__vacuum.py", True)


def test_python_migration_gets_the_target_schema_and_a_psycopg_connection(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(
        migrations,
        "V1__where.py",
        "import psycopg\n\n"
        "def migrate(conn):\n"
        "    assert isinstance(conn, psycopg.Connection)\n"
        "    schema = conn.execute('SELECT current_schema()').fetchone()[0]\n"
        "    conn.execute(f'CREATE TABLE seen (schema text)')\n"
        "    conn.execute('INSERT INTO seen VALUES (%s)', (schema,))\n",
    )
    result = cli("migrate", "--url", pg_url, "--schema", "app", "-l", str(migrations))
    assert result.code == 0, result.err
    assert rows(pg_url, "SELECT schema FROM app.seen") == [("app",)]


def test_python_helpers_and_badly_named_python_files(cli: Any, migrations: Path) -> None:
    write(migrations, "V1__items.sql", CREATE)
    write(migrations, "helpers.py", "raise SystemExit('never imported')\n")
    write(migrations, "__init__.py", "")
    result = cli("validate", "--offline", "-l", str(migrations))
    assert result.code == 0, result.err
    write(migrations, "v2_fill.py", FILL)
    result = cli("validate", "--offline", "-l", str(migrations))
    assert result.code == 5
    assert "v2_fill.py: looks like a Python migration" in result.err
    write(migrations, "V1__items.py", FILL)
    assert "version 1 is used by both" in cli("validate", "--offline", "-l", str(migrations)).err


def test_python_migration_that_commits_itself_is_stopped(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", CREATE)
    path = write(
        migrations,
        "V2__commits.py",
        "def migrate(conn):\n"
        "    conn.execute(\"INSERT INTO items VALUES (1, 'a')\")\n"
        "    conn.commit()\n",
    )
    result = cli("migrate", "--url", db_url, "-l", str(migrations))
    assert result.code == 4, result.err
    assert f"migrate() at {path}:1 committed or rolled back the script's transaction" in result.err
    assert [r[3] for r in history(db_url)] == ["V1__items.sql"]  # not recorded as applied
