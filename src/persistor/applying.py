"""How `migrate` applies: plan from history, prepare, lint, run each script with its row.

api.migrate opens the session and takes the lock; these functions do the
work under it (and the dry run without it). Nothing here prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from persistor.adopt import refuse_over_foreign
from persistor.core import planner
from persistor.core.callbacks import Callbacks
from persistor.core.planner import Plan
from persistor.core.scripts import Discovery, ScriptKind, Version
from persistor.errors import MigrationError, Problem, ValidationError
from persistor.results import AppliedScript, Event, MigrateResult
from persistor.session import Session

if TYPE_CHECKING:
    from persistor.core.runner import PreparedScript
    from persistor.core.source import ExpandedScript
    from persistor.engines.base import HistoryRow
    from persistor.lint.findings import Finding
    from persistor.lint.linter import PendingLint


def prepare_all(
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


def lint_pending(
    s: Session, plan: Plan, show: bool = True, unlinted: bool = True
) -> PendingLint | None:
    """Lint the scripts about to run (PostgreSQL only; a no-op run imports no parser)."""
    if s.engine.dialect != "postgresql" or not plan.to_apply:
        return None
    from persistor.lint.linter import lint_planned

    return lint_planned(plan.to_apply, s.settings.lint, s.on_event if show else None, unlinted)


def plan_and_prepare(
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
    prepared, problems = prepare_all(plan, s.engine.dialect, single_transaction)
    if plan.problems or problems:
        raise ValidationError([*plan.problems, *problems])
    return plan, prepared


class LintBeside:
    """The lint of the scripts a run applies, done on a thread of its own while they run.

    Its findings are warnings that stop nothing, and its cost (importing the
    parser, parsing: ~0.05-0.1 s) is CPU while the run mostly waits on the
    server, so beside the run it costs no wall time. Scripts with an ignore
    comment are linted first, before anything runs: a bad one stops the run.
    The warnings are shown when the run ends (`finish`), failed or not.
    """

    def __init__(self, s: Session, plan: Plan) -> None:
        self._s = s
        self._early: tuple[Finding, ...] = ()
        self._late: PendingLint | None = None
        if s.engine.dialect != "postgresql" or not plan.to_apply:
            self._thread = None
            return
        import threading

        from persistor.lint.linter import lint_planned
        from persistor.lint.prefilter import IGNORE_MARK

        marked = [p for p in plan.to_apply if IGNORE_MARK in p.source.text]
        rest = [p for p in plan.to_apply if IGNORE_MARK not in p.source.text]
        if marked:
            now = lint_planned(marked, s.settings.lint, s.on_event)
            if now.problems:
                raise ValidationError(list(now.problems))
            self._early = now.findings

        def lint_rest() -> None:
            self._late = lint_planned(rest, s.settings.lint, None)

        self._thread = threading.Thread(target=lint_rest, name="persistor-lint", daemon=True)
        self._thread.start()

    def finish(self) -> tuple[Finding, ...]:
        """Wait for the lint, show its warnings, and return every finding."""
        if self._thread is None:
            return self._early
        self._thread.join()
        self._thread = None
        if self._late is None:  # the thread failed: lint stops nothing, say so
            self._s.on_event(Event("warning", "lint: could not lint the scripts of this run"))
            return self._early
        for line in self._late.warnings():
            self._s.on_event(Event("warning", line))
        return self._early + self._late.findings


def dry_run(
    s: Session,
    discovery: Discovery,
    sources: dict[str, ExpandedScript],
    goal: Version | None,
    out_of_order: bool,
    single_transaction: bool,
) -> MigrateResult:
    """Plan without the lock and return the SQL that would run; change nothing."""
    history = s.engine.read_history()
    refuse_over_foreign(s.engine, "migrate", history)
    plan, prepared = plan_and_prepare(
        s, discovery, sources, history, goal, out_of_order, single_transaction
    )
    lint = lint_pending(s, plan)
    if lint is not None and lint.problems:  # a bad ignore comment: fix it before anything runs
        raise ValidationError(list(lint.problems))
    planned = tuple(applied_script(p, 0, with_sql=True) for p in prepared)
    return MigrateResult(s.database, planned, plan.current_version, dry_run=True, lint=lint.findings if lint else ())


def apply_pending(
    s: Session,
    discovery: Discovery,
    sources: dict[str, ExpandedScript],
    goal: Version | None,
    out_of_order: bool,
    single_transaction: bool,
    applied: list[AppliedScript],
) -> MigrateResult:
    """Under the lock: plan again from fresh history, then apply; `applied` grows as scripts do."""
    history = s.engine.read_history()
    refuse_over_foreign(s.engine, "migrate", history)  # an empty table left by an older run
    hooks = Callbacks.load(discovery, sources, s.engine.dialect)
    hooks.run(s.engine, "beforeValidate")
    plan, prepared = plan_and_prepare(
        s, discovery, sources, history, goal, out_of_order, single_transaction
    )
    lint = LintBeside(s, plan)
    try:
        hooks.run(s.engine, "afterValidate")
        hooks.run(s.engine, "beforeMigrate")  # before the history table exists, as in Flyway
        s.engine.ensure_history()
        history = s.engine.read_history()
        if prepared:
            try:
                run_all(s, prepared, history, single_transaction, applied, hooks)
            except MigrationError:
                hooks.after_error(s.engine)
                raise
        hooks.run(s.engine, "afterMigrate")  # also when nothing was pending, as in Flyway
    finally:
        findings = lint.finish()
    versions = [Version.parse(v) for v in (a.version for a in applied) if v]
    current = plan.current_version
    if versions:
        newest = max(versions)
        if current is None or Version.parse(current) < newest:
            current = newest.text
    return MigrateResult(s.database, tuple(applied), current, lint=findings)


def run_all(
    s: Session,
    prepared: list[PreparedScript],
    history: list[HistoryRow],
    single_transaction: bool,
    applied: list[AppliedScript],
    hooks: Callbacks,
) -> None:
    """Run the prepared scripts in order, each with its history row (all in one with the flag)."""
    from persistor.core.retry import LockRetry
    from persistor.core.runner import run_script

    # Under --single-transaction, earlier scripts' locks would be held through
    # every pause: no retry there, only the blocker named.
    retries = 0 if single_transaction else s.settings.lock_retries
    retry = LockRetry(retries, s.settings.lock_retry_max_delay_s, s.on_event)
    rank = max((r.installed_rank for r in history), default=0)
    total = len(prepared)

    def run_each() -> None:
        nonlocal rank
        for n, script in enumerate(prepared, start=1):
            s.on_event(Event("start", script.file.name, n - 1, total))
            rank += 1
            elapsed = run_script(s.engine, script, rank, hooks.each, retry)
            applied.append(applied_script(script, elapsed))
            s.on_event(Event("applied", script.file.name, n, total))

    if single_transaction:
        with s.engine.transaction() as run:  # each script's is then a savepoint in it
            run_each()
            run.commit()  # refused: the run failed at COMMIT (see `committing` in migrate)
    else:
        run_each()


def applied_script(script: PreparedScript, elapsed: int, with_sql: bool = False) -> AppliedScript:
    f = script.file
    return AppliedScript(
        type="versioned" if f.kind is ScriptKind.VERSIONED else f.kind.name.lower(),
        version=f.version.text if f.version else None,
        description=f.description,
        script=f.name,
        execution_time_ms=elapsed,
        sql=script.shown() if with_sql else None,
    )
