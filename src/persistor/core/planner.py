"""Deciding what to run and what is wrong, from files and history alone.

The planner knows no engine: it compares the scripts found on disk with the
rows of the history table and returns every script's state, the ordered list
of scripts to apply, and the problems that forbid migrating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from persistor.core import resume
from persistor.core.plan_problems import (
    changed_problem,
    failed_problem,
    missing_problem,
    out_of_order_problem,
)
from persistor.core.scripts import Discovery, ScriptFile, Version
from persistor.core.source import CHECKSUM_ALGORITHM, ExpandedScript
from persistor.engines.base import HistoryRow, HistoryType
from persistor.errors import Problem


class State(StrEnum):
    """Name the states `status` shows, as in the spec."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    RUNNING = "running"  # a no-transaction script the migrator holding the lock is running now
    CHANGED = "changed"
    MISSING = "missing"
    OUTDATED = "outdated"
    IGNORED = "ignored"
    BASELINE = "baseline"
    BELOW_BASELINE = "below_baseline"
    # Applied by another tool and imported by `baseline` with no file to keep
    # (a Flyway Java migration, a script deleted since): history, not a problem.
    APPLIED_NO_FILE = "applied_no_file"


# The history row type of such imported rows (persistor.adopt writes them).
NO_FILE: HistoryType = "NO_FILE"


class MigrationInfo(NamedTuple):
    """One script (or baseline marker) and its state."""

    type: str  # "versioned", "repeatable" or "baseline"
    version: str | None
    description: str
    script: str
    state: State
    checksum: str | None
    installed_rank: int | None = None
    installed_at: datetime | None = None
    execution_time_ms: int | None = None


class PlannedScript(NamedTuple):
    """A script to apply, with its expanded text."""

    file: ScriptFile
    source: ExpandedScript
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


class _History:
    """The state the history rows add up to (see _replay)."""

    __slots__ = (
        "applied",
        "baseline",
        "baseline_version",
        "failed",
        "failed_descriptions",
        "failed_versions",
        "repeatable",
    )

    def __init__(self) -> None:
        self.applied: dict[Version, HistoryRow] = {}
        self.repeatable: dict[str, HistoryRow] = {}
        self.failed: list[HistoryRow] = []
        self.baseline: HistoryRow | None = None
        self.baseline_version: Version | None = None
        # The last failed row of each version and of each repeatable description.
        self.failed_versions: dict[Version, HistoryRow] = {}
        self.failed_descriptions: dict[str, HistoryRow] = {}


def _replay(history: Sequence[HistoryRow]) -> _History:
    """Fold the history rows, in rank order, into the current state."""
    state = _History()
    for row in history:
        version = Version.parse(row.version) if row.version else None
        if row.type == "BASELINE" and version is not None:
            state.baseline, state.baseline_version = row, version
        elif not row.success:
            state.failed.append(row)
            if version is not None:
                state.failed_versions[version] = row
            else:
                state.failed_descriptions[row.description] = row
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


_SortKey = tuple[int, tuple[int, ...], str]


class _Options(NamedTuple):
    target: Version | None
    out_of_order: bool
    lock_held: bool
    highest: Version | None  # the highest applied version
    baseline: Version | None  # versions up to it are covered by a baseline


@dataclass
class _Draft:
    """What plan() collects while it walks the files and the history."""

    problems: list[Problem]
    entries: list[tuple[_SortKey, MigrationInfo]] = field(default_factory=list)
    to_apply: list[PlannedScript] = field(default_factory=list)
    missing: list[HistoryRow] = field(default_factory=list)
    resumed: set[int] = field(default_factory=set)  # ranks of the failed rows planned to resume

    def show(self, key: _SortKey, info: MigrationInfo) -> None:
        """Add a line to the status list; plan() sorts them by key."""
        self.entries.append((key, info))

    def resume_if_possible(self, f: ScriptFile, src: ExpandedScript, failed: HistoryRow) -> None:
        """Plan a failed script to run again from where it stopped, if its row allows it."""
        if resume.resumable(failed):
            self.to_apply.append(PlannedScript(f, src, failed))
            self.resumed.add(failed.installed_rank)


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
    draft = _Draft([*discovery.problems, *(p for s in sources.values() for p in s.problems)])
    start = None if history else _start_from_baseline(draft, discovery, sources, target)
    highest = max(h.applied) if h.applied else None
    opts = _Options(target, out_of_order, lock_held, highest, start or h.baseline_version)
    if h.baseline is not None and h.baseline_version is not None:
        key = (0, h.baseline_version.parts, "")
        draft.show(key, _info_from_row(h.baseline, "baseline", State.BASELINE))
    for f in discovery.versioned:
        _plan_versioned(draft, h, f, sources[f.name], opts)
    for f in discovery.repeatable:
        _plan_repeatable(draft, h, f, sources[f.name], lock_held)
    on_disk = {f.version for f in discovery.versioned}
    repeatable_names = {f.description for f in discovery.repeatable}
    _plan_missing(draft, h, on_disk, repeatable_names)
    _plan_failed(draft, h, on_disk, repeatable_names, lock_held)
    draft.entries.sort(key=lambda e: e[0])
    current = str(opts.highest) if opts.highest is not None else None
    if current is None and h.baseline is not None:
        current = h.baseline.version
    return Plan(
        migrations=tuple(e[1] for e in draft.entries),
        to_apply=tuple(draft.to_apply),
        problems=tuple(draft.problems),
        current_version=current,
        applied_versions=h.applied,
        failed_rows=tuple(h.failed),
        missing_rows=tuple(draft.missing),
    )


