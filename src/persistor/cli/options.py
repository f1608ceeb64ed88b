"""The options every command takes, built from the settings table, and what they gathered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from persistor.settings_table import TABLE, Setting

if TYPE_CHECKING:
    from persistor.settings import Settings

C = TypeVar("C", bound=click.Command)


class CliState:
    """Global options gathered from before and after the command name."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.config: Path | None = None
        self.json = False
        self.printed_json = False  # stdout holds one JSON document: no second one for an error
        self.verbose = 0
        self.quiet = False

    def settings(self) -> Settings:
        """Return the settings: these options over environment, config file and defaults."""
        from persistor.settings import load_settings

        return load_settings(self.values, config_path=self.config)


def state() -> CliState:
    """Return the options of the command line being run."""
    return click.get_current_context().find_root().ensure_object(CliState)


def _store_setting(setting: Setting) -> Callable[[click.Context, click.Parameter, Any], None]:
    # The raw text goes to load_settings, the one place that parses and checks settings.
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == () or value is False:
            return
        values = ctx.find_root().ensure_object(CliState).values
        if setting.repeatable:
            values[setting.key] = [*values.get(setting.key, []), *value]
        else:
            values[setting.key] = value

    return callback


def _store_flag(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        opts = ctx.find_root().ensure_object(CliState)
        if name == "config" and value is not None:
            opts.config = Path(value)
        elif name == "verbose" and value:
            from persistor.cli.logs import show_logs  # only with -v: most runs never log

            opts.verbose += value  # -v before and after the command name add up
            show_logs(opts.verbose)
        elif name in ("json", "quiet") and value:
            setattr(opts, name, True)

    return callback


def setting_option(setting: Setting) -> click.Option:
    """Return the command-line option of a setting, its help ending with env var and default."""
    is_flag = isinstance(setting.default, bool)
    notes = [f"env var: {', '.join(setting.env)}"] if setting.env else []
    if not is_flag and setting.shown_default != "none":
        notes.append(f"default: {setting.shown_default}")
    return click.Option(
        list(setting.flags),
        multiple=setting.repeatable,
        is_flag=is_flag,
        default=None,
        metavar=setting.metavar,
        expose_value=False,
        callback=_store_setting(setting),
        help=setting.help + (f" [{'; '.join(notes)}]" if notes else ""),
    )


def _flag(decls: list[str], name: str, help: str, **kwargs: Any) -> click.Option:
    return click.Option(decls, expose_value=False, callback=_store_flag(name), help=help, **kwargs)


# Built once and shared by the group and every command: a set per command was
# ~150 click.Option objects, 5 ms of every start-up.
GLOBAL_OPTIONS: list[click.Parameter] = [
    *(setting_option(s) for s in TABLE if s.flags and s.command is None),
    _flag(
        ["--config"],
        "config",
        "Config file (default: ./persistor.toml, or [tool.persistor] in ./pyproject.toml).",
        metavar="FILE",
    ),
    _flag(
        ["--json", "json_"],
        "json",
        "Print one JSON document on stdout instead of text.",
        is_flag=True,
    ),
    _flag(
        ["-v", "--verbose"],
        "verbose",
        "Log what happens on stderr (-vv: debug logs and tracebacks).",
        count=True,
    ),
    _flag(["-q", "--quiet"], "quiet", "Print only errors.", is_flag=True),
]


def common_options(command: C) -> C:
    """Add the global options to a command, so they work before or after its name."""
    command.params.extend(GLOBAL_OPTIONS)
    return command


def command_options(command: C) -> C:
    """Add the options of the settings only this command takes (e.g. migrate --out-of-order)."""
    command.params.extend(setting_option(s) for s in TABLE if s.command == command.name)
    return command
