"""Shared fixtures: real PostgreSQL servers and fresh databases on them.

PostgreSQL tests run on the embedded server from PyPI, and also on the
machine's service when ``PERSISTOR_TEST_URL`` is set (CI sets it). SQLite
tests need nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

SERVICE_URL_ENV = "PERSISTOR_TEST_URL"


@dataclass(frozen=True)
class PgServer:
    """A running PostgreSQL server the tests may create databases on."""

    label: str
    admin_url: str
    version: str

    def database_url(self, dbname: str) -> str:
        """Return the server's URL pointing at another database."""
        return urlsplit(self.admin_url)._replace(path="/" + dbname).geturl()

    def create_database(self, template: str | None = None) -> str:
        """Create a uniquely named database and return its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        clause = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{clause}")  # name is ours, not input
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by create_database, disconnecting its sessions."""
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def url_as(url: str, user: str, password: str | None = None) -> str:
    """Return url with its user (and password) replaced."""
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    userinfo = user if password is None else f"{user}:{password}"
    return parts._replace(netloc=f"{userinfo}@{hostport}").geturl()


def _pg_params() -> list[str]:
    params = ["embedded"]
    if os.environ.get(SERVICE_URL_ENV):
        params.append("service")
    return params


_EMBEDDED_DIRS: list[Path] = []


def _start_embedded() -> str:
    # A directory of our own rather than pytest's tmp_path: pytest prunes old
    # basetemps, which would delete a server another pytest run still uses.
    from persistor.engines.embedded import start_embedded

    base = Path(tempfile.mkdtemp(prefix="persistor-test-pg-"))
    _EMBEDDED_DIRS.append(base)
    return start_embedded(base / "pgdata", database="postgres").url


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_servers() -> Iterator[None]:
    yield
    from persistor.engines.embedded import stop_embedded

    for base in _EMBEDDED_DIRS:
        stop_embedded(base / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


_SERVERS: dict[str, PgServer] = {}


def get_pg_server(label: str) -> PgServer:
    """Return the server for a label ('embedded' or 'service'), starting it once per session."""
    if label not in _SERVERS:
        admin_url = os.environ[SERVICE_URL_ENV] if label == "service" else _start_embedded()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        assert row is not None
        _SERVERS[label] = PgServer(label=label, admin_url=admin_url, version=str(row[0]))
    return _SERVERS[label]


def pg_params() -> list[str]:
    """Return the labels of the PostgreSQL servers this run tests on."""
    return _pg_params()


@pytest.fixture(scope="session", params=_pg_params())
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    """A PostgreSQL server: the embedded one, or the service from PERSISTOR_TEST_URL."""
    return get_pg_server(str(request.param))


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite database file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'test.db'}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"persistor: PostgreSQL targets: {', '.join(_pg_params())}"]
    url = os.environ.get(SERVICE_URL_ENV)
    if url:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                row = conn.execute("SHOW server_version").fetchone()
            lines.append(f"persistor: service server_version {row[0] if row else '?'}")
        except psycopg.Error as exc:
            lines.append(f"persistor: service unreachable: {type(exc).__name__}")
    return lines


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
