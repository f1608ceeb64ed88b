"""Maintenance commands: new, baseline, repair, undo, clean, the demo, stop-embedded."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from persistor import adopt, ecliptix_app
from persistor.core import planner
from persistor.core.scripts import Version, discover
from persistor.engines.base import Engine, NewHistoryRow
from persistor.engines.foreign import TOOL_NAMES
from persistor.errors import Problem, UsageError, ValidationError
from persistor.results import (
    BaselineResult,
    CleanResult,
    NewScriptResult,
    RepairResult,
    StopEmbeddedResult,
    UndoResult,
)
from persistor.session import (
    EventCallback,
    SessionPlaceholders,
    expand_file,
    load_scripts,
    open_session,
    parse_target,
    resolve_url,
)
from persistor.settings import Settings
from persistor.urls import POSTGRES_SCHEMES, scheme_of

if TYPE_CHECKING:
    from persistor.results import TextReport


def new_script(settings: Settings, name: str) -> NewScriptResult:
    """Create the next V<version>__<name>.sql in the first location, matching its numbering."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()
    if not slug:
        raise UsageError(f"cannot make a file name from {name!r}; use letters and digits")
    if not settings.locations_configured and settings.locations == (
        ecliptix_app.PACKAGED_MIGRATIONS,
    ):
        # The default location is inside the installed package: a new file
        # there is lost on upgrade, and the next default migrate would apply
        # it to the Ecliptix database.
        raise UsageError(
            "new needs your migrations folder: give --location DIR, PERSISTOR_LOCATIONS or "
            "locations in persistor.toml. Without one, persistor uses its packaged Ecliptix "
            "migrations, which new does not write into"
        )
    location = settings.locations[0]
    if location.exists() and not location.is_dir():
        raise UsageError(f"{location} is not a folder; give --location a migrations folder")
    try:
        location.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a parent is a file, or not writable
        raise UsageError(
            f"cannot create the migrations folder {location}: {exc.strerror}; "
            "give --location a folder you can write to"
        ) from None
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    # Two `new` at once in one folder would both pick the same next version:
    # the folder lock makes the second see the first's file, as if run after it.
    with _folder_lock(location):
        versions = [f.version for f in discover([location]).versioned if f.version]
        version = _next_version(versions)
        path = location / f"V{version}__{slug}.sql"
        try:
            with path.open("x", encoding="utf-8") as out:
                out.write(f"-- {name} ({stamp})\n\n")
        except FileExistsError:
            raise UsageError(f"{path} already exists") from None
    return NewScriptResult(path, version)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on the folder itself (where the OS has flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory folder locks; creation is still exclusive
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _next_version(versions: list[Version]) -> str:
    if not versions:
        return "001"
    newest = max(versions)
    pieces = re.split(r"([._])", newest.text)
    last = pieces[-1]
    bumped = str(int(last) + 1).zfill(len(last))
    if len(pieces) == 1:
        width = (
            max(len(v.text) for v in versions if re.fullmatch(r"[0-9]+", v.text)) if versions else 3
        )
        bumped = bumped.zfill(width)
    return "".join([*pieces[:-1], bumped])


def baseline(
    settings: Settings,
    *,
    version: str = "1",
    description: str = "baseline",
    source: str | None = None,
    on_event: EventCallback | None = None,
) -> BaselineResult:
    """Adopt an existing database: import another tool's history, or record a baseline.

    source names the tool whose history to import (persistor.adopt.SOURCES);
    None imports the only one found, "none" imports nothing.
    """
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event, create=True) as s, s.locked():
        if s.engine.read_history():
            raise UsageError(
                f"the history table {settings.history_table} already has rows; baseline only "
                "adopts a database that persistor has not migrated yet"
            )
        found = adopt.choose(s.engine.find_foreign_histories(), source)
        if found is not None:
            foreign = s.engine.read_foreign_history(found)
            adoption = adopt.adopt(foreign, discovery, sources)  # refuses before creating anything
            s.engine.ensure_history()
            _insert_history(s.engine, adoption.rows)
            newest = max(
                (Version.parse(r.version) for r in adoption.rows if r.version), default=None
            )
            return BaselineResult(
                s.database,
                newest.text if newest else None,
                TOOL_NAMES[found.tool],
                tuple(f"{r.version or ''} {r.script}".strip() for r in adoption.rows),
                adoption.notes,
                adoption.no_file,
                found.table,
            )
        parsed = parse_target(version)
        assert parsed is not None
        row = NewHistoryRow(
            1, parsed.text, description, "BASELINE", f"<< {description} >>", None, 0, True
        )
        s.engine.ensure_history()
        _insert_history(s.engine, [row])
        return BaselineResult(s.database, parsed.text)


