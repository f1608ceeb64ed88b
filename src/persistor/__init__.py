"""persistor: deploy and evolve a database from versioned SQL files.

The public API (listed in persistor/_exports.py) is imported on first use, so
that `persistor --version` and other light commands do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persistor._exports import *  # noqa: F403 -- the names mypy sees are the ones served


def __getattr__(name: str) -> Any:
    """Return a public name (or __all__), importing the API on first use."""
    import importlib.util

    # A submodule (`from persistor import api`) is the import system's to load;
    # loading the exports for it could re-enter a module that is still importing.
    if (name.startswith("__") and name != "__all__") or importlib.util.find_spec(
        f"{__name__}.{name}"
    ):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    exports = importlib.import_module("persistor._exports")
    public = [n for n in vars(exports) if not n.startswith("_")]
    if name == "__all__":
        return public
    if name not in public:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(exports, name)
