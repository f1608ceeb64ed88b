"""Deploy the shipped Ecliptix migrations into a database, for tests."""

from __future__ import annotations

from pathlib import Path

from persistor.api import migrate
from persistor.core.source import expand_script
from persistor.ecliptix_app import PACKAGED_MIGRATIONS
from persistor.settings import Settings

MIGRATIONS = PACKAGED_MIGRATIONS
# The database as version 1 shipped it (see data/README.md), for upgrade tests.
V1_MIGRATIONS = Path(__file__).parent / "data" / "v1_migrations"


def deploy_ecliptix(url: str) -> None:
    """Deploy the packaged migrations with persistor itself (includes and all)."""
    migrate(Settings(url=url))


def script_text(path: Path) -> bytes:
    """Return a packaged script as it runs: includes expanded, as psql -f would read it."""
    expanded = expand_script(path, path.name, [MIGRATIONS.resolve()], {})
    assert not expanded.problems, expanded.problems
    return expanded.text.encode("utf-8")
