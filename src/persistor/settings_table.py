"""Every setting once: its name, flag, environment variables, config key, parser, default, help.

The loader (settings.py), the command-line options (cli/options.py), the
README check and the test fixtures all read this table. It imports nothing
heavy: `persistor --help` builds its options from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from persistor.setting_values import (
    LOCK_MODES,
    read_bool,
    read_count,
    read_delay,
    read_file,
    read_lease,
    read_lint,
    read_lock_mode,
    read_milliseconds,
    read_path,
    read_paths,
    read_placeholders,
    read_seconds,
    read_targets,
    read_text,
    read_whole_seconds,
)

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


def _packaged_migrations() -> tuple[Path, ...]:
    from persistor.ecliptix_app import PACKAGED_MIGRATIONS  # finds a package: only on use

    return (PACKAGED_MIGRATIONS,)


TABLE: tuple[Setting, ...] = (
    Setting(
        "url",
        "database URL",
        read_text,
        "Database URL: postgresql://user@host:port/db or sqlite:///file.db",
        "embedded PostgreSQL",
        flags=("--url",),
        env=("PERSISTOR_URL", "DATABASE_URL"),
        metavar="URL",
    ),
    Setting(
        "locations",
        "migration folders",
        read_paths,
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
        read_text,
        "Target schema for scripts and the history table",
        "public (SQLite: main)",
        flags=("--schema",),
        env=("PERSISTOR_SCHEMA",),
        metavar="NAME",
    ),
    Setting(
        "history_table",
        "history table",
        read_text,
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
        read_placeholders,
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
        read_seconds,
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
        read_milliseconds,
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
        read_milliseconds,
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
        read_count,
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
        read_delay,
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
        read_lock_mode,
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
        read_lease,
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
        read_whole_seconds,
        "How long to wait for the database server to answer",
        "10",
        default=10,
    ),
    Setting(
        "out_of_order",
        "apply out of order",
        read_bool,
        "Also apply pending versions lower than the highest applied one",
        "off",
        default=False,
        flags=("--out-of-order",),
        command="migrate",
    ),
    Setting(
        "clean_enabled",
        "allow `clean`",
        read_bool,
        "Allow `clean` to drop every object in the schema",
        "off",
        default=False,
        env=("PERSISTOR_CLEAN_ENABLED",),
    ),
    Setting(
        "dump_file",
        "schema dump file",
        read_file,
        "File every successful migrate rewrites with the schema's structure (`persistor dump`)",
        "none",
        env=("PERSISTOR_DUMP_FILE",),
        paths=True,
    ),
    Setting(
        "embedded_dir",
        "embedded server data",
        read_path,
        "Data directory of the embedded PostgreSQL used when no URL is configured",
        "/var/lib/persistor/postgres as root, else ~/.local/share/persistor/postgres",
        env=("PERSISTOR_EMBEDDED_DIR",),
        paths=True,
    ),
    Setting(
        "lint",
        "lint rules",
        read_lint,
        "Lint rules turned off (disable) and warnings raised to errors (error)",
        "every rule on, at its own severity",
        factory=dict,
    ),
    Setting(
        "targets",
        "many targets",
        read_targets,
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
