"""Plumbing every command shares: the URL, the engine session, the scripts on disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from persistor.core.scripts import Discovery, Version, discover
from persistor.core.source import ExpandedScript, expand_script
from persistor.engines import Engine, open_engine
from persistor.errors import UsageError
from persistor.results import DatabaseInfo, Event
from persistor.settings import Settings
from persistor.urls import mask_url

EventCallback = Callable[[Event], None]


def _ignore(event: Event) -> None:
    return None


@dataclass
class Session:
    """An open engine with what the commands report about it."""

    settings: Settings
    engine: Engine
    database: DatabaseInfo
    on_event: EventCallback

    def locked(self) -> AbstractContextManager[None]:
        """Hold the migration lock, reporting any wait through on_event."""
        return self.engine.lock(
            self.settings.lock_timeout, lambda msg: self.on_event(Event("wait", msg))
        )


def resolve_url(settings: Settings) -> tuple[str, str | None]:
    """Return the database URL, starting the embedded server when none is configured."""
    if settings.url is not None:
        return settings.url, None
    from persistor.engines.embedded import default_data_dir, start_embedded

    server = start_embedded(settings.embedded_dir or default_data_dir())
    return server.url, str(server.data_dir)


@contextmanager
def open_session(
    settings: Settings, on_event: EventCallback | None, *, create: bool = False
) -> Iterator[Session]:
    """Open the configured database; create=True for the commands that may start a new one."""
    url, embedded_dir = resolve_url(settings)
    engine = open_engine(
        url,
        settings.schema,
        settings.history_table,
        settings.connect_timeout,
        settings.lock_mode,
        settings.lock_lease,
        create,
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
        yield Session(settings, engine, info, on_event or _ignore)
    finally:
        engine.close()


def load_scripts(settings: Settings) -> tuple[Discovery, dict[str, ExpandedScript]]:
    roots = [p.resolve() for p in settings.locations]
    discovery = discover(roots)
    sources: dict[str, ExpandedScript] = {}
    for f in (*discovery.versioned, *discovery.repeatable):
        sources[f.name] = expand_script(f.path, f.name, roots, settings.placeholders)
    return discovery, sources


def parse_target(target: str | None) -> Version | None:
    if target is None or target in ("latest", ""):
        return None
    try:
        return Version.parse(target)
    except ValueError:
        raise UsageError(
            f"--target {target!r} is not a version; give digits separated by '.' or '_', e.g. 1.2"
        ) from None
