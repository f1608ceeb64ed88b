"""Deploy the shipped Ecliptix migrations into a database, for tests."""

from __future__ import annotations

from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "persistor" / "migrations"


def deploy_ecliptix(url: str) -> None:
    """Run V001 then every repeatable script, in name order, as psql -f would."""
    files = sorted(MIGRATIONS.glob("V*.sql")) + sorted(MIGRATIONS.glob("R__*.sql"))
    with psycopg.connect(url, autocommit=True) as conn:
        for path in files:
            conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
