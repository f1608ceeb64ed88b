"""Options and rendering for running migrate, status or validate over many targets.

`fleet_options` adds --targets, --parallel, --canary and --keep-going to a
command; `run_if_wanted` then runs persistor.fleet when targets are given
(that option, or `[[targets]]` in the configuration) and renders one line per
target: live on a terminal, plain lines otherwise, one JSON document with --json.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from persistor.cli.options import CliState

if TYPE_CHECKING:
    from persistor.fleet import FleetResult, ProgressCallback, TargetEvent, TargetResult
    from persistor.results import Event

C = TypeVar("C", bound=click.Command)
_KEY = "persistor.fleet"


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.find_root().meta.setdefault(_KEY, {})[name] = value

    return callback


FLEET_OPTIONS: list[click.Parameter] = [
    click.Option(
        ["--targets", "targets_file"],
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        expose_value=False,
        callback=_store("file"),
        help="Run on many targets: one `URL [name=NAME] [schema=SCHEMA]` a line "
        "(default: [[targets]] in the config file, if any).",
    ),
    click.Option(
        ["--parallel"],
        type=click.IntRange(min=1),
        metavar="N",
        expose_value=False,
        callback=_store("parallel"),
        help="With many targets: how many run at once; each holds one connection [default: 4].",
    ),
    click.Option(
        ["--canary"],
        type=click.IntRange(min=0),
        metavar="K",
        expose_value=False,
        callback=_store("canary"),
        help="With many targets: finish the first K first, and stop if any of them failed.",
    ),
    click.Option(
        ["--keep-going"],
        is_flag=True,
        expose_value=False,
        callback=_store("keep_going"),
        help="With many targets: keep starting targets after one failed.",
    ),
]


def fleet_options(command: C) -> C:
    """Add the many-targets options to a command (migrate, status, validate, ...)."""
    command.params.extend(FLEET_OPTIONS)
    return command


def run_if_wanted(command: str, opts: CliState, **options: Any) -> bool:
    """Run `command` over many targets if any are given; return False when none are."""
    from persistor import fleet
    from persistor.errors import TargetsFailed

    given: dict[str, Any] = click.get_current_context().find_root().meta.get(_KEY, {})
    settings = opts.settings()
    if "file" in given:
        targets = fleet.targets_from_file(given["file"])
    elif settings.targets:
        targets = fleet.check_targets(settings.targets, where=str(settings.config_file))
    else:
        return False
    with _progress(opts) as on_progress:
        result = fleet.COMMANDS[command](
            settings,
            targets,
            parallel=given.get("parallel", fleet.DEFAULT_PARALLEL),
            canary=given.get("canary", 0),
            keep_going=given.get("keep_going", False),
            on_progress=on_progress,
            **options,
        )
    _render(opts, result)
    failed = [t for t in result.targets if t.state == "failed"]
    if failed:
        names = ", ".join(f"{t.name} (exit {t.exit_code})" for t in failed)
        raise TargetsFailed(
            f"{len(failed)} of {len(result.targets)} target(s) failed: {names}",
            [t.exit_code for t in failed],
        )
    return True


def _summary(t: TargetResult) -> str:
    """Return one target's outcome in a few words."""
    if t.state == "skipped":
        return "skipped: not started after a failure"
    if t.error is not None:
        return f"failed (exit {t.exit_code}): {str(t.error).splitlines()[0]}"
    r = t.result
    applied = getattr(r, "applied", None)
    if applied is not None:
        verb = "would apply" if r.dry_run else "applied"
        what = f"{verb} {len(applied)} script(s)" if applied else "up to date"
        return f"{what}, at version {r.current_version or '(none)'}"
    counts = getattr(r, "counts", None)
    if isinstance(counts, dict):
        shown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return f"at version {r.current_version or '(none)'}: {shown or 'no scripts'}"
    return "valid" if getattr(r, "scripts_checked", None) is not None else "done"


def _render(opts: CliState, result: FleetResult) -> None:
    if opts.json:
        import json

        sys.stdout.write(json.dumps(result.to_json(), default=str, indent=2) + "\n")
        opts.printed_json = True
        return
    if opts.quiet:
        return
    width = max(len(t.name) for t in result.targets)
    for t in result.targets:
        click.echo(f"{t.name.ljust(width)}  {_summary(t)}")
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    click.echo(f"{len(result.targets)} target(s): {counts}.")
    for t in result.targets:
        if t.error is not None and "\n" in str(t.error):
            click.echo(f"\n{t.name}:\n{t.error}", err=True)


@contextmanager
def _progress(opts: CliState) -> Iterator[ProgressCallback]:
    """One line per target: live on a terminal, a plain line as each ends otherwise."""
    if opts.quiet or opts.json:
        yield lambda e: None
        return
    if not sys.stderr.isatty():
        yield _plain_lines
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True,  # the summary on stdout replaces it
    ) as bar:  # fmt: skip
        tasks: dict[str, Any] = {}
        finished: list[Any] = []  # hidden oldest first once the lines outgrow the terminal

        def show(e: TargetEvent) -> None:
            if e.kind == "started":
                tasks[e.target] = bar.add_task(f"{e.target}: connecting", total=None)
            elif e.kind == "event" and e.event is not None:
                bar.update(tasks[e.target], description=f"{e.target}: {_event_text(e.event)}")
            elif e.outcome is not None:
                task = tasks[e.target]
                bar.update(task, description=f"{e.target}: {_summary(e.outcome)}", total=1)
                bar.update(task, completed=1)
                finished.append(task)
                while finished and sum(t.visible for t in bar.tasks) > console.height - 2:
                    bar.update(finished.pop(0), visible=False)

        yield show


def _event_text(event: Event) -> str:
    if event.kind == "start":
        return f"applying {event.message} ({event.done + 1}/{event.total})"
    if event.kind == "applied":
        return f"applied {event.message} ({event.done}/{event.total})"
    return event.message


def _plain_lines(e: TargetEvent) -> None:
    if e.kind == "event" and e.event is not None and e.event.kind == "wait":
        click.echo(f"{e.target}: {e.event.message}", err=True)
    elif e.kind == "finished" and e.outcome is not None:
        click.echo(f"{e.target}: {_summary(e.outcome)}", err=True)
