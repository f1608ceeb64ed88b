"""Catalog questions the PostgreSQL engine and its lock table both ask."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import sql


def table_exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Whether schema.table exists (names as stored, not case-folded)."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL", (schema, table)
    ).fetchone()
    return bool(row and row[0])


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create the schema unless it exists.

    Asked first because CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege
    on the database even when the schema is there, which a role that owns
    (or may create in) its schema often lacks.
    """
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if row is None:
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
