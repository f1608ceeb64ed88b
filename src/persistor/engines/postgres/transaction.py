"""A PostgreSQL transaction in as few round trips as it takes.

A script's transaction costs two round trips, however it is written:

1. BEGIN, SET LOCAL lock_timeout / statement_timeout / search_path and the
   first statement, in one query (the other statements one query each);
2. the history writes, the lock's fence and COMMIT, in one query.

So opening a transaction only queues BEGIN in the connection's `Outbox`, and
history writes wait in the transaction until `commit()`. The outbox is one
per connection because a savepoint's queued SAVEPOINT travels behind its
outer transaction's queued BEGIN (--single-transaction).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import psycopg
from psycopg import sql

from persistor.engines.base import NewHistoryRow, Transaction
from persistor.engines.postgres.blockers import BlockerWatch
from persistor.engines.postgres.errors import first_line, statement_failed
from persistor.engines.postgres.history import HistoryTable, HistoryWrite
from persistor.engines.postgres.lock import Fence
from persistor.errors import ConnectError


class Outbox:
    """Statements queued on one connection to travel ahead of its next query."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        search_path: Callable[[], sql.Composable],
        limits: Sequence[str] = (),
        watch: BlockerWatch | None = None,
    ) -> None:
        self.conn = conn
        self._search_path = search_path
        self._path: sql.Composable | None = None
        self.queued: list[str] = []
        self.sends = 0  # queries sent: a queued statement is on the server once this grows
        self.commits = 0  # transactions committed, and statements run outside one
        self.limits = tuple(limits)  # SET LOCAL lock_timeout/statement_timeout, after each BEGIN
        self.watch = watch  # who blocks a statement that waits, caught while it waits
        self.pid = conn.info.backend_pid

    def search_path(self) -> sql.Composable:
        """Return the path each script starts from (search_path.py), asked once, when needed."""
        if self._path is None:
            self._path = self._search_path()
        return self._path

    def send(self, *statements: str) -> None:
        """Send the queued statements, then these, in one query (one round trip)."""
        query = ";\n".join([*self.queued, *statements]).encode("utf-8")
        self.queued.clear()
        self.sends += 1
        watch = self.watch
        if watch is None:
            self.conn.execute(query, prepare=False)
            return
        watch.begin(self.pid)
        try:
            self.conn.execute(query, prepare=False)
        finally:
            watch.end()

    def run(self, statement: str, fence: Fence | None) -> None:
        """Send a migration's statement behind what is queued; raise StatementFailed.

        The error's position counts from the statement itself. While a lock
        is held and it was lost meanwhile, the loss is the error instead.
        """
        offset = sum(len(s) + 2 for s in self.queued)  # each queued one ends with ";\n"
        try:
            self.send(statement)
        except psycopg.Error as exc:
            if self.conn.broken:  # the server went away: not the script's fault
                raise lost_connection(exc) from None
            if fence is not None and not fence.still_held():
                raise fence.lost() from None
            raise statement_failed(exc, offset) from None


def lost_connection(exc: BaseException) -> ConnectError:
    """Return the error for a connection lost mid-run (server crash, failover): exit 3.

    The scripts of this run commit without waiting for their WAL (see
    engine._one_flush_at_end), so after a failover the new primary may lack
    some of them: claim nothing, and let the next run apply what is missing.
    """
    return ConnectError(
        f"lost the connection to the database: {first_line(str(exc))}. The outcome is unknown, "
        "run again: `persistor migrate` applies only what the database (after a failover, the "
        "new primary) does not hold yet; `persistor status` shows where it stands"
    )


def timeout_settings(
    lock_timeout_ms: int, statement_timeout_ms: int, scope: Literal["LOCAL", "SESSION"]
) -> list[str]:
    """Return the SETs that bound a migration statement's waits; 0 leaves a setting alone."""
    sets = []
    if lock_timeout_ms:
        sets.append(f"SET {scope} lock_timeout = {int(lock_timeout_ms):d}")
    if statement_timeout_ms:
        sets.append(f"SET {scope} statement_timeout = {int(statement_timeout_ms):d}")
    return sets


