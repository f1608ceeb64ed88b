"""persistor's pytest plugin: fresh, migrated test databases, and ready-made migration checks.

Installed with persistor (the `pytest11` entry point), it adds fixtures and
starts nothing until a test asks for one:

- `persistor_db`: a fresh copy of the project's migrated database for each
  test (`url`, `conn` an open psycopg connection, `settings` for persistor's
  API), dropped after the test. The project's migrations run once per session,
  into a template database (`persistor_template`) that each test copies.
- `persistor_sqlite_db`: the same on SQLite (a copy of the migrated file).
- `persistor_server`: the PostgreSQL server used: `--persistor-url`, else
  `PERSISTOR_TEST_URL`, else a private embedded PostgreSQL for the session.
  It must let the user create databases. `PERSISTOR_URL` is never used here:
  it names the database you deploy to.
- `persistor_settings`: the project's settings (persistor.toml or
  `[tool.persistor]` in pyproject.toml at pytest's rootdir, and the
  environment); override this fixture to test other locations.

Checks: `from persistor.pytest_plugin import MigrationChecks as TestMigrations`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from persistor.pytest_plugin.checks import MigrationChecks

if TYPE_CHECKING:
    from persistor.pytest_plugin.databases import (
        Copies,
        MigratedDatabase,
        MigratedSqliteDatabase,
        Template,
        TestServer,
    )
    from persistor.settings import Settings

SERVER_ENV = "PERSISTOR_TEST_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("persistor", "persistor test databases")
    group.addoption(
        "--persistor-url",
        default=None,
        metavar="URL",
        help=f"PostgreSQL server for test databases (else ${SERVER_ENV}, else an embedded one)",
    )
    group.addoption(
        "--persistor-dump",
        default=None,
        metavar="FILE",
        help="a plain-SQL database dump the migrations must apply on top of (MigrationChecks)",
    )
    parser.addini("persistor_dump", "database dump for MigrationChecks, relative to rootdir")


@pytest.fixture(scope="session")
def persistor_server(request: pytest.FixtureRequest) -> Iterator[TestServer]:
    """The PostgreSQL server test databases are made on (given, or embedded for the session)."""
    from persistor.pytest_plugin.databases import TestServer, embedded_server

    url = request.config.getoption("persistor_url") or os.environ.get(SERVER_ENV)
    if url:
        given = TestServer(str(url))
        yield given
        given.close()
        return
    with embedded_server() as server:
        yield server


@pytest.fixture(scope="session")
def persistor_settings(request: pytest.FixtureRequest) -> Settings:
    """The project's persistor settings, read as the command line would from pytest's rootdir."""
    from persistor.settings import load_settings

    return load_settings(cwd=Path(request.config.rootpath))


@pytest.fixture(scope="session")
def persistor_template(
    persistor_server: TestServer, persistor_settings: Settings
) -> Iterator[Template]:
    """The project's migrations applied once, into a database each test copies."""
    from persistor.pytest_plugin.databases import migrate_template

    template = migrate_template(persistor_server, persistor_settings)
    yield template
    persistor_server.drop(template.name)


@pytest.fixture(scope="session")
def persistor_copies(persistor_template: Template) -> Iterator[Copies]:
    """Copies of the template made one ahead, so a test rarely waits for its own."""
    from persistor.pytest_plugin.databases import Copies

    copies = Copies(persistor_template)
    yield copies
    copies.close()


@pytest.fixture
def persistor_db(
    persistor_template: Template, persistor_copies: Copies
) -> Iterator[MigratedDatabase]:
    """A fresh, migrated PostgreSQL database for this test, dropped after it."""
    from persistor.pytest_plugin.databases import database_copy

    with database_copy(persistor_template, persistor_copies) as db:
        yield db


@pytest.fixture(scope="session")
def persistor_sqlite_template(
    tmp_path_factory: pytest.TempPathFactory, persistor_settings: Settings
) -> Template:
    """The project's migrations applied once to a SQLite file each test copies."""
    from persistor.pytest_plugin.databases import migrate_sqlite_template

    return migrate_sqlite_template(tmp_path_factory.mktemp("persistor"), persistor_settings)


@pytest.fixture
def persistor_sqlite_db(
    persistor_sqlite_template: Template, tmp_path: Path
) -> Iterator[MigratedSqliteDatabase]:
    """A fresh, migrated SQLite database file for this test."""
    from persistor.pytest_plugin.databases import sqlite_copy

    with sqlite_copy(persistor_sqlite_template, tmp_path) as db:
        yield db


@pytest.fixture(scope="session")
def persistor_dump(request: pytest.FixtureRequest) -> Path | None:
    """The database dump MigrationChecks applies the migrations on, if one is given."""
    given = request.config.getoption("persistor_dump") or request.config.getini("persistor_dump")
    if not given:
        return None
    path = Path(str(given))
    return path if path.is_absolute() else Path(request.config.rootpath) / path


__all__ = ["MigrationChecks"]
