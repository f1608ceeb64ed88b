"""The `persistor` command line: parse arguments, call the API, render the result.

The API and the renderers are imported inside each command, so that `--help`
and `--version` stay fast; `--json` is printed in one place, `_show`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from persistor.cli.fleet import fleet_options, run_if_wanted
from persistor.cli.inspect import register as register_inspect
from persistor.cli.options import CliState, command_options, common_options, state
from persistor.errors import PersistorError, UsageError, exit_code_for


class _Result(Protocol):
    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Result)


def _show(result: R, text: Callable[[CliState, R], None]) -> None:
    """Print a result: its JSON document with --json, else its text rendering."""
    opts = state()
    if opts.json:
        _print_json(result.to_json())
        opts.printed_json = True
    else:
        text(opts, result)


def _print_json(document: dict[str, Any]) -> None:
    import json  # only for --json

    sys.stdout.write(json.dumps(document, default=str, indent=2) + "\n")


@common_options
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="persistor", message="persistor %(version)s")
def cli() -> None:
    """Deploy and evolve a database from versioned SQL files (PostgreSQL, SQLite).

    Files: V<version>__<description>.sql (applied once, in order),
    R__<description>.sql (re-applied when changed), U<version>__<description>.sql
    (undo). Exit codes: 0 ok, 1 missing privilege or unexpected error, 2 bad
    command line or config, 3 cannot connect, 4 a migration failed, 5 validation
    or lint failed, 6 lock timeout, 7 `status --exit-code` found work left, 8 `drift`
    found drift.
    """


@common_options
@command_options
@fleet_options
@cli.command()
@click.option("--target", metavar="VERSION", help="Stop after this version.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the exact SQL; change nothing.")
@click.option(
    "--single-transaction",
    is_flag=True,
    help="Apply the whole run in one transaction: all or nothing.",
)
def migrate(target: str | None, dry_run: bool, single_transaction: bool) -> None:
    """Validate, then apply pending versioned scripts and changed repeatables."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    many = dict(target=target, dry_run=dry_run, single_transaction=single_transaction)
    if run_if_wanted("migrate", opts, **many):
        return
    with render.progress(opts) as on_event:
        result = api.migrate(
            opts.settings(),
            target=target,
            dry_run=dry_run,
            single_transaction=single_transaction,
            on_event=on_event,
        )
    _show(result, render.migrate)


@common_options
@fleet_options
@cli.command()
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 7 when any script is pending, outdated, running, changed, failed or missing.",
)
def status(exit_code: bool) -> None:
    """Show every known script and its state (alias: info)."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    if run_if_wanted("status", opts):
        return
    result = api.status(opts.settings(), on_event=render.event_printer(opts))
    _show(result, render.status)
    if exit_code:
        api.check_settled(result)


cli.add_command(
    click.Command(
        "info",
        callback=status.callback,
        params=status.params,
        help="Show every known script and its state (alias of status).",
    )
)


@common_options
@fleet_options
@cli.command()
@click.option("--strict", is_flag=True, help="Fail on lint findings in pending scripts too.")
@click.option(
    "--offline",
    is_flag=True,
    help="Check the files alone (names, includes, placeholders, SQL syntax); no database.",
)
def validate(strict: bool, offline: bool) -> None:
    """Run every check of migrate, parse each script and lint the pending ones; change nothing."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    if run_if_wanted("validate", opts):
        return
    result = api.validate(
        opts.settings(), strict=strict, offline=offline, on_event=render.event_printer(opts)
    )
    _show(result, render.validate)


@common_options
@cli.command("test")
def test_command() -> None:
    """Connect and print engine, server version, user, database, schema, current version."""
    from persistor import api
    from persistor.cli import render

    _show(api.check_connection(state().settings()), render.connection)


@common_options
@cli.command()
@click.argument("name")
def new(name: str) -> None:
    """Create the next V<version>__NAME.sql in the first location."""
    from persistor import api
    from persistor.cli import render

    _show(api.new_script(state().settings(), name), render.new_script)


@common_options
@cli.command()
@click.option(
    "--baseline-version",
    default="1",
    show_default=True,
    metavar="VERSION",
    help="Scripts up to this version count as applied.",
)
@click.option(
    "--description", default="baseline", show_default=True, help="Description of the baseline row."
)
@click.option(
    "--from",
    "source",
    type=click.Choice(["flyway", "dbup", "dbmate", "golang-migrate", "none"]),
    default=None,
    help="Import this tool's history (default: the only one found; none: import nothing).",
)
def baseline(baseline_version: str, description: str, source: str | None) -> None:
    """Adopt an existing database: import Flyway/DbUp/dbmate/golang-migrate history, or baseline."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    result = api.baseline(
        opts.settings(),
        version=baseline_version,
        description=description,
        source=source,
        on_event=render.event_printer(opts),
    )
    _show(result, render.baseline)


@common_options
@cli.command()
def repair() -> None:
    """Remove failed rows, realign checksums to the files, mark missing scripts deleted."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    _show(api.repair(opts.settings(), on_event=render.event_printer(opts)), render.repair)


