"""SQLite through the standard library.

SQLite has one writer at a time, so the migration lock is an immediate
transaction held for the whole run; each script runs in a savepoint inside it,
so a failing script is rolled back alone and the scripts before it commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

from persistor.engines.base import (
    Engine,
    HistoryRow,
    NewHistoryRow,
    ServerInfo,
    StatementFailed,
    Transaction,
    WaitCallback,
    wait_for_lock,
)
from persistor.engines.foreign import ForeignHistory, ForeignTable
from persistor.engines.snapshot import SchemaDump
from persistor.errors import ConnectError


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteEngine(Engine):
    """SQLite 3 file databases."""

    name: ClassVar[str] = "sqlite"
    dialect: ClassVar[Literal["postgresql", "sqlite"]] = "sqlite"

    def __init__(
        self, path: str, schema: str | None, history_table: str, create: bool = True
    ) -> None:
        super().__init__(schema, history_table)
        self.path = path
        parent = Path(path).parent
        if not parent.is_dir():
            raise ConnectError(
                f"cannot open SQLite database {path}: directory {parent} does not exist; create it first"
            )
        # Opening a missing file creates it: commands that only read look at an
        # empty in-memory database instead, and say the file does not exist.
        self.exists = create or Path(path).exists()
        try:
            # isolation_level=None: we issue BEGIN/SAVEPOINT ourselves.
            target = path if self.exists else ":memory:"
            self.conn = sqlite3.connect(target, isolation_level=None, timeout=0)
            self.conn.execute("PRAGMA foreign_keys = ON")
            # Reads the file header now: a file that is not a database fails here.
            self.conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.Error as exc:
            raise ConnectError(f"cannot open SQLite database {path}: {exc}") from None
        self._table = f"{_quote(self.schema)}.{_quote(history_table)}"
        self._savepoints = 0

    @property
    def default_schema(self) -> str:
        return "main"

    def close(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()

    def server_info(self) -> ServerInfo:
        return ServerInfo("sqlite", sqlite3.sqlite_version, "-", self.path, self.schema)

    @contextmanager
    def lock(self, timeout: float, on_wait: WaitCallback) -> Iterator[None]:
        def try_once() -> bool:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise ConnectError(f"cannot lock SQLite database {self.path}: {exc}") from None
                return False
            return True

        # SQLite cannot say who holds its write lock.
        wait_for_lock(
            try_once,
            lambda: f"another process writing to {self.path}",
            timeout,
            on_wait,
            max_delay=0.5,
        )
        try:
            yield
        finally:
            # Every script ran in a savepoint that rolled itself back on error,
            # so what is left is exactly the scripts that succeeded: keep them.
            if self.conn.in_transaction:
                _commit(self.conn)

    def history_exists(self) -> bool:
        row = self.conn.execute(
            f"SELECT 1 FROM {_quote(self.schema)}.sqlite_master WHERE type = 'table' AND name = ?",
            (self.history_table,),
        ).fetchone()
        return row is not None

    def find_foreign_histories(self) -> list[ForeignTable]:
        from persistor.engines.sqlite_foreign import find_foreign_tables

        return find_foreign_tables(self.conn, self.schema)

    def read_foreign_history(self, found: ForeignTable) -> ForeignHistory:
        from persistor.engines.sqlite_foreign import read_foreign_table

        return read_foreign_table(self.conn, self.schema, found)

    def read_history(self) -> list[HistoryRow]:
        if not self.history_exists():
            return []
        cur = self.conn.execute(
            "SELECT installed_rank, version, description, type, script, checksum, installed_by, "
            f"installed_at, execution_time_ms, success FROM {self._table} ORDER BY installed_rank"
        )
        result = []
        for r in cur:
            at = datetime.fromisoformat(r[7]) if r[7] else None
            result.append(
                HistoryRow(
                    installed_rank=r[0],
                    version=r[1],
                    description=r[2],
                    type=r[3],
                    script=r[4],
                    checksum=r[5],
                    installed_by=r[6],
                    installed_at=at,
                    execution_time_ms=r[8],
                    success=bool(r[9]),
                )
            )
        return result

    def ensure_history(self) -> None:
        self.conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {self._table} (
                installed_rank INTEGER PRIMARY KEY,
                version TEXT,
                description TEXT NOT NULL,
                type TEXT NOT NULL,
                script TEXT NOT NULL,
                checksum TEXT,
                installed_by TEXT NOT NULL,
                installed_at TEXT NOT NULL,
                execution_time_ms INTEGER NOT NULL,
                success INTEGER NOT NULL
            )"""
        )

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        # Under the lock (the run's own transaction) every transaction is a savepoint.
        if self.conn.in_transaction:
            self._savepoints += 1
            tx = _SqliteTransaction(self.conn, self._table, f"persistor_{self._savepoints}")
        else:
            tx = _SqliteTransaction(self.conn, self._table, None)
        try:
            yield tx
        finally:
            if not tx.finished:
                tx.rollback()

    def reset_search_path(self) -> None:
        return None

    def execute(self, statement: str) -> None:
        _execute(self.conn, statement)

    def connection(self) -> sqlite3.Connection:
        return self.conn

    def record_progress(self, rank: int, checksum: str) -> None:
        _update_checksum(self.conn, self._table, rank, checksum)

    def dump_schema(self) -> SchemaDump:
        # sqlite_master keeps each object's CREATE statement as written; ordered by
        # kind and name, two files of the same schema give the same text.
        rows = self.conn.execute(
            f"SELECT sql FROM {_quote(self.schema)}.sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND tbl_name NOT IN (?, ?) "
            "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 "
            "ELSE 3 END, name",
            self.own_tables,
        ).fetchall()
        text = "".join(f"{r[0].strip()};\n\n" for r in rows)
        return SchemaDump(
            text.rstrip("\n") + "\n" if text else "", f"SQLite {sqlite3.sqlite_version}"
        )

    def clean(self) -> list[str]:
        rows = self.conn.execute(
            f"SELECT type, name FROM {_quote(self.schema)}.sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND type IN ('table', 'view') ORDER BY name"
        ).fetchall()
        self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self.transaction() as tx:
                for kind, name in rows:
                    self.conn.execute(
                        f"DROP {kind.upper()} IF EXISTS {_quote(self.schema)}.{_quote(name)}"
                    )
                tx.commit()
        finally:
            self.conn.execute("PRAGMA foreign_keys = ON")
        return [str(name) for _, name in rows]


