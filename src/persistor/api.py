"""The Python API: one function per command, each returning a result object.

Nothing here prints. Progress and waiting messages go to the optional
`on_event` callback; failures raise a PersistorError subclass. The
maintenance commands live in persistor.admin and are re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from persistor import applying
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
from persistor.core.scripts import Discovery, ScriptFile
from persistor.core.syntax import parse_all
from persistor.errors import PersistorError, ValidationError
from persistor.results import (
    AppliedScript,
    ConnectionResult,
    DatabaseInfo,
    LocationFormat,
    MigrateResult,
    StatusResult,
    ValidateResult,
)
from persistor.session import (
    EventCallback,
    load_scripts,
    open_session,
    parse_target,
    unused_files,
)
from persistor.settings import Settings

if TYPE_CHECKING:
    from persistor.core.source import ExpandedScript
    from persistor.inspection import DriftResult, DumpResult


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
            result = applying.dry_run(s, discovery, sources, goal, ooo, single_transaction)
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
            result = applying.apply_pending(
                s, discovery, sources, goal, ooo, single_transaction, applied
            )
        if settings.dump_file is not None:  # after the run has committed and let the lock go
            from persistor.dump_file import rewrite

            rewrite(s.engine, settings.dump_file)
        return result._replace(warnings=warnings)


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
        _, problems = applying.prepare_all(plan, s.engine.dialect, single_transaction=False)
        lint = applying.lint_pending(s, plan, not strict, unlinted=False)  # syntax problems: below
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
    _, problems = applying.prepare_all(plan, "sqlite" if sqlite else "postgresql", False)
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
