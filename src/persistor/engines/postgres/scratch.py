"""A throwaway database on the target's server, for `persistor drift` to build the migrations in."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
from psycopg import sql

from persistor.engines.postgres.errors import server_message
from persistor.errors import PersistorError, PrivilegeError

log = logging.getLogger(__name__)

PREFIX = "persistor_drift_"


def url_with_database(url: str, database: str) -> str:
    """Return the URL naming another database on the same server (and as the same user)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"]
    return parts._replace(path="/" + quote(database), query=urlencode(query)).geturl()


def _refuse(user: str, why: str) -> PrivilegeError:
    return PrivilegeError(
        f"role {user} may not create databases ({why}); drift builds what the migrations "
        "produce in a scratch database on the same server and drops it afterwards. Run "
        f"`ALTER ROLE {user} CREATEDB` as a superuser, or run drift as a role that has "
        "CREATEDB. Nothing was changed"
    )


@contextmanager
def scratch_database(conn: psycopg.Connection[Any], url: str) -> Iterator[str]:
    """Create an empty database, yield its URL, and drop it afterwards whatever happened."""
    user = conn.info.user
    row = conn.execute(
        "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not (row and row[0]):
        raise _refuse(user, "it lacks CREATEDB")
    name = PREFIX + secrets.token_hex(6)
    ident = sql.Identifier(name)
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _refuse(user, server_message(exc)) from None
    except psycopg.Error as exc:
        raise PersistorError(
            f"could not create the scratch database {name} for drift: {server_message(exc)}"
        ) from None
    log.info("created the scratch database %s", name)
    try:
        yield url_with_database(url, name)
    finally:
        # WITH (FORCE): a connection the build left open must not keep it alive.
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            log.info("dropped the scratch database %s", name)
        except psycopg.Error as exc:
            log.warning("could not drop the scratch database %s (%s); drop it by hand", name, exc)
