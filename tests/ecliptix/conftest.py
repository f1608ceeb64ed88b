"""Fixtures for the Ecliptix database: a fresh, fully migrated database per test.

The migrations are deployed once per server into a template database; each
test gets a clone of it (CREATE DATABASE … TEMPLATE), which is much faster
than migrating again.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import PgServer
from tests.ecliptix.deploy import deploy_ecliptix


@pytest.fixture(scope="session")
def ecliptix_template(pg_server: PgServer) -> Iterator[str]:
    """Name of a database on pg_server holding the deployed Ecliptix schema."""
    url = pg_server.create_database()
    deploy_ecliptix(url)
    name = urlsplit(url).path.lstrip("/")  # the embedded URL carries ?host=/path
    yield name
    pg_server.drop_database(url)


@pytest.fixture
def ecliptix_url(pg_server: PgServer, ecliptix_template: str) -> Iterator[str]:
    """URL of a fresh database with the Ecliptix schema, dropped after the test."""
    url = pg_server.create_database(template=ecliptix_template)
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def db(ecliptix_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to a fresh Ecliptix database."""
    with psycopg.connect(ecliptix_url, autocommit=True) as conn:
        yield conn
