"""Catalog questions the PostgreSQL engine, its lock table and its journal reader ask.

They read pg_class and pg_namespace, which every role may read, so asking
never fails on a schema the role may not use (to_regclass would).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

_TABLE_OID = (
    "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %(schema)s AND c.relname = %(table)s)"
)


def table_exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Return whether schema.table exists (names as stored, not case-folded)."""
    row = conn.execute(
        f"SELECT {_TABLE_OID} IS NOT NULL", {"schema": schema, "table": table}
    ).fetchone()
    return bool(row and row[0])


def readable_table_exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Return whether schema.table exists and the role may use the schema and SELECT from it."""
    row = conn.execute(
        "SELECT coalesce(has_schema_privilege(%(schema)s, 'USAGE') "
        f"AND has_table_privilege({_TABLE_OID}, 'SELECT'), false) "
        "FROM pg_namespace WHERE nspname = %(schema)s",
        {"schema": schema, "table": table},
    ).fetchone()
    return bool(row and row[0])


def missing_table_privileges(
    conn: psycopg.Connection[Any], schema: str, table: str, privileges: Sequence[str]
) -> list[str]:
    """Return those of the privileges (INSERT, DELETE, …) the current role lacks on schema.table."""
    rows = conn.execute(
        "SELECT p FROM unnest(%(wanted)s::text[]) WITH ORDINALITY AS w(p, n) "
        f"WHERE NOT has_table_privilege({_TABLE_OID}, p) ORDER BY n",
        {"wanted": list(privileges), "schema": schema, "table": table},
    ).fetchall()
    return [str(r[0]) for r in rows]


def lacks_schema_usage(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Return whether the schema exists and the current role may not use it."""
    row = conn.execute(
        "SELECT NOT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = %s",
        (schema,),
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
