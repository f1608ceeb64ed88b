"""The planner, table-driven: files and history rows in memory, no database.

Each case lists the files on disk and the history rows, and expects the
states `status` shows (in its order), the scripts `migrate` would apply, the
problems that block it, and the current version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from persistor.core import planner
from persistor.core.planner import Plan, State
from persistor.core.resume import progress_checksum
from persistor.core.scripts import Discovery, ScriptFile, ScriptKind, Version, parse_name
from persistor.core.source import ExpandedScript, checksum_of
from persistor.core.splitter import split_statements
from persistor.engines.base import HistoryRow
from persistor.errors import Problem

WHEN = datetime(2026, 11, 25, 12, 0, 0)


def body(name: str) -> str:
    """Return the text of a file as it is on disk in these tests."""
    return f"SELECT '{name}';\nSELECT 2;\n"


def script_file(name: str) -> ScriptFile:
    parsed = parse_name(f"/migrations/{name}", name)
    assert isinstance(parsed, ScriptFile), name
    return parsed


def row(
    rank: int,
    name: str,
    *,
    checksum: str | None = "file",
    success: bool = True,
    type: str = "SQL",
) -> HistoryRow:
    """Return a history row for a script name; checksum "file" is the file's own."""
    f = script_file(name)
    return HistoryRow(
        installed_rank=rank,
        version=f.version.text if f.version else None,
        description=f.description,
        type=type,
        script=name,
        checksum=checksum_of(body(name)) if checksum == "file" else checksum,
        installed_by="tester",
        installed_at=WHEN,
        execution_time_ms=rank * 10,
        success=success,
    )


def partial(rank: int, name: str, done: int = 1) -> HistoryRow:
    """Return the row of a no-transaction script that failed after `done` statements."""
    done_checksum = progress_checksum(split_statements(body(name)), done)
    return row(rank, name, checksum=done_checksum, success=False)


def baseline(rank: int, version: str) -> HistoryRow:
    return HistoryRow(
        rank, version, "Baseline", "BASELINE", "<< Baseline >>", None, "tester", WHEN, 0, True
    )


@dataclass(frozen=True)
class Case:
    """One planning situation and what the planner must conclude from it."""

    files: tuple[str, ...]
    history: tuple[HistoryRow, ...]
    states: tuple[tuple[str, State], ...]
    to_apply: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    current: str | None = None
    resumed: tuple[str, ...] = ()  # scripts of to_apply that resume a failed row
    target: str | None = None
    out_of_order: bool = False
    lock_held: bool = False
    file_problems: tuple[Problem, ...] = field(default=())


def run(case: Case) -> Plan:
    files = sorted((script_file(n) for n in case.files), key=lambda f: f.sort_key)  # as discover()
    sources = {
        f.name: ExpandedScript(body(f.name), checksum_of(body(f.name)), frozenset()) for f in files
    }
    for p in case.file_problems:
        if p.script in sources:
            sources[p.script] = sources[p.script]._replace(problems=(p,))
    discovery = Discovery(
        versioned=tuple(f for f in files if f.kind is ScriptKind.VERSIONED),
        repeatable=tuple(f for f in files if f.kind is ScriptKind.REPEATABLE),
        undo={},
        problems=tuple(p for p in case.file_problems if p.script not in sources),
    )
    return planner.plan(
        discovery,
        sources,
        case.history,
        target=Version.parse(case.target) if case.target else None,
        out_of_order=case.out_of_order,
        lock_held=case.lock_held,
    )


P = State.PENDING
A = State.APPLIED

