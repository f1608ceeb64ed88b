"""Reading other tools' history tables (Flyway, DbUp) so `baseline` can adopt them."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from persistor.engines.base import ForeignJournal, NewHistoryRow
from persistor.engines.postgres.catalog import readable_table_exists

# DbUp records embedded-resource names such as 'Ecliptix.Migrations.V001__Baseline.sql'.
_DBUP_VERSION_RE = re.compile(r"V([0-9]+(?:[._][0-9]+)*)__(.+?)(?:\.sql)?$", re.IGNORECASE)


def read_foreign_journal(conn: psycopg.Connection[Any], schema: str) -> ForeignJournal | None:
    """Return Flyway's or DbUp's history rows from the schema, if either table exists."""
    # Only tables this role may read count: another tool's table it cannot
    # read is not a history it could adopt.
    if readable_table_exists(conn, schema, "flyway_schema_history"):
        return _read_flyway(conn, schema)
    for table in ("SchemaVersions", "schemaversions"):
        if readable_table_exists(conn, schema, table):
            return _read_dbup(conn, schema, table)
    return None


def _read_flyway(conn: psycopg.Connection[Any], schema: str) -> ForeignJournal:
    cur = conn.execute(
        sql.SQL(
            "SELECT version, description, type, script, checksum, execution_time, success "
            "FROM {} ORDER BY installed_rank"
        ).format(sql.Identifier(schema, "flyway_schema_history"))
    )
    rows: list[NewHistoryRow] = []
    skipped: list[str] = []
    for version, description, kind, script, checksum, elapsed, success in cur:
        if not success or kind not in ("SQL", "BASELINE", "JDBC", "SQL_BASELINE"):
            skipped.append(f"{script} ({kind}{'' if success else ', failed'})")
            continue
        rows.append(
            NewHistoryRow(
                installed_rank=len(rows) + 1,
                version=version,
                description=description,
                type="BASELINE" if "BASELINE" in kind else "SQL",
                script=script,
                # Flyway's CRC32 cannot be compared with ours; the prefix says so.
                checksum=f"flyway-crc32:{checksum}" if checksum is not None else None,
                execution_time_ms=int(elapsed or 0),
                success=True,
            )
        )
    return ForeignJournal("Flyway", "flyway_schema_history", tuple(rows), tuple(skipped))


def _read_dbup(conn: psycopg.Connection[Any], schema: str, table: str) -> ForeignJournal:
    cur = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(schema, table)))
    names = [d.name.lower() for d in (cur.description or [])]
    column = names.index("scriptname")
    rows: list[NewHistoryRow] = []
    skipped: list[str] = []
    for record in cur:
        script = str(record[column])
        m = _DBUP_VERSION_RE.search(script.rsplit("/", 1)[-1])
        if not m:
            skipped.append(script)
            continue
        rows.append(
            NewHistoryRow(
                installed_rank=len(rows) + 1,
                version=m.group(1),
                description=m.group(2).replace("_", " "),
                type="SQL",
                script=script,
                checksum=None,
                execution_time_ms=0,
                success=True,
            )
        )
    return ForeignJournal("DbUp", table, tuple(rows), tuple(skipped))
