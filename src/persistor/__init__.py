"""persistor: deploy and evolve a database from versioned SQL files.

The public API is re-exported here lazily, so that `persistor --version` and
other light commands do not pay for importing everything.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persistor.api import (
        baseline,
        check_connection,
        clean,
        demo,
        migrate,
        new_script,
        repair,
        status,
        stop_embedded,
        undo,
        validate,
    )
    from persistor.errors import (
        ConnectError,
        LockTimeoutError,
        MigrationError,
        PersistorError,
        Problem,
        UsageError,
        ValidationError,
    )
    from persistor.settings import Settings, load_settings

_EXPORTS = {
    **dict.fromkeys(
        [
            "baseline",
            "check_connection",
            "clean",
            "demo",
            "migrate",
            "new_script",
            "repair",
            "status",
            "stop_embedded",
            "undo",
            "validate",
        ],
        "persistor.api",
    ),
    **dict.fromkeys(
        [
            "ConnectError",
            "LockTimeoutError",
            "MigrationError",
            "PersistorError",
            "Problem",
            "UsageError",
            "ValidationError",
        ],
        "persistor.errors",
    ),
    "Settings": "persistor.settings",
    "load_settings": "persistor.settings",
}

__all__ = [
    "ConnectError",
    "LockTimeoutError",
    "MigrationError",
    "PersistorError",
    "Problem",
    "Settings",
    "UsageError",
    "ValidationError",
    "baseline",
    "check_connection",
    "clean",
    "demo",
    "load_settings",
    "migrate",
    "new_script",
    "repair",
    "status",
    "stop_embedded",
    "undo",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'persistor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
