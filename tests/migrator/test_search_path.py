"""Scripts run with the search path a new session of the database and role gets.

`ALTER DATABASE … SET search_path` and `ALTER ROLE … SET search_path` are
kept; --schema S puts S first and keeps the rest; pg_temp is always last.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from persistor import api
from persistor.settings import Settings
from tests.conftest import url_as
from tests.migrator.conftest import write

pytestmark = pytest.mark.postgres

# Each script records the path it ran with, in the schema it created objects in.
SEEN = "CREATE TABLE {table} AS SELECT current_setting('search_path') AS path;\n"


def _dbname(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _schemas(url: str, table: str) -> list[str]:
    """Return the schemas that hold a table of that name."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s", (table,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def _where(url: str, table: str) -> list[tuple[str, str]]:
    """Return (schema, recorded search_path) of every table of that name."""
    found = []
    with psycopg.connect(url) as conn:
        for schema in _schemas(url, table):
            row = conn.execute(f'SELECT path FROM "{schema}"."{table}"').fetchone()
            assert row is not None
            found.append((schema, str(row[0])))
    return found


def test_the_databases_search_path_is_kept(pg_url: str, migrations: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app; CREATE SCHEMA shared")
        conn.execute("CREATE TYPE shared.mood AS ENUM ('calm', 'busy')")
        conn.execute("CREATE FUNCTION public.helper() RETURNS int LANGUAGE sql AS 'SELECT 7'")
        conn.execute(f"ALTER DATABASE {_dbname(pg_url)} SET search_path = app, shared, public")
    write(migrations, "V1__in_app.sql", SEEN.format(table="seen"))
    # A type in the second schema and a helper in public, both unqualified.
    write(migrations, "V2__uses.sql", "CREATE TABLE t (m mood, n int DEFAULT helper());")
    write(
        migrations,
        "V3__outside.sql",
        "-- persistor:no-transaction\n" + SEEN.format(table="seen_outside"),
    )
    api.migrate(Settings(url=pg_url, locations=(migrations,)))
    assert _where(pg_url, "seen") == [("app", "app, shared, public, pg_temp")]
    assert _where(pg_url, "seen_outside") == [("app", "app, shared, public, pg_temp")]
    assert _schemas(pg_url, "t") == ["app"]


def test_schema_goes_first_and_the_rest_is_kept(pg_url: str, migrations: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app; CREATE SCHEMA shared")
        conn.execute("CREATE TYPE shared.mood AS ENUM ('calm', 'busy')")
        # pg_temp written first, and the target schema later in the list.
        conn.execute(
            f'ALTER DATABASE {_dbname(pg_url)} SET search_path = pg_temp, shared, "Tgt", public'
        )
    write(migrations, "V1__seen.sql", SEEN.format(table="seen") + "CREATE TABLE t (m mood);")
    api.migrate(Settings(url=pg_url, locations=(migrations,), schema="Tgt"))
    assert _where(pg_url, "seen") == [("Tgt", '"Tgt", shared, public, pg_temp')]
    with psycopg.connect(pg_url) as conn:  # the history went to the target schema too
        assert conn.execute('SELECT count(*) FROM "Tgt".schema_history').fetchone() == (1,)


def test_the_roles_search_path_is_kept(pg_url: str, migrations: Path, role: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA app AUTHORIZATION {role}; CREATE SCHEMA shared")
        conn.execute(f"GRANT USAGE ON SCHEMA shared TO {role}")
        conn.execute("CREATE TYPE shared.mood AS ENUM ('calm', 'busy')")
        conn.execute(f"ALTER ROLE {role} IN DATABASE {_dbname(pg_url)} SET search_path = shared")
    write(migrations, "V1__seen.sql", SEEN.format(table="seen") + "CREATE TABLE t (m mood);")
    api.migrate(Settings(url=url_as(pg_url, role), locations=(migrations,), schema="app"))
    assert _where(pg_url, "seen") == [("app", "app, shared, pg_temp")]


def test_without_settings_the_server_default_applies(pg_url: str, migrations: Path) -> None:
    write(migrations, "V1__seen.sql", SEEN.format(table="seen"))
    api.migrate(Settings(url=pg_url, locations=(migrations,)))
    assert _where(pg_url, "seen") == [("public", '"$user", public, pg_temp')]
