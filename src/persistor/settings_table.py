"""Every setting once: its name, flag, environment variables, config key, parser, default, help.

The loader (settings.py), the command-line options (cli/options.py), the
README check and the test fixtures all read this table. It imports nothing
heavy: `persistor --help` builds its options from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

LOCK_MODES = ("session", "table")
PLACEHOLDER_PREFIX = "PERSISTOR_PLACEHOLDERS_"


class Setting(NamedTuple):
    """One setting: where a value may come from, how it is read, and what it means."""

    key: str  # the Settings field and the config-file key
    label: str  # its name in the README's Configuration table
    parse: Callable[[Any], Any]  # raw value -> typed value; ValueError says what is wrong
    help: str  # one sentence, no final period: --help adds the env var and default
    shown_default: str  # how --help and the README show the default
    default: Any = None
    factory: Callable[[], Any] | None = None  # for a default computed on use
    flags: tuple[str, ...] = ()  # command-line options, the long one first
    env: tuple[str, ...] = ()  # environment variables, the first one set wins
    metavar: str | None = None
    repeatable: bool = False  # the flag repeats; the environment value is comma-separated
    paths: bool = False  # relative paths resolve from the config file's folder (or cwd)
    command: str | None = None  # the one command that takes the flag; None: every command


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _paths(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str | Path) else value
    if not isinstance(items, list | tuple) or not all(isinstance(p, str | Path) for p in items):
        raise ValueError("must be a folder or a list of folders")
    return tuple(str(p).strip() for p in items)


def _path(value: Any) -> str:
    if not isinstance(value, str | Path):
        raise ValueError("must be a folder")
    return str(value).strip()


def _seconds(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None
    if not number >= 0:  # also refuses NaN
        raise ValueError("must not be negative")
    return number


def _whole_seconds(value: Any) -> int:
    return int(_seconds(value))


def _lease(value: Any) -> float:
    lease = _seconds(value)
    # The heartbeat renews it every third; under a second that races the renewal itself.
    if not 1 <= lease < math.inf:
        raise ValueError("must be at least 1 second")
    return lease


def _lock_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOCK_MODES:
        raise ValueError(f"must be one of {', '.join(LOCK_MODES)}")
    return text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _placeholders(value: Any) -> dict[str, str]:
    """Read a mapping (config file, API) or NAME=VALUE items (command line)."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a table of names and values")
    out: dict[str, str] = {}
    for item in items:
        name, sep, text = str(item).partition("=")
        if not sep or not name:
            raise ValueError(f"must be NAME=VALUE ({item!r} is not)")
        out[name] = text
    return out


class Target(NamedTuple):
    """One database (and schema) of a run over many: `[[targets]]` or a line of --targets FILE."""

    name: str
    url: str | None  # None: the configured url (tenant schemas on one server)
    schema: str | None = None


def _targets(value: Any) -> tuple[Target, ...]:
    """Read `[[targets]]` tables (name, url, schema); the fleet checks names and URLs."""
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be [[targets]] tables, each with name, url and optional schema")
    out: list[Target] = []
    for n, item in enumerate(items, start=1):
        item = item._asdict() if isinstance(item, Target) else item
        if not isinstance(item, Mapping) or not set(item) <= {"name", "url", "schema"}:
            raise ValueError(f"target {n} must be a table of name, url and optional schema")
        fields = {k: _text(v) for k, v in item.items() if v is not None}
        if not fields.get("name"):
            raise ValueError(f"target {n} has no name")
        if not fields.get("url") and not fields.get("schema"):
            raise ValueError(f"target {fields['name']!r} needs a url or a schema")
        out.append(Target(fields["name"], fields.get("url"), fields.get("schema")))
    return tuple(out)


def _packaged_migrations() -> tuple[Path, ...]:
    from persistor.ecliptix_app import PACKAGED_MIGRATIONS  # finds a package: only on use

    return (PACKAGED_MIGRATIONS,)


