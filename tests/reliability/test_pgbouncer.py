"""Through a real PgBouncer in transaction pooling, in front of 127.0.0.1:5432."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from reliability.scripts import MigrationSet

from reliability import harness as h
from reliability import pgbouncer as pb
from tests.conftest import SERVICE_URL_ENV

pytestmark = pytest.mark.postgres


def _bouncer(rel_admin: str, pool_size: int, **settings: str) -> Iterator[pb.PgBouncer]:
    if not os.environ.get(SERVICE_URL_ENV):
        pytest.skip(f"PgBouncer tests need the TCP service at {SERVICE_URL_ENV}")
    if urlsplit(rel_admin).hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("PgBouncer tests only run against a server on 127.0.0.1")
    binary, how = pb.ensure_installed()
    if binary is None:
        pytest.skip(f"pgbouncer unavailable: {how}")
    b = pb.start(binary, rel_admin, pool_mode="transaction", pool_size=pool_size, extra=settings)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def bouncer(rel_admin: str) -> Iterator[pb.PgBouncer]:
    yield from _bouncer(rel_admin, pool_size=5)


@pytest.fixture(scope="module")
def one_server_bouncer(rel_admin: str) -> Iterator[pb.PgBouncer]:
    """PgBouncer with a single server connection, which every client shares."""
    yield from _bouncer(rel_admin, pool_size=1)


@pytest.fixture(scope="module")
def recycling_bouncer(rel_admin: str) -> Iterator[pb.PgBouncer]:
    """PgBouncer that closes a server connection once it is a second old and idle."""
    yield from _bouncer(rel_admin, pool_size=1, server_lifetime="1")


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


def test_session_lock_refuses_a_server_session_shared_through_a_pooler(
    rel_admin: str, one_server_bouncer: pb.PgBouncer, tmp_path: Path
) -> None:
    # The first migrator takes the advisory lock on the only server
    # connection; the second's try lands on that same session, where the
    # re-entrant lock would be granted again and both would migrate at once.
    # It must stop with advice instead, and the first must finish alone.
    for n in (1, 2, 3):
        (tmp_path / f"V{n}__slow.sql").write_text(
            f"CREATE TABLE t_{n} (id int);\nSELECT pg_sleep(1.5);\n"
        )
    url = h.create_database(rel_admin)
    try:
        via = one_server_bouncer.url_for(url)
        first = h.spawn("migrate", via, tmp_path)
        with psycopg.connect(url) as conn:
            deadline = time.monotonic() + 30
            held = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            while conn.execute(held).fetchone() != (1,):
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first migrator never took the lock"
                time.sleep(0.05)
        second = h.run("migrate", via, tmp_path, "--lock-timeout", "30")
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert second.code == 6, second.err
        assert "transaction pooler" in second.err and "--lock-mode table" in second.err
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT script, success FROM schema_history ORDER BY installed_rank"
            ).fetchall()
        assert rows == [(f"V{n}__slow.sql", True) for n in (1, 2, 3)]
    finally:
        h.drop_database(rel_admin, url)


def test_session_lock_moved_to_another_server_session_commits_nothing_more(
    rel_admin: str, recycling_bouncer: pb.PgBouncer, tmp_path: Path
) -> None:
    # The lock is taken on one server connection; PgBouncer retires it after
    # the 2 s script, so V2 runs on a new server session that the lock does
    # not cover (the old one's end released it: anyone could have taken it).
    # V2 must not commit, and the user must be told why and what to do.
    (tmp_path / "V1__slow.sql").write_text("CREATE TABLE a (id int);\nSELECT pg_sleep(2);\n")
    (tmp_path / "V2__quick.sql").write_text("CREATE TABLE b (id int);\n")
    url = h.create_database(rel_admin)
    try:
        r = h.run("migrate", recycling_bouncer.url_for(url), tmp_path)
        assert r.code == 6, r.err
        assert "moved this migrator between server sessions" in r.err
        assert "Nothing more was committed" in r.err and "--lock-mode table" in r.err
        assert "was not held by this connection's session" in r.err  # the unlock says so too
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT script FROM schema_history").fetchall()
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
        assert rows == [("V1__slow.sql",)]
        assert tables == [("a",), ("schema_history",)]
    finally:
        h.drop_database(rel_admin, url)
