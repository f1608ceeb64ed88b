"""The one place the migrator meets the Ecliptix application it ships with.

persistor deploys the Ecliptix memberships database when no migrations are
configured, and offers its `demo` and `stress` commands. The application
itself (SQL, typed client, OTP helpers, demo, stress tool) is the top-level
package `ecliptix`, beside `persistor`; this module is the only one in
`persistor` that names it, and it imports it only when a command needs it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from persistor.errors import ConnectError, UsageError
from persistor.urls import mask_url, scrub

if TYPE_CHECKING:
    from ecliptix.demo import DemoReport
    from ecliptix.stress import StressReport


def _packaged_migrations() -> Path:
    # Found without importing `ecliptix`: importing it loads psycopg and the
    # client, which every command would pay for at start-up.
    spec = importlib.util.find_spec("ecliptix")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ecliptix package is missing from this installation")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "migrations"


PACKAGED_MIGRATIONS = _packaged_migrations()


def run_demo(
    url: str, *, schema: str | None, connect_timeout: int, phone_number: str | None
) -> DemoReport:
    """Walk a full Ecliptix registration and login on a PostgreSQL database."""
    import psycopg

    from ecliptix.demo import run_demo as walk

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
    except psycopg.Error as exc:
        raise ConnectError(
            f"cannot connect to {mask_url(url)}: {scrub(str(exc).strip(), url)}"
        ) from None
    with conn:
        try:
            return walk(conn, phone_number=phone_number, schema=schema)
        except psycopg.errors.UndefinedFunction:
            raise UsageError(
                "the Ecliptix functions are not deployed in this database; "
                "run `persistor migrate` first"
            ) from None


def run_stress(url: str, *, schema: str | None, clients: int, duration: float) -> StressReport:
    """Load the Ecliptix functions from many sessions, then check every invariant."""
    from ecliptix.stress import run_stress as hammer

    return hammer(url, clients=clients, duration=duration, schema=schema)
