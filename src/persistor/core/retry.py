"""Trying again what gave up waiting for a lock, instead of queueing behind it.

An ALTER TABLE waiting for a lock blocks every query that arrives after it.
So each migration statement runs with a short lock timeout (the engine sets
it), and what gives up is tried again after a pause: a transactional script
whole (nothing of it was kept), a no-transaction script's failed statement
alone. The pause grows exponentially with full jitter (a random share of the
capped exponential), so two migrators, or a migrator and a retrying
application, do not keep colliding. Whether a failure is a lock timeout, and
who blocked it, is the engine's to say.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from persistor.engines.base import Blocker, Engine
from persistor.errors import MigrationError
from persistor.results import Event

T = TypeVar("T")

FIRST_DELAY = 0.5  # seconds: the cap of the first pause, doubled for each retry after it


class LockRetry(NamedTuple):
    """How often, and how long at most between tries, a lock timeout is retried."""

    retries: int
    max_delay: float  # seconds
    on_event: Callable[[Event], None]
    sleep: Callable[[float], None] = time.sleep


def pause(attempt: int, max_delay: float, draw: Callable[[float, float], float]) -> float:
    """Return the pause before retry number `attempt` (1-based): full jitter, capped."""
    ceiling = min(max_delay, FIRST_DELAY * 2 ** min(attempt - 1, 30))
    return draw(0.0, ceiling)


def with_lock_retries(engine: Engine, retry: LockRetry, attempt: Callable[[], T], kept: str) -> T:
    """Return attempt(), run again after each lock timeout, up to retry.retries times.

    `attempt` must leave nothing behind when it fails (a rolled-back
    transaction, one failed statement). When the retries are spent, the
    MigrationError (exit 4) names the session that blocked the last try,
    and `kept` says what of the script stays applied.
    """
    import random  # only on a first lock timeout: most runs never get here

    started = time.monotonic()
    tried = 0
    while True:
        try:
            return attempt()
        except MigrationError as exc:
            if not engine.is_lock_timeout(exc.sqlstate):
                raise
            blocker = engine.last_blocker()
            if tried >= retry.retries:
                raise _spent(exc, blocker, tried, time.monotonic() - started, kept) from None
            tried += 1
            delay = pause(tried, retry.max_delay, random.uniform)
            retry.on_event(
                Event(
                    "retry",
                    _retrying(exc, blocker, tried, retry.retries, delay),
                    tried,
                    retry.retries,
                )
            )
            retry.sleep(delay)


def _where(exc: MigrationError) -> str:
    return str(exc.location) if exc.location else exc.script


def _blocked_by(blocker: Blocker | None) -> str:
    if blocker is None:
        # Gone before the watcher asked, or the pid was a pooler's (PgBouncer).
        return "by a session persistor could not identify (it let go before it was asked)"
    return f"by {blocker}"


def _retrying(
    exc: MigrationError, blocker: Blocker | None, tried: int, retries: int, delay: float
) -> str:
    return (
        f"{_where(exc)}: gave up waiting for a lock, blocked {_blocked_by(blocker)}; "
        f"retry {tried} of {retries} in {delay:.1f} s"
    )


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def _spent(
    exc: MigrationError, blocker: Blocker | None, tried: int, elapsed: float, kept: str
) -> MigrationError:
    message = (
        f"{exc.script} failed at {_where(exc)}: it could not get a lock "
        f"({exc.server_message or 'lock not available'}, SQLSTATE {exc.sqlstate}), "
        f"{_tries(tried + 1)} over {elapsed:.0f} s; the last one was blocked {_blocked_by(blocker)}."
        f"\n{kept}. End that session's transaction or wait for it, or raise lock_retries "
        "or lock_retry_max_delay_s, then run migrate again."
    )
    return MigrationError(
        message,
        script=exc.script,
        location=exc.location,
        sqlstate=exc.sqlstate,
        server_message=exc.server_message,
    )
