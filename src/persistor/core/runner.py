"""Running scripts through an engine: one transaction per script with its history row.

api.migrate plans under the lock, then calls run_script for each script:
it opens the engine's transaction, runs the statements through it, adds the
history row and commits. What it says is what the database gets; which of
it shares a round trip is the engine's to say (engines/postgres/transaction.py).
A failing statement becomes the MigrationError naming file and line
(_failure), a refused COMMIT the one naming the script (committing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from persistor.core.resume import progress_checksum, resume_point
from persistor.core.scripts import ScriptFile, ScriptKind
from persistor.core.source import ExpandedScript
from persistor.engines.base import Engine, HistoryRow, HistoryType, NewHistoryRow, StatementFailed
from persistor.errors import MigrationError, Problem, SourceLocation

if TYPE_CHECKING:
    from persistor.core.python_migrations import PythonMigration
    from persistor.core.retry import LockRetry
    from persistor.core.splitter import Statement

NO_TRANSACTION = "no-transaction"


@dataclass(frozen=True)
class PreparedScript:
    """A script split into statements, with how it must run."""

    file: ScriptFile
    source: ExpandedScript
    statements: tuple[Statement, ...]
    transactional: bool
    start: int = 0  # statements already run by an earlier, failed attempt
    replaces: int | None = None  # rank of that attempt's failed history row
    python: PythonMigration | None = None  # a Python migration: its migrate(conn), no statements

    def shown(self) -> str:
        """Return what a dry run shows: the SQL, or the Python call it would make."""
        return self.python.describe() if self.python is not None else self.source.text


def prepare(
    file: ScriptFile, source: ExpandedScript, dialect: str, resume: HistoryRow | None = None
) -> PreparedScript | Problem:
    """Split a script and decide how it runs; a Problem if it cannot run."""
    prepared = _prepare(file, source, dialect)
    if resume is None or isinstance(prepared, Problem):
        return prepared
    start = resume_point(prepared.file.name, prepared.statements, prepared.transactional, resume)
    if isinstance(start, Problem):
        return start
    return replace(prepared, start=start, replaces=resume.installed_rank)


def _prepare(file: ScriptFile, source: ExpandedScript, dialect: str) -> PreparedScript | Problem:
    if file.is_python:
        return _prepare_python(file, source)
    # Loaded here, not at import: a migrate with nothing to do never splits.
    from persistor.core.no_transaction import needs_no_transaction
    from persistor.core.splitter import SplitError, split_statements

    try:
        statements = tuple(
            split_statements(source.text, "sqlite" if dialect == "sqlite" else "postgresql")
        )
    except SplitError as exc:
        loc = source.locate(exc.line)
        return Problem("syntax", file.name, f"{loc}: {exc}")
    if dialect == "sqlite":
        return _prepare_sqlite(file, source, statements)
    if NO_TRANSACTION in source.directives:
        return PreparedScript(file, source, statements, transactional=False)
    outside = [s for s in statements if needs_no_transaction(s.text)]
    if outside and len(outside) == len(statements):
        return PreparedScript(file, source, statements, transactional=False)
    if outside:
        first = outside[0]
        loc = source.locate(first.line)
        return Problem(
            "mixed_transaction",
            file.name,
            f"{loc}: '{_head(first.text)}' cannot run inside a transaction, but the file also holds "
            "ordinary statements; move it to a migration of its own (it then runs without a "
            "transaction), or add '-- persistor:no-transaction' at the top to run the whole file "
            "statement by statement",
        )
    return PreparedScript(file, source, statements, transactional=True)


def _prepare_python(file: ScriptFile, source: ExpandedScript) -> PreparedScript | Problem:
    # Importing runs the module's top level: done when the script is planned
    # to run (migrate, --dry-run, validate), so a broken one stops the run first.
    from persistor.core.python_migrations import load

    loaded = load(file, source)
    if isinstance(loaded, Problem):
        return loaded
    return PreparedScript(file, source, (), loaded.transactional, python=loaded)


def _prepare_sqlite(
    file: ScriptFile, source: ExpandedScript, statements: tuple[Statement, ...]
) -> PreparedScript | Problem:
    # The SQLite migration lock is the run's own write transaction, so every
    # statement runs inside it, and SQLite refuses VACUUM there: say so
    # before anything runs rather than fail half way through the run.
    from persistor.core.no_transaction import first_keyword

    for stmt in statements:
        if first_keyword(stmt.text) == "vacuum":
            return Problem(
                "sqlite_vacuum",
                file.name,
                f"{source.locate(stmt.line)}: SQLite cannot VACUUM inside a transaction, and "
                "persistor holds one for the whole run as its lock; remove VACUUM from the "
                "migration and run it on its own (sqlite3 <file> VACUUM) after migrate",
            )
    transactional = NO_TRANSACTION not in source.directives
    return PreparedScript(file, source, statements, transactional=transactional)


def _head(text: str, width: int = 60) -> str:
    first = " ".join(text.split())
    return first if len(first) <= width else first[: width - 1] + "…"


def history_type(file: ScriptFile) -> HistoryType:
    """Return the history row type for a script kind."""
    if file.kind is ScriptKind.BASELINE:
        return "BASELINE"  # a B script: what is below it counts as covered, as for `baseline`
    return "UNDO" if file.kind is ScriptKind.UNDO else "SQL"


def _row(
    script: PreparedScript, rank: int, elapsed_ms: int, success: bool, done: int | None = None
) -> NewHistoryRow:
    f = script.file
    checksum = script.source.checksum
    if done is not None:
        checksum = progress_checksum(script.statements, done)
    return NewHistoryRow(
        installed_rank=rank,
        version=f.version.text if f.version is not None else None,
        description=f.description,
        type=history_type(f),
        script=f.name,
        checksum=checksum,
        execution_time_ms=elapsed_ms,
        success=success,
    )


@contextmanager
def committing(what: str, kept: Callable[[], str]) -> Iterator[None]:
    """Turn a COMMIT the database refuses inside into the MigrationError that names `what`.

    The one place a refused COMMIT (what only COMMIT checks, such as a
    deferred constraint) becomes a migration failure: a script's own
    transaction here, a whole run's (SQLite, --single-transaction) in
    api.migrate. `kept` says what survived, asked when it happens.
    """
    try:
        yield
    except StatementFailed as exc:
        message = f"{what} failed at COMMIT, after its last statement: {_server_says(exc)}"
        message += f"\n{kept()}; fix it and run migrate again."
        raise MigrationError(
            message, script=what, sqlstate=exc.sqlstate, server_message=exc.message
        ) from None


def _server_says(exc: StatementFailed) -> str:
    """Return the server's message with its SQLSTATE, and its detail on a line of its own."""
    said = f"{exc.message} (SQLSTATE {exc.sqlstate})" if exc.sqlstate else exc.message
    return f"{said}\n{exc.detail}" if exc.detail else said