def _insert_history(engine: Engine, rows: Sequence[NewHistoryRow]) -> None:
    with engine.transaction() as tx:
        for row in rows:
            tx.insert_history(row)
        tx.commit()


def repair(settings: Settings, *, on_event: EventCallback | None = None) -> RepairResult:
    """Remove failed rows, realign checksums to the files, mark missing scripts deleted."""
    discovery, sources = load_scripts(settings)
    with open_session(settings, on_event) as s, s.locked():
        history = s.engine.read_history()
        plan = planner.plan(discovery, sources, history, out_of_order=True)
        rank = max((r.installed_rank for r in history), default=0)
        with s.engine.transaction() as tx:
            failed = plan.failed_rows
            if failed:
                tx.delete_history([r.installed_rank for r in failed])
            realigned = []
            by_version = {f.version: f for f in discovery.versioned}
            for v, row in plan.applied_versions.items():
                f = by_version.get(v)
                if f is not None and row.checksum != sources[f.name].checksum:
                    tx.update_checksum(row.installed_rank, sources[f.name].checksum)
                    realigned.append(f.name)
            for row in plan.missing_rows:
                rank += 1
                tx.insert_history(
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
            tx.commit()  # a role that may not write the history gets a PrivilegeError here
        return RepairResult(
            s.database,
            tuple(r.script for r in failed),
            tuple(realigned),
            tuple(r.script for r in plan.missing_rows),
        )


def undo(settings: Settings, *, on_event: EventCallback | None = None) -> UndoResult:
    """Apply the undo script of the latest applied version."""
    discovery = discover([p.resolve() for p in settings.locations])
    with open_session(settings, on_event) as s, s.locked():
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

        source = expand_file(settings, f, SessionPlaceholders(s))  # a dbmate file: its down half
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
    with open_session(settings, on_event) as s, s.locked():
        dropped = s.engine.clean()
        return CleanResult(s.database, tuple(dropped))


def demo(settings: Settings, phone_number: str | None = None) -> TextReport:
    """Walk a full Ecliptix registration and login on the configured PostgreSQL database."""
    url, _ = resolve_url(settings)
    if scheme_of(url) not in POSTGRES_SCHEMES:
        raise UsageError("the Ecliptix demo needs PostgreSQL; give a postgresql:// URL")
    return ecliptix_app.run_demo(
        url,
        schema=settings.schema,
        connect_timeout=settings.connect_timeout,
        phone_number=phone_number,
    )


def stress(settings: Settings, *, clients: int = 64, duration: float = 30.0) -> TextReport:
    """Hammer the Ecliptix functions from many sessions, then check every invariant."""
    if clients < 1 or duration <= 0:
        raise UsageError("stress needs --clients of at least 1 and a positive --duration")
    url, _ = resolve_url(settings)
    if scheme_of(url) not in POSTGRES_SCHEMES:
        raise UsageError("the Ecliptix stress run needs PostgreSQL; give a postgresql:// URL")
    return ecliptix_app.run_stress(url, schema=settings.schema, clients=clients, duration=duration)


def stop_embedded(settings: Settings) -> StopEmbeddedResult:
    """Stop the embedded PostgreSQL server (its data stays for the next start)."""
    from persistor.engines import embedded

    data_dir = settings.embedded_dir or embedded.default_data_dir()
    return StopEmbeddedResult(str(data_dir), embedded.stop_embedded(data_dir))
