"""Configuration: defaults, config file, environment and command line, in that order of weight.

Precedence is command line, then environment, then `persistor.toml` (or
`[tool.persistor]` in `pyproject.toml`), then the defaults. What each setting
is called where, how it is parsed and its default: settings_table.TABLE.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistor.errors import UsageError
from persistor.setting_values import Target
from persistor.settings_table import (
    BY_KEY,
    PLACEHOLDER_PREFIX,
    TABLE,
    Setting,
    default_of,
)
from persistor.urls import mask_url

log = logging.getLogger(__name__)

CONFIG_FILE = "persistor.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, resolved from all sources."""

    url: str | None = default_of("url")
    locations: tuple[Path, ...] = default_of("locations")
    # Whether locations came from the command line, environment or a config
    # file, rather than defaulting to the packaged Ecliptix migrations.
    locations_configured: bool = False
    schema: str | None = default_of("schema")
    history_table: str = default_of("history_table")
    placeholders: Mapping[str, str] = default_of("placeholders")
    lock_timeout: float = default_of("lock_timeout")
    lock_timeout_ms: int = default_of("lock_timeout_ms")  # per statement, unlike lock_timeout
    statement_timeout_ms: int = default_of("statement_timeout_ms")
    lock_retries: int = default_of("lock_retries")
    lock_retry_max_delay_s: float = default_of("lock_retry_max_delay_s")
    lock_mode: str = default_of("lock_mode")
    lock_lease: float = default_of("lock_lease")  # table lock mode: how long a dead holder blocks
    connect_timeout: int = default_of("connect_timeout")
    out_of_order: bool = default_of("out_of_order")
    clean_enabled: bool = default_of("clean_enabled")
    dump_file: Path | None = default_of("dump_file")  # noqa: RUF009 -- rewritten by migrate
    embedded_dir: Path | None = default_of("embedded_dir")  # noqa: RUF009 -- read once, on purpose
    lint: Mapping[str, tuple[str, ...]] = default_of("lint")  # `[lint]`: disable, error
    targets: tuple[Target, ...] = default_of("targets")  # [[targets]]: see persistor.fleet
    config_file: Path | None = None


def _find_config(path: Path | None, cwd: Path) -> Path | None:
    if path is not None:
        if not path.is_file():
            raise UsageError(f"config file {path} does not exist; fix --config or create it")
        return path
    for name in (CONFIG_FILE, "pyproject.toml"):
        if (cwd / name).is_file():
            return cwd / name
    return None


def _read_config(path: Path | None, cwd: Path) -> tuple[dict[str, Any], Path | None]:
    """Read persistor.toml, or [tool.persistor] from pyproject.toml."""
    found = _find_config(path, cwd)
    if found is None:
        return {}, None
    import tomllib  # only when there is a file: most runs have none

    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {found}: {exc}; fix the TOML syntax") from None
    if found.name == "pyproject.toml":
        section = data.get("tool", {}).get("persistor")
        if section is None:
            # A project file without our section configures nothing, unless asked for by name.
            return {}, (found if path is not None else None)
        data = section
    _check_keys(data, str(found))
    url = data.get("url")
    urls = [url, *(t.get("url") for t in data.get("targets", []) if isinstance(t, dict))]
    if any(isinstance(u, str) and mask_url(u) != u for u in urls):
        raise UsageError(
            f"{found}: a url holds a password; keep passwords out of files in the repository "
            "(use PERSISTOR_URL, PGPASSWORD or ~/.pgpass)"
        )
    log.debug("reading settings from %s", found)
    return data, found


def _check_keys(values: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(values) - set(BY_KEY))
    if unknown:
        raise UsageError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(BY_KEY))}"
        )


def _env_values(env: Mapping[str, str]) -> Iterator[tuple[Setting, Any, str]]:
    """Yield (setting, raw value, variable name) for each setting the environment sets."""
    for setting in TABLE:
        if setting.key == "placeholders":  # one variable per placeholder, not one for all
            found = _env_placeholders(env)
            if found:
                yield setting, found, PLACEHOLDER_PREFIX + "*"
            continue
        name = next((n for n in setting.env if env.get(n)), None)
        if name is not None:
            value: Any = env[name]
            if setting.repeatable:
                value = [p for p in value.split(",") if p.strip()]
            yield setting, value, name


def _env_placeholders(env: Mapping[str, str]) -> dict[str, str]:
    """Read PERSISTOR_PLACEHOLDERS_<name>: the name keeps its case (appRole sets ${appRole}).

    An all-upper-case name also sets its lower-case twin unless another variable
    does, as it did when every name was lower-cased: APP_ROLE still sets ${app_role}.
    """
    found = {
        k[len(PLACEHOLDER_PREFIX) :]: v for k, v in env.items() if k.startswith(PLACEHOLDER_PREFIX)
    }
    for name, value in list(found.items()):
        if name.isupper():
            found.setdefault(name.lower(), value)
    found.pop("", None)
    return found


def _parse(setting: Setting, value: Any, where: str, base: Path) -> Any:
    """Return a raw value as the setting's type, or raise a UsageError naming where it came from."""
    try:
        parsed = setting.parse(value)
    except ValueError as exc:
        raise UsageError(f"{setting.key} {exc}, got {value!r}{where}") from None
    if setting.paths:
        if isinstance(parsed, tuple):
            return tuple((base / p).resolve() for p in parsed)
        return (base / parsed).resolve()
    return parsed


def _shown(setting: Setting, value: Any) -> str:
    if setting.key == "url":
        return mask_url(value)
    if setting.key == "placeholders":  # their values may be secrets
        return ", ".join(sorted(value))
    return str(value)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings: overrides (command line) > environment > config file > defaults."""
    cwd = cwd or Path.cwd()
    env = os.environ if env is None else env
    overrides = overrides or {}
    _check_keys(overrides, "load_settings")
    file_values, found = _read_config(config_path, cwd)
    base = found.parent if found else cwd  # a config file's paths are relative to its folder
    sources: list[tuple[Setting, Any, str, Path]] = [
        *((BY_KEY[k], v, f" in {found}", base) for k, v in file_values.items()),
        *((s, v, f" from {name}", cwd) for s, v, name in _env_values(env)),
        *((BY_KEY[k], v, "", cwd) for k, v in overrides.items()),
    ]
    values: dict[str, Any] = {"config_file": found}
    placeholders: dict[str, str] = {}
    for setting, raw, where, base in sources:
        if raw is None or raw == "" or raw == () or raw == []:
            continue
        value = _parse(setting, raw, where, base)
        log.debug("%s = %s%s", setting.key, _shown(setting, value), where or " (given)")
        if setting.key == "placeholders":  # merged name by name across the sources
            placeholders.update(value)
        else:
            values[setting.key] = value
    values["placeholders"] = placeholders
    values["locations_configured"] = "locations" in values
    settings = Settings(**values)
    _check_timeouts(settings)
    return settings


def _check_timeouts(settings: Settings) -> None:
    """Refuse a statement timeout that would fire before the lock timeout it is meant to outlast."""
    lock_ms, statement_ms = settings.lock_timeout_ms, settings.statement_timeout_ms
    if statement_ms and lock_ms and lock_ms >= statement_ms:
        raise UsageError(
            f"lock_timeout_ms ({lock_ms}) must be below statement_timeout_ms ({statement_ms}): "
            "otherwise the statement timeout cancels a statement waiting for a lock first, and "
            "that is not retried; lower lock_timeout_ms or raise statement_timeout_ms"
        )