def _failure(script: PreparedScript, stmt: Statement, exc: StatementFailed) -> MigrationError:
    line = stmt.line
    if exc.position:
        line += stmt.text[: exc.position - 1].count("\n")
    loc: SourceLocation = script.source.locate(line)
    message = f"{script.file.name} failed at {loc}: {_server_says(exc)}"
    if script.transactional:
        message += f"\n{NOTHING_KEPT}; fix it and run migrate again."
    return MigrationError(
        message,
        script=script.file.name,
        location=loc,
        sqlstate=exc.sqlstate,
        server_message=exc.message,
    )


NOTHING_KEPT = "Nothing of this script was applied"
EARLIER_KEPT = "The statements before it stay applied, and the next migrate resumes at this one"

# Flyway's beforeEachMigrate / afterEachMigrate callbacks: run just before and
# just after a script, in its transaction, never recorded.
Hooks = tuple[Sequence["PreparedScript"], Sequence["PreparedScript"]]


def run_script(
    engine: Engine,
    script: PreparedScript,
    rank: int,
    hooks: Hooks = ((), ()),
    retry: LockRetry | None = None,
) -> int:
    """Apply one script and record it; return its execution time in milliseconds.

    With `retry`, a script that gave up waiting for a lock is tried again
    whole (a no-transaction script: the statement that gave up).
    """
    if script.python is not None:
        return _run_python(engine, script, script.python, rank, hooks)
    if not script.transactional:
        return _run_outside_transaction(engine, script, rank, hooks, retry)
    if retry is None:
        return _run_in_transaction(engine, script, rank, hooks)
    from persistor.core.retry import with_lock_retries

    return with_lock_retries(
        engine, retry, lambda: _run_in_transaction(engine, script, rank, hooks), NOTHING_KEPT
    )


