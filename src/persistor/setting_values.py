"""Readers for the settings' values: each checks one value and says what is wanted.

The settings table (settings_table.py) names a reader per setting; every
source (command line, environment, configuration file) goes through it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

LOCK_MODES = ("session", "table")


def read_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def read_paths(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str | Path) else value
    if not isinstance(items, list | tuple) or not all(isinstance(p, str | Path) for p in items):
        raise ValueError("must be a folder or a list of folders")
    return tuple(str(p).strip() for p in items)


def read_path(value: Any) -> str:
    if not isinstance(value, str | Path):
        raise ValueError("must be a folder")
    return str(value).strip()


def read_seconds(value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None
    if not number >= 0:  # also refuses NaN
        raise ValueError("must not be negative")
    return number


def read_whole_seconds(value: Any) -> int:
    return int(read_seconds(value))


def read_file(value: Any) -> str:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError("must be a file path")
    return str(value).strip()


def read_whole(value: Any, low: int, high: int, problem: str) -> int:
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


def read_milliseconds(value: Any) -> int:
    # PostgreSQL's largest timeout is 2^31 - 1 ms.
    return read_whole(value, 0, 2_147_483_647, "must be a whole number of milliseconds (0 = off)")


def read_count(value: Any) -> int:
    return read_whole(value, 0, 1000, "must be a whole number (0 = no retry)")


def read_delay(value: Any) -> float:
    delay = read_seconds(value)
    if delay == math.inf:
        raise ValueError("must be a finite number of seconds")
    return delay


def read_lease(value: Any) -> float:
    lease = read_seconds(value)
    # The heartbeat renews it every third; under a second that races the renewal itself.
    if not 1 <= lease < math.inf:
        raise ValueError("must be at least 1 second")
    return lease


def read_lock_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOCK_MODES:
        raise ValueError(f"must be one of {', '.join(LOCK_MODES)}")
    return text


def read_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def read_placeholders(value: Any) -> dict[str, str]:
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


def read_lint(value: Any) -> dict[str, tuple[str, ...]]:
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


class Target(NamedTuple):
    """One database (and schema) of a run over many: `[[targets]]` or a line of --targets FILE."""

    name: str
    url: str | None  # None: the configured url (tenant schemas on one server)
    schema: str | None = None


def read_targets(value: Any) -> tuple[Target, ...]:
    """Read `[[targets]]` tables (name, url, schema); the fleet checks names and URLs."""
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be [[targets]] tables, each with name, url and optional schema")
    out: list[Target] = []
    for n, item in enumerate(items, start=1):
        item = item._asdict() if isinstance(item, Target) else item
        if not isinstance(item, Mapping) or not set(item) <= {"name", "url", "schema"}:
            raise ValueError(f"target {n} must be a table of name, url and optional schema")
        fields = {k: read_text(v) for k, v in item.items() if v is not None}
        if not fields.get("name"):
            raise ValueError(f"target {n} has no name")
        if not fields.get("url") and not fields.get("schema"):
            raise ValueError(f"target {fields['name']!r} needs a url or a schema")
        out.append(Target(fields["name"], fields.get("url"), fields.get("schema")))
    return tuple(out)
