"""The migration lock is per database: a migrator of another database on the server is not ours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from persistor import api
from persistor.engines.postgres.lock import lock_key
from persistor.errors import MigrationError
from persistor.settings import Settings
from tests.conftest import PgServer
from tests.migrator.conftest import write

pytestmark = pytest.mark.postgres


@pytest.fixture
def other_database(pg_server: PgServer) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A session on another database of the same server holding persistor's lock key there."""
    url = pg_server.create_database()
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_history"),))
        yield conn
    finally:
        conn.close()
        pg_server.drop_database(url)


def test_a_lock_in_another_database_is_not_this_ones(
    pg_url: str,
    migrations: Path,
    other_database: psycopg.Connection[tuple[object, ...]],
) -> None:
    settings = Settings(url=pg_url, locations=(migrations,), lock_timeout=5)
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    # A no-transaction script that fails at its second statement leaves a
    # progress row: `running` while its migrator holds the lock, else `failed`.
    write(
        migrations,
        "V2__stops.sql",
        "-- persistor:no-transaction\nCREATE TABLE b (id int);\nSELECT 1 / 0;\n",
    )
    with pytest.raises(MigrationError):
        api.migrate(settings)
    result = api.status(settings)
    assert result.lock_holder is None
    assert {m.script: m.state for m in result.migrations} == {
        "V1__a.sql": "applied",
        "V2__stops.sql": "failed",
    }
    assert result.problems == ()  # the next migrate resumes it


def test_a_lock_in_this_database_is_still_seen(pg_url: str, migrations: Path) -> None:
    settings = Settings(url=pg_url, locations=(migrations,))
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    api.migrate(settings)
    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_history"),))
        pid = holder.info.backend_pid
        shown = api.status(settings).lock_holder
    assert shown is not None and shown.startswith(f"pid {pid} ")
