"""Fixtures for the security tests: the Ecliptix databases of tests/ecliptix,
and login roles made (and dropped) per test.

Roles are cluster-wide, so each test gets a uniquely named one; it is dropped
after the test, once ``DROP OWNED BY`` has removed its privileges from the
test database. The servers trust local connections, so connecting as a role
only needs its name in the URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from tests.conftest import PgServer

# The fresh, migrated Ecliptix database per test, shared with tests/ecliptix.
from tests.ecliptix.conftest import db, ecliptix_template, ecliptix_url  # noqa: F401

RoleMaker = Callable[..., str]


@pytest.fixture
def make_role(pg_server: PgServer) -> Iterator[RoleMaker]:
    """``make_role(url, password=None)`` creates a unique LOGIN role and returns its name.

    After the test every role made is stripped of what it owns or was granted
    in the database at ``url`` and dropped."""
    made: list[tuple[str, str]] = []

    def make(url: str, password: str | None = None) -> str:
        name = "sec_" + uuid.uuid4().hex[:12]
        stmt = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name))
        if password is not None:
            stmt = sql.SQL("{} PASSWORD {}").format(stmt, sql.Literal(password))
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(stmt)
        made.append((name, url))
        return name

    yield make
    for name, url in made:
        ident = sql.Identifier(name)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (name,),
                )
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        except psycopg.OperationalError:
            pass  # the database is already gone, and the role's privileges with it
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
