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


def _file(value: Any) -> str:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError("must be a file path")
    return str(value).strip()


def _whole(value: Any, low: int, high: int, problem: str) -> int:
    """Read a whole number in [low, high]; `problem` says what is wanted when it is not one."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(problem)
    try:
        number = int(value) if isinstance(value, int | float) else int(str(value).strip())
    except ValueError:
        raise ValueError(problem) from None
    if not low <= number <= high:
        raise ValueError(f"must be between {low} and {high}")
    return number


def _milliseconds(value: Any) -> int:
    # PostgreSQL's largest timeout is 2^31 - 1 ms.
    return _whole(value, 0, 2_147_483_647, "must be a whole number of milliseconds (0 = off)")


def _count(value: Any) -> int:
    return _whole(value, 0, 1000, "must be a whole number (0 = no retry)")


def _delay(value: Any) -> float:
    delay = _seconds(value)
    if delay == math.inf:
        raise ValueError("must be a finite number of seconds")
    return delay


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


def _lint(value: Any) -> dict[str, tuple[str, ...]]:
    """Read the `[lint]` table: `disable` and `error`, each a list of rule ids."""
    from persistor.lint.catalog import known_rules_text, unknown_rules  # only with a [lint] table

    if not isinstance(value, Mapping):
        raise ValueError("must be a table with disable = [...] and error = [...]")
    extra = sorted(set(value) - {"disable", "error"})
    if extra:
        raise ValueError(f"has unknown key(s) {', '.join(extra)} (known: disable, error)")
    out: dict[str, tuple[str, ...]] = {}
    for key, ids in value.items():
        if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{key} must be a list of rule ids")
        unknown = unknown_rules(tuple(ids))
        if unknown:
            raise ValueError(
                f"{key} names unknown rule(s) {', '.join(unknown)} (known: {known_rules_text()})"
            )
        out[key] = tuple(ids)
    return out


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
        "lock_timeout_ms",
        "statement lock timeout (ms)",
        _milliseconds,
        "PostgreSQL: how long each migration statement may wait for a table or row lock "
        "before it gives up and is retried (lock_timeout; 0 = wait for ever)",
        "2000",
        default=2000,
        flags=("--lock-timeout-ms",),
        env=("PERSISTOR_LOCK_TIMEOUT_MS",),
        metavar="MS",
    ),
    Setting(
        "statement_timeout_ms",
        "statement timeout (ms)",
        _milliseconds,
        "PostgreSQL: how long each migration statement may run before it is cancelled "
        "(statement_timeout; 0 = no limit)",
        "off",
        default=0,
        flags=("--statement-timeout-ms",),
        env=("PERSISTOR_STATEMENT_TIMEOUT_MS",),
        metavar="MS",
    ),
    Setting(
        "lock_retries",
        "retries after a lock timeout",
        _count,
        "How many times a script (a no-transaction script: its statement) that hit the "
        "statement lock timeout is tried again",
        "10",
        default=10,
        flags=("--lock-retries",),
        env=("PERSISTOR_LOCK_RETRIES",),
        metavar="N",
        command="migrate",
    ),
    Setting(
        "lock_retry_max_delay_s",
        "longest pause between retries (s)",
        _delay,
        "Cap of the pause before a retry (exponential backoff with full jitter)",
        "60",
        default=60.0,
        flags=("--lock-retry-max-delay",),
        env=("PERSISTOR_LOCK_RETRY_MAX_DELAY",),
        metavar="SECONDS",
        command="migrate",
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
        "dump_file",
        "schema dump file",
        _file,
        "File every successful migrate rewrites with the schema's structure (`persistor dump`)",
        "none",
        env=("PERSISTOR_DUMP_FILE",),
        paths=True,
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
        "lint",
        "lint rules",
        _lint,
        "Lint rules turned off (disable) and warnings raised to errors (error)",
        "every rule on, at its own severity",
        factory=dict,
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
