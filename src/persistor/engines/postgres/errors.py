"""What psycopg's errors say, in the form persistor reports them."""

from __future__ import annotations

import psycopg

from persistor.engines.base import StatementFailed


def statement_failed(exc: psycopg.Error, offset: int = 0) -> StatementFailed:
    """Return what the server said about a failed query; offset: length of a prefix sent first."""
    diag = exc.diag
    position = int(diag.statement_position) if diag.statement_position else None
    if position is not None:
        position = position - offset if position > offset else None
    extra = [x for x in (diag.message_detail, diag.message_hint, diag.context) if x]
    return StatementFailed(server_message(exc), exc.sqlstate, position, "\n".join(extra) or None)


def server_message(exc: psycopg.Error) -> str:
    """Return the server's primary message, or the first line of the error without one."""
    return exc.diag.message_primary or first_line(str(exc))


def first_line(text: str) -> str:
    """Return the first non-blank line of an error text."""
    return text.strip().splitlines()[0] if text.strip() else text
