"""Turning result objects into text (colour and a progress bar only on a terminal).

`--json` never gets here: the command line prints each result's to_json() itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from persistor.cli.options import CliState
    from persistor.errors import Problem
    from persistor.results import (
        BaselineResult,
        CleanResult,
        ConnectionResult,
        DatabaseInfo,
        Event,
        LocationFormat,
        MigrateResult,
        NewScriptResult,
        RepairResult,
        StatusResult,
        StopEmbeddedResult,
        TextReport,
        UndoResult,
        ValidateResult,
    )

STATE_STYLES = {
    "applied": "green",
    "pending": "yellow",
    "outdated": "yellow",
    "failed": "bold red",
    "running": "bold yellow",
    "changed": "bold red",
    "missing": "bold red",
    "ignored": "red",
    "baseline": "cyan",
    "below_baseline": "dim",
    "applied_no_file": "green",
}
# States whose name reads better in words than as their JSON value.
_STATE_WORDS = {"applied_no_file": "applied (no file)"}


class _Stream:
    """Plain text output with optional colour: fast for tables of 10,000 rows."""

    def __init__(self, err: bool = False) -> None:
        self.file = sys.stderr if err else sys.stdout
        self.colour = self.file.isatty() and not os.environ.get("NO_COLOR")

    @property
    def is_terminal(self) -> bool:
        return self.file.isatty()

    def style(self, text: str, style: str) -> str:
        if not self.colour or not style:
            return text
        return click.style(
            text, fg=_COLOURS.get(style.split()[-1]), bold="bold" in style, dim=style == "dim"
        )

    def print(self, text: str = "") -> None:
        self.file.write(text + "\n")


_COLOURS = {"green": "green", "yellow": "yellow", "red": "red", "cyan": "cyan", "dim": None}


def _out() -> _Stream:
    return _Stream()


def _err() -> _Stream:
    return _Stream(err=True)


def _database_line(db: DatabaseInfo) -> str:
    where = f"{db.engine} {db.url} (schema {db.schema}, history {db.history_table})"
    if not db.exists:
        where += "\nthe database file does not exist yet (migrate creates it): shown as empty"
    if db.embedded_data_dir:
        where += f"\nembedded PostgreSQL, data directory {db.embedded_data_dir} (left running)"
    return where


def event_printer(opts: CliState) -> Callable[[Event], None]:
    """Return a callback that shows waits, retries and warnings (lint) on stderr.

    -v logs the rest.
    """
    console = _err()

    def show(event: Event) -> None:
        if event.kind in ("wait", "retry") and not opts.quiet:
            console.print(event.message)
        elif event.kind == "warning" and not opts.quiet:
            console.print(console.style(event.message, "yellow"))

    return show


@contextmanager
def progress(opts: CliState) -> Iterator[Callable[[Event], None]]:
    """Show a progress bar on a terminal for long runs; plain messages otherwise."""
    console = _err()
    printer = event_printer(opts)
    if opts.quiet or opts.json or not console.is_terminal:
        yield printer
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("migrating", total=None)

        def show(event: Event) -> None:
            if event.kind in ("start", "applied"):
                bar.update(task, total=event.total, completed=event.done, description=event.message)
            else:
                printer(event)

        yield show


def migrate(opts: CliState, result: MigrateResult) -> None:
    """Render what migrate applied (or would apply)."""
    if opts.quiet:
        return
    _warnings(result.warnings)
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
            out.print("\n" + out.style(f"-- {a.script}", "bold"))
            out.print(a.sql or "")
        return
    for a in result.applied:
        out.print(f"  applied {a.script} ({a.execution_time_ms} ms)")
    out.print(
        f"Applied {len(result.applied)} script(s); now at version {result.current_version or '(none)'}."
    )


def status(opts: CliState, result: StatusResult) -> None:
    """Render the status table."""
    out = _out()
    out.print(_database_line(result.database))
    out.print(_formats_line(result.formats))
    header = ("Version", "Description", "Type", "State", "Installed at", "ms")
    rows = [
        (
            m.version or "",
            m.description,
            m.type,
            _STATE_WORDS.get(m.state, m.state),
            m.installed_at.strftime("%Y-%m-%d %H:%M:%S") if m.installed_at else "",
            str(m.execution_time_ms) if m.execution_time_ms is not None else "",
        )
        for m in result.migrations
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...], state_style: str = "") -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        padded[3] = out.style(padded[3], state_style)
        return "  ".join([*padded, cells[-1].rjust(widths[-1])]).rstrip()

    out.print(out.style(line(header), "bold"))
    out.print("  ".join("-" * w for w in widths))
    styles = [STATE_STYLES.get(m.state, "") for m in result.migrations]
    out.file.write("".join(line(r, st) + "\n" for r, st in zip(rows, styles, strict=True)))
    counts = ", ".join(
        f"{n} {_STATE_WORDS.get(state, state)}" for state, n in sorted(result.counts.items())
    )
    out.print(f"Current version: {result.current_version or '(none)'}; {counts or 'no scripts'}.")
    if result.lock_holder:
        out.print(
            f"A migration is in progress: the migration lock is held by {result.lock_holder}."
        )
    if result.problems:
        err = _err()
        err.print(f"{len(result.problems)} problem(s) block migrate:")
        for p in result.problems:
            err.print(f"  - {p}")
    _warnings(result.warnings)


def _formats_line(formats: tuple[LocationFormat, ...]) -> str:
    if len(formats) <= 1:
        return f"Format: {formats[0].format if formats else '(no location)'}"
    return "Formats: " + "; ".join(f"{f.format} ({f.location})" for f in formats)


def _warnings(warnings: tuple[Problem, ...]) -> None:
    """Print the files persistor never runs, on stderr (they do not block migrate)."""
    if warnings:
        err = _err()
        err.print(f"{len(warnings)} warning(s):")
        for w in warnings:
            err.print(f"  - {w}")


def validate(opts: CliState, result: ValidateResult) -> None:
    """Render a clean validation."""
    if opts.quiet:
        _warnings(result.warnings)
        return
    # Lint findings and unused files were shown as warnings: not "no problems".
    warned = len(result.warnings) + len(result.lint)
    verdict = f"{warned} warning(s), no errors" if warned else "no problems"
    summary = (
        f"Valid: {result.scripts_checked} script(s) checked, "
        f"{result.parsed} parsed offline; {verdict}."
    )
    if result.offline:  # no database was asked: the files alone, as if it were empty
        where = "(offline: the files alone, no database)"
        _out().print(f"{_formats_line(result.formats)}\n{summary} {where}")
    else:
        db = _database_line(result.database)
        _out().print(f"{db}\n{_formats_line(result.formats)}\n{summary}")
    _warnings(result.warnings)


def connection(opts: CliState, result: ConnectionResult) -> None:
    """Render what `test` found."""
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
    if not db.exists:
        rows.append(("note", "the database file does not exist yet (migrate creates it)"))
    for key, value in rows:
        out.print(f"{key + ':':<25}{value}")


def new_script(opts: CliState, result: NewScriptResult) -> None:
    """Render the created file."""
    if not opts.quiet:
        _out().print(f"Created {result.path}")


def baseline(opts: CliState, result: BaselineResult) -> None:
    """Render what baseline recorded."""
    out = _out()
    if result.imported_from:
        out.print(
            f"Imported {len(result.imported)} row(s) from {result.imported_from} "
            f"({result.table}); now at version {result.version or '(none)'}."
        )
        for s in result.no_file:
            out.print(f"  {s}: applied, no file needed (status shows it as applied (no file))")
        for s in result.skipped:
            out.print(f"  note: {s}")
        out.print(
            f"{result.imported_from}'s table is left as it was; persistor no longer reads it."
        )
    else:
        out.print(f"Baselined at version {result.version}: scripts up to it count as applied.")


def repair(opts: CliState, result: RepairResult) -> None:
    """Render what repair changed."""
    out = _out()
    lines = [f"removed failed row of {s}" for s in result.removed_failed]
    lines += [f"realigned checksum of {s}" for s in result.realigned]
    lines += [f"marked {s} deleted" for s in result.marked_deleted]
    out.print("Repaired:\n  " + "\n  ".join(lines) if lines else "Nothing to repair.")


def undo(opts: CliState, result: UndoResult) -> None:
    """Render the undone version."""
    _out().print(
        f"Undid version {result.version} with {result.script}; now at version {result.current_version or '(none)'}."
    )


def clean(opts: CliState, result: CleanResult) -> None:
    """Render what clean dropped."""
    _out().print(f"Dropped {len(result.dropped)} object(s) from schema {result.database.schema}.")


def report(opts: CliState, report: TextReport) -> None:
    """Render a report of the bundled application's commands (demo, stress)."""
    out = _out()
    for text, style in report.lines():
        out.print(out.style(text, style) if style else text)


def stop_embedded(opts: CliState, result: StopEmbeddedResult) -> None:
    """Render whether the embedded server was stopped."""
    if result.was_running:
        _out().print(f"Stopped the embedded PostgreSQL in {result.data_dir}.")
    else:
        _out().print(f"No embedded PostgreSQL is running in {result.data_dir}.")
