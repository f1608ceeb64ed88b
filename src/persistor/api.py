"""The Python API: one function per command, each returning a result object.

Nothing here prints. Progress and waiting messages go to the optional
`on_event` callback; failures raise a PersistorError subclass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from persistor.core import planner
from persistor.core.planner import Plan
from persistor.core.scripts import Discovery, ScriptKind, Version, discover
from persistor.core.source import ExpandedScript, expand_script
from persistor.engines import Engine, open_engine
from persistor.engines.base import NewHistoryRow
from persistor.errors import ConnectError, PersistorError, Problem, UsageError, ValidationError
from persistor.results import (
    AppliedScript,
    BaselineResult,
    CleanResult,
    ConnectionResult,
    DatabaseInfo,
    Event,
    MigrateResult,
    NewScriptResult,
    RepairResult,
    StatusResult,
    StopEmbeddedResult,
    UndoResult,
    ValidateResult,
)
from persistor.settings import Settings
from persistor.urls import POSTGRES_SCHEMES, mask_url, scheme_of

if TYPE_CHECKING:
    from persistor.core.runner import PreparedScript
    from persistor.ecliptix.demo import DemoReport

EventCallback = Callable[[Event], None]


def _ignore(event: Event) -> None:
    return None


@dataclass
class _Session:
    settings: Settings
    engine: Engine
    database: DatabaseInfo
    on_event: EventCallback

    def locked(self) -> AbstractContextManager[None]:
        return self.engine.lock(
            self.settings.lock_timeout, lambda msg: self.on_event(Event("wait", msg))
        )


def _resolve_url(settings: Settings) -> tuple[str, str | None]:
    """Return the database URL, starting the embedded server when none is configured."""
    if settings.url is not None:
        return settings.url, None
    from persistor.engines.embedded import default_data_dir, start_embedded

    server = start_embedded(settings.embedded_dir or default_data_dir())
    return server.url, str(server.data_dir)


@contextmanager
def _session(settings: Settings, on_event: EventCallback | None) -> Iterator[_Session]:
    url, embedded_dir = _resolve_url(settings)
    engine = open_engine(
        url, settings.schema, settings.history_table, settings.connect_timeout, settings.lock_mode
    )
    try:
        info = DatabaseInfo(
            engine=engine.name,
            url=mask_url(url),
            schema=engine.schema,
            history_table=settings.history_table,
            embedded_data_dir=embedded_dir,
        )
        yield _Session(settings, engine, info, on_event or _ignore)
    finally:
        engine.close()


def _load(settings: Settings) -> tuple[Discovery, dict[str, ExpandedScript]]:
    roots = [p.resolve() for p in settings.locations]
    discovery = discover(roots)
    placeholders = dict(settings.placeholders)
    sources: dict[str, ExpandedScript] = {}
    for f in (*discovery.versioned, *discovery.repeatable):
        builtin = {"persistor:filename": f.path.name, **placeholders}
        sources[f.name] = expand_script(f.path, f.name, roots, builtin)
    return discovery, sources


def _parse_target(target: str | None) -> Version | None:
    if target is None or target in ("latest", ""):
        return None
    try:
        return Version.parse(target)
    except ValueError:
        raise UsageError(
            f"--target {target!r} is not a version; give digits separated by '.' or '_', e.g. 1.2"
        ) from None


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
    goal = _parse_target(target)
    ooo = settings.out_of_order if out_of_order is None else out_of_order
    discovery, sources = _load(settings)
    with _session(settings, on_event) as s:
        if dry_run:
            plan = planner.plan(
                discovery, sources, s.engine.read_history(), target=goal, out_of_order=ooo
            )
            prepared, problems = _prepare_all(plan, s.engine.dialect, single_transaction)
            if plan.problems or problems:
                raise ValidationError([*plan.problems, *problems])
            planned = tuple(_applied(p, 0, with_sql=True) for p in prepared)
            return MigrateResult(s.database, planned, plan.current_version, dry_run=True)
        with s.locked():
            s.engine.ensure_history()
            history = s.engine.read_history()
            plan = planner.plan(discovery, sources, history, target=goal, out_of_order=ooo)
            prepared, problems = _prepare_all(plan, s.engine.dialect, single_transaction)
            if plan.problems or problems:
                raise ValidationError([*plan.problems, *problems])
            from persistor.core.runner import run_script

            rank = max((r.installed_rank for r in history), default=0)
            applied: list[AppliedScript] = []
            total = len(prepared)

            def run_all() -> None:
                nonlocal rank
                for n, script in enumerate(prepared, start=1):
                    s.on_event(Event("start", script.file.name, n - 1, total))
                    rank += 1
                    elapsed = run_script(s.engine, script, rank)
                    applied.append(_applied(script, elapsed))
                    s.on_event(Event("applied", script.file.name, n, total))

            if single_transaction:
                with s.engine.transaction():
                    run_all()
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
    discovery, sources = _load(settings)
    with _session(settings, on_event) as s:
        plan = planner.plan(
            discovery, sources, s.engine.read_history(), out_of_order=settings.out_of_order
        )
        return StatusResult(s.database, plan.current_version, plan.migrations, plan.problems)


def validate(settings: Settings, *, on_event: EventCallback | None = None) -> ValidateResult:
    """Run every check of migrate plus an offline parse of each script; change nothing."""
    discovery, sources = _load(settings)
    with _session(settings, on_event) as s:
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
    discovery, sources = _load(settings)
    with _session(settings, on_event) as s:
        info = s.engine.server_info()
        plan = planner.plan(discovery, sources, s.engine.read_history())
        return ConnectionResult(
            s.database, info.server_version, info.user, info.database, plan.current_version
        )


def new_script(settings: Settings, name: str) -> NewScriptResult:
    """Create the next V<version>__<name>.sql in the first location, matching its numbering."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    if not slug:
        raise UsageError(f"cannot make a file name from {name!r}; use letters and digits")
    location = settings.locations[0]
    discovery = discover([location]) if location.is_dir() else None
    versions = [f.version for f in discovery.versioned if f.version] if discovery else []
    version = _next_version(versions)
    location.mkdir(parents=True, exist_ok=True)
    path = location / f"V{version}__{slug}.sql"
    if path.exists():
        raise UsageError(f"{path} already exists")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path.write_text(f"-- {name} ({stamp})\n\n", encoding="utf-8")
    return NewScriptResult(path, version)


