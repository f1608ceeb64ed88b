"""Fixtures for the reliability tests: one PostgreSQL server, the harness's migrations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reliability.scripts import MigrationSet, write_migrations

from tests.conftest import SERVICE_URL_ENV, get_pg_server


@pytest.fixture(scope="session")
def rel_admin() -> str:
    """Admin URL of the server the reliability tests use: the service when
    PERSISTOR_TEST_URL is set (the PostgreSQL 15 the figures are for), else the
    embedded one. One server only: these tests spawn many processes."""
    label = "service" if os.environ.get(SERVICE_URL_ENV) else "embedded"
    return get_pg_server(label).admin_url


@pytest.fixture(scope="session")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> MigrationSet:
    """12 scripts (one bulk load, one no-transaction CIC): a full run takes ~1.5 s."""
    return write_migrations(
        Path(tmp_path_factory.mktemp("rel")) / "small", count=12, bulk=4, bulk_rows=150_000, cic=8
    )


@pytest.fixture(scope="session")
def full_set(tmp_path_factory: pytest.TempPathFactory) -> MigrationSet:
    """The harness's 30 scripts."""
    return write_migrations(Path(tmp_path_factory.mktemp("rel")) / "full")


@pytest.fixture(scope="session")
def cic_set(tmp_path_factory: pytest.TempPathFactory) -> MigrationSet:
    """A set whose CIC script first waits (up to 45 s) until nine migrators wait for the lock."""
    return write_migrations(
        Path(tmp_path_factory.mktemp("rel")) / "cic",
        count=10,
        bulk=4,
        bulk_rows=150_000,
        cic=8,
        cic_sleep=45,
        cic_waiters=9,
    )
