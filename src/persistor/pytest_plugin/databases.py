"""Test databases for the pytest plugin: a server, a migrated template, and fresh copies of it.

Migrating once and copying is what makes a fresh, migrated database cheap:
`CREATE DATABASE … TEMPLATE` copies files instead of replaying every script
(bench/fixture_bench.py measures both).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from persistor.engines.postgres.errors import first_line
from persistor.errors import ConnectError, PrivilegeError
from persistor.results import MigrateResult
from persistor.settings import Settings
from persistor.urls import mask_url, scrub


@dataclass(frozen=True)
class TestServer:
    """A PostgreSQL server the plugin may create and drop databases on."""

    __test__ = False  # not a test class, whatever its name

    admin_url: str = field(repr=False)  # shown masked, by __repr__: tracebacks print it
    # How CREATE DATABASE copies the template: FILE_COPY is faster on a private
    # server without fsync; WAL_LOG (PostgreSQL's default) spares a shared
    # server the checkpoints FILE_COPY forces.
    strategy: str = "WAL_LOG"
    # One admin connection, opened on first use and kept: a connection per
    # CREATE/DROP cost ~5-10 ms of each test's setup and teardown.
    _admin: list[psycopg.Connection[Any]] = field(default_factory=list, repr=False, compare=False)

    def close(self) -> None:
        """Close the admin connection, if one was opened."""
        while self._admin:
            self._admin.pop().close()

    def __repr__(self) -> str:
        return f"TestServer({mask_url(self.admin_url)!r}, strategy={self.strategy!r})"

    def url_of(self, database: str) -> str:
        """Return the server's URL for another database on it."""
        return urlsplit(self.admin_url)._replace(path="/" + database).geturl()

    def create(self, prefix: str, template: str | None = None) -> str:
        """Create a uniquely named database (a copy of `template` if given); return its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query += sql.SQL(" TEMPLATE {} STRATEGY {}").format(
                sql.Identifier(template), sql.SQL(self.strategy)
            )
        self._run(query, f"create the test database {name}")
        return name

    def drop(self, name: str) -> None:
        """Drop a database, ending any session still on it."""
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self._run(query, f"drop the test database {name}")

    def _run(self, query: sql.Composed, what: str) -> None:
        """Run one statement on the server's admin database; say plainly what went wrong."""
        try:
            if not self._admin or self._admin[0].closed:
                self.close()
                self._admin.append(
                    psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)
                )
            self._admin[0].execute(query)
        except psycopg.errors.InsufficientPrivilege:
            raise PrivilegeError(
                f"could not {what} on {mask_url(self.admin_url)}: the role may not create "
                "databases; grant it CREATEDB, or give --persistor-url (or PERSISTOR_TEST_URL) "
                "a server where it may"
            ) from None
        except psycopg.OperationalError as exc:
            raise ConnectError(
                f"could not {what} on {mask_url(self.admin_url)}: "
                f"{scrub(first_line(str(exc)), self.admin_url)}; check "
                "--persistor-url / PERSISTOR_TEST_URL, or give neither to use an embedded server"
            ) from None


def _memory_dir() -> str | None:
    """Return /dev/shm when there is one: in memory, a copy never waits for a busy disk."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


@contextlib.contextmanager
def embedded_server() -> Iterator[TestServer]:
    """Start a private embedded PostgreSQL for this test session; stop and remove it after."""
    from persistor.engines.embedded import start_embedded, stop_embedded

    base = Path(tempfile.mkdtemp(prefix="persistor-pytest-", dir=_memory_dir()))
    try:
        url = start_embedded(base / "pgdata", database="postgres").url
        with psycopg.connect(url, autocommit=True) as conn:
            # Throwaway data: durability buys nothing and costs most of a copy's time.
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(name)))
            conn.execute("SELECT pg_reload_conf()")
        server = TestServer(url, strategy="FILE_COPY")
        try:
            yield server
        finally:
            server.close()
    finally:
        with contextlib.suppress(Exception):
            stop_embedded(base / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class Template:
    """The database the project's migrations were applied to once, copied for each test."""

    server: TestServer
    name: str
    settings: Settings = field(repr=False)  # the project's settings, pointing at the template
    result: MigrateResult = field(repr=False)


def migrate_template(server: TestServer, settings: Settings) -> Template:
    """Create a database, apply the project's migrations to it, and return it as a template."""
    from persistor.api import migrate

    name = server.create("persistor_tpl")
    pointed = replace(settings, url=server.url_of(name))
    try:
        result = migrate(pointed)
    except BaseException:
        server.drop(name)
        raise
    return Template(server, name, pointed, result)


@dataclass(frozen=True)
class MigratedDatabase:
    """A fresh copy of the migrated template, for one test; dropped after it."""

    url: str = field(repr=False)  # these three may hold the server's password: see __repr__
    name: str = field(repr=True)
    conn: psycopg.Connection[Any] = field(repr=False)  # open on this database, not in autocommit
    settings: Settings = field(repr=False)  # the project's settings pointing here

    def __repr__(self) -> str:
        return f"MigratedDatabase({mask_url(self.url)!r})"


class Copies:
    """Copies of the template made one ahead, in a thread, while the test before runs.

    A test then waits only for what is left of its copy, not for all of it;
    the thread has an admin connection of its own. The copy left over at the
    end is dropped by close().
    """

    def __init__(self, template: Template) -> None:
        self._template = template
        self._server = TestServer(template.server.admin_url, template.server.strategy)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="persistor-copies")
        self._next: Future[str] | None = None

    def _make(self) -> str:
        return self._server.create("persistor_test", template=self._template.name)

    def take(self) -> str:
        """Return the name of a fresh copy, and start making the next one."""
        name = self._next.result() if self._next is not None else self._make()
        self._next = self._thread.submit(self._make)
        return name

    def close(self) -> None:
        """Drop the copy made ahead and nobody took; stop the thread."""
        try:
            if self._next is not None:
                self._server.drop(self._next.result())
        finally:
            self._next = None
            self._thread.shutdown()
            self._server.close()


@contextlib.contextmanager
def database_copy(template: Template, copies: Copies | None = None) -> Iterator[MigratedDatabase]:
    """Take a copy of the template (made ahead by `copies`, if given), connect, drop it after."""
    server = template.server
    name = copies.take() if copies else server.create("persistor_test", template=template.name)
    url = server.url_of(name)
    try:
        with psycopg.connect(url) as conn:
            yield MigratedDatabase(url, name, conn, replace(template.settings, url=url))
    finally:
        server.drop(name)


@dataclass(frozen=True)
class MigratedSqliteDatabase:
    """A fresh copy of the migrated SQLite template file, for one test."""

    url: str
    path: Path
    conn: sqlite3.Connection
    settings: Settings


def migrate_sqlite_template(folder: Path, settings: Settings) -> Template:
    """Apply the project's migrations to a new SQLite file and return it as a template."""
    from persistor.api import migrate

    path = folder / "template.db"
    pointed = replace(settings, url=f"sqlite:///{path}")
    return Template(TestServer(""), str(path), pointed, migrate(pointed))


@contextlib.contextmanager
def sqlite_copy(template: Template, folder: Path) -> Iterator[MigratedSqliteDatabase]:
    """Copy the migrated SQLite file into the test's folder and open it."""
    path = folder / "persistor_test.db"
    shutil.copyfile(template.name, path)
    url = f"sqlite:///{path}"
    conn = sqlite3.connect(path)
    try:
        yield MigratedSqliteDatabase(url, path, conn, replace(template.settings, url=url))
    finally:
        conn.close()
