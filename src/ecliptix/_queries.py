"""Load the named SQL queries of ``ecliptix/queries/*.sql``.

A file holds blocks, each opened by ``-- name: <name>`` and followed by
``-- <key>: <value>`` header lines (description, limit, …) and the query.
SQL lives in those files, not in Python strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType

_HEADER = re.compile(r"--\s*([a-z_]+):\s*(.*)")


@dataclass(frozen=True)
class Query:
    """One named query of a .sql file, with the header lines written above it."""

    name: str
    text: str
    headers: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def sql(self) -> bytes:
        """Return the query text as psycopg takes it."""
        return self.text.encode()


def _parse(source: str) -> list[Query]:
    queries: list[Query] = []
    name: str | None = None
    headers: dict[str, str] = {}
    body: list[str] = []

    def flush() -> None:
        if name is not None:
            text = "\n".join(body).strip().rstrip(";")
            queries.append(Query(name, text, MappingProxyType(dict(headers))))

    for line in source.splitlines():
        match = _HEADER.fullmatch(line.strip())
        if match and match.group(1) == "name":
            flush()
            name, headers, body = match.group(2).strip(), {}, []
        elif match and not body:
            headers[match.group(1)] = match.group(2).strip()
        elif name is not None:
            body.append(line)
    flush()
    return queries


@cache
def load(filename: str) -> tuple[Query, ...]:
    """Return the queries of queries/<filename>, in file order."""
    source = resources.files("ecliptix").joinpath("queries", filename).read_text("utf-8")
    return tuple(_parse(source))


def query(filename: str, name: str) -> Query:
    """Return the query called name in queries/<filename>."""
    for q in load(filename):
        if q.name == name:
            return q
    raise KeyError(f"no query {name!r} in {filename}")
