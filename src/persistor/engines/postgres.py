"""PostgreSQL through psycopg 3."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql

from persistor.engines.base import (
    Engine,
    ForeignJournal,
    HistoryRow,
    NewHistoryRow,
    ServerInfo,
    StatementFailed,
    WaitCallback,
)
from persistor.engines.pgcatalog import ensure_schema, table_exists
from persistor.engines.pglock import (
    advisory_holder,
    advisory_lock,
    lock_key,
    table_lock,
    table_lock_holder,
)
from persistor.errors import ConnectError, LockLostError, PrivilegeError, UsageError
from persistor.settings import DEFAULT_LOCK_LEASE
from persistor.urls import mask_url, scrub

APPLICATION_NAME = "persistor"


LOCK_MODES = ("session", "table")


class PostgresEngine(Engine):
    """PostgreSQL 15+; autocommit connection, explicit transactions per script."""

    name: ClassVar[str] = "postgresql"
    dialect: ClassVar[Literal["postgresql", "sqlite"]] = "postgresql"
    transactional_ddl: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        schema: str | None,
        history_table: str,
        connect_timeout: int = 10,
        lock_mode: str = "session",
        lock_lease: float = DEFAULT_LOCK_LEASE,
    ) -> None:
        super().__init__(schema, history_table)
        if lock_mode not in LOCK_MODES:
            raise UsageError(f"lock mode must be one of {', '.join(LOCK_MODES)}, got {lock_mode!r}")
        self.lock_mode = lock_mode
        self.lock_lease = lock_lease
        self._url = url
        self._connect_timeout = connect_timeout
        try:
            self.conn: psycopg.Connection[tuple[Any, ...]] = self._connect()
        except psycopg.ProgrammingError as exc:
            raise UsageError(
                f"invalid PostgreSQL URL {mask_url(url)}: {scrub(str(exc).strip(), url)}; expected "
                "postgresql://user@host:port/database, with special characters in the user "
                "or password percent-encoded"
            ) from None
        except psycopg.OperationalError as exc:
            raise ConnectError(
                f"cannot connect to {mask_url(url)}: {scrub(_first_line(str(exc)), url)}; check "
                "that the server is running, the host/port/database are right, and the password "
                "(PGPASSWORD, ~/.pgpass or the URL)"
            ) from None
        self._table = sql.Identifier(self.schema, history_table)
        self._depth = 0
        self._prefix: list[str] = []  # sent ahead of the next statement
        self._pending: list[str] = []  # sent with the next COMMIT
        self._committed = False  # whether the final durability flush is needed
        # Sent before each COMMIT while the lock is held: fails (division by
        # zero) unless this transaction runs under the lock; then _lost says why.
        self._fence: str | None = None
        self._lost: Callable[[], LockLostError] = _lease_lost
        self._still_held: Callable[[], bool] | None = None  # table lock mode

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = psycopg.connect(
            self._url,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=self._connect_timeout,
        )
        # No server-side prepared statements: they break behind PgBouncer's
        # transaction pooling, and a migrator gains nothing from them.
        conn.prepare_threshold = None
        return conn

    @property
    def default_schema(self) -> str:
        return "public"

    def close(self) -> None:
        self.conn.close()

    def server_info(self) -> ServerInfo:
        row = self.conn.execute(
            "SELECT current_setting('server_version'), current_user, current_database()"
        ).fetchone()
        assert row is not None
        return ServerInfo("postgresql", str(row[0]), str(row[1]), str(row[2]), self.schema)

    @contextmanager
    def lock(self, timeout: float, on_wait: WaitCallback) -> Iterator[None]:
        if self.lock_mode == "table":
            with table_lock(
                self.conn,
                self._connect,
                self.schema,
                self._lock_table,
                timeout,
                on_wait,
                self.lock_lease,
            ) as held:
                self._fence, self._still_held = held.fence, held.still_held
                self._lost = _lease_lost
                try:
                    yield
                finally:
                    self._fence, self._still_held = None, None
            return
        key = lock_key(self.schema, self.history_table)
        with advisory_lock(self.conn, key, timeout, on_wait) as pid:
            # The lock belongs to one server session. A transaction pooler (or
            # a reset connection) can run later transactions on another, which
            # the lock does not cover: such a commit must fail, not go through.
            self._fence = f"SELECT 1 / (pg_backend_pid() = {pid:d})::int"
            self._lost = partial(_session_moved, pid)
            # Each script still commits atomically with its history row, but
            # without waiting for its own WAL flush; one synchronous commit at
            # the end makes the run durable before persistor reports success.
            # A server crash mid-run can only lose whole scripts together with
            # their history rows, and the next run applies them again.
            self.conn.execute(b"SET synchronous_commit TO off")
            self._committed = False
            try:
                yield
            finally:
                self._fence = None
                if not self.conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        self.conn.execute(b"SET synchronous_commit TO on")
                        if self._committed:
                            # a synchronous commit flushes the WAL of every earlier one
                            self.conn.execute(b"BEGIN; SELECT pg_current_xact_id(); COMMIT")

    @property
    def _lock_table(self) -> str:
        return self.history_table + "_lock"

    def lock_holder(self) -> str | None:
        # Both kinds: whoever asks need not use the lock mode the migrators use.
        holder = advisory_holder(self.conn, lock_key(self.schema, self.history_table))
        if holder is None:
            # A role that may read the history need not be allowed to read the lock table.
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                holder = table_lock_holder(self.conn, self.schema, self._lock_table)
        return holder

    def _history_exists(self) -> bool:
        return table_exists(self.conn, self.schema, self.history_table)

    def read_history(self) -> list[HistoryRow]:
        if not self._history_exists():
            return []
        with self._needs_privilege("read the history table", "SELECT ON {table}"):
            try:
                cur = self.conn.execute(
                    sql.SQL(
                        "SELECT installed_rank, version, description, type, script, checksum, "
                        "installed_by, installed_at, execution_time_ms, success FROM {} "
                        "ORDER BY installed_rank"
                    ).format(self._table)
                )
            except psycopg.errors.UndefinedColumn as exc:
                table = self._table.as_string(self.conn)
                raise UsageError(
                    f"{table} is not a persistor history table ({_statement_failed(exc).message}); "
                    "give --history-table a table of persistor's own, or a new name. To adopt "
                    "another tool's history (Flyway, DbUp), run `persistor baseline`"
                ) from None
        return list(map(HistoryRow._make, cur.fetchall()))

    @contextmanager
    def _needs_privilege(self, action: str, grant: str) -> Iterator[None]:
        """Turn the server's 'permission denied' into an error that names the grant."""
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:  # autocommit: nothing to roll back
            table = self._table.as_string(self.conn)
            schema = sql.Identifier(self.schema).as_string(self.conn)
            user = self.conn.info.user
            raise PrivilegeError(
                f"role {user} may not {action} {table}: {_statement_failed(exc).message}. "
                f"Grant it (GRANT {grant.format(table=table, schema=schema)} TO {user}), "
                "or migrate as a role that has it"
            ) from None

    def ensure_history(self) -> None:
        if self._history_exists():
            return
        with self._needs_privilege("create the history table", "CREATE ON SCHEMA {schema}"):
            self._create_history()

    def _create_history(self) -> None:
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
            ).format(self._table)
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # Transactions are driven by hand so that BEGIN (and SET LOCAL) travel
        # with the script's first statement, and the history row with COMMIT:
        # a one-statement script costs two round trips instead of five.
        depth = self._depth
        self._depth += 1
        self._prefix.append("BEGIN" if depth == 0 else f"SAVEPOINT persistor_{depth}")
        mark = len(self._pending)
        try:
            yield
        except BaseException:
            del self._pending[mark:]
            if self._prefix:
                self._prefix.clear()  # nothing of this level reached the server
                if depth > 0:
                    raise
            if not self.conn.closed:
                with contextlib.suppress(psycopg.Error):
                    if depth == 0:
                        self.conn.execute(b"ROLLBACK")
                    else:
                        self.conn.execute(
                            f"ROLLBACK TO SAVEPOINT persistor_{depth}; "
                            f"RELEASE SAVEPOINT persistor_{depth}".encode()
                        )
            raise
        finally:
            self._depth = depth
        end = "COMMIT" if depth == 0 else f"RELEASE SAVEPOINT persistor_{depth}"
        fence = [self._fence] if self._fence and depth == 0 else []
        statements = [*self._prefix, *self._pending[mark:], *fence, end]
        self._prefix.clear()
        del self._pending[mark:]
        try:
            self._send(statements)
        except (psycopg.Error, LockLostError) as exc:
            if depth == 0 and not self.conn.closed:
                with contextlib.suppress(psycopg.Error):
                    self.conn.execute(b"ROLLBACK")
            if isinstance(exc, psycopg.Error) and depth == 0 and self.conn.broken:
                # The COMMIT may or may not have happened: say so, claim nothing.
                raise ConnectError(
                    f"lost the connection while committing: {_first_line(str(exc))}. Whether "
                    "the last script was committed is unknown: run `persistor status` to see, "
                    "then `persistor migrate` again"
                ) from None
            if isinstance(exc, psycopg.Error):
                # e.g. a deferred constraint, checked only at COMMIT
                raise _statement_failed(exc) from None
            raise
        self._committed = True

    def _send(self, statements: list[str]) -> None:
        try:
            self.conn.execute(";\n".join(statements).encode("utf-8"))
        except psycopg.errors.DivisionByZero:
            if self._fence is None or self._fence not in statements:
                raise
            raise self._lost() from None

    def prepare_script(self) -> None:
        # Scripts may change search_path; every script starts from the target schema.
        setting = sql.SQL("SET {} search_path TO {}, pg_temp").format(
            sql.SQL("LOCAL" if self._depth else "SESSION"), sql.Identifier(self.schema)
        )
        if self._depth:
            self._prefix.append(setting.as_string(self.conn))
        elif self.lock_mode == "table":
            # Behind a transaction pooler a session SET would leak to other
            # clients; statements outside a transaction use the role's default.
            return
        else:
            # Outside a transaction it must go alone: several statements in one
            # query string form an implicit transaction, which CREATE INDEX
            # CONCURRENTLY refuses.
            self.conn.execute(setting)

    def check_lock(self) -> None:
        if self._fence is not None:
            self._send([*self._prefix, self._fence])
            self._prefix.clear()

    def execute(self, statement: str) -> None:
        offset = 0
        if self._prefix:
            head = ";\n".join(self._prefix) + ";\n"
            offset = len(head)
            statement = head + statement
            self._prefix.clear()
        try:
            self.conn.execute(statement.encode("utf-8"), prepare=False)
        except psycopg.Error as exc:
            if self._still_held is not None and not self._still_held():
                # A stalled migrator whose lease ran out: its statement most
                # likely failed because another migrator did the work meanwhile.
                raise _lease_lost() from None
            raise _statement_failed(exc, offset) from None

    def insert_history(self, row: NewHistoryRow) -> None:
        values = sql.SQL(", ").join(
            [
                sql.Literal(row.installed_rank),
                sql.Literal(row.version),
                sql.Literal(row.description[:200]),
                sql.Literal(row.type),
                sql.Literal(row.script),
                sql.Literal(row.checksum),
                sql.SQL("current_user"),
                sql.Literal(row.execution_time_ms),
                sql.Literal(row.success),
            ]
        )
        insert = sql.SQL(
            "INSERT INTO {} (installed_rank, version, description, type, script, checksum, "
            "installed_by, execution_time_ms, success) VALUES ({})"
        ).format(self._table, values)
        self._write_history(insert)

    def delete_history(self, ranks: Sequence[int]) -> None:
        self._write_history(
            sql.SQL("DELETE FROM {} WHERE installed_rank = ANY({})").format(
                self._table, sql.Literal(list(ranks))
            )
        )

    def update_checksum(self, rank: int, checksum: str) -> None:
        self._write_history(
            sql.SQL("UPDATE {} SET checksum = {} WHERE installed_rank = {}").format(
                self._table, sql.Literal(checksum), sql.Literal(rank)
            )
        )

    def _write_history(self, query: sql.Composable) -> None:
        # Inside a transaction, history writes go with its COMMIT so they can
        # never land outside it; outside, they go at once.
        text = query.as_string(self.conn)
        if self._depth:
            self._pending.append(text)
        else:
            self._send([*self._prefix, text])
            self._prefix.clear()
            self._committed = True

    def clean(self) -> list[str]:
        schema = sql.Identifier(self.schema)
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r','v','m','S','f','p') ORDER BY 1",
            (self.schema,),
        ).fetchall()
        owner = self.conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (self.schema,)
        ).fetchone()
        if owner is None:
            return []
        with self.conn.transaction():
            self.conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))
            self.conn.execute(
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                    schema, sql.Identifier(owner[0])
                )
            )
        return [str(r[0]) for r in rows]

    def foreign_journal(self) -> ForeignJournal | None:
        from persistor.engines.journals import read_foreign_journal

        return read_foreign_journal(self.conn, self.schema)

    def syntax_problems(self, text: str) -> list[tuple[int, str]]:
        from persistor.engines.pgparse import syntax_problems

        return syntax_problems(text)


def _statement_failed(exc: psycopg.Error, offset: int = 0) -> StatementFailed:
    """Return what the server said about a failed query; offset: length of a prefix sent first."""
    diag = exc.diag
    position = int(diag.statement_position) if diag.statement_position else None
    if position is not None:
        position = position - offset if position > offset else None
    message = diag.message_primary or _first_line(str(exc))
    extra = [x for x in (diag.message_detail, diag.message_hint, diag.context) if x]
    return StatementFailed(message, exc.sqlstate, position, "\n".join(extra) or None)


def _lease_lost() -> LockLostError:
    return LockLostError(
        "lost the migration lock: its lease ran out while this migrator was stalled "
        "and another migrator took over; nothing more was committed. Run migrate again"
    )


def _session_moved(pid: int) -> LockLostError:
    return LockLostError(
        f"lost the migration lock: it is held by server session pid {pid}, but this "
        "transaction ran on another one, where the lock does not keep other migrators out: "
        "a transaction pooler (or a reset server connection) moved this migrator between "
        "server sessions. Nothing more was committed. Use --lock-mode table behind a "
        "transaction pooler, then run migrate again"
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
