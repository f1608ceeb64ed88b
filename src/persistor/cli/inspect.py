"""The commands that show what the database holds: `dump` and `drift`.

Registered on the `persistor` group by cli/main.py; like the other commands
they parse, call the API (persistor.api.dump / drift) and render.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from persistor.cli.options import CliState, common_options, state

if TYPE_CHECKING:
    from persistor.core.drift import Difference
    from persistor.inspection import DriftResult, DumpResult


class _Result(Protocol):
    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Result)

_STYLES = {"missing": "red", "extra": "yellow", "changed": "magenta"}


def _show(result: R, text: Callable[[CliState, R], None]) -> None:
    """Print a result: its JSON document with --json, else its text (as cli/main.py does)."""
    opts = state()
    if opts.json:
        import json

        sys.stdout.write(json.dumps(result.to_json(), default=str, indent=2) + "\n")
        opts.printed_json = True
    else:
        text(opts, result)


@common_options
@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the SQL to FILE instead of stdout.",
)
def dump(out: Path | None) -> None:
    """Print the schema's structure as SQL: stable order, no versions or owners, diffable."""
    from persistor import api

    _show(api.dump(state().settings(), out=out), _render_dump)


@common_options
@click.command()
def drift() -> None:
    """Build the migrations in a scratch database and compare it with the target (exit 8 on drift)."""
    from persistor import api

    result = api.drift(state().settings())
    _show(result, _render_drift)
    api.check_no_drift(result)


def register(group: click.Group) -> None:
    """Add dump and drift to the command group."""
    group.add_command(dump)
    group.add_command(drift)


def _render_dump(opts: CliState, result: DumpResult) -> None:
    if result.out is None:
        sys.stdout.write(result.sql)
    elif not opts.quiet:
        click.echo(f"wrote the schema of {result.database.url} to {result.out} ({result.tool})")


def _indented(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def _difference(d: Difference) -> list[str]:
    head = click.style(f"{d.change:<8}", fg=_STYLES[d.change]) + f" {d.kind} {d.name}"
    if d.change == "changed":
        return [
            head,
            "    migrations:",
            _indented(d.expected or ""),
            "    database:",
            _indented(d.actual or ""),
        ]
    return [head, _indented((d.expected if d.change == "missing" else d.actual) or "")]


def _render_drift(opts: CliState, result: DriftResult) -> None:
    db = result.database
    lines = [f"{db.engine} {db.url} (schema {db.schema}, history {db.history_table})"]
    for d in result.differences:
        lines += _difference(d)
    if result.drifted:
        counts = ", ".join(f"{n} {c}" for c, n in sorted(result.counts.items()))
        lines.append(f"Drift: {len(result.differences)} difference(s) ({counts}).")
    else:
        lines.append("No drift: the database holds what its migrations produce.")
    if result.unsettled:
        said = ", ".join(f"{n} {state}" for state, n in result.unsettled.items())
        lines.append(
            f"Note: the target is not up to date ({said} script(s)); what they make shows as "
            "missing until `persistor migrate` runs."
        )
    color = sys.stdout.isatty() and None  # click.echo strips styles when not a terminal
    click.echo("\n".join(lines), color=color)
