"""The one small interface every database engine implements.

The core plans and applies migrations through these methods only; it never
imports a driver. An engine swaps SQL and a few hooks, not logic.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

from persistor.engines.foreign import ForeignHistory, ForeignTable
from persistor.errors import LockTimeoutError, UsageError

if TYPE_CHECKING:
    from persistor.engines.snapshot import SchemaDump, SchemaObject

# NO_FILE: applied by another tool, imported by `baseline`, needs no file on disk.
HistoryType = Literal["SQL", "BASELINE", "UNDO", "DELETE", "NO_FILE"]

# The value types below are NamedTuples, not dataclasses: one is made per
# script or history row, and a frozen dataclass costs several times more to
# define at import and to build (W2/W5 in bench/).


class HistoryRow(NamedTuple):
    """One row of the history table."""

    installed_rank: int
    version: str | None
    description: str
    type: str
    script: str
    checksum: str | None
    installed_by: str
    installed_at: datetime | None
    execution_time_ms: int
    success: bool


class NewHistoryRow(NamedTuple):
    """A history row about to be written; rank and time are the engine's to fill."""

    installed_rank: int
    version: str | None
    description: str
    type: HistoryType
    script: str
    checksum: str | None
    execution_time_ms: int
    success: bool
    # Only an imported row knows these; otherwise the engine writes who and when.
    installed_by: str | None = None
    installed_at: datetime | None = None


class ServerInfo(NamedTuple):
    """What `persistor test` reports about the connection."""

    engine: str
    server_version: str
    user: str
    database: str
    schema: str


class Blocker(NamedTuple):
    """The session a statement waited for when it gave up on a lock (pg_blocking_pids)."""

    pid: int
    query: str  # its current or last query, shortened: the application's text, shown as a hint
    state: str | None  # e.g. "idle in transaction": a transaction left open
    user: str | None
    application: str | None
    transaction_s: int | None  # how long its transaction has been open
    others: int = 0  # further sessions in the way

    def __str__(self) -> str:
        who = ", ".join(
            x
            for x in (
                f"user {self.user}" if self.user else None,
                self.application or None,
                self.state,
                f"transaction open {self.transaction_s} s"
                if self.transaction_s is not None
                else None,
            )
            if x
        )
        more = f" and {self.others} other session(s)" if self.others else ""
        return f"pid {self.pid} ({who}; query: {self.query}){more}"


