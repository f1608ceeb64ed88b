"""Plain data about a database's structure, shared by the engines that read it and the core.

No driver here: an engine fills these from its catalog, core/drift.py compares them.
"""

from __future__ import annotations

from typing import NamedTuple

# The kinds of object a catalog reader returns, in the order a report lists them.
KINDS = (
    "extension",
    "type",
    "table",
    "column",
    "constraint",
    "index",
    "sequence",
    "view",
    "function",
    "trigger",
    "policy",
    "privileges",
)


class SchemaObject(NamedTuple):
    """One object of a schema, with its definition as comparable text.

    `parent` is (kind, name) of the object it belongs to (a column's table, a
    grant's table or function), so a missing table is reported once, not
    once per column.
    """

    kind: str  # table, column, constraint, index, view, sequence, function, trigger, type, …
    name: str
    definition: str
    parent: tuple[str, str] | None = None


class SchemaDump(NamedTuple):
    """A schema's structure as SQL text, and the tool that wrote it."""

    sql: str
    tool: str
