"""Finding and reading other tools' history tables (engines/foreign.py) on PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from persistor.engines.foreign import (
    CANDIDATE_TABLES,
    TOOL_NAMES,
    ForeignHistory,
    ForeignRow,
    ForeignTable,
    classify,
)
from persistor.engines.postgres.errors import server_message
from persistor.errors import PrivilegeError

# One catalog query: every candidate table in the schema, with the type of
# its version column and whether it has golang-migrate's dirty column.
_FIND = """
SELECT c.relname,
       (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attname = 'version' AND NOT a.attisdropped),
       EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'dirty' AND NOT a.attisdropped)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)
 ORDER BY c.relname
"""


def find_foreign_tables(conn: psycopg.Connection[Any], schema: str) -> list[ForeignTable]:
    """Return the other tools' history tables in the schema."""
    found = []
    for table, version_type, has_dirty in conn.execute(_FIND, (schema, list(CANDIDATE_TABLES))):
        tool = classify(table, version_type, bool(has_dirty))
        if tool is not None:
            found.append(ForeignTable(tool, table))
    return found


def read_foreign_table(
    conn: psycopg.Connection[Any], schema: str, found: ForeignTable
) -> ForeignHistory:
    """Return the rows of one table find_foreign_tables returned; PrivilegeError if denied."""
    name = sql.Identifier(schema, found.table)
    try:
        return _read(conn, name, found)
    except psycopg.errors.InsufficientPrivilege as exc:
        shown, user = name.as_string(conn), conn.info.user
        raise PrivilegeError(
            f"role {user} may not read {shown}, {TOOL_NAMES[found.tool]}'s history: "
            f"{server_message(exc)}. Grant it (GRANT SELECT ON {shown} TO {user}, and USAGE "
            "on its schema), or run baseline as a role that has it"
        ) from None


def _read(
    conn: psycopg.Connection[Any], name: sql.Identifier, found: ForeignTable
) -> ForeignHistory:
    if found.tool == "flyway":
        return ForeignHistory(found.tool, found.table, _flyway_rows(conn, name))
    if found.tool == "dbup":
        return ForeignHistory(found.tool, found.table, _dbup_rows(conn, name))
    if found.tool == "dbmate":
        cur = conn.execute(sql.SQL("SELECT version::text FROM {}").format(name))
        return ForeignHistory(found.tool, found.table, tuple(_version_row(r[0]) for r in cur))
    cur = conn.execute(sql.SQL("SELECT version::text, dirty FROM {}").format(name))
    rows = cur.fetchall()
    return ForeignHistory(
        found.tool,
        found.table,
        tuple(_version_row(r[0]) for r in rows),
        dirty=any(bool(r[1]) for r in rows),
    )


def _flyway_rows(conn: psycopg.Connection[Any], name: sql.Identifier) -> tuple[ForeignRow, ...]:
    cur = conn.execute(
        sql.SQL(
            "SELECT version, description, type, script, checksum, installed_by, installed_on, "
            "execution_time, success FROM {} ORDER BY installed_rank"
        ).format(name)
    )
    return tuple(
        ForeignRow(v, d or "", t, s, c, by, on, int(ms or 0), bool(ok))
        for v, d, t, s, c, by, on, ms, ok in cur
    )


def _dbup_rows(conn: psycopg.Connection[Any], name: sql.Identifier) -> tuple[ForeignRow, ...]:
    # DbUp's column names vary in case between its versions and databases.
    cur = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(name))
    names = [d.name.lower() for d in (cur.description or [])]
    script, applied = names.index("scriptname"), names.index("applied")
    return tuple(
        ForeignRow(None, "", "SQL", str(r[script]), None, None, r[applied], 0, True) for r in cur
    )


def _version_row(version: str) -> ForeignRow:
    return ForeignRow(version, "", "SQL", "", None, None, None, 0, True)
