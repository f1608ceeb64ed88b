"""Who blocks a migration statement: asked while it waits, from a connection of its own.

Once a statement gives up on a lock (lock_timeout, SQLSTATE 55P03) it waits
no more, and `pg_blocking_pids` of its session is empty: the blocker must be
caught while the wait lasts. A watcher thread looks at the statement that is
running; once it has run for `interval`, it asks `pg_blocking_pids` about its
session every `interval` on a second connection, opened on first need, so a
run whose statements never wait costs one idle thread and no connection.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from persistor.engines.base import Blocker

QUERY_CHARS = 160  # the blocker's query is the application's text: a hint, not a dump

_ASK = b"""
SELECT a.pid, a.query, a.state, a.usename, a.application_name,
       extract(epoch FROM now() - a.xact_start)::int, count(*) OVER () - 1
  FROM unnest(pg_blocking_pids(%s)) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
 ORDER BY a.xact_start NULLS LAST
 LIMIT 1
"""


def watch_interval(lock_timeout_ms: int) -> float:
    """Return how often to look: a few times within one lock timeout, at most 4 times a second."""
    return min(max(lock_timeout_ms / 5000, 0.005), 0.25)


def shorten(query: str | None) -> str:
    """Return a query on one line, cut to QUERY_CHARS."""
    text = " ".join((query or "").split()) or "(none)"
    return text if len(text) <= QUERY_CHARS else text[: QUERY_CHARS - 1] + "…"


class BlockerWatch:
    """Remembers who blocked the running statement, asked from its own thread and connection."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], interval: float) -> None:
        self._connect = connect
        self._interval = interval
        self._running: tuple[int, float] | None = None  # (server pid, started) of the statement
        self._seen: Blocker | None = None  # for the statement running, or the last one
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, pid: int) -> None:
        """Say that a statement of server session `pid` starts now."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="persistor-blockers")
            self._thread.daemon = True
            self._thread.start()
        self._seen = None
        self._running = (pid, time.monotonic())

    def end(self) -> None:
        """Say that the statement is over (whether it ran or failed)."""
        self._running = None

    @property
    def seen(self) -> Blocker | None:
        """Return who blocked the last statement, if the watcher caught it waiting."""
        return self._seen

    def close(self) -> None:
        """Stop the watcher and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self._stop.wait(self._interval):
                running = self._running
                if running is None or time.monotonic() - running[1] < self._interval:
                    continue
                conn = conn or self._connect()
                found = _ask(conn, running[0])
                if found is not None and self._running is running:
                    self._seen = found
        except psycopg.Error:
            return  # a blocker nobody saw is reported as unknown; the migration goes on
        finally:
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()


def _ask(conn: psycopg.Connection[Any], pid: int) -> Blocker | None:
    row = conn.execute(_ASK, (pid,)).fetchone()
    if row is None:
        return None
    pid, query, state, user, app, seconds, others = row
    return Blocker(int(pid), shorten(query), state, user, app, seconds, int(others or 0))