@common_options
@cli.command()
def undo() -> None:
    """Apply the undo script (U<version>__…sql) of the latest applied version."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    _show(api.undo(opts.settings(), on_event=render.event_printer(opts)), render.undo)


@common_options
@cli.command()
@click.option("--yes", is_flag=True, help="Confirm dropping every object in the schema.")
def clean(yes: bool) -> None:
    """Drop every object in the schema (needs clean_enabled and --yes)."""
    from persistor import api
    from persistor.cli import render

    opts = state()
    result = api.clean(opts.settings(), confirmed=yes, on_event=render.event_printer(opts))
    _show(result, render.clean)


@common_options
@cli.command()
@click.option("--phone", metavar="NUMBER", help="Phone number to register (default: a random one).")
def demo(phone: str | None) -> None:
    """Walk a full Ecliptix registration and login on the database and print each step."""
    from persistor import api
    from persistor.cli import render

    _show(api.demo(state().settings(), phone), render.report)


@common_options
@cli.command()
@click.option("--clients", type=int, default=64, show_default=True, help="Concurrent sessions.")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds to run.")
def stress(clients: int, duration: float) -> None:
    """Hammer the Ecliptix functions from many sessions and check every invariant (exit 1 if one fails)."""
    from persistor import api
    from persistor.cli import render

    report = api.stress(state().settings(), clients=clients, duration=duration)
    _show(report, render.report)
    if not report.succeeded:
        raise PersistorError("an Ecliptix invariant did not hold under load; see the table above")


@common_options
@cli.command("stop-embedded")
def stop_embedded() -> None:
    """Stop the embedded PostgreSQL server that runs when no URL is configured."""
    from persistor import api
    from persistor.cli import render

    _show(api.stop_embedded(state().settings()), render.stop_embedded)


@common_options
@cli.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@click.option("--strict", is_flag=True, help="Fail on warnings too, not only on errors.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(("text", "json", "github")),
    help="Output: text (default), json (as --json), or github (workflow annotations).",
)
def lint_command(paths: tuple[Path, ...], strict: bool, format_: str | None) -> None:
    """Find statements that would lock or break a live database; no database needed.

    PATH: migration files or folders (default: the configured locations).
    Exit 0 when no error remains, 5 otherwise (--strict: warnings too).
    """
    from persistor.cli import lint

    lint.run(paths, strict, format_)


register_inspect(cli)  # dump and drift, from cli/inspect.py


@common_options  # accepted like on every command, though the script needs none of them
@cli.command()
@click.argument("shell", type=click.Choice(("bash", "zsh", "fish")))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL; the README says where to put it."""
    from persistor.cli.completion import completion_script

    click.echo(completion_script(shell))


class UnexpectedError(PersistorError):
    """An error persistor did not raise on purpose (a bug, or a failure it does not know)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (only the entry point exits)."""
    args = list(sys.argv[1:] if argv is None else argv)
    opts = CliState()
    try:
        cli.main(args=args, prog_name="persistor", standalone_mode=False, obj=opts)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        # The options after a bad one were never parsed: look for --json in the words.
        if opts.json or "--json" in args[: args.index("--") if "--" in args else None]:
            _print_json(UsageError(exc.format_message()).to_json())
        return 2
    except Exception as exc:  # every other error ends here, with its exit code
        return _report(exc, opts)
    finally:
        if opts.verbose:
            from persistor.cli.logs import show_logs

            show_logs(0)  # a caller running main() again starts quiet
    return 0


def _report(exc: Exception, opts: CliState) -> int:
    """Say what went wrong on stderr (and stdout with --json); return the exit code."""
    if isinstance(exc, PersistorError):
        error = exc
        click.echo(f"error: {exc}", err=True)
    else:
        error = UnexpectedError(f"{type(exc).__name__}: {exc}")
        click.echo(f"unexpected error: {error}", err=True)
        if opts.verbose < 2:
            click.echo("run again with -vv for the traceback", err=True)
    if opts.verbose >= 2:
        from persistor.cli.logs import log_traceback

        log_traceback(exc)
    if opts.json and not opts.printed_json:  # stress prints its report, then fails
        _print_json(error.to_json())
    return exit_code_for(error)