def _next_version(versions: list[Version]) -> str:
    if not versions:
        return "001"
    newest = max(versions)
    pieces = re.split(r"([._])", newest.text)
    last = pieces[-1]
    bumped = str(int(last) + 1).zfill(len(last))
    if len(pieces) == 1:
        width = (
            max(len(v.text) for v in versions if re.fullmatch(r"\d+", v.text)) if versions else 3
        )
        bumped = bumped.zfill(width)
    return "".join([*pieces[:-1], bumped])


def baseline(
    settings: Settings,
    *,
    version: str = "1",
    description: str = "baseline",
    on_event: EventCallback | None = None,
) -> BaselineResult:
    """Adopt an existing database: record a baseline, or import Flyway's/DbUp's history."""
    with _session(settings, on_event) as s, s.locked():
        if s.engine.read_history():
            raise UsageError(
                f"the history table {settings.history_table} already has rows; baseline only "
                "adopts a database that persistor has not migrated yet"
            )
        s.engine.ensure_history()
        journal = s.engine.foreign_journal()
        with s.engine.transaction():
            if journal is not None and journal.rows:
                for row in journal.rows:
                    s.engine.insert_history(row)
                imported = tuple(f"{r.version or ''} {r.script}".strip() for r in journal.rows)
                newest = max(
                    (Version.parse(r.version) for r in journal.rows if r.version), default=None
                )
                return BaselineResult(
                    s.database,
                    newest.text if newest else None,
                    journal.tool,
                    imported,
                    journal.skipped,
                )
            parsed = _parse_target(version)
            assert parsed is not None
            s.engine.insert_history(
                NewHistoryRow(
                    1, parsed.text, description, "BASELINE", f"<< {description} >>", None, 0, True
                )
            )
        return BaselineResult(s.database, parsed.text)