def set_search_path(path: sql.Composable, scope: Literal["LOCAL", "SESSION"]) -> sql.Composed:
    """Return the SET that starts a script from the session's own path (search_path.py)."""
    return sql.SQL("SET {} search_path TO {}").format(sql.SQL(scope), path)


class PgTransaction(Transaction):
    """A transaction (depth 0) or savepoint (deeper) whose BEGIN and writes are batched."""

    def __init__(
        self, outbox: Outbox, history: HistoryTable, depth: int, fence: Fence | None
    ) -> None:
        self._outbox = outbox
        self._history = history
        self._depth = depth
        self._fence = fence  # carried by a real COMMIT only, but asked after any failure
        self._savepoint = f"persistor_{depth}"
        self._writes: list[HistoryWrite] = []  # sent with COMMIT
        self.finished = False
        # Not sent yet: it goes with the first statement, or with COMMIT.
        self._mark, self._sends = len(outbox.queued), outbox.sends
        if depth == 0:
            outbox.queued.extend(("BEGIN", *outbox.limits))  # a savepoint inherits them
        else:
            outbox.queued.append(f"SAVEPOINT {self._savepoint}")

    def reset_search_path(self) -> None:
        setting = set_search_path(self._outbox.search_path(), "LOCAL")
        self._outbox.queued.append(setting.as_string(self._outbox.conn))

    def execute(self, statement: str) -> None:
        self._outbox.run(statement, self._fence)

    def connection(self) -> psycopg.Connection[Any]:
        """Send the queued BEGIN (and SET LOCAL) first, so what the caller runs is inside."""
        if self._outbox.queued:
            try:
                self._outbox.send()
            except psycopg.Error as exc:
                raise statement_failed(exc) from None
        return self._outbox.conn

    def insert_history(self, row: NewHistoryRow) -> None:
        self._writes.append(self._history.insert(row))

    def delete_history(self, ranks: Sequence[int]) -> None:
        self._writes.append(self._history.delete(ranks))

    def update_checksum(self, rank: int, checksum: str) -> None:
        self._writes.append(self._history.update_checksum(rank, checksum))

    def commit(self) -> None:
        """Send what is queued, the history writes, the fence and COMMIT in one round trip."""
        if self._depth:
            tail = [f"RELEASE SAVEPOINT {self._savepoint}"]
        else:
            tail = [self._fence.statement, "COMMIT"] if self._fence else ["COMMIT"]
        self.finished = True
        try:
            self._outbox.send(*(w.sql for w in self._writes), *tail)
        except psycopg.Error as exc:
            self.rollback()
            raise self._refused(exc) from None
        if self._depth == 0:
            self._outbox.commits += 1

    def _refused(self, exc: psycopg.Error) -> Exception:
        """Return the error to raise for a COMMIT (or RELEASE) the server refused."""
        if self._depth == 0 and self._outbox.conn.broken:
            # The COMMIT may or may not have happened: say so, claim nothing.
            return ConnectError(
                f"lost the connection while committing: {first_line(str(exc))}. Whether "
                "the last script was committed is unknown: run `persistor status` to see, "
                "then `persistor migrate` again"
            )
        if self._depth == 0 and self._fence and self._fence.signals_loss(exc):
            return self._fence.lost()
        denied = self._history.write_denied(exc, self._writes)
        # Otherwise what only COMMIT checks, e.g. a deferred constraint.
        return denied or statement_failed(exc)

    def rollback(self) -> None:
        """Undo what reached the server, drop what is still queued."""
        self.finished = True
        if self._outbox.sends == self._sends:  # BEGIN is still queued: nothing was sent
            del self._outbox.queued[self._mark :]
            return
        if self._outbox.conn.closed:
            return
        with contextlib.suppress(psycopg.Error):
            if self._depth == 0:
                self._outbox.conn.execute(b"ROLLBACK")
            else:
                self._outbox.conn.execute(
                    f"ROLLBACK TO SAVEPOINT {self._savepoint}; "
                    f"RELEASE SAVEPOINT {self._savepoint}".encode()
                )
