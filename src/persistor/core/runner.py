"""Running scripts through an engine: one transaction per script with its history row."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from persistor.core.no_transaction import first_keyword, needs_no_transaction
from persistor.core.resume import progress_checksum, resume_point
from persistor.core.scripts import ScriptFile, ScriptKind
from persistor.core.source import ExpandedScript
from persistor.core.splitter import SplitError, Statement, split_statements
from persistor.engines.base import Engine, HistoryRow, HistoryType, NewHistoryRow, StatementFailed
from persistor.errors import MigrationError, Problem, SourceLocation

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


def _prepare_sqlite(
    file: ScriptFile, source: ExpandedScript, statements: tuple[Statement, ...]
) -> PreparedScript | Problem:
    # The SQLite migration lock is the run's own write transaction, so every
    # statement runs inside it, and SQLite refuses VACUUM there: say so
    # before anything runs rather than fail half way through the run.
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


def commit_failure(what: str, exc: StatementFailed, kept: str) -> MigrationError:
    """Return the error for a transaction that failed at COMMIT (a deferred constraint, say)."""
    state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
    message = f"{what} failed at COMMIT, after its last statement: {exc.message}{state}"
    if exc.detail:
        message += "\n" + exc.detail
    message += f"\n{kept}; fix it and run migrate again."
    return MigrationError(message, script=what, sqlstate=exc.sqlstate, server_message=exc.message)


def _failure(script: PreparedScript, stmt: Statement, exc: StatementFailed) -> MigrationError:
    line = stmt.line
    if exc.position:
        line += stmt.text[: exc.position - 1].count("\n")
    loc: SourceLocation = script.source.locate(line)
    state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
    message = f"{script.file.name} failed at {loc}: {exc.message}{state}"
    if exc.detail:
        message += "\n" + exc.detail
    if script.transactional:
        message += "\nNothing of this script was applied; fix it and run migrate again."
    return MigrationError(
        message,
        script=script.file.name,
        location=loc,
        sqlstate=exc.sqlstate,
        server_message=exc.message,
    )


def run_script(engine: Engine, script: PreparedScript, rank: int) -> int:
    """Apply one script and record it; return its execution time in milliseconds."""
    started = time.perf_counter()
    if script.transactional:
        try:
            with engine.transaction():
                engine.prepare_script()
                _execute_all(engine, script, script.statements)
                elapsed = int((time.perf_counter() - started) * 1000)
                engine.insert_history(_row(script, rank, elapsed, True))
        except StatementFailed as exc:  # the statements ran: it failed as it committed
            raise commit_failure(
                script.file.name, exc, "Nothing of this script was applied"
            ) from None
        return elapsed
    return _run_outside_transaction(engine, script, rank, started)


def _run_outside_transaction(
    engine: Engine, script: PreparedScript, rank: int, started: float
) -> int:
    """Run a no-transaction script statement by statement, recording progress as it goes.

    A row with success = false and the count of completed statements is
    written before the first statement and advanced after each, so a run
    killed midway looks like a failure at the statement that was running:
    the next migrate resumes there instead of repeating what already ran.
    """
    engine.prepare_script()
    with engine.transaction():
        if script.replaces is not None:
            engine.delete_history([script.replaces])
        engine.insert_history(_row(script, rank, 0, False, done=script.start))
    for index in range(script.start, len(script.statements)):
        stmt = script.statements[index]
        engine.check_lock()
        try:
            engine.execute(stmt.text)
        except StatementFailed as exc:
            raise _failure(script, stmt, exc) from None
        engine.update_checksum(rank, progress_checksum(script.statements, index + 1))
    elapsed = int((time.perf_counter() - started) * 1000)
    with engine.transaction():
        engine.delete_history([rank])
        engine.insert_history(_row(script, rank, elapsed, True))
    return elapsed


def _execute_all(engine: Engine, script: PreparedScript, statements: Sequence[Statement]) -> None:
    for stmt in statements:
        try:
            engine.execute(stmt.text)
        except StatementFailed as exc:
            raise _failure(script, stmt, exc) from None