class _SqliteTransaction(Transaction):
    """BEGIN IMMEDIATE, or a savepoint inside a transaction; every statement runs at once."""

    def __init__(self, conn: sqlite3.Connection, table: str, savepoint: str | None) -> None:
        self._conn = conn
        self._table = table
        self._savepoint = savepoint
        self.finished = False
        conn.execute(f"SAVEPOINT {savepoint}" if savepoint else "BEGIN IMMEDIATE")

    def reset_search_path(self) -> None:
        return None

    def execute(self, statement: str) -> None:
        _execute(self._conn, statement)

    def connection(self) -> sqlite3.Connection:
        return self._conn

    def insert_history(self, row: NewHistoryRow) -> None:
        self._conn.execute(
            f"INSERT INTO {self._table} (installed_rank, version, description, type, script, "
            "checksum, installed_by, installed_at, execution_time_ms, success) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.installed_rank,
                row.version,
                row.description,
                row.type,
                row.script,
                row.checksum,
                _os_user() if row.installed_by is None else row.installed_by,
                (row.installed_at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
                row.execution_time_ms,
                int(row.success),
            ),
        )

    def delete_history(self, ranks: Sequence[int]) -> None:
        self._conn.executemany(
            f"DELETE FROM {self._table} WHERE installed_rank = ?", [(r,) for r in ranks]
        )

    def update_checksum(self, rank: int, checksum: str) -> None:
        _update_checksum(self._conn, self._table, rank, checksum)

    def commit(self) -> None:
        self.finished = True
        if self._savepoint:
            self._conn.execute(f"RELEASE {self._savepoint}")
        else:
            _commit(self._conn)

    def rollback(self) -> None:
        """Undo everything since BEGIN or the savepoint."""
        self.finished = True
        if not self._conn.in_transaction:
            return  # a COMMIT not ours (a Python migration's) ended it: nothing is left to undo
        if self._savepoint:
            self._conn.execute(f"ROLLBACK TO {self._savepoint}")
            self._conn.execute(f"RELEASE {self._savepoint}")
        else:
            self._conn.execute("ROLLBACK")


def _execute(conn: sqlite3.Connection, statement: str) -> None:
    try:
        conn.execute(statement)
    except sqlite3.Error as exc:
        raise _statement_failed(exc) from None


def _update_checksum(conn: sqlite3.Connection, table: str, rank: int, checksum: str) -> None:
    conn.execute(f"UPDATE {table} SET checksum = ? WHERE installed_rank = ?", (checksum, rank))


def _commit(conn: sqlite3.Connection) -> None:
    # SQLite checks deferred foreign keys only here, for the whole transaction.
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        raise _statement_failed(exc) from None


def _statement_failed(exc: sqlite3.Error) -> StatementFailed:
    return StatementFailed(str(exc), getattr(exc, "sqlite_errorname", None), None)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