def _run_in_transaction(engine: Engine, script: PreparedScript, rank: int, hooks: Hooks) -> int:
    started = time.perf_counter()
    with engine.transaction() as tx:  # PostgreSQL: BEGIN goes with the first statement
        tx.reset_search_path()
        for hook in hooks[0]:
            execute_statements(tx.execute, hook)
        for stmt in script.statements:
            _execute(tx.execute, script, stmt)
        for hook in hooks[1]:
            execute_statements(tx.execute, hook)
        elapsed = _ms_since(started)
        tx.insert_history(_row(script, rank, elapsed, True))
        with committing(script.file.name, lambda: NOTHING_KEPT):
            tx.commit()  # PostgreSQL: the history row, the lock's fence and COMMIT at once
    return elapsed


def _run_outside_transaction(
    engine: Engine, script: PreparedScript, rank: int, hooks: Hooks, retry: LockRetry | None
) -> int:
    """Run a no-transaction script statement by statement, recording progress as it goes.

    A row with success = false and the count of completed statements is
    written before the first statement and advanced after each, so a run
    killed midway looks like a failure at the statement that was running:
    the next migrate resumes there instead of repeating what already ran.
    """
    started = time.perf_counter()
    engine.reset_search_path()
    with engine.transaction() as tx:
        if script.replaces is not None:
            tx.delete_history([script.replaces])
        tx.insert_history(_row(script, rank, 0, False, done=script.start))
        tx.commit()
    for hook in hooks[0]:
        execute_statements(engine.execute, hook)
    for index in range(script.start, len(script.statements)):
        stmt = script.statements[index]
        _execute_outside(engine, script, stmt, retry)
        engine.record_progress(rank, progress_checksum(script.statements, index + 1))
    for hook in hooks[1]:
        execute_statements(engine.execute, hook)
    return _replace_failed_row(engine, script, rank, _ms_since(started))


def _run_python(
    engine: Engine,
    script: PreparedScript,
    python: PythonMigration,
    rank: int,
    hooks: Hooks = ((), ()),
) -> int:
    """Call a Python migration's migrate(conn) and record it, in its transaction unless it opted out.

    Outside a transaction the row is written as failed first, as for a
    no-transaction SQL script, so a failure or a kill midway leaves a failed
    row that stops later runs until `repair`.
    """
    started = time.perf_counter()
    if script.transactional:
        with engine.transaction() as tx:
            tx.reset_search_path()
            for hook in hooks[0]:
                execute_statements(tx.execute, hook)
            python.call(tx.connection())
            for hook in hooks[1]:
                execute_statements(tx.execute, hook)
            elapsed = _ms_since(started)
            tx.insert_history(_row(script, rank, elapsed, True))
            with committing(script.file.name, lambda: NOTHING_KEPT):
                tx.commit()
        return elapsed
    engine.reset_search_path()
    with engine.transaction() as tx:
        tx.insert_history(_row(script, rank, 0, False))
        tx.commit()
    python.call(engine.connection())
    return _replace_failed_row(engine, script, rank, _ms_since(started))


def _replace_failed_row(engine: Engine, script: PreparedScript, rank: int, elapsed: int) -> int:
    """Swap the failed row written before an out-of-transaction run for its success row."""
    with engine.transaction() as tx:
        tx.delete_history([rank])
        tx.insert_history(_row(script, rank, elapsed, True))
        tx.commit()
    return elapsed


def execute_statements(execute: Callable[[str], None], script: PreparedScript) -> None:
    """Run every statement of a script through execute (no history row: a callback's way)."""
    for stmt in script.statements:
        _execute(execute, script, stmt)


def _execute_outside(
    engine: Engine, script: PreparedScript, stmt: Statement, retry: LockRetry | None
) -> None:
    """Run one statement of a no-transaction script, again after a lock timeout with `retry`."""

    from persistor.core.no_transaction import blocks_no_traffic

    def attempt() -> None:
        engine.check_lock()
        _execute(engine.execute, script, stmt)

    if blocks_no_traffic(stmt.text):  # it may wait: giving up would leave an INVALID index
        with engine.without_lock_timeout():
            return attempt()
    if retry is None:
        return attempt()
    from persistor.core.retry import with_lock_retries

    return with_lock_retries(engine, retry, attempt, EARLIER_KEPT)


def _execute(execute: Callable[[str], None], script: PreparedScript, stmt: Statement) -> None:
    """Run one statement of a script; a failure becomes the MigrationError naming file and line."""
    try:
        execute(stmt.text)
    except StatementFailed as exc:
        raise _failure(script, stmt, exc) from None


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
