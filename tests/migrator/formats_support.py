"""Helpers for the format tests: what a PostgreSQL schema holds, and psql applying files."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import psycopg
import pytest

_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
_QUERIES = {
    "columns": (
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        f"WHERE {_SCHEMAS} AND c.relkind IN ('r', 'v', 'm') AND a.attnum > 0 "
        "AND NOT a.attisdropped AND c.relname <> 'schema_history' ORDER BY 1, 2"
    ),
    "indexes": (
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname NOT IN "
        "('pg_catalog', 'information_schema') AND tablename <> 'schema_history' ORDER BY 1"
    ),
    "functions": (
        "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
        f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_SCHEMAS} ORDER BY 1"
    ),
    "types": (
        "SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) "
        "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
        f"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {_SCHEMAS} GROUP BY 1 ORDER BY 1"
    ),
    "views": (
        "SELECT viewname, definition FROM pg_views WHERE schemaname NOT IN "
        "('pg_catalog', 'information_schema') ORDER BY 1"
    ),
}


def pg_schema(url: str, *data_tables: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return the user objects of a database (history table left out), and the named tables' rows."""
    with psycopg.connect(url) as conn:
        found = {k: [tuple(r) for r in conn.execute(q).fetchall()] for k, q in _QUERIES.items()}
        for table in data_tables:
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # our own names
            found[f"rows of {table}"] = [tuple(r) for r in rows]
    return found


def psql(url: str, text: str) -> None:
    """Apply SQL text with psql as a user would (stop at the first error, no psqlrc)."""
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql is not installed")
    done = subprocess.run(
        [exe, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def up_section(text: str) -> str:
    """Return a dbmate file's up section, cut at its markers as dbmate does."""
    return text.split("-- migrate:up", 1)[1].split("\n", 1)[1].split("-- migrate:down", 1)[0]
