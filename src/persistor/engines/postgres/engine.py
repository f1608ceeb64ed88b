"""PostgreSQL through psycopg 3.

The connection runs in autocommit; transactions are driven by hand. What
goes over the wire, and when, is in transaction.py (batched BEGIN, history
writes with COMMIT); the lock modes and their fence are in lock.py; the
history table's SQL is in history.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import sql

from persistor.engines.base import (
    Blocker,
    Engine,
    HistoryRow,
    ServerInfo,
    Transaction,
    WaitCallback,
)
from persistor.engines.foreign import ForeignHistory, ForeignTable
from persistor.engines.postgres import search_path
from persistor.engines.postgres.blockers import BlockerWatch, watch_interval
from persistor.engines.postgres.errors import first_line, server_message, statement_failed
from persistor.engines.postgres.history import HistoryTable
from persistor.engines.postgres.lock import (
    Fence,
    advisory_holder,
    advisory_lock,
    lock_key,
    table_lock,
    table_lock_holder,
)
from persistor.engines.postgres.transaction import (
    Outbox,
    PgTransaction,
    lost_connection,
    set_search_path,
    timeout_settings,
)
from persistor.engines.snapshot import SchemaDump, SchemaObject
from persistor.errors import ConnectError, PersistorError, PrivilegeError, UsageError
from persistor.urls import mask_url, scrub

APPLICATION_NAME = "persistor"


class PostgresEngine(Engine):
    """PostgreSQL 15+; autocommit connection, explicit transactions per script."""

    name: ClassVar[str] = "postgresql"
    dialect: ClassVar[Literal["postgresql", "sqlite"]] = "postgresql"

    def __init__(
        self,
        url: str,
        schema: str | None,
        history_table: str,
        *,
        connect_timeout: int,
        lock_mode: str,  # "session" or "table", checked by persistor.settings
        lock_lease: float,
        lock_timeout_ms: int = 0,
        statement_timeout_ms: int = 0,
    ) -> None:
        super().__init__(schema, history_table)
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
                f"cannot connect to {mask_url(url)}: {scrub(first_line(str(exc)), url)}; check "
                "that the server is running, the host/port/database are right, and the password "
                "(PGPASSWORD, ~/.pgpass or the URL)"
            ) from None
        self._history = HistoryTable(self.conn, self.schema, history_table)
        # Migration statements only: the migration lock's own queries never wait
        # on the server (try-and-back-off), and its wait has its own timeout.
        self._timeouts = (lock_timeout_ms, statement_timeout_ms)
        watch = None
        if lock_timeout_ms:
            watch = BlockerWatch(self._connect, watch_interval(lock_timeout_ms))
        limits = timeout_settings(lock_timeout_ms, statement_timeout_ms, "LOCAL")
        path = partial(search_path.for_scripts, self.conn, schema)
        self._outbox = Outbox(self.conn, path, limits, watch)
        self._depth = 0  # transactions open: the next one is a savepoint inside them
        self._fence: Fence | None = None  # while the lock is held

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
        if self._outbox.watch is not None:
            self._outbox.watch.close()
        self.conn.close()

    def server_info(self) -> ServerInfo:
        row = self.conn.execute(
            "SELECT current_setting('server_version'), current_user, current_database()"
        ).fetchone()
        assert row is not None
        return ServerInfo("postgresql", str(row[0]), str(row[1]), str(row[2]), self.schema)

    @contextmanager
    def lock(self, timeout: float, on_wait: WaitCallback) -> Iterator[None]:
        # Either mode gives a Fence, which every COMMIT carries while we hold it.
        if self.lock_mode == "table":
            held = table_lock(
                self.conn,
                self._connect,
                self.schema,
                self._lock_table,
                timeout,
                on_wait,
                self.lock_lease,
            )
            flush: AbstractContextManager[None] = contextlib.nullcontext()
        else:
            held = advisory_lock(
                self.conn, lock_key(self.schema, self.history_table), timeout, on_wait
            )
            flush = self._one_flush_at_end()
        with held as fence, flush:
            self._fence = fence
            try:
                yield
            finally:
                self._fence = None

    @contextmanager
    def _one_flush_at_end(self) -> Iterator[None]:
        """Let commits skip their own WAL flush while inside; flush once at the end.

        Each script still commits atomically with its history row, but without
        waiting for its WAL flush; one synchronous commit at the end makes the
        run durable before persistor reports success. A server crash mid-run
        can only lose whole scripts together with their history rows, and the
        next run applies them again. Only for the session lock: behind a
        transaction pooler a session SET would leak to other clients.
        """
        self.conn.execute(b"SET synchronous_commit TO off")
        commits = self._outbox.commits
        try:
            yield
        finally:
            if not self.conn.closed:
                with contextlib.suppress(psycopg.Error):
                    self.conn.execute(b"SET synchronous_commit TO on")
                    if self._outbox.commits > commits:
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

    def check_lock(self) -> None:
        if self._fence is not None:
            try:
                self._outbox.send(self._fence.statement)
            except psycopg.Error as exc:
                if self._fence.signals_loss(exc):
                    raise self._fence.lost() from None
                raise

    def is_lock_timeout(self, sqlstate: str | None) -> bool:
        return sqlstate == "55P03"  # lock_not_available: lock_timeout, or a NOWAIT lock

    def last_blocker(self) -> Blocker | None:
        watch = self._outbox.watch
        return None if watch is None else watch.seen

    @contextmanager
    def without_lock_timeout(self) -> Iterator[None]:
        # Outside a transaction only the session lock mode set one (reset_search_path).
        if not self._timeouts[0] or self.lock_mode == "table":
            yield
            return
        self._outbox.send("SET lock_timeout = 0")
        try:
            yield
        finally:
            if not self.conn.closed:
                with contextlib.suppress(psycopg.Error):
                    self._outbox.send(f"SET lock_timeout = {self._timeouts[0]:d}")

    def read_history(self) -> list[HistoryRow]:
        return self._history.read()

    def ensure_history(self) -> None:
        self._history.ensure()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        # See transaction.py: BEGIN goes with the first statement, history writes with COMMIT.
        tx = PgTransaction(self._outbox, self._history, self._depth, self._fence)
        self._depth += 1
        try:
            yield tx
        finally:
            self._depth -= 1
            if not tx.finished:
                tx.rollback()

    def reset_search_path(self) -> None:
        if self.lock_mode == "table":
            # Behind a transaction pooler a session SET would leak to other
            # clients; statements outside a transaction use the role's default.
            return
        # Sent apart from the statements: several statements in one query form
        # an implicit transaction, which CREATE INDEX CONCURRENTLY refuses.
        # The timeouts stay for the session; every transaction sets its own.
        self._outbox.send(
            set_search_path(self._outbox.search_path(), "SESSION").as_string(self.conn),
            *timeout_settings(*self._timeouts, "SESSION"),
        )

    def execute(self, statement: str) -> None:
        self._outbox.run(statement, self._fence)
        self._outbox.commits += 1

    def connection(self) -> psycopg.Connection[Any]:
        self._outbox.commits += 1  # what the caller runs commits as it goes
        return self.conn

    def record_progress(self, rank: int, checksum: str) -> None:
        write = self._history.update_checksum(rank, checksum)
        try:
            self._outbox.send(write.sql)
        except psycopg.Error as exc:
            raise self._history.write_denied(exc, [write]) or statement_failed(exc) from None
        self._outbox.commits += 1

    def clean(self) -> list[str]:
        try:
            return self._drop_and_recreate_schema()
        except psycopg.Error as exc:
            raise self._clean_failed(exc) from None

    def _drop_and_recreate_schema(self) -> list[str]:
        schema = sql.Identifier(self.schema)
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r','v','m','S','f','p') ORDER BY 1",
            (self.schema,),
        ).fetchall()
        owner = self._schema_owner()
        if owner is None:
            return []
        with self.conn.transaction():
            self.conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))
            self.conn.execute(
                sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, sql.Identifier(owner))
            )
        return [str(r[0]) for r in rows]

    def _schema_owner(self) -> str | None:
        row = self.conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (self.schema,)
        ).fetchone()
        return None if row is None else str(row[0])

    def _clean_failed(self, exc: psycopg.Error) -> PersistorError:
        """Return the error for a clean the server refused; it changed nothing."""
        if self.conn.broken:
            return ConnectError(
                f"lost the connection during clean: {first_line(str(exc))}. Run "
                "`persistor status` to see what is left, then clean again"
            )
        schema = sql.Identifier(self.schema).as_string(self.conn)
        error: PersistorError
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            error = PrivilegeError(
                f"role {self.conn.info.user} may not clean schema {schema}: {server_message(exc)}. "
                f"clean drops the schema and creates it again for its owner "
                f"({self._schema_owner()}), which needs that owner or a member of it, with "
                "CREATE on the database; run clean as such a role. Nothing was dropped"
            )
        else:
            failure = statement_failed(exc)
            detail = f"\n{failure.detail}" if failure.detail else ""
            error = PersistorError(
                f"clean of schema {schema} failed: {failure.message} "
                f"(SQLSTATE {failure.sqlstate}){detail}\nNothing was dropped"
            )
        error.sqlstate = exc.sqlstate
        return error

    def history_exists(self) -> bool:
        return self._history.exists()

    def find_foreign_histories(self) -> list[ForeignTable]:
        from persistor.engines.postgres.journals import find_foreign_tables

        return find_foreign_tables(self.conn, self.schema)

    def read_foreign_history(self, found: ForeignTable) -> ForeignHistory:
        from persistor.engines.postgres.journals import read_foreign_table

        return read_foreign_table(self.conn, self.schema, found)

    def connection_lost(self, exc: BaseException) -> Exception | None:
        # Our own errors already say what happened (e.g. a COMMIT whose fate is unknown).
        if self.conn.broken and not isinstance(exc, PersistorError):
            return lost_connection(exc)
        return None

    def syntax_problems(self, text: str) -> list[tuple[int, str]]:
        from persistor.engines.postgres.parse import syntax_problems

        return syntax_problems(text)

    def dump_schema(self) -> SchemaDump:
        from persistor.engines.postgres import catalog_dump, pgdump

        version = self.conn.info.server_version
        try:
            return pgdump.dump_schema(self._url, version, self.schema, self.own_tables)
        except pgdump.NoPgDump as exc:  # no pg_dump new enough: persistor's own catalog reader
            text = catalog_dump.render(self.schema, self.schema_objects())
            return SchemaDump(text, f"persistor's catalog reader ({exc})")

    def schema_objects(self) -> list[SchemaObject]:
        from persistor.engines.postgres.inspect import read_objects

        # Another tool's history table (kept after `baseline` adopted it) is
        # that tool's bookkeeping, not the schema the migrations build.
        adopted = tuple(t.table for t in self.find_foreign_histories())
        return read_objects(self.conn, self.schema, (*self.own_tables, *adopted))

    def scratch_database(self) -> AbstractContextManager[str]:
        from persistor.engines.postgres.scratch import scratch_database

        return scratch_database(self.conn, self._url)
