"""Offline syntax check of PostgreSQL scripts with the real PostgreSQL parser (libpg_query)."""

from __future__ import annotations


def syntax_problems(text: str) -> list[tuple[int, str]]:
    """Return (character offset, message) for each syntax error the parser finds."""
    from pglast import parser  # imported lazily: only `validate` needs it

    try:
        # The JSON form skips building Python AST nodes we would throw away.
        parser.parse_sql_json(text)
    except parser.ParseError as exc:
        # pglast gives (message, character index) in args.
        message = str(exc.args[0]) if exc.args else str(exc)
        offset = int(exc.args[1]) if len(exc.args) > 1 else 0
        return [(offset, message)]
    return []
