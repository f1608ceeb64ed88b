"""The `persistor` command line: parse arguments, call the API, render the result."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from persistor.errors import PersistorError, exit_code_for

if TYPE_CHECKING:
    from persistor.settings import Settings

C = TypeVar("C", bound=click.Command)


class _Options:
    """Global options gathered from before and after the command name."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.placeholders: dict[str, str] = {}
        self.config: Path | None = None
        self.json = False
        self.verbose = 0
        self.quiet = False

    def settings(self) -> Settings:
        from persistor.settings import load_settings

        overrides = dict(self.values)
        if self.placeholders:
            overrides["placeholders"] = self.placeholders
        return load_settings(overrides, config_path=self.config)


def _store(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        opts: _Options = ctx.find_root().ensure_object(_Options)
        if value is None or value == () or value is False or (key == "verbose" and value == 0):
            return
        if key == "location":
            opts.values["locations"] = [*opts.values.get("locations", []), *value]
        elif key == "placeholder":
            for item in value:
                name, sep, val = item.partition("=")
                if not sep or not name:
                    raise click.BadParameter(f"{item!r} is not NAME=VALUE", param=param)
                opts.placeholders[name] = val
        elif key == "config":
            opts.config = Path(value)
        elif key in ("json", "verbose", "quiet"):
            setattr(opts, key, value)
        else:
            opts.values[key] = value

    return callback


# The global options, built once and shared by the group and every command:
# a set per command was ~150 click.Option objects, 5 ms of every start-up.
GLOBAL_OPTIONS: list[click.Parameter] = [
    click.Option(
        ["--url"],
        metavar="URL",
        expose_value=False,
        callback=_store("url"),
        help="Database URL: postgresql://user@host:port/db or sqlite:///file.db "
        "(default: PERSISTOR_URL, DATABASE_URL, config file, else an embedded PostgreSQL).",
    ),
    click.Option(
        ["--location", "-l"],
        multiple=True,
        metavar="DIR",
        expose_value=False,
        callback=_store("location"),
        help="Directory of migrations; repeatable (default: the packaged Ecliptix migrations).",
    ),
    click.Option(
        ["--schema"],
        metavar="NAME",
        expose_value=False,
        callback=_store("schema"),
        help="Target schema for scripts and the history table (default: public / main).",
    ),
    click.Option(
        ["--history-table"],
        metavar="NAME",
        expose_value=False,
        callback=_store("history_table"),
        help="History table name (default: schema_history).",
    ),
    click.Option(
        ["--config"],
        metavar="FILE",
        expose_value=False,
        callback=_store("config"),
        help="Config file (default: ./persistor.toml, or [tool.persistor] in ./pyproject.toml).",
    ),
    click.Option(
        ["--placeholder", "-p"],
        multiple=True,
        metavar="NAME=VALUE",
        expose_value=False,
        callback=_store("placeholder"),
        help="Value for ${NAME} in scripts; repeatable.",
    ),
    click.Option(
        ["--lock-timeout"],
        type=float,
        metavar="SECONDS",
        expose_value=False,
        callback=_store("lock_timeout"),
        help="How long to wait for another migrator's lock before exiting 6 (default 300).",
    ),
    click.Option(
        ["--lock-mode"],
        type=click.Choice(["session", "table"]),
        expose_value=False,
        callback=_store("lock_mode"),
        help="PostgreSQL lock: 'session' advisory lock (default), or 'table' for "
        "PgBouncer transaction pooling.",
    ),
    click.Option(
        ["--lock-lease"],
        type=float,
        metavar="SECONDS",
        expose_value=False,
        callback=_store("lock_lease"),
        help="With --lock-mode table: how long the lock outlives a killed migrator "
        "(default 30; renewed every third of it).",
    ),
    click.Option(
        ["--json", "json_"],
        is_flag=True,
        expose_value=False,
        callback=_store("json"),
        help="Print one JSON document on stdout instead of text.",
    ),
    click.Option(
        ["-v", "--verbose"],
        count=True,
        expose_value=False,
        callback=_store("verbose"),
        help="More detail on stderr (-vv: debug logs and tracebacks).",
    ),
    click.Option(
        ["-q", "--quiet"],
        is_flag=True,
        expose_value=False,
        callback=_store("quiet"),
        help="Print only errors.",
    ),
]


def common_options(command: C) -> C:
    """Add the global options to a command, so they work before or after its name."""
    command.params.extend(GLOBAL_OPTIONS)
    return command


def _opts() -> _Options:
    return click.get_current_context().find_root().ensure_object(_Options)


@common_options
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="persistor", message="persistor %(version)s")
def cli() -> None:
    """Deploy and evolve a database from versioned SQL files (PostgreSQL, SQLite).

    Files: V<version>__<description>.sql (applied once, in order),
    R__<description>.sql (re-applied when changed), U<version>__<description>.sql
    (undo). Exit codes: 0 ok, 1 missing privilege or unexpected error, 2 bad
    command line or config, 3 cannot connect, 4 a migration failed, 5 validation
    failed, 6 lock timeout.
    """


def _renderer() -> Any:
    from persistor.cli import render

    return render


def _api() -> Any:
    # imported on use, so `--help` and `--version` stay fast
    from persistor import api

    return api


