"""What the database holds: `dump` (its structure as SQL) and `drift` (against the migrations).

Like persistor.api, nothing here prints: each function returns a result
object with to_json(); failures raise a PersistorError subclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from persistor.core import planner
from persistor.core.drift import Difference, compare
from persistor.core.planner import State
from persistor.dump_file import check_folder, write_atomically
from persistor.engines.snapshot import KINDS, SchemaObject
from persistor.errors import DriftError, PendingError, PersistorError
from persistor.results import DatabaseInfo, StatusResult
from persistor.session import EventCallback, load_scripts, open_session
from persistor.settings import Settings


class DumpResult(NamedTuple):
    """A schema's structure as SQL, the tool that wrote it, and the file it went to."""

    database: DatabaseInfo
    sql: str
    tool: str
    out: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `dump --json`."""
        return {
            "database": self.database._asdict(),
            "tool": self.tool,
            "out": self.out,
            "sql": self.sql,
        }


class DriftResult(NamedTuple):
    """Every object on which the database and its migrations disagree."""

    database: DatabaseInfo
    differences: tuple[Difference, ...]
    # Scripts not (yet) applied on the target, by state: their objects show as missing.
    unsettled: dict[str, int] = {}  # noqa: RUF012 -- a NamedTuple default, never mutated

    @property
    def drifted(self) -> bool:
        """Return whether there is any difference."""
        return bool(self.differences)

    @property
    def counts(self) -> dict[str, int]:
        """Return how many differences of each change (missing, extra, changed) there are."""
        result: dict[str, int] = {}
        for d in self.differences:
            result[d.change] = result.get(d.change, 0) + 1
        return result

    def to_json(self) -> dict[str, Any]:
        """Return the JSON shape of `drift --json`."""
        return {
            "database": self.database._asdict(),
            "drift": self.drifted,
            "counts": self.counts,
            "differences": [d.to_json() for d in self.differences],
            "unsettled_scripts": self.unsettled,
        }


def dump(
    settings: Settings, *, out: Path | None = None, on_event: EventCallback | None = None
) -> DumpResult:
    """Return the target schema's structure as deterministic SQL; write it to out if given."""
    if out is not None:
        check_folder(out, "--out")
    with open_session(settings, on_event) as s:
        dumped = s.engine.dump_schema()
    if out is not None:
        write_atomically(out, dumped.sql)
    return DumpResult(s.database, dumped.sql, dumped.tool, str(out) if out else None)


Build = Callable[[Settings], object]


def drift(
    settings: Settings, migrate: Build, *, on_event: EventCallback | None = None
) -> DriftResult:
    """Build the migrations in a scratch database and compare it with the target, object by object.

    `migrate` is api.migrate (passed in: the API imports this module, not the reverse).
    """
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event) as s:
        if s.engine.dialect != "postgresql":
            s.engine.schema_objects()  # raises the engine's own "PostgreSQL-only" UsageError
        plan = planner.plan(
            discovery, sources, s.engine.read_history(), out_of_order=settings.out_of_order
        )
        with s.engine.scratch_database() as scratch_url:
            expected = _build(dataclasses.replace(settings, url=scratch_url), migrate)
        actual = s.engine.schema_objects()
    differences = tuple(compare(expected, actual, KINDS))
    return DriftResult(s.database, differences, _unsettled(m.state for m in plan.migrations))


def _unsettled(states: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in states:
        if state in UNSETTLED:
            counts[state] = counts.get(state, 0) + 1
    return dict(sorted(counts.items()))


def _build(settings: Settings, migrate: Build) -> list[SchemaObject]:
    """Migrate the scratch database with the target's settings; return what it then holds."""
    try:
        migrate(dataclasses.replace(settings, dump_file=None))
    except PersistorError as exc:
        # The same error (and exit code), said to be about the scratch copy, not the target.
        exc.args = (f"building the migrations in the scratch database failed: {exc}",)
        raise
    with open_session(settings, None) as built:
        return built.engine.schema_objects()


# What keeps `status --exit-code` from passing: migrate has work to do, or refuses to.
UNSETTLED = (
    State.PENDING,
    State.OUTDATED,
    State.RUNNING,
    State.CHANGED,
    State.FAILED,
    State.MISSING,
)


def check_settled(result: StatusResult) -> None:
    """Raise PendingError (exit 7) when any script is pending, outdated, changed, failed or missing."""
    counts = _unsettled(m.state for m in result.migrations)
    if counts:
        said = ", ".join(f"{n} {state}" for state, n in counts.items())
        raise PendingError(
            f"the database is not up to date with its migrations ({said}); run `persistor "
            "migrate`, or `persistor validate` to see what blocks it"
        )


def check_no_drift(result: DriftResult) -> None:
    """Raise DriftError (exit 8) when the database differs from what its migrations produce."""
    if result.drifted:
        said = ", ".join(f"{n} {change}" for change, n in sorted(result.counts.items()))
        raise DriftError(
            f"the database differs from what its migrations produce ({said}); put the changes "
            "made by hand into a migration, or undo them"
        )


__all__ = ["DriftResult", "DumpResult", "check_no_drift", "check_settled", "drift", "dump"]
