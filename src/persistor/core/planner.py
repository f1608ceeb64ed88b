"""Deciding what to run and what is wrong, from files and history alone.

The planner knows no engine: it compares the scripts found on disk with the
rows of the history table and returns every script's state, the ordered list
of scripts to apply, and the problems that forbid migrating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from persistor.core.scripts import Discovery, ScriptFile, Version
from persistor.core.source import CHECKSUM_ALGORITHM, ExpandedScript
from persistor.engines.base import HistoryRow
from persistor.errors import Problem

# The states `status` shows, as in the spec.
PENDING = "pending"
APPLIED = "applied"
FAILED = "failed"
CHANGED = "changed"
MISSING = "missing"
OUTDATED = "outdated"
IGNORED = "ignored"
BASELINE = "baseline"
BELOW_BASELINE = "below_baseline"
RUNNING = "running"  # a no-transaction script a migrator holding the lock is running now
RESUME = "resume"

# A failed no-transaction script records how far it got in its checksum column:
# "partial-sha256:<statements done>:<sha256 of those statements>".
PARTIAL_PREFIX = "partial-sha256:"


def resumable(row: HistoryRow) -> bool:
    """Whether a failed history row records progress a later run can resume from."""
    return not row.success and (row.checksum or "").startswith(PARTIAL_PREFIX)


class MigrationInfo(NamedTuple):
    """One script (or baseline marker) and its state."""

    type: str  # "versioned", "repeatable" or "baseline"
    version: str | None
    description: str
    script: str
    state: str
    checksum: str | None
    installed_rank: int | None = None
    installed_at: datetime | None = None
    execution_time_ms: int | None = None


class PlannedScript(NamedTuple):
    """A script to apply, with its expanded text."""

    file: ScriptFile
    source: ExpandedScript
    reason: str  # PENDING, OUTDATED or RESUME
    resume: HistoryRow | None = None  # the failed row to resume from


class Plan(NamedTuple):
    """Everything the planner concluded."""

    migrations: tuple[MigrationInfo, ...]
    to_apply: tuple[PlannedScript, ...]
    problems: tuple[Problem, ...]
    current_version: str | None
    applied_versions: Mapping[Version, HistoryRow]
    failed_rows: tuple[HistoryRow, ...]
    missing_rows: tuple[HistoryRow, ...]
    changed: tuple[tuple[HistoryRow, ExpandedScript], ...]


class _History:
    """The state the history rows add up to (see _replay)."""

    __slots__ = ("applied", "baseline", "baseline_version", "failed", "repeatable")

    def __init__(self) -> None:
        self.applied: dict[Version, HistoryRow] = {}
        self.repeatable: dict[str, HistoryRow] = {}
        self.failed: list[HistoryRow] = []
        self.baseline: HistoryRow | None = None
        self.baseline_version: Version | None = None


def _replay(history: Sequence[HistoryRow]) -> _History:
    """Fold the history rows, in rank order, into the current state."""
    state = _History()
    for row in history:
        version = Version.parse(row.version) if row.version else None
        if row.type == "BASELINE" and version is not None:
            state.baseline, state.baseline_version = row, version
        elif not row.success:
            state.failed.append(row)
        elif row.type == "UNDO" and version is not None:
            state.applied.pop(version, None)
        elif row.type == "DELETE":
            if version is not None:
                state.applied.pop(version, None)
            else:
                state.repeatable.pop(row.description, None)
        elif version is not None:
            state.applied[version] = row
        else:
            state.repeatable[row.description] = row
    return state


def same_checksum(stored: str | None, current: str) -> bool:
    """Compare checksums; one stored with another algorithm cannot be compared, so it passes."""
    if stored is None or not stored.startswith(CHECKSUM_ALGORITHM + ":"):
        return True
    return stored == current


def plan(
    discovery: Discovery,
    sources: Mapping[str, ExpandedScript],
    history: Sequence[HistoryRow],
    *,
    target: Version | None = None,
    out_of_order: bool = False,
    lock_held: bool = False,
) -> Plan:
    """Compare files with history: states, scripts to apply, and problems.

    lock_held says that another migrator holds the migration lock now; its
    no-transaction script's progress row then shows as running, not failed.
    """
    h = _replay(history)
    problems: list[Problem] = list(discovery.problems)
    for source in sources.values():
        problems.extend(source.problems)
    entries: list[tuple[tuple[int, tuple[int, ...], str], MigrationInfo]] = []
    to_apply: list[PlannedScript] = []
    changed: list[tuple[HistoryRow, ExpandedScript]] = []
    highest = max(h.applied) if h.applied else None
    failed_versions = {Version.parse(r.version): r for r in h.failed if r.version}
    failed_descriptions = {r.description: r for r in h.failed if not r.version}
    resumed: set[int] = set()

    if h.baseline is not None and h.baseline_version is not None:
        entries.append(
            ((0, h.baseline_version.parts, ""), _info_from_row(h.baseline, "baseline", BASELINE))
        )

    on_disk: set[Version] = set()
    for f in discovery.versioned:
        assert f.version is not None
        on_disk.add(f.version)
        src = sources[f.name]
        row = h.applied.get(f.version)
        key = (0, f.version.parts, f.name)
        if row is not None:
            state = APPLIED
            if not same_checksum(row.checksum, src.checksum):
                state = CHANGED
                changed.append((row, src))
                problems.append(
                    Problem(
                        "changed",
                        f.name,
                        f"was changed after it was applied (stored {row.checksum}, file "
                        f"{src.checksum}); restore the file, put the change in a new migration, "
                        "or run `persistor repair` to accept the file as it is",
                    )
                )
            entries.append((key, _info_from_row(row, "versioned", state, script=f.name)))
            continue
        if f.version in failed_versions:
            state = FAILED
            failed = failed_versions[f.version]
            if resumable(failed) and (target is None or f.version <= target):
                to_apply.append(PlannedScript(f, src, RESUME, failed))
                resumed.add(failed.installed_rank)
        elif h.baseline_version is not None and f.version <= h.baseline_version:
            state = BELOW_BASELINE
        elif highest is not None and f.version < highest and not out_of_order:
            state = IGNORED
            problems.append(
                Problem(
                    "out_of_order",
                    f.name,
                    f"version {f.version} is lower than the highest applied version {highest} "
                    "and was never applied; renumber it above "
                    f"{highest}, or run migrate with --out-of-order to apply it",
                )
            )
        else:
            state = PENDING
            if target is None or f.version <= target:
                to_apply.append(PlannedScript(f, src, PENDING))
        if state == FAILED:
            failed = failed_versions[f.version]
            info = _info_from_row(failed, "versioned", _failed_state(failed, lock_held), f.name)
        else:
            info = MigrationInfo(
                "versioned", f.version.text, f.description, f.name, state, src.checksum
            )
        entries.append((key, info))

    missing: list[HistoryRow] = []
    for version, row in h.applied.items():
        if version not in on_disk:
            missing.append(row)
            entries.append(
                ((0, version.parts, row.script), _info_from_row(row, "versioned", MISSING))
            )

    repeatable_names = set()
    for f in discovery.repeatable:
        repeatable_names.add(f.description)
        src = sources[f.name]
        row = h.repeatable.get(f.description)
        key = (1, (), f.description)
        if f.description in failed_descriptions:
            failed = failed_descriptions[f.description]
            if resumable(failed):
                to_apply.append(PlannedScript(f, src, RESUME, failed))
                resumed.add(failed.installed_rank)
            state = _failed_state(failed, lock_held)
            entries.append((key, _info_from_row(failed, "repeatable", state, script=f.name)))
        elif row is None:
            to_apply.append(PlannedScript(f, src, PENDING))
            entries.append(
                (
                    key,
                    MigrationInfo("repeatable", None, f.description, f.name, PENDING, src.checksum),
                )
            )
        elif row.checksum != src.checksum:
            to_apply.append(PlannedScript(f, src, OUTDATED))
            entries.append(
                (
                    key,
                    _info_from_row(
                        row, "repeatable", OUTDATED, script=f.name, checksum=src.checksum
                    ),
                )
            )
        else:
            entries.append((key, _info_from_row(row, "repeatable", APPLIED, script=f.name)))
    for description, row in h.repeatable.items():
        if description not in repeatable_names:
            missing.append(row)
            entries.append(((1, (), description), _info_from_row(row, "repeatable", MISSING)))

    for row in missing:
        problems.append(
            Problem(
                "missing",
                row.script,
                "was applied but its file is not in the migration locations; restore the file, "
                "or run `persistor repair` to mark it deleted",
            )
        )
    for row in h.failed:
        if row.installed_rank in resumed:
            continue
        problems.append(
            Problem(
                "failed",
                row.script,
                "failed in an earlier run and is recorded as failed; fix the database by hand if "
                "needed, then run `persistor repair` to remove the failed row",
            )
        )
        if (row.version and Version.parse(row.version) not in on_disk) or (
            not row.version and row.description not in repeatable_names
        ):
            kind = "versioned" if row.version else "repeatable"
            sort = (
                (0, Version.parse(row.version).parts, row.script)
                if row.version
                else (1, (), row.description)
            )
            entries.append((sort, _info_from_row(row, kind, _failed_state(row, lock_held))))

    entries.sort(key=lambda e: e[0])
    current = str(max(h.applied)) if h.applied else (h.baseline.version if h.baseline else None)
    return Plan(
        migrations=tuple(e[1] for e in entries),
        to_apply=tuple(to_apply),
        problems=tuple(problems),
        current_version=current,
        applied_versions=h.applied,
        failed_rows=tuple(h.failed),
        missing_rows=tuple(missing),
        changed=tuple(changed),
    )


def _failed_state(row: HistoryRow, lock_held: bool) -> str:
    # A progress row is written before a no-transaction script starts and
    # replaced when it ends; while its migrator holds the lock it is running.
    return RUNNING if lock_held and resumable(row) else FAILED


def _info_from_row(
    row: HistoryRow,
    kind: str,
    state: str,
    script: str | None = None,
    *,
    checksum: str | None = None,
) -> MigrationInfo:
    return MigrationInfo(
        type=kind,
        version=row.version,
        description=row.description,
        script=script or row.script,
        state=state,
        checksum=checksum or row.checksum,
        installed_rank=row.installed_rank,
        installed_at=row.installed_at,
        execution_time_ms=row.execution_time_ms,
    )


def latest_undoable(history: Sequence[HistoryRow]) -> tuple[Version, HistoryRow] | None:
    """Return the highest applied version and its row, if any version is applied."""
    h = _replay(history)
    if not h.applied:
        return None
    version = max(h.applied)
    return version, h.applied[version]


def undo_file(discovery: Discovery, version: Version) -> ScriptFile | None:
    """Return the undo script for a version, if there is one."""
    return discovery.undo.get(version)
