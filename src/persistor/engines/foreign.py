"""Other tools' history tables, as every engine finds and reads them.

The engines read the rows as the other tool wrote them (ForeignRow); what
they mean for persistor's history is decided in persistor.adopt, which knows
no driver. The tables are the ones each tool documents:

- Flyway: `flyway_schema_history` (installed_rank, version, description, type,
  script, checksum int, installed_by, installed_on, execution_time, success);
- DbUp: `SchemaVersions` (SchemaVersionsId, ScriptName, Applied);
- dbmate: `schema_migrations` (version varchar(128) primary key), one row per
  applied file;
- golang-migrate: `schema_migrations` (version bigint primary key, dirty
  boolean), one row: the version the database is at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

Tool = Literal["flyway", "dbup", "dbmate", "golang-migrate"]

TOOL_NAMES: dict[str, str] = {
    "flyway": "Flyway",
    "dbup": "DbUp",
    "dbmate": "dbmate",
    "golang-migrate": "golang-migrate",
}

# The table names the engines look for in the target schema.
CANDIDATE_TABLES = (
    "flyway_schema_history",
    "SchemaVersions",
    "schemaversions",
    "schema_migrations",
)


class ForeignTable(NamedTuple):
    """Another tool's history table found in the target schema."""

    tool: Tool
    table: str


class ForeignRow(NamedTuple):
    """One row of another tool's history, with what that tool recorded (None: not recorded)."""

    version: str | None
    description: str
    type: str  # the tool's own kind, e.g. Flyway's SQL, JDBC, BASELINE
    script: str
    checksum: int | None  # Flyway's CRC32
    installed_by: str | None
    installed_at: datetime | None
    execution_time_ms: int
    success: bool


class ForeignHistory(NamedTuple):
    """Everything read from another tool's history table."""

    tool: Tool
    table: str
    rows: tuple[ForeignRow, ...]
    dirty: bool = False  # golang-migrate: the last migration stopped halfway


def classify(table: str, version_type: str | None, has_dirty: bool) -> Tool | None:
    """Return which tool a candidate table belongs to, from its name and layout."""
    if table == "flyway_schema_history":
        return "flyway"
    if table.lower() == "schemaversions":
        return "dbup"
    if table != "schema_migrations" or version_type is None:
        return None
    kind = version_type.lower()
    if has_dirty and ("int" in kind or kind == "uint64"):
        return "golang-migrate"
    if not has_dirty and ("char" in kind or kind == "text"):
        return "dbmate"
    return None  # a schema_migrations of some other tool (or layout) persistor cannot read
