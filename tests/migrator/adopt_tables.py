"""Other tools' history tables, written with each tool's documented layout, for the adopt tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import psycopg

# Flyway's flyway_schema_history, as Flyway creates it on PostgreSQL and on SQLite.
FLYWAY_PG = """
CREATE TABLE flyway_schema_history (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INT,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INT NOT NULL,
    success BOOLEAN NOT NULL,
    CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank)
);
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success)
"""
FLYWAY_SQLITE = """
CREATE TABLE flyway_schema_history (
    installed_rank INT NOT NULL PRIMARY KEY,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INT,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
    execution_time INT NOT NULL,
    success BOOLEAN NOT NULL
);
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success)
"""
# golang-migrate's schema_migrations: one row, the version the database is at.
GOLANG_MIGRATE_PG = (
    "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null)"
)
GOLANG_MIGRATE_SQLITE = """
CREATE TABLE schema_migrations (version uint64, dirty bool);
CREATE UNIQUE INDEX version_unique ON schema_migrations (version)
"""
# dbmate's schema_migrations: one row per applied file (the same on both engines).
DBMATE = "CREATE TABLE schema_migrations (version varchar(128) primary key)"
# DbUp's journal.
DBUP = (
    "CREATE TABLE SchemaVersions (SchemaVersionsId integer primary key, "
    "ScriptName varchar(255) not null, Applied timestamp not null)"
)


def create(url: str, tool: str) -> None:
    """Create one tool's history table in the database (public / main)."""
    pg = not url.startswith("sqlite")
    ddl = {
        "flyway": FLYWAY_PG if pg else FLYWAY_SQLITE,
        "golang-migrate": GOLANG_MIGRATE_PG if pg else GOLANG_MIGRATE_SQLITE,
        "dbmate": DBMATE,
        "dbup": DBUP,
    }[tool]
    run(url, [s for s in ddl.split(";") if s.strip()])


def run(url: str, statements: Sequence[str]) -> None:
    """Run statements on either engine, committed."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as lite:
            for s in statements:
                lite.execute(s)
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s.encode())


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Return the rows of one query on either engine."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as lite:
            return [tuple(r) for r in lite.execute(sql).fetchall()]
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql.encode()).fetchall()]


def table_names(url: str) -> set[str]:
    """Return every table in the database's main schema."""
    if url.startswith("sqlite"):
        return {str(r[0]) for r in query(url, "SELECT name FROM sqlite_master WHERE type='table'")}
    return {
        str(r[0]) for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")
    }
