"""The Python API: one function per command, each returning a result object.

Nothing here prints. Progress and waiting messages go to the optional
`on_event` callback; failures raise a PersistorError subclass. The
maintenance commands live in persistor.admin and are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from persistor.admin import (
    baseline,
    clean,
    demo,
    new_script,
    repair,
    stop_embedded,
    stress,
    undo,
)
from persistor.core import planner
from persistor.core.planner import Plan
from persistor.core.scripts import Discovery, ScriptKind, Version
from persistor.errors import PersistorError, Problem, ValidationError
from persistor.results import (
    AppliedScript,
    ConnectionResult,
    Event,
    MigrateResult,
    StatusResult,
    ValidateResult,
)
from persistor.session import EventCallback, Session, load_scripts, open_session, parse_target
from persistor.settings import Settings

if TYPE_CHECKING:
    from persistor.core.runner import PreparedScript
    from persistor.core.source import ExpandedScript
    from persistor.engines.base import HistoryRow


def _prepare_all(
    plan: Plan, dialect: str, single_transaction: bool
) -> tuple[list[PreparedScript], list[Problem]]:
    prepared: list[PreparedScript] = []
    problems: list[Problem] = []
    if not plan.to_apply:
        return prepared, problems
    from persistor.core.runner import prepare  # the splitter is needed only when there is work

    for item in plan.to_apply:
        result = prepare(item.file, item.source, dialect, item.resume)
        if isinstance(result, Problem):
            problems.append(result)
            continue
        if single_transaction and not result.transactional:
            problems.append(
                Problem(
                    "single_transaction",
                    item.file.name,
                    "must run outside a transaction, so it cannot be part of --single-transaction; "
                    "run it in a migrate of its own without that option",
                )
            )
        prepared.append(result)
    return prepared, problems


def migrate(
    settings: Settings,
    *,
    target: str | None = None,
    dry_run: bool = False,
    single_transaction: bool = False,
    out_of_order: bool | None = None,
    on_event: EventCallback | None = None,
) -> MigrateResult:
    """Validate, then apply pending versioned scripts and changed repeatables."""
    goal = parse_target(target)
    ooo = settings.out_of_order if out_of_order is None else out_of_order
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event, create=not dry_run) as s:
        if dry_run:
            return _dry_run(s, discovery, sources, goal, ooo, single_transaction)
        from persistor.core.runner import committing

        applied: list[AppliedScript] = []

        def kept() -> str:
            names = ", ".join(a.script for a in applied) or "no script"
            return f"Nothing of this run was applied ({names})"

        # A run can commit as a whole: on SQLite, whose lock is the run's own
        # transaction and commits as it is released, and with --single-transaction.
        with committing("the run", kept), s.locked():
            return _apply_pending(s, discovery, sources, goal, ooo, single_transaction, applied)


def _planned(
    s: Session,
    discovery: Discovery,
    sources: dict[str, ExpandedScript],
    history: list[HistoryRow],
    goal: Version | None,
    out_of_order: bool,
    single_transaction: bool,
) -> tuple[Plan, list[PreparedScript]]:
    """Plan from the history and prepare what is to run; ValidationError if anything is wrong."""
    plan = planner.plan(discovery, sources, history, target=goal, out_of_order=out_of_order)
    prepared, problems = _prepare_all(plan, s.engine.dialect, single_transaction)
    if plan.problems or problems:
        raise ValidationError([*plan.problems, *problems])
    return plan, prepared


def _dry_run(
    s: Session,
    discovery: Discovery,
    sources: dict[str, ExpandedScript],
    goal: Version | None,
    out_of_order: bool,
    single_transaction: bool,
) -> MigrateResult:
    """Plan without the lock and return the SQL that would run; change nothing."""
    history = s.engine.read_history()
    plan, prepared = _planned(
        s, discovery, sources, history, goal, out_of_order, single_transaction
    )
    planned = tuple(_applied(p, 0, with_sql=True) for p in prepared)
    return MigrateResult(s.database, planned, plan.current_version, dry_run=True)


def _apply_pending(
    s: Session,
    discovery: Discovery,
    sources: dict[str, ExpandedScript],
    goal: Version | None,
    out_of_order: bool,
    single_transaction: bool,
    applied: list[AppliedScript],
) -> MigrateResult:
    """Under the lock: plan again from fresh history, then apply; `applied` grows as scripts do."""
    s.engine.ensure_history()
    history = s.engine.read_history()
    plan, prepared = _planned(
        s, discovery, sources, history, goal, out_of_order, single_transaction
    )
    if not prepared:
        return MigrateResult(s.database, (), plan.current_version)
    from persistor.core.retry import LockRetry
    from persistor.core.runner import run_script

    # Under --single-transaction, earlier scripts' locks would be held through
    # every pause: no retry there, only the blocker named.
    retries = 0 if single_transaction else s.settings.lock_retries
    retry = LockRetry(retries, s.settings.lock_retry_max_delay_s, s.on_event)
    rank = max((r.installed_rank for r in history), default=0)
    total = len(prepared)

    def run_all() -> None:
        nonlocal rank
        for n, script in enumerate(prepared, start=1):
            s.on_event(Event("start", script.file.name, n - 1, total))
            rank += 1
            elapsed = run_script(s.engine, script, rank, retry)
            applied.append(_applied(script, elapsed))
            s.on_event(Event("applied", script.file.name, n, total))

    if single_transaction:
        with s.engine.transaction() as run:  # each script's is then a savepoint in it
            run_all()
            run.commit()  # refused: the run failed at COMMIT (see `committing` in migrate)
    else:
        run_all()
    versions = [Version.parse(v) for v in (a.version for a in applied) if v]
    current = plan.current_version
    if versions:
        newest = max(versions)
        if current is None or Version.parse(current) < newest:
            current = newest.text
    return MigrateResult(s.database, tuple(applied), current)


def _applied(script: PreparedScript, elapsed: int, with_sql: bool = False) -> AppliedScript:
    f = script.file
    return AppliedScript(
        type="versioned" if f.kind is ScriptKind.VERSIONED else f.kind.name.lower(),
        version=f.version.text if f.version else None,
        description=f.description,
        script=f.name,
        execution_time_ms=elapsed,
        sql=script.source.text if with_sql else None,
    )


def status(settings: Settings, *, on_event: EventCallback | None = None) -> StatusResult:
    """Return every known script with its state, and what is wrong."""
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event) as s:
        history = s.engine.read_history()
        # Asked after reading history: a migrator that took the lock since
        # can only have moved on, and its progress row will say so next time.
        holder = s.engine.lock_holder()
        plan = planner.plan(
            discovery,
            sources,
            history,
            out_of_order=settings.out_of_order,
            lock_held=holder is not None,
        )
        return StatusResult(
            s.database, plan.current_version, plan.migrations, plan.problems, holder
        )


def validate(settings: Settings, *, on_event: EventCallback | None = None) -> ValidateResult:
    """Run every check of migrate plus an offline parse of each script; change nothing."""
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event) as s:
        plan = planner.plan(
            discovery, sources, s.engine.read_history(), out_of_order=settings.out_of_order
        )
        _, problems = _prepare_all(plan, s.engine.dialect, single_transaction=False)
        parsed = 0
        for f in (*discovery.versioned, *discovery.repeatable):
            src = sources[f.name]
            if src.problems:
                continue
            for offset, message in s.engine.syntax_problems(src.text):
                loc = src.locate(src.text.count("\n", 0, offset) + 1)
                problems.append(Problem("syntax", f.name, f"{loc}: {message}; fix the SQL"))
            parsed += 1
        if plan.problems or problems:
            raise ValidationError([*plan.problems, *problems])
        return ValidateResult(s.database, len(sources), parsed)


def check_connection(
    settings: Settings, *, on_event: EventCallback | None = None
) -> ConnectionResult:
    """Connect and report engine, server version, user, database, schema and current version."""
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event) as s:
        info = s.engine.server_info()
        plan = planner.plan(discovery, sources, s.engine.read_history())
        return ConnectionResult(
            s.database, info.server_version, info.user, info.database, plan.current_version
        )


__all__ = [
    "EventCallback",
    "PersistorError",
    "baseline",
    "check_connection",
    "clean",
    "demo",
    "migrate",
    "new_script",
    "repair",
    "status",
    "stop_embedded",
    "stress",
    "undo",
    "validate",
]
