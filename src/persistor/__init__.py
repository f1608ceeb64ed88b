"""persistor: deploy and evolve a database from versioned SQL files."""

from __future__ import annotations

from persistor.api import (
    baseline,
    check_connection,
    clean,
    demo,
    migrate,
    new_script,
    repair,
    status,
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
    "undo",
    "validate",
]
