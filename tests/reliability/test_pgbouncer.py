"""Through a real PgBouncer in transaction pooling, in front of 127.0.0.1:5432."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from reliability.scripts import MigrationSet

from reliability import harness as h
from reliability import pgbouncer as pb
from tests.conftest import SERVICE_URL_ENV

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def bouncer(rel_admin: str) -> Iterator[pb.PgBouncer]:
    if not os.environ.get(SERVICE_URL_ENV):
        pytest.skip(f"PgBouncer tests need the TCP service at {SERVICE_URL_ENV}")
    if urlsplit(rel_admin).hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("PgBouncer tests only run against a server on 127.0.0.1")
    binary, how = pb.ensure_installed()
    if binary is None:
        pytest.skip(f"pgbouncer unavailable: {how}")
    b = pb.start(binary, rel_admin, pool_mode="transaction", pool_size=5)
    yield b
    b.stop()


def test_table_lock_mode_applies_every_script_once_through_pgbouncer(
    rel_admin: str, small_set: MigrationSet, bouncer: pb.PgBouncer
) -> None:
    if not h.lock_mode_supported():
        pytest.xfail("persistor has no --lock-mode yet (the lock for transaction poolers)")
    r = h.concurrent_round(
        rel_admin,
        small_set,
        via_url=bouncer.url_for,
        lock_mode="table",
        lock_timeout=60,
        timeout=90,
    )
    assert r.codes == [0] * 10, r.errors
    assert (r.duplicates, r.missing) == (0, 0)
    assert r.violations == []
    assert r.lock_rows_left == 0


@pytest.mark.slow
def test_session_lock_through_pgbouncer_fails_but_keeps_scripts_atomic(
    rel_admin: str, small_set: MigrationSet, bouncer: pb.PgBouncer
) -> None:
    # The documented figure: the default session advisory lock does not work
    # behind transaction pooling (most migrators exit 4 or 6), yet no script is
    # half applied or applied twice, because each commits with its history row.
    r = h.concurrent_round(
        rel_admin, small_set, via_url=bouncer.url_for, lock_timeout=10, timeout=60
    )
    assert r.duplicates == 0
    assert [v for v in r.violations if "not complete" not in v] == []