def repair(settings: Settings, *, on_event: EventCallback | None = None) -> RepairResult:
    """Remove failed rows, realign checksums to the files, mark missing scripts deleted."""
    discovery, sources = _load(settings)
    with _session(settings, on_event) as s, s.locked():
        history = s.engine.read_history()
        plan = planner.plan(discovery, sources, history, out_of_order=True)
        rank = max((r.installed_rank for r in history), default=0)
        with s.engine.transaction():
            failed = plan.failed_rows
            if failed:
                s.engine.delete_history([r.installed_rank for r in failed])
            realigned = []
            by_version = {f.version: f for f in discovery.versioned}
            for v, row in plan.applied_versions.items():
                f = by_version.get(v)
                if f is not None and row.checksum != sources[f.name].checksum:
                    s.engine.update_checksum(row.installed_rank, sources[f.name].checksum)
                    realigned.append(f.name)
            for row in plan.missing_rows:
                rank += 1
                s.engine.insert_history(
                    NewHistoryRow(
                        rank,
                        row.version,
                        row.description,
                        "DELETE",
                        row.script,
                        row.checksum,
                        0,
                        True,
                    )
                )
        return RepairResult(
            s.database,
            tuple(r.script for r in failed),
            tuple(realigned),
            tuple(r.script for r in plan.missing_rows),
        )


def undo(settings: Settings, *, on_event: EventCallback | None = None) -> UndoResult:
    """Apply the undo script of the latest applied version."""
    discovery = discover([p.resolve() for p in settings.locations])
    with _session(settings, on_event) as s, s.locked():
        history = s.engine.read_history()
        latest = planner.latest_undoable(history)
        if latest is None:
            raise UsageError("nothing to undo: no versioned migration is applied")
        version, row = latest
        f = planner.undo_file(discovery, version)
        if f is None:
            raise ValidationError(
                [
                    Problem(
                        "no_undo",
                        row.script,
                        f"has no undo script; write U{version.text}__<description>.sql",
                    )
                ]
            )
        from persistor.core.runner import prepare, run_script

        roots = [p.resolve() for p in settings.locations]
        source = expand_script(f.path, f.name, roots, dict(settings.placeholders))
        if source.problems:
            raise ValidationError(source.problems)
        prepared = prepare(f, source, s.engine.dialect)
        if isinstance(prepared, Problem):
            raise ValidationError([prepared])
        rank = max((r.installed_rank for r in history), default=0) + 1
        run_script(s.engine, prepared, rank)
        remaining = planner.latest_undoable(s.engine.read_history())
        return UndoResult(
            s.database, version.text, f.name, remaining[0].text if remaining else None
        )


def clean(
    settings: Settings, *, confirmed: bool, on_event: EventCallback | None = None
) -> CleanResult:
    """Drop everything in the schema; needs clean_enabled in configuration and confirmation."""
    if not settings.clean_enabled:
        raise UsageError(
            "clean is disabled: it drops every object in the schema. Enable it with "
            "clean_enabled = true in persistor.toml or PERSISTOR_CLEAN_ENABLED=1, then pass --yes"
        )
    if not confirmed:
        raise UsageError("clean drops every object in the schema; pass --yes to confirm")
    with _session(settings, on_event) as s, s.locked():
        dropped = s.engine.clean()
        return CleanResult(s.database, tuple(dropped))


def demo(settings: Settings, phone_number: str | None = None) -> DemoReport:
    """Walk a full Ecliptix registration and login on the configured PostgreSQL database."""
    import psycopg

    from persistor.ecliptix.demo import run_demo

    url, _ = _resolve_url(settings)
    if scheme_of(url) not in POSTGRES_SCHEMES:
        raise UsageError("the Ecliptix demo needs PostgreSQL; give a postgresql:// URL")
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=settings.connect_timeout)
    except psycopg.Error as exc:
        raise ConnectError(f"cannot connect to {mask_url(url)}: {str(exc).strip()}") from None
    with conn:
        try:
            return run_demo(conn, phone_number=phone_number, schema=settings.schema)
        except psycopg.errors.UndefinedFunction:
            raise UsageError(
                "the Ecliptix functions are not deployed in this database; run `persistor migrate` first"
            ) from None


def stop_embedded(settings: Settings) -> StopEmbeddedResult:
    """Stop the embedded PostgreSQL server (its data stays for the next start)."""
    from persistor.engines import embedded

    data_dir = settings.embedded_dir or embedded.default_data_dir()
    return StopEmbeddedResult(str(data_dir), embedded.stop_embedded(data_dir))


def engine_name(settings: Settings) -> str:
    """Return the engine a settings object would use, without connecting."""
    if settings.url is None:
        return "postgresql (embedded)"
    return scheme_of(settings.url) or "unknown"


__all__ = [
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
    "undo",
    "validate",
]
