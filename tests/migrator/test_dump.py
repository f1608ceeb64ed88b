"""`persistor dump`: the schema as deterministic SQL, and `dump_file` rewritten by migrate."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import psycopg
import pytest

from persistor.engines.postgres.pgdump import find_pg_dump
from persistor.errors import PersistorError
from tests.conftest import PgServer
from tests.migrator.conftest import tables, write

SCHEMA_V1 = """
CREATE TABLE items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL DEFAULT 'x'
);
CREATE INDEX ix_items_name ON items (name);
CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM items $$;
CREATE VIEW item_names AS SELECT name FROM items;
"""


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0]).split()[0]


@pytest.mark.postgres
def test_dump_is_deterministic_without_versions_owners_or_history(
    cli: Any, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", SCHEMA_V1)
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    first = cli("dump", "--url", pg_url, "-l", str(migrations))
    second = cli("dump", "--url", pg_url, "-l", str(migrations))
    assert first.code == 0, first.err
    assert first.out == second.out
    text = first.out
    assert "CREATE TABLE public.items (" in text
    assert "CREATE INDEX ix_items_name ON public.items USING btree (name);" in text
    assert "CREATE FUNCTION public.item_count()" in text
    assert "CREATE VIEW public.item_names AS" in text
    noises = ("Dumped", "\\restrict", "Owner:", "SET statement_timeout", "set_config", "pg_attver")
    for noise in noises:
        assert noise not in text, noise
    assert _server_version(pg_url) not in text
    assert "schema_history" not in text


@pytest.mark.postgres
def test_two_databases_built_alike_dump_alike(
    cli: Any, pg_server: PgServer, pg_url: str, migrations: Path
) -> None:
    write(migrations, "V1__items.sql", SCHEMA_V1)
    other = pg_server.create_database()
    try:
        dumps = []
        for url in (pg_url, other):
            assert cli("migrate", "--url", url, "-l", str(migrations)).code == 0
            dumps.append(cli("dump", "--url", url).out)
    finally:
        pg_server.drop_database(other)
    assert dumps[0] == dumps[1]


@pytest.mark.postgres
def test_dump_out_writes_the_file_and_json_says_so(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path
) -> None:
    write(migrations, "V1__items.sql", SCHEMA_V1)
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    out = tmp_path / "schema.sql"
    result = cli("dump", "--url", pg_url, "--out", str(out), "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["out"] == str(out)
    assert doc["tool"].startswith("pg_dump (PostgreSQL) ")
    assert out.read_text(encoding="utf-8") == doc["sql"]
    assert "CREATE TABLE public.items (" in doc["sql"]


@pytest.mark.postgres
def test_dump_out_in_a_missing_folder_is_refused(cli: Any, pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "schema.sql"
    result = cli("dump", "--url", pg_url, "--out", str(out))
    assert result.code == 2
    assert f"the folder {out.parent} does not exist" in result.err
    assert not out.parent.exists()


@pytest.mark.postgres
def test_migrate_rewrites_dump_file_after_each_successful_run(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "persistor.toml").write_text('dump_file = "db/schema.sql"\n', encoding="utf-8")
    dump_file = tmp_path / "db" / "schema.sql"
    write(migrations, "V1__items.sql", SCHEMA_V1)
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    first = dump_file.read_text(encoding="utf-8")
    assert "CREATE TABLE public.items (" in first
    assert "public.orders" not in first
    write(migrations, "V2__orders.sql", "CREATE TABLE orders (id int);")
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    second = dump_file.read_text(encoding="utf-8")
    assert "CREATE TABLE public.orders (" in second
    assert second == cli("dump", "--url", pg_url).out
    # A failed run leaves the file as the last successful one wrote it.
    write(migrations, "V3__bad.sql", "CREATE TABLE broken (id nosuchtype);")
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 4
    assert dump_file.read_text(encoding="utf-8") == second


def test_dump_file_in_a_missing_folder_stops_migrate_before_anything_runs(
    cli: Any, db_url: str, migrations: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSISTOR_DUMP_FILE", str(tmp_path / "no" / "schema.sql"))
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    result = cli("migrate", "--url", db_url, "-l", str(migrations))
    assert result.code == 2
    assert f"dump_file {tmp_path / 'no' / 'schema.sql'}: the folder" in result.err
    assert "does not exist; create it or choose another file. Nothing was run" in result.err
    if db_url.startswith("sqlite"):
        assert not Path(db_url[len("sqlite:///") :]).exists()
    else:
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT to_regclass('public.schema_history')").fetchone()
        assert row == (None,)
        assert tables(db_url) == set()


def _fake_old_pg_dump(folder: Path) -> Path:
    """Put a pg_dump of PostgreSQL 9.6 on a folder: what an old client package leaves on PATH."""
    folder.mkdir()
    script = folder / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 9.6.24"; exit 0; fi\n'
        'echo "pg_dump: error: aborting because of server version mismatch" >&2\n'
        "exit 1\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


@pytest.mark.postgres
def test_an_old_pg_dump_first_on_path_does_not_break_dump(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(migrations, "V1__items.sql", SCHEMA_V1)
    assert cli("migrate", "--url", pg_url, "-l", str(migrations)).code == 0
    expected = cli("dump", "--url", pg_url)
    _fake_old_pg_dump(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = cli("dump", "--url", pg_url, "--json")
    assert result.code == 0, result.err
    assert "9.6" not in result.json()["tool"]
    assert result.json()["sql"] == expected.out


def test_no_pg_dump_new_enough_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_old_pg_dump(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(PersistorError) as caught:
        find_pg_dump(99)  # a server no pg_dump on this machine can dump
    message = str(caught.value)
    assert message.startswith("no pg_dump of PostgreSQL 99 or newer found")
    assert f"{fake} (pg_dump (PostgreSQL) 9.6.24)" in message
    assert "install the PostgreSQL 99 client tools" in message


def test_sqlite_dump_is_deterministic_and_leaves_out_the_history(
    cli: Any, sqlite_url: str, migrations: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSISTOR_DUMP_FILE", "schema.sql")  # relative to the working folder
    write(migrations, "V1__a.sql", "CREATE TABLE b (id int);\nCREATE TABLE a (id int);")
    write(migrations, "V2__ix.sql", "CREATE INDEX ix_a ON a (id);")
    assert cli("migrate", "--url", sqlite_url, "-l", str(migrations)).code == 0
    result = cli("dump", "--url", sqlite_url)
    assert result.code == 0, result.err
    assert result.out == (
        "CREATE TABLE a (id int);\n\nCREATE TABLE b (id int);\n\nCREATE INDEX ix_a ON a (id);\n"
    )
    assert cli("dump", "--url", sqlite_url).out == result.out
    assert (tmp_path / "schema.sql").read_text(encoding="utf-8") == result.out


@pytest.mark.postgres
def test_the_catalog_reader_dumps_alike_when_no_pg_dump_is_new_enough(
    cli: Any, pg_server: PgServer, pg_url: str, migrations: Path
) -> None:
    # What dump writes when find_pg_dump finds nothing (a server newer than every pg_dump).
    from persistor.engines.postgres.catalog_dump import render
    from persistor.engines.postgres.inspect import read_objects

    write(migrations, "V1__items.sql", SCHEMA_V1)
    other = pg_server.create_database()
    try:
        texts = []
        for url in (pg_url, other):
            assert cli("migrate", "--url", url, "-l", str(migrations)).code == 0
            with psycopg.connect(url) as conn:
                objects = read_objects(conn, "public", ["schema_history", "schema_history_lock"])
            texts.append(render("public", objects))
    finally:
        pg_server.drop_database(other)
    assert texts[0] == texts[1]
    assert 'CREATE TABLE "public"."items" (\n    "id" bigint NOT NULL GENERATED ALWAYS' in texts[0]
    assert "CREATE INDEX ix_items_name ON public.items USING btree (name);" in texts[0]
    assert 'CREATE VIEW "public"."item_names" AS SELECT ' in texts[0]
    assert "CREATE OR REPLACE FUNCTION public.item_count()" in texts[0]
    assert "schema_history" not in texts[0]
