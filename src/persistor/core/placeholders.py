"""Placeholders: Flyway's session built-ins, and how to tell a user to define a missing one."""

from __future__ import annotations

import re

# Flyway's built-ins that depend on the session or the clock: they are
# checksummed as written, so a script is "changed" only when its file (or a
# placeholder of yours) changes, never because of who runs it or when.
SESSION_BUILTINS = ("flyway:defaultSchema", "flyway:user", "flyway:database", "flyway:timestamp")
# A name an environment variable can carry (PERSISTOR_PLACEHOLDERS_<name>).
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def lines_text(uses: list[tuple[str, int]], script: str) -> str:
    """Say where a placeholder is used: 'lines 3, 7' in the script, 'inc.sql line 2' elsewhere."""
    by_file: dict[str, list[int]] = {}
    for shown, n in uses:
        by_file.setdefault(shown, []).append(n)
    parts = []
    for shown, numbers in by_file.items():
        label = "line" if len(numbers) == 1 else "lines"
        part = f"{label} {', '.join(str(n) for n in numbers)}"
        parts.append(part if shown == script else f"{shown} {part}")
    return "; ".join(parts)


def define_advice(name: str) -> str:
    """Say how to define a placeholder, naming only ways that work for that name."""
    if name.startswith(("flyway:", "persistor:")):
        return "it is not one of the built-in placeholders; check its spelling"
    if ENV_NAME_RE.fullmatch(name):
        return (
            f"define it with --placeholder {name}=VALUE, the environment variable "
            f"PERSISTOR_PLACEHOLDERS_{name} or [placeholders] in persistor.toml"
        )
    return (
        f"define it with --placeholder '{name}=VALUE' or as \"{name}\" under [placeholders] in "
        "persistor.toml (an environment variable cannot carry that name)"
    )