class StatementFailed(Exception):
    """A statement failed on the server; carries what the server said."""

    def __init__(
        self, message: str, sqlstate: str | None, position: int | None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.position = position  # 1-based character offset in the statement, if known
        self.detail = detail


WaitCallback = Callable[[str], None]


def wait_for_lock(
    try_once: Callable[[], bool],
    describe_holder: Callable[[], str],
    timeout: float,
    on_wait: WaitCallback,
    *,
    max_delay: float = 1.0,
) -> None:
    """Call try_once with growing pauses until it succeeds; say once whom we wait for.

    Raises LockTimeoutError (exit 6) naming the holder when timeout runs out.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    told = False
    while not try_once():
        holder = describe_holder()
        if not told:
            on_wait(f"waiting for the migration lock held by {holder}")
            told = True
        if time.monotonic() >= deadline:
            raise LockTimeoutError(
                f"could not get the migration lock within {timeout:g} s; it is held by "
                f"{holder}. Wait for that migrator to finish, or raise --lock-timeout"
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, max_delay)


class Transaction(abc.ABC):
    """One open transaction (a savepoint inside another): what runs through it commits together.

    An engine may hold part of it back for a later round trip: PostgreSQL
    sends BEGIN with the first statement and the history writes with COMMIT
    (engines/postgres/transaction.py), so a history write can fail only at commit().
    Nothing is committed before commit() returns.
    """

    @abc.abstractmethod
    def reset_search_path(self) -> None:
        """Start the next script from the target schema, whatever an earlier one set."""

    @abc.abstractmethod
    def execute(self, statement: str) -> None:
        """Run one statement; raise StatementFailed with the server's diagnostics."""

    @abc.abstractmethod
    def insert_history(self, row: NewHistoryRow) -> None:
        """Append a history row."""

    @abc.abstractmethod
    def connection(self) -> object:
        """Return the driver's connection, inside this transaction (a Python migration's `conn`).

        What the caller runs on it commits or rolls back with this transaction.
        """

    @abc.abstractmethod
    def delete_history(self, ranks: Sequence[int]) -> None:
        """Delete history rows by rank."""

    @abc.abstractmethod
    def update_checksum(self, rank: int, checksum: str) -> None:
        """Set the stored checksum of one history row."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Commit (release the savepoint); raise StatementFailed if the database refuses.

        A refusal is what only COMMIT checks, such as a deferred constraint;
        the transaction is rolled back by then.
        """


class Engine(abc.ABC):
    """A connection to one database, with the operations the migrator needs."""

    name: ClassVar[str]
    dialect: ClassVar[Literal["postgresql", "sqlite"]]

    def __init__(self, schema: str | None, history_table: str) -> None:
        self.schema = schema or self.default_schema
        self.history_table = history_table
        self.exists = True  # False: the database is not there yet (a read-only look at nothing)

    @property
    @abc.abstractmethod
    def default_schema(self) -> str:
        """Return the schema used when none is configured."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; releases a session lock if one is held."""

    @abc.abstractmethod
    def server_info(self) -> ServerInfo:
        """Return engine, server version, user, database and schema."""

    @abc.abstractmethod
    def lock(self, timeout: float, on_wait: WaitCallback) -> AbstractContextManager[None]:
        """Hold the migration lock for this schema and history table while inside."""

    def lock_holder(self) -> str | None:
        """Return who holds the migration lock right now, without waiting; None if nobody.

        Engines whose running scripts are invisible to others (SQLite's
        immediate transaction) return None.
        """
        return None

    def check_lock(self) -> None:
        """Raise LockLostError if this migrator no longer holds the lock."""
        return None

    # Waiting for the application's locks (not the migration lock): PostgreSQL
    # runs each migration statement with lock_timeout; SQLite needs none, as
    # its migration lock is the run's own write transaction, taken up front.

    def is_lock_timeout(self, sqlstate: str | None) -> bool:
        """Return whether a failure means a statement gave up waiting for a lock (retry it)."""
        return False

    def last_blocker(self) -> Blocker | None:
        """Return who blocked the last statement that waited for a lock, if it was seen."""
        return None

    def without_lock_timeout(self) -> AbstractContextManager[None]:
        """Let the statements run inside wait for locks as long as it takes (no lock timeout)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def read_history(self) -> list[HistoryRow]:
        """Return the history rows in rank order; empty when the table does not exist."""

    @abc.abstractmethod
    def ensure_history(self) -> None:
        """Create the schema and the history table when missing (inside the lock)."""

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open a transaction (a savepoint inside another); it rolls back unless committed."""

    # Outside any transaction: a no-transaction script, statement by statement.

    @abc.abstractmethod
    def reset_search_path(self) -> None:
        """Start a script that runs outside a transaction from the target schema."""

    @abc.abstractmethod
    def execute(self, statement: str) -> None:
        """Run one statement on its own, committed at once; raise StatementFailed."""

    @abc.abstractmethod
    def connection(self) -> object:
        """Return the driver's connection, outside any transaction (TRANSACTION = False)."""

    @abc.abstractmethod
    def record_progress(self, rank: int, checksum: str) -> None:
        """Set the checksum of one history row at once (a no-transaction script's progress)."""

    @abc.abstractmethod
    def clean(self) -> list[str]:
        """Drop every object in the schema; return what was dropped."""

    @abc.abstractmethod
    def history_exists(self) -> bool:
        """Return whether persistor's history table is there (empty or not)."""

    @abc.abstractmethod
    def find_foreign_histories(self) -> list[ForeignTable]:
        """Return the other tools' history tables in the target schema (engines/foreign.py)."""

    @abc.abstractmethod
    def read_foreign_history(self, found: ForeignTable) -> ForeignHistory:
        """Return the rows of one of the tables find_foreign_histories returned."""

    def syntax_problems(self, text: str) -> list[tuple[int, str]]:
        """Return (offset, message) for syntax errors found offline, if the engine can parse."""
        return []

    # What the database holds: `persistor dump` and `persistor drift`.

    @property
    def own_tables(self) -> tuple[str, ...]:
        """Return the tables persistor itself keeps in the schema (history, lock): never drift."""
        return (self.history_table, self.history_table + "_lock")

    def dump_schema(self) -> SchemaDump:
        """Return the schema's structure as deterministic SQL, persistor's own tables left out."""
        raise UsageError(f"dump is not available on {self.name}")

    def schema_objects(self) -> list[SchemaObject]:
        """Return every object of the schema with its definition, persistor's own tables left out."""
        raise UsageError(
            f"drift is PostgreSQL-only: it has no catalog reader for {self.name}; "
            "use `persistor dump` on both databases and diff the files"
        )

    def scratch_database(self) -> AbstractContextManager[str]:
        """Create an empty database beside this one; yield its URL; drop it on the way out."""
        raise UsageError(f"drift is PostgreSQL-only: {self.name} has no scratch database")

    def connection_lost(self, exc: BaseException) -> Exception | None:
        """Return the error to raise when exc came from losing the server (crash, failover)."""
        return None
