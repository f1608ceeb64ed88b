"""Plumbing every command shares: the URL, the engine session, the scripts on disk."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from persistor.core import formats
from persistor.core.placeholders import SESSION_BUILTINS
from persistor.core.scripts import Discovery, ScriptFile, ScriptKind, Version, discover
from persistor.core.source import ExpandedScript, expand_script
from persistor.engines import Engine, open_engine
from persistor.errors import Problem, UsageError
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
        lock_timeout_ms=settings.lock_timeout_ms,
        statement_timeout_ms=settings.statement_timeout_ms,
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


class SessionPlaceholders(Mapping[str, str]):
    """Flyway's session built-ins (`${flyway:user}`, …), asked of the server only when used."""

    def __init__(self, session: Session | None) -> None:
        self._session = session
        self._values: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._values is None:
            if self._session is None:
                # Nothing runs from this text (status, repair): keep them as written.
                self._values = {n: "${" + n + "}" for n in SESSION_BUILTINS}
            else:
                info = self._session.engine.server_info()
                self._values = {
                    "flyway:defaultSchema": self._session.engine.schema,
                    "flyway:user": info.user,
                    "flyway:database": info.database,
                    "flyway:timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                }
        return self._values

    def __contains__(self, name: object) -> bool:
        return name in SESSION_BUILTINS

    def __getitem__(self, name: str) -> str:
        if name not in SESSION_BUILTINS:
            raise KeyError(name)
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(SESSION_BUILTINS)

    def __len__(self) -> int:
        return len(SESSION_BUILTINS)


def expand_file(
    settings: Settings,
    f: ScriptFile,
    builtins: Mapping[str, str] | None = None,
    roots: list[Path] | None = None,
) -> ExpandedScript:
    """Expand one script file (its dbmate section, when it has one) with the placeholders."""
    if roots is None:
        roots = [p.resolve() for p in settings.locations]
    return expand_script(
        f.path,
        f.name,
        roots,
        settings.placeholders,
        section=f.section,
        session=builtins if builtins is not None else SessionPlaceholders(None),
        repeatable=f.kind is ScriptKind.REPEATABLE,
    )


def load_scripts(
    settings: Settings, session: Session | None = None
) -> tuple[Discovery, dict[str, ExpandedScript]]:
    """Find the scripts in the configured locations and expand each (includes, placeholders).

    With a session, Flyway's session built-ins get their values, asked of the
    server only if a script uses one; without, they stay as written (only a
    repeatable's checksum depends on them).
    """
    roots = [p.resolve() for p in settings.locations]
    discovery = discover(roots)
    builtins = SessionPlaceholders(session)
    sources: dict[str, ExpandedScript] = {}
    for f in (*discovery.versioned, *discovery.repeatable, *discovery.baselines):
        if f.is_python:  # no includes or placeholders: the file as it is
            from persistor.core.python_migrations import python_source

            sources[f.name] = python_source(f.path)
            continue
        sources[f.name] = expand_file(settings, f, builtins, roots)
    for f in discovery.callbacks:
        sources[f.name] = expand_file(settings, f, builtins, roots)
    log.debug(
        "found %d versioned and %d repeatable script(s) in %s",
        len(discovery.versioned),
        len(discovery.repeatable),
        ", ".join(str(r) for r in roots),
    )
    return discovery, sources


def unused_files(discovery: Discovery, sources: Mapping[str, ExpandedScript]) -> list[Problem]:
    """Return a warning for each .sql file in the locations that persistor never runs."""
    if not discovery.others:
        return []
    included = {origin[0] for src in sources.values() for origin in src.origins}
    return formats.unused_files(discovery.others, included)


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
