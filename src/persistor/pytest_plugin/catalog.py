"""A small snapshot of a database's schema, to tell whether an undo restored it exactly.

A stopgap until `persistor dump` lands: the undo check compares two of these.
PostgreSQL: every object of the catalog with its definition (catalog.sql);
SQLite: `sqlite_master`. The history tables are left out.
"""

from __future__ import annotations

import sqlite3
from importlib import resources

import psycopg

Snapshot = frozenset[tuple[str, str, str]]


def snapshot(url: str, history_table: str) -> Snapshot:
    """Return the schema objects of the database at url as (kind, name, definition)."""
    skip = [history_table, f"{history_table}_lock"]
    if url.startswith("sqlite:"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            rows = conn.execute(
                "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
                "WHERE tbl_name NOT IN (?, ?) AND name NOT LIKE 'sqlite_%'",
                skip,
            ).fetchall()
        return frozenset((str(t), str(n), str(s)) for t, n, s in rows)
    query = resources.files(__package__).joinpath("catalog.sql").read_text(encoding="utf-8")
    with psycopg.connect(url, autocommit=True) as pg:
        found = pg.execute(query.encode(), {"skip": skip}).fetchall()
    return frozenset((str(k), str(n), str(d)) for k, n, d in found)


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """Return what differs between two snapshots, one line per object, for a failure message."""
    lines: list[str] = []
    before_by_name = {(k, n): d for k, n, d in before}
    after_by_name = {(k, n): d for k, n, d in after}
    for key in sorted(before_by_name.keys() | after_by_name.keys()):
        old, new = before_by_name.get(key), after_by_name.get(key)
        if old == new:
            continue
        kind, name = key
        if old is None:
            lines.append(f"  + {kind} {name} is left behind: {new}")
        elif new is None:
            lines.append(f"  - {kind} {name} is gone (was: {old})")
        else:
            lines.append(f"  ~ {kind} {name} differs: was {old!r}, now {new!r}")
    return lines