TABLE: tuple[Setting, ...] = (
    Setting(
        "url",
        "database URL",
        _text,
        "Database URL: postgresql://user@host:port/db or sqlite:///file.db",
        "embedded PostgreSQL",
        flags=("--url",),
        env=("PERSISTOR_URL", "DATABASE_URL"),
        metavar="URL",
    ),
    Setting(
        "locations",
        "migration folders",
        _paths,
        "Directory of migrations; repeatable",
        "the packaged Ecliptix migrations",
        factory=_packaged_migrations,
        flags=("--location", "-l"),
        env=("PERSISTOR_LOCATIONS",),
        metavar="DIR",
        repeatable=True,
        paths=True,
    ),
    Setting(
        "schema",
        "schema",
        _text,
        "Target schema for scripts and the history table",
        "public (SQLite: main)",
        flags=("--schema",),
        env=("PERSISTOR_SCHEMA",),
        metavar="NAME",
    ),
    Setting(
        "history_table",
        "history table",
        _text,
        "History table name",
        "schema_history",
        default="schema_history",
        flags=("--history-table",),
        env=("PERSISTOR_HISTORY_TABLE",),
        metavar="NAME",
    ),
    Setting(
        "placeholders",
        "placeholders",
        _placeholders,
        "Value for ${NAME} in scripts; repeatable",
        "none",
        factory=dict,
        flags=("--placeholder", "-p"),
        env=(PLACEHOLDER_PREFIX + "NAME",),
        metavar="NAME=VALUE",
        repeatable=True,
    ),
    Setting(
        "lock_timeout",
        "lock timeout (s)",
        _seconds,
        "How long to wait for another migrator's lock before exiting 6",
        "300",
        default=300.0,
        flags=("--lock-timeout",),
        env=("PERSISTOR_LOCK_TIMEOUT",),
        metavar="SECONDS",
    ),
    Setting(
        "lock_mode",
        "lock mode",
        _lock_mode,
        "PostgreSQL lock: 'session' advisory lock, or 'table' for PgBouncer transaction pooling",
        "session",
        default="session",
        flags=("--lock-mode",),
        env=("PERSISTOR_LOCK_MODE",),
        metavar="|".join(LOCK_MODES),
    ),
    Setting(
        "lock_lease",
        "lock lease (s), table mode",
        _lease,
        "With --lock-mode table: how long the lock outlives a killed migrator "
        "(renewed every third of it)",
        "30",
        default=30.0,
        flags=("--lock-lease",),
        env=("PERSISTOR_LOCK_LEASE",),
        metavar="SECONDS",
    ),
    Setting(
        "connect_timeout",
        "connect timeout (s)",
        _whole_seconds,
        "How long to wait for the database server to answer",
        "10",
        default=10,
    ),
    Setting(
        "out_of_order",
        "apply out of order",
        _bool,
        "Also apply pending versions lower than the highest applied one",
        "off",
        default=False,
        flags=("--out-of-order",),
        command="migrate",
    ),
    Setting(
        "clean_enabled",
        "allow `clean`",
        _bool,
        "Allow `clean` to drop every object in the schema",
        "off",
        default=False,
        env=("PERSISTOR_CLEAN_ENABLED",),
    ),
    Setting(
        "embedded_dir",
        "embedded server data",
        _path,
        "Data directory of the embedded PostgreSQL used when no URL is configured",
        "/var/lib/persistor/postgres as root, else ~/.local/share/persistor/postgres",
        env=("PERSISTOR_EMBEDDED_DIR",),
        paths=True,
    ),
    Setting(
        "targets",
        "many targets",
        _targets,
        "Databases and schemas that migrate, status and validate run on together",
        "one: the url",
        default=(),
    ),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in TABLE}


def default_of(key: str) -> Any:
    """Return a setting's default as a dataclass field default (a factory becomes a field)."""
    setting = BY_KEY[key]
    if setting.factory is None:
        return setting.default
    from dataclasses import field

    return field(default_factory=setting.factory)


def environment_variables(env: Iterable[str]) -> list[str]:
    """Return the names among env that persistor reads settings from."""
    names = {name for s in TABLE for name in s.env}
    return [n for n in env if n in names or n.startswith(PLACEHOLDER_PREFIX)]
