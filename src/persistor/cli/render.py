"""Turning result objects into text (rich on a terminal) or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from persistor.results import (
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

if TYPE_CHECKING:
    from persistor.cli.main import _Options
    from persistor.ecliptix.demo import DemoReport

STATE_STYLES = {
    "applied": "green",
    "pending": "yellow",
    "outdated": "yellow",
    "failed": "bold red",
    "changed": "bold red",
    "missing": "bold red",
    "ignored": "red",
    "baseline": "cyan",
    "below_baseline": "dim",
}


def _out() -> Console:
    # rich turns colour off when stdout is not a terminal and honours NO_COLOR.
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


def _database_line(db: DatabaseInfo) -> str:
    where = f"{db.engine} {db.url} (schema {db.schema}, history {db.history_table})"
    if db.embedded_data_dir:
        where += f"\nembedded PostgreSQL, data directory {db.embedded_data_dir} (left running)"
    return where


def event_printer(opts: _Options) -> Callable[[Event], None]:
    """Return a callback that shows waiting and progress messages on stderr."""
    console = _err()

    def show(event: Event) -> None:
        if opts.quiet:
            return
        if event.kind == "wait" or (event.kind == "applied" and opts.verbose):
            console.print(
                f"[dim]{event.message}[/dim]" if event.kind == "applied" else event.message
            )

    return show


@contextmanager
def progress(opts: _Options) -> Iterator[Callable[[Event], None]]:
    """Show a progress bar on a terminal for long runs; plain messages otherwise."""
    console = _err()
    printer = event_printer(opts)
    if opts.quiet or opts.json or not console.is_terminal:
        yield printer
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("migrating", total=None)

        def show(event: Event) -> None:
            if event.kind in ("start", "applied"):
                bar.update(task, total=event.total, completed=event.done, description=event.message)
            else:
                printer(event)

        yield show


def migrate(opts: _Options, result: MigrateResult) -> None:
    """Render what migrate applied (or would apply)."""
    if opts.json:
        _json(result.to_json())
        return
    if opts.quiet:
        return
    out = _out()
    out.print(_database_line(result.database))
    if not result.applied:
        out.print(
            f"Nothing to do: the database is up to date at version {result.current_version or '(none)'}."
        )
        return
    if result.dry_run:
        out.print(f"Dry run: would apply {len(result.applied)} script(s); nothing was changed.")
        for a in result.applied:
            out.print(f"\n[bold]-- {a.script}[/bold]")
            out.print(a.sql or "", markup=False)
        return
    for a in result.applied:
        out.print(f"  applied {a.script} ({a.execution_time_ms} ms)")
    out.print(
        f"Applied {len(result.applied)} script(s); now at version {result.current_version or '(none)'}."
    )


def status(opts: _Options, result: StatusResult) -> None:
    """Render the status table."""
    if opts.json:
        _json(result.to_json())
        return
    out = _out()
    out.print(_database_line(result.database))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("Version", "Description", "Type", "State", "Installed at", "ms"):
        table.add_column(column, justify="right" if column == "ms" else "left")
    for m in result.migrations:
        style = STATE_STYLES.get(m.state, "")
        table.add_row(
            m.version or "",
            m.description,
            m.type,
            f"[{style}]{m.state}[/{style}]" if style else m.state,
            m.installed_at.strftime("%Y-%m-%d %H:%M:%S") if m.installed_at else "",
            str(m.execution_time_ms) if m.execution_time_ms is not None else "",
        )
    out.print(table)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    out.print(f"Current version: {result.current_version or '(none)'}; {counts or 'no scripts'}.")
    if result.problems:
        err = _err()
        err.print(f"{len(result.problems)} problem(s) block migrate:")
        for p in result.problems:
            err.print(f"  - {p}", markup=False)


def validate(opts: _Options, result: ValidateResult) -> None:
    """Render a clean validation."""
    if opts.json:
        _json(result.to_json())
    elif not opts.quiet:
        _out().print(
            f"{_database_line(result.database)}\nValid: {result.scripts_checked} script(s) checked, "
            f"{result.parsed} parsed offline; no problems."
        )


def connection(opts: _Options, result: ConnectionResult) -> None:
    """Render what `test` found."""
    if opts.json:
        _json(result.to_json())
        return
    out = _out()
    db = result.database
    rows = [
        ("engine", db.engine),
        ("url", db.url),
        ("server version", result.server_version),
        ("user", result.user),
        ("database", result.database_name),
        ("schema", db.schema),
        ("history table", db.history_table),
        ("current version", result.current_version or "(none)"),
    ]
    if db.embedded_data_dir:
        rows.append(("embedded data directory", db.embedded_data_dir))
    for key, value in rows:
        out.print(f"{key + ':':<25}{value}", markup=False)


def new_script(opts: _Options, result: NewScriptResult) -> None:
    """Render the created file."""
    if opts.json:
        _json(result.to_json())
    elif not opts.quiet:
        _out().print(f"Created {result.path}", markup=False)


def baseline(opts: _Options, result: BaselineResult) -> None:
    """Render what baseline recorded."""
    if opts.json:
        _json(result.to_json())
        return
    out = _out()
    if result.imported_from:
        out.print(
            f"Imported {len(result.imported)} row(s) from {result.imported_from}; now at version {result.version}."
        )
        for s in result.skipped:
            out.print(f"  skipped {s}", markup=False)
    else:
        out.print(f"Baselined at version {result.version}: scripts up to it count as applied.")


def repair(opts: _Options, result: RepairResult) -> None:
    """Render what repair changed."""
    if opts.json:
        _json(result.to_json())
        return
    out = _out()
    lines = [f"removed failed row of {s}" for s in result.removed_failed]
    lines += [f"realigned checksum of {s}" for s in result.realigned]
    lines += [f"marked {s} deleted" for s in result.marked_deleted]
    out.print("Repaired:\n  " + "\n  ".join(lines) if lines else "Nothing to repair.", markup=False)


def undo(opts: _Options, result: UndoResult) -> None:
    """Render the undone version."""
    if opts.json:
        _json(result.to_json())
    else:
        _out().print(
            f"Undid version {result.version} with {result.script}; now at version {result.current_version or '(none)'}.",
            markup=False,
        )


def clean(opts: _Options, result: CleanResult) -> None:
    """Render what clean dropped."""
    if opts.json:
        _json(result.to_json())
    else:
        _out().print(
            f"Dropped {len(result.dropped)} object(s) from schema {result.database.schema}."
        )


def demo(opts: _Options, report: DemoReport) -> None:
    """Render the demo's steps."""
    if opts.json:
        _json(
            {
                "phone_number": report.phone_number,
                "succeeded": report.succeeded,
                "steps": [
                    {"name": s.name, "outcome": s.outcome, "detail": s.detail} for s in report.steps
                ],
            }
        )
        return
    out = _out()
    for n, step in enumerate(report.steps, start=1):
        out.print(f"{n:>2}. {step.name:<34} {step.outcome:<28} {step.detail}", markup=False)
    out.print(
        "Login succeeded." if report.succeeded else "The demo stopped before a successful login."
    )


def stop_embedded(opts: _Options, result: StopEmbeddedResult) -> None:
    """Render whether the embedded server was stopped."""
    if opts.json:
        _json(result.to_json())
    elif result.was_running:
        _out().print(f"Stopped the embedded PostgreSQL in {result.data_dir}.", markup=False)
    else:
        _out().print(f"No embedded PostgreSQL is running in {result.data_dir}.", markup=False)