@common_options
@cli.command()
@click.option("--target", metavar="VERSION", help="Stop after this version.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the exact SQL; change nothing.")
@click.option(
    "--out-of-order",
    is_flag=True,
    default=None,
    help="Also apply pending versions lower than the highest applied one.",
)
@click.option(
    "--single-transaction",
    is_flag=True,
    help="Apply the whole run in one transaction: all or nothing.",
)
def migrate(
    target: str | None, dry_run: bool, out_of_order: bool | None, single_transaction: bool
) -> None:
    """Validate, then apply pending versioned scripts and changed repeatables."""
    opts = _opts()
    render = _renderer()
    with render.progress(opts) as on_event:
        result = _api().migrate(
            opts.settings(),
            target=target,
            dry_run=dry_run,
            single_transaction=single_transaction,
            out_of_order=out_of_order or None,
            on_event=on_event,
        )
    render.migrate(opts, result)


@common_options
@cli.command()
def status() -> None:
    """Show every known script and its state (alias: info)."""
    opts = _opts()
    render = _renderer()
    result = _api().status(opts.settings(), on_event=render.event_printer(opts))
    render.status(opts, result)


cli.add_command(
    click.Command(
        "info",
        callback=status.callback,
        params=status.params,
        help="Show every known script and its state (alias of status).",
    )
)


@common_options
@cli.command()
def validate() -> None:
    """Run every check of migrate and parse each script offline; change nothing."""
    opts = _opts()
    render = _renderer()
    result = _api().validate(opts.settings(), on_event=render.event_printer(opts))
    render.validate(opts, result)


@common_options
@cli.command("test")
def test_command() -> None:
    """Connect and print engine, server version, user, database, schema, current version."""
    opts = _opts()
    render = _renderer()
    render.connection(opts, _api().check_connection(opts.settings()))


@common_options
@cli.command()
@click.argument("name")
def new(name: str) -> None:
    """Create the next V<version>__NAME.sql in the first location."""
    opts = _opts()
    _renderer().new_script(opts, _api().new_script(opts.settings(), name))


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
def baseline(baseline_version: str, description: str) -> None:
    """Adopt an existing database: record a baseline, or import Flyway/DbUp history."""
    opts = _opts()
    render = _renderer()
    result = _api().baseline(
        opts.settings(),
        version=baseline_version,
        description=description,
        on_event=render.event_printer(opts),
    )
    render.baseline(opts, result)


@common_options
@cli.command()
def repair() -> None:
    """Remove failed rows, realign checksums to the files, mark missing scripts deleted."""
    opts = _opts()
    render = _renderer()
    render.repair(opts, _api().repair(opts.settings(), on_event=render.event_printer(opts)))


@common_options
@cli.command()
def undo() -> None:
    """Apply the undo script (U<version>__…sql) of the latest applied version."""
    opts = _opts()
    render = _renderer()
    render.undo(opts, _api().undo(opts.settings(), on_event=render.event_printer(opts)))


@common_options
@cli.command()
@click.option("--yes", is_flag=True, help="Confirm dropping every object in the schema.")
def clean(yes: bool) -> None:
    """Drop every object in the schema (needs clean_enabled and --yes)."""
    opts = _opts()
    render = _renderer()
    render.clean(
        opts, _api().clean(opts.settings(), confirmed=yes, on_event=render.event_printer(opts))
    )


@common_options
@cli.command()
@click.option("--phone", metavar="NUMBER", help="Phone number to register (default: a random one).")
def demo(phone: str | None) -> None:
    """Walk a full Ecliptix registration and login on the database and print each step."""
    opts = _opts()
    _renderer().report(opts, _api().demo(opts.settings(), phone))


@common_options
@cli.command()
@click.option("--clients", type=int, default=64, show_default=True, help="Concurrent sessions.")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds to run.")
def stress(clients: int, duration: float) -> None:
    """Hammer the Ecliptix functions from many sessions and check every invariant (exit 1 if one fails)."""
    opts = _opts()
    report = _api().stress(opts.settings(), clients=clients, duration=duration)
    _renderer().report(opts, report)
    if not report.succeeded:
        raise PersistorError("an Ecliptix invariant did not hold under load; see the table above")


@common_options
@cli.command("stop-embedded")
def stop_embedded() -> None:
    """Stop the embedded PostgreSQL server that runs when no URL is configured."""
    opts = _opts()
    _renderer().stop_embedded(opts, _api().stop_embedded(opts.settings()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (only the entry point exits)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="persistor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except PersistorError as exc:
        _report(exc, args)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # an unexpected failure: say so, keep the traceback for -vv
        _report(exc, args)
        return exit_code_for(exc)
    return 0


def _report(exc: BaseException, args: list[str]) -> None:
    verbose = sum(a.count("v") for a in args if a.startswith("-v") and set(a[1:]) == {"v"}) + (
        args.count("--verbose")
    )
    if isinstance(exc, PersistorError):
        click.echo(f"error: {exc}", err=True)
    else:
        click.echo(f"unexpected error: {type(exc).__name__}: {exc}", err=True)
        if verbose < 2:
            click.echo("run again with -vv for the traceback", err=True)
    if verbose >= 2:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if "--json" in args and isinstance(exc, PersistorError):
        sys.stdout.write(json.dumps(exc.to_json()) + "\n")
