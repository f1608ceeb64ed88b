"""Database engines behind one interface, chosen by URL scheme."""

from __future__ import annotations

from persistor.engines.base import Engine
from persistor.errors import UsageError
from persistor.urls import POSTGRES_SCHEMES, mask_url, scheme_of, sqlite_path


def open_engine(
    url: str,
    schema: str | None,
    history_table: str,
    *,
    connect_timeout: int,
    lock_mode: str,
    lock_lease: float,
    create: bool = True,
    lock_timeout_ms: int = 0,
    statement_timeout_ms: int = 0,
) -> Engine:
    """Connect to the database a URL names, with the engine for its scheme.

    The settings come validated from `persistor.settings` (defaults live there).

    lock_timeout_ms / statement_timeout_ms bound each migration statement's
    waits on PostgreSQL (0: not set); SQLite has no such waits inside its lock.

    create=False: a database that does not exist yet is not made (only SQLite
    would make one just by opening it); the engine reads as empty instead.
    """
    scheme = scheme_of(url)
    if scheme in POSTGRES_SCHEMES:
        from persistor.engines.postgres import PostgresEngine

        return PostgresEngine(
            url,
            schema,
            history_table,
            connect_timeout=connect_timeout,
            lock_mode=lock_mode,
            lock_lease=lock_lease,
            lock_timeout_ms=lock_timeout_ms,
            statement_timeout_ms=statement_timeout_ms,
        )
    if scheme == "sqlite":
        from persistor.engines.sqlite import SqliteEngine

        try:
            path = sqlite_path(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return SqliteEngine(path, schema, history_table, create)
    shown = mask_url(url)
    raise UsageError(
        f"unsupported database URL {shown!r}: the scheme must be postgresql://, postgres:// "
        "or sqlite:/// (have you set --url or PERSISTOR_URL?)"
    )


__all__ = ["Engine", "open_engine"]
