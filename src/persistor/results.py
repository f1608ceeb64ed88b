"""Result objects returned by every command of the Python API.

They are immutable NamedTuples rather than frozen dataclasses: a command
builds one per script, and every CLI run defines all of them at start-up,
where a frozen dataclass costs several times more (bench/, W2 and W5).
`to_json()` gives each command's documented JSON shape.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from persistor.core.planner import MigrationInfo
from persistor.errors import Problem

if TYPE_CHECKING:
    from persistor.lint.findings import Finding


class TextReport(Protocol):
    """A report of the bundled application's commands (demo, stress), rendered by the CLI."""

    @property
    def succeeded(self) -> bool:
        """Return whether the command did what it set out to (login reached, invariants held)."""
        ...

    def to_json(self) -> dict[str, Any]:
        """Return the report as the command's JSON document."""
        ...

    def lines(self) -> list[tuple[str, str | None]]:
        """Return the report as lines of text, each with a rich style or None."""
        ...


class DatabaseInfo(NamedTuple):
    """Which database a command worked on (the URL is shown without its password)."""

    engine: str
    url: str
    schema: str
    history_table: str
    embedded_data_dir: str | None = None
    exists: bool = True  # False: a SQLite file that migrate has not created yet


class LocationFormat(NamedTuple):
    """Which tool's file format a migration location holds (flyway, dbmate, golang-migrate)."""

    location: str
    format: str


class StatusResult(NamedTuple):
    """Every known script with its state."""

    database: DatabaseInfo
    current_version: str | None
    migrations: tuple[MigrationInfo, ...]
    problems: tuple[Problem, ...]
    lock_holder: str | None = None  # who is migrating right now, if anyone
    formats: tuple[LocationFormat, ...] = ()
    warnings: tuple[Problem, ...] = ()  # .sql files in the locations that never run

    @property
    def counts(self) -> dict[str, int]:
        """Return how many scripts are in each state."""
        result: dict[str, int] = {}
        for m in self.migrations:
            result[m.state] = result.get(m.state, 0) + 1
        return result

    def to_json(self) -> dict[str, Any]:
        """Return the documented JSON shape of `status --json`."""
        return {
            "database": self.database._asdict(),
            "current_version": self.current_version,
            "migrations": [_migration_json(m) for m in self.migrations],
            "counts": self.counts,
            "problems": [asdict(p) for p in self.problems],
            "lock_holder": self.lock_holder,
            "formats": [f._asdict() for f in self.formats],
            "warnings": [asdict(p) for p in self.warnings],
        }


def _migration_json(m: MigrationInfo) -> dict[str, Any]:
    data = m._asdict()
    data["installed_at"] = m.installed_at.isoformat() if m.installed_at else None
    return data


class AppliedScript(NamedTuple):
    """A script that `migrate` ran (or would run, on a dry run)."""

    type: str
    version: str | None
    description: str
    script: str
    execution_time_ms: int
    sql: str | None = None  # the exact text, filled on a dry run


class MigrateResult(NamedTuple):
    """What `migrate` applied and the version it left the database at."""

    database: DatabaseInfo
    applied: tuple[AppliedScript, ...]
    current_version: str | None
    dry_run: bool = False
    warnings: tuple[Problem, ...] = ()  # .sql files in the locations that never run
    lint: tuple[Finding, ...] = ()  # hazards in the scripts it ran (shown as warnings)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `migrate --json`."""
        return {
            "database": self.database._asdict(),
            "dry_run": self.dry_run,
            "applied": [a._asdict() for a in self.applied],
            "current_version": self.current_version,
            "warnings": [asdict(p) for p in self.warnings],
            "lint": [f.to_json() for f in self.lint],
        }


class ValidateResult(NamedTuple):
    """A clean validation: how many scripts were checked."""

    database: DatabaseInfo
    scripts_checked: int
    parsed: int
    warnings: tuple[Problem, ...] = ()  # .sql files in the locations that never run
    formats: tuple[LocationFormat, ...] = ()
    lint: tuple[Finding, ...] = ()  # hazards in the pending scripts (warnings; --strict fails)
    offline: bool = False  # checked the files alone, with no database (validate --offline)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `validate --json`."""
        return {
            "database": self.database._asdict(),
            "valid": True,
            "scripts_checked": self.scripts_checked,
            "parsed": self.parsed,
            "offline": self.offline,
            "warnings": [asdict(p) for p in self.warnings],
            "formats": [f._asdict() for f in self.formats],
            "lint": [f.to_json() for f in self.lint],
        }


class ConnectionResult(NamedTuple):
    """What `test` found about the connection."""

    database: DatabaseInfo
    server_version: str
    user: str
    database_name: str
    current_version: str | None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `test --json`."""
        return {
            "database": self.database._asdict(),
            "server_version": self.server_version,
            "user": self.user,
            "database_name": self.database_name,
            "current_version": self.current_version,
        }


class NewScriptResult(NamedTuple):
    """The migration file `new` created."""

    path: Path
    version: str

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `new --json`."""
        return {"path": str(self.path), "version": self.version}


class BaselineResult(NamedTuple):
    """What `baseline` recorded."""

    database: DatabaseInfo
    version: str | None
    imported_from: str | None = None
    imported: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # rows not imported, and why
    no_file: tuple[str, ...] = ()  # imported as applied with no file to keep (Java, deleted)
    table: str | None = None  # the other tool's history table

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `baseline --json`."""
        return as_json(self)


class RepairResult(NamedTuple):
    """What `repair` changed in the history table."""

    database: DatabaseInfo
    removed_failed: tuple[str, ...] = ()
    realigned: tuple[str, ...] = ()
    marked_deleted: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `repair --json`."""
        return as_json(self)


class UndoResult(NamedTuple):
    """The version `undo` took back."""

    database: DatabaseInfo
    version: str
    script: str
    current_version: str | None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `undo --json`."""
        return as_json(self)


class CleanResult(NamedTuple):
    """What `clean` dropped."""

    database: DatabaseInfo
    dropped: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `clean --json`."""
        return as_json(self)


class StopEmbeddedResult(NamedTuple):
    """Whether `stop-embedded` found a running embedded server to stop."""

    data_dir: str
    was_running: bool

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `stop-embedded --json`."""
        return as_json(self)


class Event(NamedTuple):
    """Progress the library reports while it works (the CLI decides how to show it)."""

    kind: Literal["wait", "start", "applied", "warning", "retry"]
    message: str  # whom we wait for, the script's name, the warning (lint), or what a retry waited for
    done: int = 0  # retry: which retry this is
    total: int = 0  # retry: how many are allowed


def as_json(result: Any) -> dict[str, Any]:
    """Return a NamedTuple result's fields, and everything nested in them, as JSON-ready values."""
    return {k: _json_value(v) for k, v in result._asdict().items()}


def _json_value(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return as_json(value)
    if isinstance(value, tuple | list):
        return type(value)(_json_value(v) for v in value)
    return value
