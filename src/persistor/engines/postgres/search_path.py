"""The search path scripts run with: the one a new session of this database and role gets.

`ALTER DATABASE … SET search_path` and `ALTER ROLE … SET search_path` (and a
URL's `options=-csearch_path=…`) decide where a new psql session looks for
and creates objects; scripts written for that database rely on it. persistor
reads that path once, when the first script starts, and only changes two things:
with --schema S, S goes first (the rest kept, S not repeated), and pg_temp
goes last, so a temporary object can never stand in for a real one.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

# One element of a search_path value: a double-quoted name ("" inside is a
# quote) or anything up to the next comma.
_ELEMENT_RE = re.compile(r'\s*("(?:[^"]|"")*"|[^,]*?)\s*(?:,|$)')


def for_scripts(conn: psycopg.Connection[Any], schema: str | None) -> sql.Composable:
    """Return the path scripts start from on this connection (compose of its session default)."""
    return compose(session_default(conn), schema)


def session_default(conn: psycopg.Connection[Any]) -> str:
    """Return the search_path the session started with.

    reset_val is what RESET would restore: the server's default with the
    database's, the role's and the connection's own settings applied, whatever
    SET ran since, so it may be asked at any time.
    """
    row = conn.execute(b"SELECT reset_val FROM pg_settings WHERE name = 'search_path'").fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def elements(value: str) -> list[str]:
    """Split a search_path value into its elements, as written (quotes kept)."""
    found = []
    for m in _ELEMENT_RE.finditer(value):
        text = m.group(1)
        if text:
            found.append(text)
        if m.end() >= len(value):
            break
    return found


def name_of(element: str) -> str:
    """Return the schema name an element stands for: unquoted names fold to lower case."""
    if len(element) >= 2 and element.startswith('"') and element.endswith('"'):
        return element[1:-1].replace('""', '"')
    return element.lower()


def compose(default: str, schema: str | None) -> sql.Composable:
    """Return the search_path list for SET: the default, schema first if given, pg_temp last."""
    kept: list[sql.Composable] = [
        sql.SQL(e)  # already a valid element of the server's own setting
        for e in elements(default)
        if name_of(e) not in ("", "pg_temp", schema) and not name_of(e).startswith("pg_temp_")
    ]
    if schema is not None:
        kept.insert(0, sql.Identifier(schema))
    return sql.SQL(", ").join([*kept, sql.SQL("pg_temp")])
