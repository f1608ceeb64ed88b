"""The schema as SQL from persistor's own catalog reader, when no pg_dump can dump the server.

pg_dump refuses servers newer than itself; should none on the machine be new
enough, the objects `drift` reads (inspect.py) are written out as statements
instead: in a fixed order, one object after another, deterministic like the
pg_dump form though not meant for restoring (grants are listed as comments).
"""

from __future__ import annotations

from collections.abc import Sequence

from persistor.engines.snapshot import KINDS, SchemaObject


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(schema: str, table: SchemaObject, objects: Sequence[SchemaObject]) -> str:
    parts = [
        f"    {_ident(o.name.split('.', 1)[1])} {o.definition}"
        for o in objects
        if o.kind == "column" and o.parent == ("table", table.name)
    ]
    parts += [
        f"    CONSTRAINT {_ident(o.name.split('.', 1)[1])} {o.definition}"
        for o in objects
        if o.kind == "constraint" and o.parent == ("table", table.name)
    ]
    body = ",\n".join(parts)
    note = "" if table.definition == "TABLE" else f"-- {table.definition}\n"
    return f"{note}CREATE TABLE {schema}.{_ident(table.name)} (\n{body}\n);"


def _statement(schema: str, o: SchemaObject, objects: Sequence[SchemaObject]) -> str | None:
    name = f"{schema}.{_ident(o.name)}"
    if o.kind == "table":
        return _table(schema, o, objects)
    if o.kind == "extension":
        return f"-- extension {o.name}: {o.definition}"
    if o.kind == "type":
        keyword = "DOMAIN" if o.definition.startswith("DOMAIN ") else "TYPE"
        return f"CREATE {keyword} {name} AS {o.definition.removeprefix('DOMAIN ')};"
    if o.kind == "sequence":
        return f"CREATE SEQUENCE {name} AS {o.definition};"
    if o.kind == "view":
        kind, _, query = o.definition.partition(" AS ")
        return f"CREATE {kind} {name} AS{query}"
    if o.kind == "policy":
        table, _, policy = o.name.partition(".")
        return f"CREATE POLICY {_ident(policy)} ON {schema}.{_ident(table)} AS {o.definition};"
    if o.kind == "privileges":
        return f"-- privileges on {o.name}: {o.definition}"
    if o.kind in ("index", "function", "trigger"):
        return o.definition.rstrip().rstrip(";") + ";"
    return None  # columns and constraints are written with their table


def render(schema: str, objects: Sequence[SchemaObject]) -> str:
    """Return the objects as SQL text, kind by kind (in KINDS order), each kind by name."""
    rank = {k: n for n, k in enumerate(KINDS)}
    ordered = sorted(objects, key=lambda o: (rank.get(o.kind, len(rank)), o.name))
    statements = [_statement(_ident(schema), o, ordered) for o in ordered]
    return "\n\n".join(s for s in statements if s is not None) + "\n"
