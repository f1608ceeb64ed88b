"""Read a schema's structure from the PostgreSQL catalog, object by object.

Each kind of object has its query in sql/<kind>s.sql; each row is a name, a
definition as the server prints it (pg_get_*def, format_type), and the
object it belongs to. Two databases built alike give equal rows, which is
what `persistor drift` compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import psycopg

from persistor.engines.snapshot import KINDS, SchemaObject


@cache
def _query(kind: str) -> str:
    name = {"index": "indexes", "policy": "policies", "privileges": "privileges"}.get(
        kind, kind + "s"
    ) + ".sql"
    return resources.files(__package__).joinpath("sql", name).read_text("utf-8")


def read_objects(
    conn: psycopg.Connection[Any], schema: str, excluded: Sequence[str]
) -> list[SchemaObject]:
    """Return every object of the schema (and the database's extensions), the excluded tables' left out."""
    params = {"schema": schema, "excluded": list(excluded)}
    objects: list[SchemaObject] = []
    # One snapshot for all queries: a migration between two of them would mix two states.
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for kind in KINDS:
            for name, definition, parent_kind, parent_name in cur.execute(_query(kind), params):
                parent = (str(parent_kind), str(parent_name)) if parent_kind else None
                objects.append(SchemaObject(kind, str(name), str(definition or ""), parent))
    return objects
