"""The PostgreSQL history table: its SQL, and errors that name the grant a role lacks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from persistor.engines.base import HistoryRow, NewHistoryRow
from persistor.engines.postgres.catalog import (
    ensure_schema,
    lacks_schema_usage,
    missing_table_privileges,
    table_exists,
)
from persistor.engines.postgres.errors import server_message
from persistor.errors import PrivilegeError, UsageError

# What a role that lacks a table privilege may not do, in words.
_DOING = {"INSERT": "insert into", "DELETE": "delete from", "UPDATE": "update"}


class HistoryWrite(NamedTuple):
    """One write to the history table, with the table privilege it needs."""

    privilege: str
    sql: str


class HistoryTable:
    """The history table of one schema, on one connection."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, table: str) -> None:
        self.conn = conn
        self.schema = schema
        self.table = table
        self._name = sql.Identifier(schema, table)

    def exists(self) -> bool:
        """Return whether the table is there."""
        return table_exists(self.conn, self.schema, self.table)

    def read(self) -> list[HistoryRow]:
        """Return the rows in rank order; empty when the table does not exist."""
        if not self.exists():
            return []
        query = sql.SQL(
            "SELECT installed_rank, version, description, type, script, checksum, "
            "installed_by, installed_at, execution_time_ms, success FROM {} "
            "ORDER BY installed_rank"
        ).format(self._name)
        with self.needs_privilege("read the history table", "SELECT ON {table}"):
            try:
                cur = self.conn.execute(query)
            except psycopg.errors.UndefinedColumn as exc:
                raise UsageError(
                    f"{self._shown()} is not a persistor history table "
                    f"({server_message(exc)}); give --history-table a table of persistor's "
                    "own, or a new name. To adopt another tool's history (Flyway, DbUp, "
                    "dbmate, golang-migrate), run `persistor baseline`"
                ) from None
        return list(map(HistoryRow._make, cur.fetchall()))

    def ensure(self) -> None:
        """Create the schema and the table when missing."""
        if self.exists():
            return
        with self.needs_privilege("create the history table", "CREATE ON SCHEMA {schema}"):
            ensure_schema(self.conn, self.schema)
            self.conn.execute(
                sql.SQL(
                    """
                    CREATE TABLE IF NOT EXISTS {} (
                        installed_rank integer PRIMARY KEY,
                        version varchar(50),
                        description varchar(200) NOT NULL,
                        type varchar(20) NOT NULL,
                        script varchar(1000) NOT NULL,
                        checksum varchar(100),
                        installed_by varchar(100) NOT NULL,
                        installed_at timestamptz NOT NULL DEFAULT now(),
                        execution_time_ms integer NOT NULL,
                        success boolean NOT NULL
                    )
                    """
                ).format(self._name)
            )

    def insert(self, row: NewHistoryRow) -> HistoryWrite:
        """Return the INSERT of one row (installed_by and installed_at are the server's unless imported)."""
        values = sql.SQL(", ").join(
            [
                sql.Literal(row.installed_rank),
                sql.Literal(row.version),
                sql.Literal(row.description[:200]),
                sql.Literal(row.type),
                sql.Literal(row.script),
                sql.Literal(row.checksum),
                sql.SQL("current_user")
                if row.installed_by is None
                else sql.Literal(row.installed_by),
                sql.SQL("now()") if row.installed_at is None else sql.Literal(row.installed_at),
                sql.Literal(row.execution_time_ms),
                sql.Literal(row.success),
            ]
        )
        insert = sql.SQL(
            "INSERT INTO {} (installed_rank, version, description, type, script, checksum, "
            "installed_by, installed_at, execution_time_ms, success) VALUES ({})"
        ).format(self._name, values)
        return HistoryWrite("INSERT", insert.as_string(self.conn))

    def delete(self, ranks: Sequence[int]) -> HistoryWrite:
        """Return the DELETE of rows by rank."""
        delete = sql.SQL("DELETE FROM {} WHERE installed_rank = ANY({})").format(
            self._name, sql.Literal(list(ranks))
        )
        return HistoryWrite("DELETE", delete.as_string(self.conn))

    def update_checksum(self, rank: int, checksum: str) -> HistoryWrite:
        """Return the UPDATE of one row's checksum."""
        update = sql.SQL("UPDATE {} SET checksum = {} WHERE installed_rank = {}").format(
            self._name, sql.Literal(checksum), sql.Literal(rank)
        )
        return HistoryWrite("UPDATE", update.as_string(self.conn))

    def write_denied(
        self, exc: psycopg.Error, writes: Sequence[HistoryWrite]
    ) -> PrivilegeError | None:
        """Return the error naming the grant when a refused query's history writes lack one.

        Asked after the server refused a query with writes in it (outside any
        failed transaction): None if the role has every privilege they need,
        so the refusal came from something else.
        """
        if not isinstance(exc, psycopg.errors.InsufficientPrivilege) or not writes:
            return None
        if self.conn.broken:
            return None
        wanted = list(dict.fromkeys(w.privilege for w in writes))
        missing = missing_table_privileges(self.conn, self.schema, self.table, wanted)
        if not missing:
            return None
        doing = " or ".join(_DOING[p] for p in missing)
        return self._denied(f"{doing} the history table", f"{', '.join(missing)} ON {{table}}", exc)

    @contextmanager
    def needs_privilege(self, action: str, grant: str) -> Iterator[None]:
        """Turn the server's 'permission denied' inside into an error that names the grant."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:  # autocommit: nothing to roll back
            raise self._denied(action, grant, exc) from None

    def _denied(self, action: str, grant: str, exc: psycopg.Error) -> PrivilegeError:
        if lacks_schema_usage(self.conn, self.schema):
            grant = "USAGE ON SCHEMA {schema}"  # needed first, whatever else is
        table = self._shown()
        schema = sql.Identifier(self.schema).as_string(self.conn)
        user = self.conn.info.user
        return PrivilegeError(
            f"role {user} may not {action} {table}: {server_message(exc)}. "
            f"Grant it (GRANT {grant.format(table=table, schema=schema)} TO {user}), "
            "or run persistor as a role that has it"
        )

    def _shown(self) -> str:
        return self._name.as_string(self.conn)
