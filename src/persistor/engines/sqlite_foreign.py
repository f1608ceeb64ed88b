"""Finding and reading other tools' history tables (engines/foreign.py) in SQLite."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from persistor.engines.foreign import (
    CANDIDATE_TABLES,
    ForeignHistory,
    ForeignRow,
    ForeignTable,
    classify,
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def find_foreign_tables(conn: sqlite3.Connection, schema: str) -> list[ForeignTable]:
    """Return the other tools' history tables in the schema (an attached database's name)."""
    marks = ", ".join("?" for _ in CANDIDATE_TABLES)
    names = conn.execute(
        f"SELECT name FROM {_quote(schema)}.sqlite_master WHERE type = 'table' "
        f"AND name IN ({marks}) ORDER BY name",
        CANDIDATE_TABLES,
    ).fetchall()
    found = []
    for (table,) in names:
        columns = {
            str(c[1]).lower(): str(c[2])
            for c in conn.execute(f"PRAGMA {_quote(schema)}.table_info({_quote(table)})")
        }
        tool = classify(table, columns.get("version"), "dirty" in columns)
        if tool is not None:
            found.append(ForeignTable(tool, table))
    return found


def read_foreign_table(
    conn: sqlite3.Connection, schema: str, found: ForeignTable
) -> ForeignHistory:
    """Return the rows of one table find_foreign_tables returned."""
    name = f"{_quote(schema)}.{_quote(found.table)}"
    if found.tool == "flyway":
        cur = conn.execute(
            "SELECT version, description, type, script, checksum, installed_by, installed_on, "
            f"execution_time, success FROM {name} ORDER BY installed_rank"
        )
        rows = tuple(
            ForeignRow(v, d or "", t, s, c, by, _when(on), int(ms or 0), bool(ok))
            for v, d, t, s, c, by, on, ms, ok in cur
        )
        return ForeignHistory(found.tool, found.table, rows)
    if found.tool == "dbup":
        cur = conn.execute(f"SELECT * FROM {name} ORDER BY 1")
        names = [d[0].lower() for d in cur.description]
        script, applied = names.index("scriptname"), names.index("applied")
        rows = tuple(
            ForeignRow(None, "", "SQL", str(r[script]), None, None, _when(r[applied]), 0, True)
            for r in cur
        )
        return ForeignHistory(found.tool, found.table, rows)
    dirty = found.tool == "golang-migrate"
    cur = conn.execute(f"SELECT CAST(version AS TEXT), {'dirty' if dirty else '0'} FROM {name}")
    fetched = cur.fetchall()
    rows = tuple(ForeignRow(str(v), "", "SQL", "", None, None, None, 0, True) for v, _ in fetched)
    return ForeignHistory(found.tool, found.table, rows, dirty=any(bool(d) for _, d in fetched))


def _when(value: object) -> datetime | None:
    """Read a timestamp SQLite keeps as text (or already converted); None if unreadable."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