CASES: dict[str, Case] = {
    "fresh database: everything pending, versioned first, repeatables by description": Case(
        files=("V2__b.sql", "R__views.sql", "V1__a.sql", "R__functions.sql"),
        history=(),
        states=(
            ("V1__a.sql", P),
            ("V2__b.sql", P),
            ("R__functions.sql", P),
            ("R__views.sql", P),
        ),
        to_apply=("V1__a.sql", "V2__b.sql", "R__functions.sql", "R__views.sql"),
    ),
    "all applied": Case(
        files=("V1__a.sql", "V1.1__b.sql", "R__views.sql"),
        history=(row(1, "V1__a.sql"), row(2, "V1.1__b.sql"), row(3, "R__views.sql")),
        states=(("V1__a.sql", A), ("V1.1__b.sql", A), ("R__views.sql", A)),
        current="1.1",
    ),
    "a new version after applied ones is pending": Case(
        files=("V1__a.sql", "V2__b.sql"),
        history=(row(1, "V1__a.sql"),),
        states=(("V1__a.sql", A), ("V2__b.sql", P)),
        to_apply=("V2__b.sql",),
        current="1",
    ),
    "edited applied version is changed": Case(
        files=("V1__a.sql", "V2__b.sql"),
        history=(row(1, "V1__a.sql", checksum=checksum_of("old text")), row(2, "V2__b.sql")),
        states=(("V1__a.sql", State.CHANGED), ("V2__b.sql", A)),
        problems=(("changed", "V1__a.sql"),),
        current="2",
    ),
    "checksum of another algorithm is not compared": Case(
        files=("V1__a.sql", "V2__b.sql"),
        history=(row(1, "V1__a.sql", checksum="1234567"), row(2, "V2__b.sql", checksum=None)),
        states=(("V1__a.sql", A), ("V2__b.sql", A)),
        current="2",
    ),
    "edited repeatable is outdated and runs again": Case(
        files=("R__views.sql", "R__functions.sql"),
        history=(row(1, "R__views.sql", checksum=checksum_of("old")), row(2, "R__functions.sql")),
        states=(("R__functions.sql", A), ("R__views.sql", State.OUTDATED)),
        to_apply=("R__views.sql",),
    ),
    "applied scripts whose files are gone are missing": Case(
        files=("V2__b.sql",),
        history=(row(1, "V1__a.sql"), row(2, "V2__b.sql"), row(3, "R__gone.sql")),
        states=(("V1__a.sql", State.MISSING), ("V2__b.sql", A), ("R__gone.sql", State.MISSING)),
        problems=(("missing", "V1__a.sql"), ("missing", "R__gone.sql")),
        current="2",
    ),
    "missing scripts marked deleted by repair are forgotten": Case(
        files=("V2__b.sql",),
        history=(
            row(1, "V1__a.sql"),
            row(2, "V2__b.sql"),
            row(3, "R__gone.sql"),
            row(4, "V1__a.sql", type="DELETE"),
            row(5, "R__gone.sql", type="DELETE"),
        ),
        states=(("V2__b.sql", A),),
        current="2",
    ),
    "an undone version is pending again": Case(
        files=("V1__a.sql", "V2__b.sql"),
        history=(row(1, "V1__a.sql"), row(2, "V2__b.sql"), row(3, "V2__b.sql", type="UNDO")),
        states=(("V1__a.sql", A), ("V2__b.sql", P)),
        to_apply=("V2__b.sql",),
        current="1",
    ),
    "a failed transactional row blocks migrate until repair": Case(
        files=("V1__a.sql", "V2__b.sql", "V3__c.sql"),
        history=(row(1, "V1__a.sql"), row(2, "V2__b.sql", success=False)),
        states=(("V1__a.sql", A), ("V2__b.sql", State.FAILED), ("V3__c.sql", P)),
        to_apply=("V3__c.sql",),
        problems=(("failed", "V2__b.sql"),),
        current="1",
    ),
    "a failed row whose file is gone is still shown and reported": Case(
        files=("V1__a.sql",),
        history=(
            row(1, "V1__a.sql"),
            row(2, "V2__b.sql", success=False),
            row(3, "R__gone.sql", success=False),
        ),
        states=(("V1__a.sql", A), ("V2__b.sql", State.FAILED), ("R__gone.sql", State.FAILED)),
        problems=(("failed", "V2__b.sql"), ("failed", "R__gone.sql")),
        current="1",
    ),
    "a failed no-transaction version resumes": Case(
        files=("V1__a.sql", "V2__b.sql", "V3__c.sql"),
        history=(row(1, "V1__a.sql"), partial(2, "V2__b.sql")),
        states=(("V1__a.sql", A), ("V2__b.sql", State.FAILED), ("V3__c.sql", P)),
        to_apply=("V2__b.sql", "V3__c.sql"),
        resumed=("V2__b.sql",),
        current="1",
    ),
    "a failed no-transaction repeatable resumes": Case(
        files=("R__views.sql",),
        history=(row(1, "R__views.sql"), partial(2, "R__views.sql", done=0)),
        states=(("R__views.sql", State.FAILED),),
        to_apply=("R__views.sql",),
        resumed=("R__views.sql",),
    ),
    "a failed transactional repeatable blocks migrate": Case(
        files=("R__views.sql",),
        history=(row(1, "R__views.sql", success=False),),
        states=(("R__views.sql", State.FAILED),),
        problems=(("failed", "R__views.sql"),),
    ),
    "a no-transaction script in progress under the lock is running": Case(
        files=("V1__a.sql", "V2__b.sql", "R__views.sql"),
        history=(row(1, "V1__a.sql"), partial(2, "V2__b.sql"), partial(3, "R__views.sql")),
        states=(("V1__a.sql", A), ("V2__b.sql", State.RUNNING), ("R__views.sql", State.RUNNING)),
        to_apply=("V2__b.sql", "R__views.sql"),
        resumed=("V2__b.sql", "R__views.sql"),
        current="1",
        lock_held=True,
    ),
    "a failed transactional row is failed even while the lock is held": Case(
        files=("V1__a.sql",),
        history=(row(1, "V1__a.sql", success=False),),
        states=(("V1__a.sql", State.FAILED),),
        problems=(("failed", "V1__a.sql"),),
        lock_held=True,
    ),
    "a progress row whose file is gone cannot resume": Case(
        files=(),
        history=(partial(1, "V1__a.sql"),),
        states=(("V1__a.sql", State.FAILED),),
        problems=(("failed", "V1__a.sql"),),
    ),
    "a failed version above the target does not resume": Case(
        files=("V1__a.sql", "V2__b.sql"),
        history=(row(1, "V1__a.sql"), partial(2, "V2__b.sql")),
        states=(("V1__a.sql", A), ("V2__b.sql", State.FAILED)),
        problems=(("failed", "V2__b.sql"),),
        current="1",
        target="1",
    ),
    "target stops after that version; repeatables still run": Case(
        files=("V1__a.sql", "V2__b.sql", "V2.5__c.sql", "V3__d.sql", "R__views.sql"),
        history=(),
        states=(
            ("V1__a.sql", P),
            ("V2__b.sql", P),
            ("V2.5__c.sql", P),
            ("V3__d.sql", P),
            ("R__views.sql", P),
        ),
        to_apply=("V1__a.sql", "V2__b.sql", "R__views.sql"),
        target="2.0",
    ),
    "a version below the highest applied one is ignored": Case(
        files=("V1__a.sql", "V2__b.sql", "V3__c.sql"),
        history=(row(1, "V1__a.sql"), row(2, "V3__c.sql")),
        states=(("V1__a.sql", A), ("V2__b.sql", State.IGNORED), ("V3__c.sql", A)),
        problems=(("out_of_order", "V2__b.sql"),),
        current="3",
    ),
    "out of order allowed: the lower version is pending": Case(
        files=("V1__a.sql", "V2__b.sql", "V3__c.sql"),
        history=(row(1, "V1__a.sql"), row(2, "V3__c.sql")),
        states=(("V1__a.sql", A), ("V2__b.sql", P), ("V3__c.sql", A)),
        to_apply=("V2__b.sql",),
        current="3",
        out_of_order=True,
    ),
    "baseline: versions up to it count as applied": Case(
        files=("V3__c.sql", "V5__e.sql", "V6__f.sql"),
        history=(baseline(1, "5"),),
        states=(
            ("V3__c.sql", State.BELOW_BASELINE),
            ("<< Baseline >>", State.BASELINE),
            ("V5__e.sql", State.BELOW_BASELINE),
            ("V6__f.sql", P),
        ),
        to_apply=("V6__f.sql",),
        current="5",
    ),
    "baseline then applied versions: current is the highest applied": Case(
        files=("V6__f.sql",),
        history=(baseline(1, "5"), row(2, "V6__f.sql")),
        states=(("<< Baseline >>", State.BASELINE), ("V6__f.sql", A)),
        current="6",
    ),
    "naming and expansion problems are passed on": Case(
        files=("V1__a.sql",),
        history=(),
        states=(("V1__a.sql", P),),
        to_apply=("V1__a.sql",),
        problems=(("bad_name", "v2__b.sql"), ("placeholder", "V1__a.sql")),
        file_problems=(
            Problem("bad_name", "v2__b.sql", "rename it"),
            Problem("placeholder", "V1__a.sql", "define it"),
        ),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_plan(case: Case) -> None:
    result = run(case)
    assert [(m.script, m.state) for m in result.migrations] == list(case.states)
    assert [p.file.name for p in result.to_apply] == list(case.to_apply)
    assert [p.file.name for p in result.to_apply if p.resume is not None] == list(case.resumed)
    assert [(p.code, p.script) for p in result.problems] == list(case.problems)
    assert result.current_version == case.current


def test_a_resumed_script_carries_its_failed_row() -> None:
    failed = partial(2, "V2__b.sql")
    result = run(Case(("V1__a.sql", "V2__b.sql"), (row(1, "V1__a.sql"), failed), ()))
    assert [(p.file.name, p.resume) for p in result.to_apply] == [("V2__b.sql", failed)]
    assert result.failed_rows == (failed,)


def test_states_are_the_strings_status_prints() -> None:
    assert [str(s) for s in State] == [
        "pending",
        "applied",
        "failed",
        "running",
        "changed",
        "missing",
        "outdated",
        "ignored",
        "baseline",
        "below_baseline",
        "applied_no_file",
    ]
    info = run(CASES["all applied"]).migrations[0]
    assert json.loads(json.dumps(info._asdict(), default=str))["state"] == "applied"
    assert f"{info.state:<10}|" == "applied   |"


def test_applied_scripts_show_their_history_row() -> None:
    applied = row(1, "V1__a.sql")
    [info] = run(Case(("V1__a.sql",), (applied,), ())).migrations
    assert info == planner.MigrationInfo(
        "versioned", "1", "a", "V1__a.sql", A, applied.checksum, 1, WHEN, 10
    )


def test_outdated_repeatable_shows_the_file_checksum() -> None:
    [info] = run(CASES["edited repeatable is outdated and runs again"]).migrations[1:]
    assert info.checksum == checksum_of(body("R__views.sql"))
    assert info.installed_rank == 1


PROBLEM_ADVICE = {
    "edited applied version is changed": "put the change in a new migration, or run `persistor repair`",
    "applied scripts whose files are gone are missing": "restore the file, or run `persistor repair` to mark it deleted",
    "a failed transactional row blocks migrate until repair": "then run `persistor repair` to remove the failed row",
    "a version below the highest applied one is ignored": "lower than the highest applied version 3 and was never applied; renumber it above 3, or run migrate with --out-of-order",
}


@pytest.mark.parametrize("name", PROBLEM_ADVICE)
def test_problems_say_what_to_do(name: str) -> None:
    problem = run(CASES[name]).problems[0]
    assert PROBLEM_ADVICE[name] in problem.message


def test_repair_inputs_list_applied_failed_and_missing_rows() -> None:
    result = run(CASES["a failed row whose file is gone is still shown and reported"])
    assert [r.script for r in result.failed_rows] == ["V2__b.sql", "R__gone.sql"]
    assert list(result.applied_versions) == [Version.parse("1")]
    missing = run(CASES["applied scripts whose files are gone are missing"]).missing_rows
    assert [r.script for r in missing] == ["V1__a.sql", "R__gone.sql"]


def test_latest_undoable_is_the_highest_applied_version() -> None:
    history = [row(1, "V1__a.sql"), row(2, "V2__b.sql"), row(3, "V2__b.sql", type="UNDO")]
    latest = planner.latest_undoable(history)
    assert latest is not None
    assert latest[0] == Version.parse("1") and latest[1].installed_rank == 1
    assert planner.latest_undoable([*history, row(4, "V1__a.sql", type="UNDO")]) is None
    assert planner.latest_undoable([baseline(1, "5")]) is None