def _plan_versioned(
    d: _Draft, h: _History, f: ScriptFile, src: ExpandedScript, opts: _Options
) -> None:
    """Decide one versioned file: applied (or changed), failed, or never applied."""
    assert f.version is not None
    key = (0, f.version.parts, f.name)
    row = h.applied.get(f.version)
    if row is not None:
        state = State.APPLIED
        if not same_checksum(row.checksum, src.checksum):
            state = State.CHANGED
            d.problems.append(changed_problem(f, row, src))
        d.show(key, _info_from_row(row, "versioned", state, f.name))
        return
    failed = h.failed_versions.get(f.version)
    if failed is not None:
        if _within(f.version, opts.target):
            d.resume_if_possible(f, src, failed)
        d.show(
            key, _info_from_row(failed, "versioned", _failed_state(failed, opts.lock_held), f.name)
        )
        return
    state = _unapplied_state(f.version, opts)
    if state is State.IGNORED:
        assert opts.highest is not None
        d.problems.append(out_of_order_problem(f, f.version, opts.highest))
    elif state is State.PENDING and _within(f.version, opts.target):
        d.to_apply.append(PlannedScript(f, src))
    info = MigrationInfo("versioned", f.version.text, f.description, f.name, state, src.checksum)
    d.show(key, info)


def _unapplied_state(version: Version, opts: _Options) -> State:
    """Return the state of a version that is neither applied nor failed."""
    if opts.baseline is not None and version <= opts.baseline:
        return State.BELOW_BASELINE
    if opts.highest is not None and version < opts.highest and not opts.out_of_order:
        return State.IGNORED
    return State.PENDING


def _start_from_baseline(
    d: _Draft, discovery: Discovery, sources: Mapping[str, ExpandedScript], target: Version | None
) -> Version | None:
    """Plan the B script a database with no history starts from: the newest within target."""
    fitting = [b for b in discovery.baselines if b.version and _within(b.version, target)]
    if not fitting or (v := fitting[-1].version) is None:
        return None
    b, src = fitting[-1], sources[fitting[-1].name]
    d.to_apply.append(PlannedScript(b, src))
    info = MigrationInfo("baseline", v.text, b.description, b.name, State.PENDING, src.checksum)
    d.show((0, v.parts, ""), info)
    return v


def _within(version: Version, target: Version | None) -> bool:
    return target is None or version <= target


def _plan_repeatable(
    d: _Draft, h: _History, f: ScriptFile, src: ExpandedScript, lock_held: bool
) -> None:
    """Decide one repeatable file: failed, never applied, outdated, or applied."""
    key = (1, (), f.description)
    failed = h.failed_descriptions.get(f.description)
    if failed is not None:
        d.resume_if_possible(f, src, failed)
        d.show(key, _info_from_row(failed, "repeatable", _failed_state(failed, lock_held), f.name))
        return
    row = h.repeatable.get(f.description)
    if row is None:
        d.to_apply.append(PlannedScript(f, src))
        info = MigrationInfo("repeatable", None, f.description, f.name, State.PENDING, src.checksum)
    elif row.checksum != src.checksum:
        d.to_apply.append(PlannedScript(f, src))
        info = _info_from_row(row, "repeatable", State.OUTDATED, f.name, checksum=src.checksum)
    else:
        info = _info_from_row(row, "repeatable", State.APPLIED, f.name)
    d.show(key, info)


def _plan_missing(
    d: _Draft, h: _History, on_disk: set[Version | None], repeatable_names: set[str]
) -> None:
    """Show and report the applied scripts whose files are gone (imported ones need none)."""
    for version, row in h.applied.items():
        if version not in on_disk:
            state = _gone_state(d, row)
            d.show((0, version.parts, row.script), _info_from_row(row, "versioned", state))
    for description, row in h.repeatable.items():
        if description not in repeatable_names:
            state = _gone_state(d, row)
            d.show((1, (), description), _info_from_row(row, "repeatable", state))
    d.problems.extend(missing_problem(row) for row in d.missing)


def _gone_state(d: _Draft, row: HistoryRow) -> State:
    if row.type == NO_FILE:
        return State.APPLIED_NO_FILE
    d.missing.append(row)
    return State.MISSING


def _plan_failed(
    d: _Draft,
    h: _History,
    on_disk: set[Version | None],
    repeatable_names: set[str],
    lock_held: bool,
) -> None:
    """Report the failed rows not planned to resume; show those whose files are gone."""
    for row in h.failed:
        if row.installed_rank in d.resumed:
            continue
        d.problems.append(failed_problem(row))
        state = _failed_state(row, lock_held)
        if row.version:
            version = Version.parse(row.version)
            if version not in on_disk:
                d.show((0, version.parts, row.script), _info_from_row(row, "versioned", state))
        elif row.description not in repeatable_names:
            d.show((1, (), row.description), _info_from_row(row, "repeatable", state))


def _failed_state(row: HistoryRow, lock_held: bool) -> State:
    # A progress row is written before a no-transaction script starts and
    # replaced when it ends; while its migrator holds the lock it is running.
    return State.RUNNING if lock_held and resume.resumable(row) else State.FAILED


def _info_from_row(
    row: HistoryRow,
    kind: str,
    state: State,
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
