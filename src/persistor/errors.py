"""The error hierarchy and the one place that maps errors to exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceLocation:
    """A file and 1-based line a statement came from."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class PersistorError(Exception):
    """Root of every error persistor raises on purpose; its message says what to do.

    `sqlstate` and `location` are set when a server error or a place in a
    migration file is behind it; the JSON error document carries both.
    """

    exit_code = 1
    sqlstate: str | None = None
    location: SourceLocation | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the `{"error": …}` document that `--json` prints on failure."""
        error: dict[str, Any] = {
            "type": type(self).__name__,
            "exit_code": self.exit_code,
            "message": str(self),
            "sqlstate": self.sqlstate,
            "location": (
                {"path": self.location.path, "line": self.location.line} if self.location else None
            ),
        }
        return {"error": error}


class UsageError(PersistorError):
    """Bad command line or configuration (malformed URL, unknown option value)."""

    exit_code = 2


class PrivilegeError(PersistorError):
    """The database role lacks a privilege the command needs; the message names the grant."""

    sqlstate = "42501"


class ConnectError(PersistorError):
    """The database cannot be reached or refused the login."""

    exit_code = 3


class MigrationError(PersistorError):
    """A statement of a migration failed; nothing of that script was kept."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        script: str,
        location: SourceLocation | None = None,
        sqlstate: str | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.script = script
        self.location = location
        self.sqlstate = sqlstate
        self.server_message = server_message


@dataclass(frozen=True)
class Problem:
    """One validation finding: which file, what is wrong, what to do."""

    code: str
    script: str
    message: str

    def __str__(self) -> str:
        return f"{self.script}: {self.message}"


class ValidationError(PersistorError):
    """Files and history disagree, or a file is malformed; nothing was changed."""

    exit_code = 5

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = [f"validation failed with {len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def to_json(self) -> dict[str, Any]:
        doc = super().to_json()
        doc["error"]["problems"] = [
            {"code": p.code, "script": p.script, "message": p.message} for p in self.problems
        ]
        return doc


class LintError(PersistorError):
    """Lint found an error-severity hazard (or, with --strict, any); the findings say where."""

    exit_code = 5


class LockError(PersistorError):
    """The migration lock could not be had, or was lost: no two migrators may work at once."""

    exit_code = 6


class LockTimeoutError(LockError):
    """Another migrator held the lock for longer than the lock timeout."""


class LockLostError(LockError):
    """A leased lock ran out while this migrator worked; it stopped before committing more."""


class SharedSessionError(LockError):
    """The server session already held the lock: a transaction pooler shares it between clients."""


class PendingError(PersistorError):
    """`status --exit-code`: a script is pending, changed, failed or missing (the gate is shut)."""

    exit_code = 7


class DriftError(PersistorError):
    """`drift` found the database differing from what its migrations produce."""

    exit_code = 8


def exit_code_for(exc: BaseException) -> int:
    """Return the process exit code for an error that reached the command line."""
    if isinstance(exc, PersistorError):
        return exc.exit_code
    return 1


# How bad each exit code is when many targets ran (ascending); see worst_exit_code.
# Findings that changed nothing (7 pending, 8 drift) are mildest, then failures
# that changed nothing (5 validation, 6 lock), then 3 (a lost connection: the
# outcome may be unknown, run again), 4 (a script failed: needs a fix), 1 (a
# missing privilege or a bug), and 2 (bad configuration) as the worst.
EXIT_CODE_SEVERITY: tuple[int, ...] = (0, 7, 8, 5, 6, 3, 4, 1, 2)


def worst_exit_code(codes: Sequence[int]) -> int:
    """Return the exit code of a run over many targets: the worst of theirs (0 for none)."""

    def rank(code: int) -> int:
        # a code not in the order yet counts as worse than every known one
        return (
            EXIT_CODE_SEVERITY.index(code)
            if code in EXIT_CODE_SEVERITY
            else len(EXIT_CODE_SEVERITY)
        )

    return max(codes, key=rank, default=0)


class TargetsFailed(PersistorError):
    """Some targets of a run over many failed; the exit code is the worst of theirs."""

    def __init__(self, message: str, codes: Sequence[int]) -> None:
        super().__init__(message)
        self.exit_code = worst_exit_code(codes)
