"""Flyway's extras read natively: B baseline migrations and the `${flyway:…}` built-ins."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg

from tests.migrator.conftest import history, tables, write
from tests.migrator.formats_support import pg_schema, psql

# Every Flyway feature persistor reads, in one folder: V scripts a B script
# covers, the B script, a V above it, a repeatable, an undo, placeholders of
# your own and every built-in (callbacks: test_callbacks.py).
FLYWAY = {
    "V1__users.sql": "CREATE TABLE users (id integer PRIMARY KEY);\n",
    "V2__user_names.sql": "ALTER TABLE users ADD COLUMN name text;\n",
    "B2__users_as_of_v2.sql": (
        "CREATE TABLE users (id integer PRIMARY KEY, name text);\n"
        "CREATE TABLE built (what text, value text);\n"
        "INSERT INTO built VALUES ('schema', '${flyway:defaultSchema}'),\n"
        "  ('user', '${flyway:user}'), ('database', '${flyway:database}'),\n"
        "  ('file', '${flyway:filename}'), ('role', '${appRole}');\n"
    ),
    "V3__orders.sql": (
        "CREATE TABLE orders (id integer PRIMARY KEY, user_id integer REFERENCES users);\n"
        "INSERT INTO built VALUES ('stamp', '${flyway:timestamp}');\n"
    ),
    "U3__orders.sql": "DROP TABLE orders;\nDELETE FROM built WHERE what = 'stamp';\n",
    "R__user_view.sql": "DROP VIEW IF EXISTS named;\nCREATE VIEW named AS SELECT id, name FROM users;\n",
}


def _run(cli: Any, url: str, folder: Path, *args: str) -> Any:
    return cli(*args, "--url", url, "--location", str(folder), "-p", "appRole=app_rw")


def _built(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT what, value FROM built").fetchall())


def test_fresh_database_starts_from_the_newest_baseline(
    cli: Any, pg_url: str, pg_server: Any, migrations: Path
) -> None:
    for name, text in FLYWAY.items():
        write(migrations, name, text)
    before = _run(cli, pg_url, migrations, "status", "--json").json()
    states = {m["script"]: m["state"] for m in before["migrations"]}
    assert states["B2__users_as_of_v2.sql"] == "pending"
    assert states["V1__users.sql"] == states["V2__user_names.sql"] == "below_baseline"
    assert before["formats"][0]["format"] == "flyway"
    result = _run(cli, pg_url, migrations, "migrate")
    assert result.code == 0, result.err
    assert "Applied 3 script(s); now at version 3." in result.out
    assert [(r[0], r[2], r[3]) for r in history(pg_url)] == [
        ("2", "BASELINE", "B2__users_as_of_v2.sql"),
        ("3", "SQL", "V3__orders.sql"),
        (None, "SQL", "R__user_view.sql"),
    ]
    built = _built(pg_url)
    with psycopg.connect(pg_url) as conn:
        dbname, user = conn.info.dbname, conn.info.user
    assert (built["schema"], built["database"], built["file"]) == (
        "public",
        dbname,
        "B2__users_as_of_v2.sql",
    )
    assert built["user"] == user and built["role"] == "app_rw"
    assert len(built["stamp"]) == len("2026-12-08 01:02:03")
    # What psql gives for the same files, values filled in by hand, in Flyway's order.
    reference = pg_server.create_database()
    try:
        for name in ("B2__users_as_of_v2.sql", "V3__orders.sql", "R__user_view.sql"):
            psql(reference, FLYWAY[name].replace("${appRole}", "app_rw"))
        assert pg_schema(pg_url, "users") == pg_schema(reference, "users")
    finally:
        pg_server.drop_database(reference)


def test_built_ins_do_not_change_the_checksum(cli: Any, db_url: str, migrations: Path) -> None:
    for name, text in FLYWAY.items():
        write(migrations, name, text)
    assert _run(cli, db_url, migrations, "migrate").code == 0
    again = _run(cli, db_url, migrations, "migrate")  # another timestamp, same checksums
    assert again.code == 0, again.err
    assert "Applied 0" in again.out or "Nothing to do" in again.out
    status = _run(cli, db_url, migrations, "status", "--json").json()
    assert status["problems"] == []
    assert status["counts"] == {"baseline": 1, "applied": 2, "below_baseline": 2}
    assert _run(cli, db_url, migrations, "undo").code == 0
    assert tables(db_url) == {"users", "built"}


def test_baseline_scripts_are_ignored_once_there_is_history(
    cli: Any, db_url: str, migrations: Path
) -> None:
    for name, text in FLYWAY.items():
        if not name.startswith("R__"):  # (repeatables run whatever the target)
            write(migrations, name, text)
    write(
        migrations,
        "V2__user_names.sql",
        "ALTER TABLE users ADD COLUMN name text;\nCREATE TABLE built (what text, value text);\n",
    )
    first = _run(cli, db_url, migrations, "migrate", "--target", "1")
    assert first.code == 0, first.err
    assert [r[3] for r in history(db_url)] == ["V1__users.sql"]
    rest = _run(cli, db_url, migrations, "migrate")
    assert rest.code == 0, rest.err
    assert [r[3] for r in history(db_url)] == [
        "V1__users.sql",
        "V2__user_names.sql",
        "V3__orders.sql",
    ]


def test_target_below_the_newest_baseline_picks_an_older_one(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "B1__one.sql", "CREATE TABLE one (id integer);\n")
    write(migrations, "B3__three.sql", "CREATE TABLE three (id integer);\n")
    write(migrations, "V2__two.sql", "CREATE TABLE two (id integer);\n")
    write(migrations, "V3__three.sql", "CREATE TABLE never (id integer);\n")
    result = _run(cli, db_url, migrations, "migrate", "--target", "2")
    assert result.code == 0, result.err
    assert tables(db_url) == {"one", "two"}


def test_what_is_not_supported_is_reported_not_skipped(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id integer);\n")
    write(migrations, "beforeRepeatables.sql", "SELECT 1;\n")  # a callback persistor lacks
    checked = _run(cli, db_url, migrations, "validate")
    assert checked.code == 0, checked.err
    assert (
        "beforeRepeatables.sql: is not a migration (the location's format: flyway)" in checked.err
    )
    write(migrations, "V2__b.sql", "SELECT '${flyway:table}';\n")
    refused = _run(cli, db_url, migrations, "validate")
    assert refused.code == 5
    assert (
        "V2__b.sql: placeholder ${flyway:table} is not defined (line 1); "
        "it is not one of the built-in placeholders" in refused.err
    )


def test_a_repeatable_with_the_timestamp_runs_on_every_migrate(
    cli: Any, db_url: str, migrations: Path
) -> None:
    # Flyway checksums a repeatable after its placeholders: this idiom re-runs it each time.
    write(migrations, "V1__log.sql", "CREATE TABLE runs (at text);\n")
    write(migrations, "R__seed.sql", "-- ${flyway:timestamp}\nINSERT INTO runs VALUES ('x');\n")
    write(migrations, "R__still.sql", "-- ${flyway:user} ${flyway:database}\nSELECT 1;\n")
    assert _run(cli, db_url, migrations, "migrate").code == 0
    time.sleep(1.1)  # the timestamp counts seconds
    status = _run(cli, db_url, migrations, "status", "--json").json()
    states = {m["script"]: m["state"] for m in status["migrations"]}
    assert states == {
        "V1__log.sql": "applied",
        "R__seed.sql": "outdated",
        "R__still.sql": "applied",
    }
    again = _run(cli, db_url, migrations, "migrate")
    assert again.code == 0, again.err
    assert "applied R__seed.sql" in again.out and "R__still.sql" not in again.out
