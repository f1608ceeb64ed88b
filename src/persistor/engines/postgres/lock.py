"""The two ways one PostgreSQL migrator keeps the others out.

- session (default): a session-level advisory lock, taken with
  try-and-back-off outside any transaction. It never waits inside a
  transaction, so it cannot deadlock with CREATE INDEX CONCURRENTLY, and the
  server drops it when the session ends, so a killed migrator leaves nothing.
- table: a row in a lock table with a lease that a heartbeat thread renews.
  It works through PgBouncer in transaction pooling, where session state
  (advisory locks, SET) does not stay with the client. A killed migrator's
  lease runs out after `lease` seconds.

Both yield a `Fence`: the statement every COMMIT carries so that nothing
commits once the lock is no longer this migrator's, and how to say why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from persistor.engines.base import WaitCallback, wait_for_lock
from persistor.engines.postgres.catalog import ensure_schema, table_exists
from persistor.errors import LockLostError, SharedSessionError


@dataclass(frozen=True)
class Fence:
    """What a held lock gives every commit: a statement that fails unless the lock is still ours.

    `statement` goes just before each COMMIT (and alone before each statement
    of a no-transaction script). When this migrator no longer holds the lock
    it fails casting LOST_MARKER to an integer, an error no script's own
    statement or deferred trigger gives (`signals_loss` tells); `lost()` is
    then the error that says why. After a statement fails, `still_held()` asks (on another connection)
    whether the lock was lost meanwhile: then the failure most likely comes
    from another migrator having done the work, not from the script.
    """

    statement: str
    lost: Callable[[], LockLostError]
    still_held: Callable[[], bool]

    @staticmethod
    def signals_loss(exc: psycopg.Error) -> bool:
        """Return whether a failed query failed on the fence, not on anything else in it."""
        return isinstance(exc, psycopg.errors.InvalidTextRepresentation) and LOST_MARKER in (
            exc.diag.message_primary or ""
        )


LOST_MARKER = "persistor: the migration lock is no longer held"


def lock_key(schema: str, history_table: str) -> int:
    """Return the advisory lock key for one schema and history table (a signed int8)."""
    digest = hashlib.sha256(f"persistor:{schema}.{history_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def advisory_lock(
    conn: psycopg.Connection[Any], key: int, timeout: float, on_wait: WaitCallback
) -> Iterator[Fence]:
    """Hold a session advisory lock while inside; yields the fence of the session holding it.

    The lock belongs to one server session. A transaction pooler (or a reset
    connection) can run later transactions on another, which the lock does
    not cover: the fence makes such a commit fail instead of going through.
    """
    pid = _take_advisory(conn, key, timeout, on_wait)
    try:
        yield Fence(
            f"SELECT (CASE WHEN pg_backend_pid() = {pid:d} THEN '1' ELSE '{LOST_MARKER}' END)::int",
            partial(_session_moved, pid),
            lambda: True,  # only a move to another session loses it, and the fence sees that
        )
    finally:
        _release_advisory(conn, key, pid, on_wait)


def _take_advisory(
    conn: psycopg.Connection[Any], key: int, timeout: float, on_wait: WaitCallback
) -> int:
    """Wait for the advisory lock; return the pid of the server session that granted it.

    Advisory locks are re-entrant per server session, so a session that
    already holds ours before we asked is shared with another client: a
    transaction pooler hands one server connection to many clients, and the
    lock would keep none of them apart. That is refused, not waited for.
    """
    attempt = (
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE "
        f"{_key_match(key)} AND pid = pg_backend_pid()) "
        f"THEN NULL ELSE pg_try_advisory_lock({key:d}) END, pg_backend_pid()"
    ).encode()
    taken_on: list[int] = []

    def try_once() -> bool:
        row = conn.execute(attempt).fetchone()
        assert row is not None
        if row[0] is None:
            raise SharedSessionError(
                f"the server session this connection landed on (pid {row[1]}) already holds the "
                "migration lock, so another client shares it: persistor is connected through a "
                "transaction pooler (e.g. PgBouncer with pool_mode = transaction), where a session "
                "advisory lock cannot keep migrators apart. Use --lock-mode table "
                "(PERSISTOR_LOCK_MODE=table), or connect to PostgreSQL directly"
            )
        if row[0]:
            taken_on.append(row[1])
        return bool(row[0])

    def holder() -> str:
        return advisory_holder(conn, key) or "another session"

    wait_for_lock(try_once, holder, timeout, on_wait)
    return taken_on[0]


def _release_advisory(
    conn: psycopg.Connection[Any], key: int, pid: int, on_wait: WaitCallback
) -> None:
    if conn.closed:
        return  # the session is gone, and the lock went with it
    with contextlib.suppress(psycopg.Error):
        row = conn.execute(
            f"SELECT pg_advisory_unlock({key:d}), pg_backend_pid()".encode()
        ).fetchone()
        if row is not None and not row[0]:
            on_wait(
                f"warning: the migration lock, taken on server session pid {pid}, "
                f"was not held by this connection's session (pid {row[1]}) at the end: "
                "a transaction pooler (or a server connection reset) moved this migrator "
                "to another session, so the lock did not keep other migrators out, and "
                f"pid {pid} may hold it still. Use --lock-mode table behind a "
                "transaction pooler"
            )


def _session_moved(pid: int) -> LockLostError:
    return LockLostError(
        f"lost the migration lock: it is held by server session pid {pid}, but this "
        "transaction ran on another one, where the lock does not keep other migrators out: "
        "a transaction pooler (or a reset server connection) moved this migrator between "
        "server sessions. Nothing more was committed. Use --lock-mode table behind a "
        "transaction pooler, then run migrate again"
    )


def advisory_holder(conn: psycopg.Connection[Any], key: int) -> str | None:
    """Describe the session holding the advisory lock, or None if nobody holds it."""
    row = conn.execute(
        f"""
        SELECT a.pid, a.application_name, a.client_addr::text, a.usename,
               to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS')
          FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE {_key_match(key, "l.")}
        """.encode()
    ).fetchone()
    if row is None:
        return None
    pid, app, addr, user, start = row
    return (
        f"pid {pid} ({app or 'unknown application'}, user {user}, "
        f"from {addr or 'local socket'}, since {start})"
    )


def _key_match(key: int, alias: str = "") -> str:
    """Return the pg_locks condition for a granted session advisory lock on one bigint key.

    Advisory locks are per database: the same key taken by a migrator of
    another database on this server is another lock, and pg_locks lists it too.
    """
    # A bigint key shows as classid (high 32 bits), objid (low 32 bits), objsubid 1.
    return (
        f"{alias}locktype = 'advisory' AND {alias}granted "
        f"AND {alias}database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND {alias}classid = {(key >> 32) & 0xFFFFFFFF:d}::oid "
        f"AND {alias}objid = {key & 0xFFFFFFFF:d}::oid AND {alias}objsubid = 1"
    )


@contextmanager
def table_lock(
    conn: psycopg.Connection[Any],
    connect: Callable[[], psycopg.Connection[Any]],
    schema: str,
    table: str,
    timeout: float,
    on_wait: WaitCallback,
    lease: float,
) -> Iterator[Fence]:
    """Hold the lock row of a lock table while inside, renewing its lease.

    The fence reads the lock row FOR SHARE: it fails unless this migrator
    still owns the row, and holds the row until the commit, so nobody can
    take the lock over in between. A migrator stalled past its lease
    therefore commits nothing more once another has taken over.
    """
    name = sql.Identifier(schema, table)
    _create_lock_table(conn, schema, name)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _claim_lock_row(conn, schema, table, owner, lease, timeout, on_wait)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(connect, name, owner, lease, stop), daemon=True
    )
    beat.start()
    try:
        yield _row_fence(conn, connect, name, owner)
    finally:
        stop.set()
        beat.join(timeout=5)
        if not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE id = 1 AND owner = {}").format(
                        name, sql.Literal(owner)
                    )
                )


def _claim_lock_row(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    owner: str,
    lease: float,
    timeout: float,
    on_wait: WaitCallback,
) -> None:
    """Wait until the lock row is ours: absent, or its lease ran out."""
    claim = sql.SQL(
        "INSERT INTO {t} AS l (id, owner, acquired_at, expires_at) "
        "VALUES (1, {o}, now(), now() + {lease} * interval '1 second') "
        "ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, acquired_at = now(), "
        "expires_at = EXCLUDED.expires_at WHERE l.expires_at < now() RETURNING owner"
    ).format(t=sql.Identifier(schema, table), o=sql.Literal(owner), lease=sql.Literal(lease))

    def try_once() -> bool:
        return conn.execute(claim).fetchone() is not None

    def holder() -> str:
        return table_lock_holder(conn, schema, table) or "another migrator"

    wait_for_lock(try_once, holder, timeout, on_wait)


def _row_fence(
    conn: psycopg.Connection[Any],
    connect: Callable[[], psycopg.Connection[Any]],
    name: sql.Identifier,
    owner: str,
) -> Fence:
    fence = sql.SQL(
        "SELECT (CASE count(*) WHEN 1 THEN '1' ELSE {} END)::int "
        "FROM (SELECT 1 FROM {} WHERE id = 1 AND owner = {} FOR SHARE) AS held"
    ).format(sql.Literal(LOST_MARKER), name, sql.Literal(owner))
    check = sql.SQL("SELECT 1 FROM {} WHERE id = 1 AND owner = {}").format(name, sql.Literal(owner))

    def still_held() -> bool:
        # On its own connection: the main one may be inside a failed transaction.
        with connect() as other:
            return other.execute(check).fetchone() is not None

    return Fence(fence.as_string(conn), _lease_lost, still_held)


def _lease_lost() -> LockLostError:
    return LockLostError(
        "lost the migration lock: its lease ran out while this migrator was stalled "
        "and another migrator took over; nothing more was committed. Run migrate again"
    )


def table_lock_holder(conn: psycopg.Connection[Any], schema: str, table: str) -> str | None:
    """Describe the owner of an unexpired lease in the lock table, or None if there is none."""
    if not table_exists(conn, schema, table):
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT owner, to_char(acquired_at, 'YYYY-MM-DD HH24:MI:SS'), "
            "ceil(extract(epoch FROM expires_at - now())) FROM {} WHERE expires_at >= now()"
        ).format(sql.Identifier(schema, table))
    ).fetchone()
    if row is None:
        return None
    return f"{row[0]} (since {row[1]}, lease ends in {int(row[2] or 0)} s unless renewed)"


def _create_lock_table(conn: psycopg.Connection[Any], schema: str, name: sql.Identifier) -> None:
    # Several migrators may create it at once. IF NOT EXISTS is no guard
    # against a concurrent creation: the loser fails on the catalog's unique
    # indexes or finds the name just taken, and either way the object exists.
    ensure_schema(conn, schema)
    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY CHECK (id = 1), owner text NOT NULL, "
        "acquired_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)"
    ).format(name)
    with contextlib.suppress(
        psycopg.errors.UniqueViolation,
        psycopg.errors.DuplicateObject,
        psycopg.errors.DuplicateTable,
    ):
        conn.execute(create)


def _heartbeat(
    connect: Callable[[], psycopg.Connection[Any]],
    name: sql.Identifier,
    owner: str,
    lease: float,
    stop: threading.Event,
) -> None:
    renew = sql.SQL(
        "UPDATE {} SET expires_at = now() + {} * interval '1 second' WHERE id = 1 AND owner = {}"
    ).format(name, sql.Literal(lease), sql.Literal(owner))
    try:
        with connect() as conn:
            while not stop.wait(lease / 3):
                conn.execute(renew)
    except psycopg.Error:
        return  # the main connection will fail too, and say why
