"""Plumbing every command shares: the URL, the engine session, the scripts on disk."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from persistor.core.scripts import Discovery, Version, discover
from persistor.core.source import ExpandedScript, expand_script
from persistor.engines import Engine, open_engine
from persistor.errors import UsageError
from persistor.results import DatabaseInfo, Event
from persistor.settings import Settings
from persistor.urls import mask_url

EventCallback = Callable[[Event], None]

log = logging.getLogger(__name__)


def _ignore(event: Event) -> None:
    return None


def _logging_events(on_event: EventCallback) -> EventCallback:
    """Return on_event that also logs each script's start and end (shown with -v)."""
    started = time.monotonic()

    def forward(event: Event) -> None:
        nonlocal started
        if event.kind == "start":
            started = time.monotonic()
            log.info("applying %s (%d of %d)", event.message, event.done + 1, event.total)
        elif event.kind == "applied":
            ms = (time.monotonic() - started) * 1000
            log.info("applied %s in %.0f ms (%d of %d)", event.message, ms, event.done, event.total)
        on_event(event)

    return forward


@dataclass
class Session:
    """An open engine with what the commands report about it."""

    settings: Settings
    engine: Engine
    database: DatabaseInfo
    on_event: EventCallback

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the migration lock, reporting any wait through on_event."""
        asked = time.monotonic()
        with self.engine.lock(
            self.settings.lock_timeout, lambda msg: self.on_event(Event("wait", msg))
        ):
            log.info(
                "took the migration lock on %s.%s after %.1f s",
                self.database.schema,
                self.database.history_table,
                time.monotonic() - asked,
            )
            try:
                yield
            finally:
                log.info("releasing the migration lock")


def resolve_url(settings: Settings) -> tuple[str, str | None]:
    """Return the database URL, starting the embedded server when none is configured."""
    if settings.url is not None:
        return settings.url, None
    from persistor.engines.embedded import default_data_dir, start_embedded

    data_dir = settings.embedded_dir or default_data_dir()
    log.info("no URL configured: using the embedded PostgreSQL in %s", data_dir)
    server = start_embedded(data_dir)
    return server.url, str(server.data_dir)


@contextmanager
def open_session(
    settings: Settings, on_event: EventCallback | None, *, create: bool = False
) -> Iterator[Session]:
    """Open the configured database; create=True for the commands that may start a new one."""
    url, embedded_dir = resolve_url(settings)
    log.info("connecting to %s", mask_url(url))
    engine = open_engine(
        url,
        settings.schema,
        settings.history_table,
        connect_timeout=settings.connect_timeout,
        lock_mode=settings.lock_mode,
        lock_lease=settings.lock_lease,
        create=create,
    )
    try:
        info = DatabaseInfo(
            engine=engine.name,
            url=mask_url(url),
            schema=engine.schema,
            history_table=settings.history_table,
            embedded_data_dir=embedded_dir,
            exists=engine.exists,
        )
        log.info(
            "connected: %s, schema %s, history table %s%s",
            engine.name,
            engine.schema,
            settings.history_table,
            "" if engine.exists else " (the database file does not exist yet)",
        )
        yield Session(settings, engine, info, _logging_events(on_event or _ignore))
    except Exception as exc:
        # A driver error from losing the server (crash, failover) at any step
        # (lock, history, statement) is exit 3 with "run again", not a bug.
        lost = engine.connection_lost(exc)
        if lost is None:
            raise
        raise lost from None
    finally:
        engine.close()
        log.debug("closed the connection")


def load_scripts(settings: Settings) -> tuple[Discovery, dict[str, ExpandedScript]]:
    """Find the scripts in the configured locations and expand each (includes, placeholders)."""
    roots = [p.resolve() for p in settings.locations]
    discovery = discover(roots)
    sources: dict[str, ExpandedScript] = {}
    for f in (*discovery.versioned, *discovery.repeatable):
        sources[f.name] = expand_script(f.path, f.name, roots, settings.placeholders)
    log.debug(
        "found %d versioned and %d repeatable script(s) in %s",
        len(discovery.versioned),
        len(discovery.repeatable),
        ", ".join(str(r) for r in roots),
    )
    return discovery, sources


def parse_target(target: str | None) -> Version | None:
    """Return the --target version, or None for the latest."""
    if target is None or target in ("latest", ""):
        return None
    try:
        return Version.parse(target)
    except ValueError:
        raise UsageError(
            f"--target {target!r} is not a version; give digits separated by '.' or '_', e.g. 1.2"
        ) from None
