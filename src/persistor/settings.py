"""Configuration: defaults, config file, environment and command line, in that order of weight.

Precedence is command line, then environment, then `persistor.toml` (or
`[tool.persistor]` in `pyproject.toml`), then the defaults defined here once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from persistor.ecliptix_app import PACKAGED_MIGRATIONS
from persistor.errors import UsageError
from persistor.urls import mask_url

DEFAULT_HISTORY_TABLE = "schema_history"
DEFAULT_LOCK_TIMEOUT = 300.0
DEFAULT_LOCK_LEASE = 30.0
CONFIG_FILE = "persistor.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, resolved from all sources."""

    url: str | None = None
    locations: tuple[Path, ...] = (PACKAGED_MIGRATIONS,)
    # Whether locations came from the command line, environment or a config
    # file, rather than defaulting to the packaged Ecliptix migrations.
    locations_configured: bool = False
    schema: str | None = None
    history_table: str = DEFAULT_HISTORY_TABLE
    placeholders: Mapping[str, str] = field(default_factory=dict)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    lock_mode: str = "session"
    lock_lease: float = DEFAULT_LOCK_LEASE  # table lock mode: how long a dead holder blocks
    connect_timeout: int = 10
    out_of_order: bool = False
    clean_enabled: bool = False
    embedded_dir: Path | None = None
    config_file: Path | None = None

    def shown_url(self) -> str:
        """Return the URL safe to print (password masked)."""
        return mask_url(self.url) if self.url else "(embedded PostgreSQL)"


_KEYS = {
    "url",
    "locations",
    "schema",
    "history_table",
    "placeholders",
    "lock_timeout",
    "lock_mode",
    "lock_lease",
    "connect_timeout",
    "out_of_order",
    "clean_enabled",
    "embedded_dir",
}


def _read_config(path: Path | None, cwd: Path) -> tuple[dict[str, Any], Path | None]:
    """Read persistor.toml, or [tool.persistor] from pyproject.toml."""
    explicit = path is not None
    if path is None:
        if (cwd / CONFIG_FILE).is_file():
            path = cwd / CONFIG_FILE
        elif (cwd / "pyproject.toml").is_file():
            path = cwd / "pyproject.toml"
        else:
            return {}, None
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist; fix --config or create it")
    import tomllib  # only when there is a file: most runs have none

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}; fix the TOML syntax") from None
    if path.name == "pyproject.toml" and not explicit:
        section = data.get("tool", {}).get("persistor")
        if section is None:
            return {}, None
        data = section
    elif path.name == "pyproject.toml":
        data = data.get("tool", {}).get("persistor", {})
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise UsageError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    url = data.get("url")
    if isinstance(url, str) and mask_url(url) != url:
        raise UsageError(
            f"{path}: the url holds a password; keep passwords out of files in the repository "
            "(use PERSISTOR_URL, PGPASSWORD or ~/.pgpass)"
        )
    return data, path


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    url = env.get("PERSISTOR_URL") or env.get("DATABASE_URL")
    if url:
        out["url"] = url
    if env.get("PERSISTOR_SCHEMA"):
        out["schema"] = env["PERSISTOR_SCHEMA"]
    if env.get("PERSISTOR_LOCATIONS"):
        out["locations"] = [p for p in env["PERSISTOR_LOCATIONS"].split(",") if p.strip()]
    if env.get("PERSISTOR_HISTORY_TABLE"):
        out["history_table"] = env["PERSISTOR_HISTORY_TABLE"]
    if env.get("PERSISTOR_LOCK_TIMEOUT"):
        out["lock_timeout"] = env["PERSISTOR_LOCK_TIMEOUT"]
    if env.get("PERSISTOR_LOCK_MODE"):
        out["lock_mode"] = env["PERSISTOR_LOCK_MODE"]
    if env.get("PERSISTOR_LOCK_LEASE"):
        out["lock_lease"] = env["PERSISTOR_LOCK_LEASE"]
    if env.get("PERSISTOR_CLEAN_ENABLED"):
        out["clean_enabled"] = env["PERSISTOR_CLEAN_ENABLED"]
    if env.get("PERSISTOR_EMBEDDED_DIR"):
        out["embedded_dir"] = env["PERSISTOR_EMBEDDED_DIR"]
    placeholders = {
        k[len("PERSISTOR_PLACEHOLDERS_") :].lower(): v
        for k, v in env.items()
        if k.startswith("PERSISTOR_PLACEHOLDERS_")
    }
    if placeholders:
        out["placeholders"] = placeholders
    return out


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"{name} must be true or false, got {value!r}")


def _as_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return text


def _as_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number of seconds, got {value!r}") from None
    if number < 0:
        raise UsageError(f"{name} must not be negative, got {value!r}")
    return number


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
    file_values, found = _read_config(config_path, cwd)
    base_dir = found.parent if found else cwd
    merged: dict[str, Any] = {}
    placeholders: dict[str, str] = {}
    for source, relative_to in (
        (file_values, base_dir),
        (_env_values(env), cwd),
        (overrides or {}, cwd),
    ):
        for key, value in source.items():
            if value is None:
                continue
            if key == "placeholders":
                placeholders.update({str(k): str(v) for k, v in dict(value).items()})
            elif key in ("locations", "embedded_dir"):
                merged[key] = _resolve_paths(value, relative_to)
            else:
                merged[key] = value
    settings = Settings(config_file=found)
    if merged.get("locations"):
        settings = replace(
            settings, locations=tuple(merged["locations"]), locations_configured=True
        )
    if "embedded_dir" in merged:
        settings = replace(settings, embedded_dir=merged["embedded_dir"][0])
    return replace(
        settings,
        url=merged.get("url") or None,
        schema=merged.get("schema") or None,
        history_table=str(merged.get("history_table") or DEFAULT_HISTORY_TABLE),
        placeholders=placeholders,
        lock_timeout=_as_float("lock_timeout", merged.get("lock_timeout", DEFAULT_LOCK_TIMEOUT)),
        lock_mode=_as_choice("lock_mode", merged.get("lock_mode", "session"), ("session", "table")),
        lock_lease=_as_lease(merged.get("lock_lease", DEFAULT_LOCK_LEASE)),
        connect_timeout=int(_as_float("connect_timeout", merged.get("connect_timeout", 10))),
        out_of_order=_as_bool("out_of_order", merged.get("out_of_order", False)),
        clean_enabled=_as_bool("clean_enabled", merged.get("clean_enabled", False)),
    )


def _as_lease(value: Any) -> float:
    lease = _as_float("lock_lease", value)
    # The heartbeat renews it every third; under a second that races the renewal itself.
    if not 1 <= lease < float("inf"):
        raise UsageError(f"lock_lease must be at least 1 second, got {value!r}")
    return lease


def _resolve_paths(value: Any, base: Path) -> list[Path]:
    items = [value] if isinstance(value, str | Path) else list(value)
    return [(base / Path(str(p).strip())).resolve() for p in items]
