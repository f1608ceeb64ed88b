"""Python migrations: `V<version>__<name>.py` and `R__<name>.py` beside the SQL scripts.

A Python migration is a module with a function `migrate(conn)`. The runner
calls it inside the script's transaction with the engine's own connection
(a psycopg connection on PostgreSQL, a sqlite3 one on SQLite), then writes
the history row in that same transaction, so the script and its row commit
together or not at all. `TRANSACTION = False` at module level runs it on the
connection outside a transaction instead, as `-- persistor:no-transaction`
does for SQL.

The file is compiled from the bytes that were checksummed (never from a
cached .pyc), so what runs is what the checksum covers. This module names no
database driver: it hands over whatever connection the engine gives.
"""

from __future__ import annotations

import inspect
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any, NamedTuple

from persistor.core.scripts import ScriptFile
from persistor.core.source import ExpandedScript, checksum_of, normalise, read_file
from persistor.errors import MigrationError, Problem, SourceLocation

FUNCTION = "migrate"
TRANSACTION_FLAG = "TRANSACTION"


class PythonMigration(NamedTuple):
    """A loaded Python migration: its function, and how it must run."""

    name: str  # the script name shown to users (relative to its location)
    path: str  # the absolute file path, as compiled (tracebacks name it)
    function: Callable[[Any], object]
    line: int  # where `def migrate` is
    transactional: bool

    def describe(self) -> str:
        """Return what a dry run would do with this migration, in words."""
        where = (
            "inside the script's transaction"
            if self.transactional
            else (f"outside a transaction ({TRANSACTION_FLAG} = False)")
        )
        return (
            f"# would call {FUNCTION}(conn) from {self.path}:{self.line}, {where}, "
            "then record the script in the history table"
        )

    def call(self, conn: object) -> None:
        """Run migrate(conn); any exception becomes a MigrationError naming file and line."""
        try:
            self.function(conn)
        except Exception as exc:
            raise self._failure(exc) from None
        if self.transactional and _transaction_ended(conn):
            raise MigrationError(
                f"{self.name}: {FUNCTION}() at {self.path}:{self.line} committed or rolled back "
                "the script's transaction itself, so the script and its history row can no "
                f"longer commit together; remove conn.commit()/rollback() from it (persistor "
                f"commits), or set {TRANSACTION_FLAG} = False. What it committed stays and the "
                "script is not recorded: check the database before running migrate again.",
                script=self.name,
                location=SourceLocation(self.path, self.line),
            )

    def _failure(self, exc: BaseException) -> MigrationError:
        line = _last_line_in(exc, self.path) or self.line
        loc = SourceLocation(self.path, line)
        said = f"{type(exc).__name__}: {exc}".strip()
        sqlstate = getattr(exc, "sqlstate", None)
        message = f"{self.name} failed at {loc}: {said}"
        if self.transactional:
            message += "\nNothing of this script was applied; fix it and run migrate again."
        else:
            message += (
                f"\nIt ran outside a transaction ({TRANSACTION_FLAG} = False), so what it did "
                "before failing stays and its history row is marked failed; check the database, "
                "then run `persistor repair` and migrate again."
            )
        return MigrationError(
            message,
            script=self.name,
            location=loc,
            sqlstate=sqlstate if isinstance(sqlstate, str) else None,
            server_message=str(exc),
        )


def python_source(path: str) -> ExpandedScript:
    """Return a Python migration's text and checksum, taken exactly like an SQL file's.

    No includes or placeholders: `${…}` means nothing in Python.
    """
    text = normalise(read_file(path))
    return ExpandedScript(text, checksum_of(text), frozenset(), path=path)


def load(file: ScriptFile, source: ExpandedScript) -> PythonMigration | Problem:
    """Compile and import a Python migration; a Problem naming file and line if it cannot."""
    try:
        code = compile(source.text, file.path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return _problem(file, exc.lineno or 1, f"is not valid Python: {exc.msg}")
    module = types.ModuleType(_module_name(file))
    module.__file__ = file.path
    # Registered while it runs, so dataclasses and pickling inside it find their module.
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        line = _last_line_in(exc, file.path) or 1
        return _problem(file, line, f"fails on import: {type(exc).__name__}: {exc}")
    finally:
        sys.modules.pop(module.__name__, None)
    return _migration(file, module)


def _migration(file: ScriptFile, module: types.ModuleType) -> PythonMigration | Problem:
    function = getattr(module, FUNCTION, None)
    if not callable(function):
        return _problem(
            file,
            1,
            f"has no function {FUNCTION}(conn) at module level; define `def {FUNCTION}(conn):` "
            "taking the database connection",
        )
    line = _def_line(function)
    try:
        inspect.signature(function).bind(object())
    except TypeError:
        return _problem(file, line, f"{FUNCTION}() must take exactly one argument, the connection")
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass
    flag = getattr(module, TRANSACTION_FLAG, True)
    if not isinstance(flag, bool):
        return _problem(file, 1, f"{TRANSACTION_FLAG} must be True or False, not {flag!r}")
    return PythonMigration(file.name, file.path, function, line, flag)


def _transaction_ended(conn: object) -> bool:
    """Return whether the driver's connection is no longer inside a transaction.

    Asked by attribute, as this module names no driver: psycopg's
    `info.transaction_status` (0 is idle), sqlite3's `in_transaction`.
    """
    info = getattr(conn, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is not None:
        return int(status) == 0
    in_transaction = getattr(conn, "in_transaction", None)
    return in_transaction is False


def _problem(file: ScriptFile, line: int, what: str) -> Problem:
    return Problem("python", file.name, f"{file.path}:{line}: {what}")


def _module_name(file: ScriptFile) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in file.name)
    return f"persistor_migration_{safe}"


def _def_line(function: Callable[..., object]) -> int:
    code = getattr(function, "__code__", None)
    return int(code.co_firstlineno) if code is not None else 1


def _last_line_in(exc: BaseException, path: str) -> int | None:
    """Return the line of the innermost traceback frame in `path`, if any."""
    if isinstance(exc, SyntaxError) and exc.filename == path and exc.lineno:
        return exc.lineno  # a nested compile error names its own place
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == path:
            line = frame.lineno
    return line
