"""Client sessions for the stress and attack runners: count every call, run them in threads.

Each session has its own psycopg connection and ``EcliptixClient``; its calls
go through ``Session.call``, which counts the outcome (or the SQLSTATE of an
error) in the session's own tally, merged only at the end, so the hot path
takes no lock.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from ecliptix.client import EcliptixClient
from ecliptix.otp import OtpKeyring

T = TypeVar("T")
S = TypeVar("S", bound="Session")

CONNECT_TIMEOUT = 10
_START_TIMEOUT = 60


class Tally:
    """Counts of one session: calls by (function, outcome), errors, and named events."""

    def __init__(self) -> None:
        """Start with nothing counted."""
        self.calls: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[str] = Counter()
        self.events: Counter[str] = Counter()


def merge(tallies: Sequence[Tally]) -> Tally:
    """Return one tally holding the sum of tallies."""
    total = Tally()
    for tally in tallies:
        total.calls.update(tally.calls)
        total.errors.update(tally.errors)
        total.events.update(tally.events)
    return total


def calls_by_function(tally: Tally) -> dict[str, dict[str, int]]:
    """Return function -> outcome -> count."""
    by_function: dict[str, dict[str, int]] = {}
    for (fn, outcome), count in sorted(tally.calls.items()):
        by_function.setdefault(fn, {})[outcome] = count
    return by_function


class Session:
    """One client session: a connection, a client, a random source and the calls it counts."""

    def __init__(
        self, url: str, schema: str | None, keyring: OtpKeyring, rng: random.Random
    ) -> None:
        """Connect to url as the application would (autocommit)."""
        self.url = url
        self.schema = schema
        self.keyring = keyring
        self.rng = rng
        self.tally = Tally()
        self.conn = self._connect()
        self.client = EcliptixClient(self.conn, schema=schema, otp_keys=keyring)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def call(self, fn: str, thunk: Callable[[], T], outcome: Callable[[T], object]) -> T | None:
        """Run one client call, count its outcome (or its SQLSTATE) and return its result."""
        try:
            result = thunk()
        except ValueError as exc:  # a client-side refusal: count it, with its reason
            self.tally.errors[f"{fn}: ValueError: {exc}"] += 1
            return None
        except psycopg.Error as exc:
            self.tally.errors[f"{fn}: {exc.sqlstate or type(exc).__name__}"] += 1
            if self.conn.closed or self.conn.broken:
                self.conn = self._connect()
                self.client = EcliptixClient(self.conn, schema=self.schema, otp_keys=self.keyring)
            return None
        self.tally.calls[(fn, str(outcome(result)))] += 1
        return result


def open_sessions(count: int, make: Callable[[int], S]) -> list[S]:
    """Return count sessions made by make(i), closing the ones made if one fails."""
    sessions: list[S] = []
    try:
        for i in range(count):
            sessions.append(make(i))
    except BaseException:
        for session in sessions:
            session.close()
        raise
    return sessions


def run_sessions(
    sessions: Sequence[S], work: Callable[[S, threading.Event], None], duration: float
) -> float:
    """Run work(session, stop) in one thread per session for duration seconds; return elapsed.

    Every session is closed afterwards; the first exception a thread raised is re-raised."""
    barrier = threading.Barrier(len(sessions) + 1)
    stop = threading.Event()
    crashes: list[BaseException] = []

    def run(session: S) -> None:
        try:
            barrier.wait(timeout=_START_TIMEOUT)
            work(session, stop)
        except BaseException as exc:  # reported through crashes; never lost in a thread
            crashes.append(exc)
            barrier.abort()
        finally:
            session.close()

    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=_START_TIMEOUT)
    except threading.BrokenBarrierError:
        stop.set()
    started = time.monotonic()
    stop.wait(duration)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - started
    if crashes:
        raise crashes[0]
    return elapsed
