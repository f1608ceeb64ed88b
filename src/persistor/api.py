"""The Python API: one function per command, each returning a result object.

Nothing here prints. Progress and waiting messages go to the optional
`on_event` callback; failures raise a PersistorError subclass. The
maintenance commands live in persistor.admin and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
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
from persistor.adopt import refuse_over_foreign
from persistor.core import planner
from persistor.core.callbacks import Callbacks
from persistor.core.planner import Plan
from persistor.core.scripts import Discovery, ScriptFile, ScriptKind, Version
from persistor.core.syntax import parse_all
from persistor.errors import MigrationError, PersistorError, Problem, ValidationError
from persistor.results import (
    AppliedScript,
    ConnectionResult,
    DatabaseInfo,
    Event,
    LocationFormat,
    MigrateResult,
    StatusResult,
    ValidateResult,
)
from persistor.session import (
    EventCallback,
    Session,
    load_scripts,
    open_session,
    parse_target,
    unused_files,
)
from persistor.settings import Settings

if TYPE_CHECKING:
    from persistor.core.runner import PreparedScript
    from persistor.core.source import ExpandedScript
    from persistor.engines.base import HistoryRow
    from persistor.inspection import DriftResult, DumpResult
    from persistor.lint.findings import Finding
    from persistor.lint.linter import PendingLint


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
    if settings.dump_file is not None:
        from persistor.dump_file import check_folder  # only with the setting: most runs lack it

        check_folder(settings.dump_file, "dump_file")
    with open_session(settings, on_event, create=not dry_run) as s:
        discovery, sources = load_scripts(settings, s)  # in the session: ${flyway:user}, …
        warnings = tuple(unused_files(discovery, sources))
        if dry_run:
            result = _dry_run(s, discovery, sources, goal, ooo, single_transaction)
            return result._replace(warnings=warnings)
        if not s.engine.history_exists():
            # Before the lock: nothing is created over another tool's history.
            refuse_over_foreign(s.engine, "migrate")
        from persistor.core.runner import committing

        applied: list[AppliedScript] = []

        def kept() -> str:
            names = ", ".join(a.script for a in applied) or "no script"
            return f"Nothing of this run was applied ({names})"

        # A run can commit as a whole: on SQLite, whose lock is the run's own
        # transaction and commits as it is released, and with --single-transaction.
        with committing("the run", kept), s.locked():
            result = _apply_pending(s, discovery, sources, goal, ooo, single_transaction, applied)
        if settings.dump_file is not None:  # after the run has committed and let the lock go
            from persistor.dump_file import rewrite

            rewrite(s.engine, settings.dump_file)
        return result._replace(warnings=warnings)


def _lint_pending(
    s: Session, plan: Plan, show: bool = True, unlinted: bool = True
) -> PendingLint | None:
    """Lint the scripts about to run (PostgreSQL only; a no-op run imports no parser)."""
    if s.engine.dialect != "postgresql" or not plan.to_apply:
        return None
    from persistor.lint.linter import lint_planned

    return lint_planned(plan.to_apply, s.settings.lint, s.on_event if show else None, unlinted)


def _planned(
    s: Session,
    discovery: Discovery,
    sources: dict[str, ExpandedScript],
    history: list[HistoryRow],
    goal: Version | None,
    out_of_order: bool,
    single_transaction: bool,
) -> tuple[Plan, list[PreparedScript], tuple[Finding, ...]]:
    """Plan from the history and prepare what is to run; ValidationError if anything is wrong."""
    plan = planner.plan(discovery, sources, history, target=goal, out_of_order=out_of_order)
    prepared, problems = _prepare_all(plan, s.engine.dialect, single_transaction)
    lint = _lint_pending(s, plan)
    if lint is not None:
        problems += lint.problems  # a bad ignore comment: fix it before anything runs
    if plan.problems or problems:
        raise ValidationError([*plan.problems, *problems])
    return plan, prepared, lint.findings if lint else ()


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
    refuse_over_foreign(s.engine, "migrate", history)
    plan, prepared, lint = _planned(
        s, discovery, sources, history, goal, out_of_order, single_transaction
    )
    planned = tuple(_applied(p, 0, with_sql=True) for p in prepared)
    return MigrateResult(s.database, planned, plan.current_version, dry_run=True, lint=lint)


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
    history = s.engine.read_history()
    refuse_over_foreign(s.engine, "migrate", history)  # an empty table left by an older run
    hooks = Callbacks.load(discovery, sources, s.engine.dialect)
    hooks.run(s.engine, "beforeValidate")
    plan, prepared, lint = _planned(
        s, discovery, sources, history, goal, out_of_order, single_transaction
    )
    hooks.run(s.engine, "afterValidate")
    hooks.run(s.engine, "beforeMigrate")  # before the history table exists, as in Flyway
    s.engine.ensure_history()
    history = s.engine.read_history()
    if prepared:
        try:
            _run_all(s, prepared, history, single_transaction, applied, hooks)
        except MigrationError:
            hooks.after_error(s.engine)
            raise
    hooks.run(s.engine, "afterMigrate")  # also when nothing was pending, as in Flyway
    versions = [Version.parse(v) for v in (a.version for a in applied) if v]
    current = plan.current_version
    if versions:
        newest = max(versions)
        if current is None or Version.parse(current) < newest:
            current = newest.text
    return MigrateResult(s.database, tuple(applied), current, lint=lint)


def _run_all(
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
            applied.append(_applied(script, elapsed))
            s.on_event(Event("applied", script.file.name, n, total))

    if single_transaction:
        with s.engine.transaction() as run:  # each script's is then a savepoint in it
            run_each()
            run.commit()  # refused: the run failed at COMMIT (see `committing` in migrate)
    else:
        run_each()


def _applied(script: PreparedScript, elapsed: int, with_sql: bool = False) -> AppliedScript:
    f = script.file
    return AppliedScript(
        type="versioned" if f.kind is ScriptKind.VERSIONED else f.kind.name.lower(),
        version=f.version.text if f.version else None,
        description=f.description,
        script=f.name,
        execution_time_ms=elapsed,
        sql=script.shown() if with_sql else None,
    )


def status(settings: Settings, *, on_event: EventCallback | None = None) -> StatusResult:
    """Return every known script with its state, and what is wrong."""
    with open_session(settings, on_event) as s:
        discovery, sources = load_scripts(settings, s)  # a repeatable's checksum may need it
        history = s.engine.read_history()
        refuse_over_foreign(s.engine, "status", history)
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
            s.database,
            plan.current_version,
            plan.migrations,
            plan.problems,
            holder,
            _formats(discovery),
            tuple(unused_files(discovery, sources)),
        )


def _formats(discovery: Discovery) -> tuple[LocationFormat, ...]:
    return tuple(LocationFormat(location, fmt) for location, fmt in discovery.formats)


def validate(
    settings: Settings,
    *,
    strict: bool = False,
    offline: bool = False,
    on_event: EventCallback | None = None,
) -> ValidateResult:
    """Run every check of migrate, parse each script offline, lint the pending ones (strict: fail).

    Nothing is changed. offline=True needs no database: the file checks (names,
    includes, placeholders, the PostgreSQL parser, Python migrations' imports)
    against an empty history, for a pre-commit hook (`persistor lint` has its own).
    """
    if offline:
        return _validate_offline(settings, *load_scripts(settings))
    with open_session(settings, on_event) as s:
        discovery, sources = load_scripts(settings, s)
        history = s.engine.read_history()
        refuse_over_foreign(s.engine, "validate", history)
        # (a SQLite file that does not exist yet stays so: no callback runs on it)
        hooks = Callbacks.load(discovery, sources, s.engine.dialect) if s.engine.exists else None
        if hooks is not None:
            hooks.run(s.engine, "beforeValidate")
        plan = planner.plan(discovery, sources, history, out_of_order=settings.out_of_order)
        _, problems = _prepare_all(plan, s.engine.dialect, single_transaction=False)
        lint = _lint_pending(s, plan, not strict, unlinted=False)  # syntax problems: below
        if lint is not None:
            problems += [*lint.problems, *(lint.as_problems() if strict else ())]
        parsed = parse_all(_all_files(discovery), sources, s.engine.syntax_problems, problems)
        if plan.problems or problems:
            raise ValidationError([*plan.problems, *problems])
        if hooks is not None:
            hooks.run(s.engine, "afterValidate")
        warnings = tuple(unused_files(discovery, sources))
        return ValidateResult(
            s.database,
            len(sources),
            parsed,
            warnings,
            _formats(discovery),
            lint=lint.findings if lint else (),
        )


def _all_files(discovery: Discovery) -> tuple[ScriptFile, ...]:
    return (*discovery.versioned, *discovery.repeatable, *discovery.baselines, *discovery.callbacks)


def _validate_offline(
    settings: Settings, discovery: Discovery, sources: dict[str, ExpandedScript]
) -> ValidateResult:
    """Check the files alone, as if the database were empty."""
    from persistor.urls import mask_url

    sqlite = (settings.url or "").startswith("sqlite:")
    plan = planner.plan(discovery, sources, [], out_of_order=True)
    _, problems = _prepare_all(plan, "sqlite" if sqlite else "postgresql", False)
    parsed = 0
    if not sqlite:
        from persistor.engines.postgres.parse import syntax_problems

        parsed = parse_all(_all_files(discovery), sources, syntax_problems, problems)
    if plan.problems or problems:
        raise ValidationError([*plan.problems, *problems])
    database = DatabaseInfo(
        engine="sqlite" if sqlite else "postgresql",
        url=mask_url(settings.url) if settings.url else "(offline: no database)",
        schema=settings.schema or ("main" if sqlite else "public"),
        history_table=settings.history_table,
    )
    warnings = tuple(unused_files(discovery, sources))
    return ValidateResult(
        database, len(sources), parsed, warnings, _formats(discovery), offline=True
    )


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


def dump(
    settings: Settings, *, out: Path | None = None, on_event: EventCallback | None = None
) -> DumpResult:
    """Return the target schema's structure as deterministic SQL; write it to out if given."""
    from persistor import inspection

    return inspection.dump(settings, out=out, on_event=on_event)


def drift(settings: Settings, *, on_event: EventCallback | None = None) -> DriftResult:
    """Build the migrations in a scratch database and compare the target with it, object by object."""
    from persistor import inspection

    return inspection.drift(settings, migrate, on_event=on_event)


def check_settled(result: StatusResult) -> None:
    """Raise PendingError (exit 7) when any script is pending, outdated, running, changed, failed or missing."""
    from persistor import inspection

    inspection.check_settled(result)


def check_no_drift(result: DriftResult) -> None:
    """Raise DriftError (exit 8) when the database differs from what its migrations produce."""
    from persistor import inspection

    inspection.check_no_drift(result)


__all__ = [
    "EventCallback",
    "PersistorError",
    "baseline",
    "check_connection",
    "check_no_drift",
    "check_settled",
    "clean",
    "demo",
    "drift",
    "dump",
    "migrate",
    "new_script",
    "repair",
    "status",
    "stop_embedded",
    "stress",
    "undo",
    "validate",
]
