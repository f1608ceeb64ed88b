"""The parse tree of a script, from the real PostgreSQL parser, one statement at a time.

pglast's JSON form of the tree is read rather than its Python node objects:
building those costs ten times the parse itself (0.5 ms against 0.05 ms for
a one-line CREATE TABLE), and lint runs on every pending script of `migrate`.
The nodes are the parser's own (`{"IndexStmt": {...}}`), field for field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

Node = dict[str, Any]


class Statement(NamedTuple):
    """One top-level statement: its node type and fields, first line and text."""

    kind: str
    node: Node
    line: int  # 1-based line of its first token in the parsed text
    text: str


class ParseFailure(Exception):
    """The parser refused the text; args: (message, 1-based line)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line


def _parser() -> Any:
    global _PARSER
    if _PARSER is None:
        from pglast import parser  # imported on first use: a no-op migrate never parses

        _PARSER = parser
    return _PARSER


_PARSER: Any = None


def parse(text: str) -> list[Statement]:
    """Return the statements of a script, or raise ParseFailure naming the line."""
    parser = _parser()
    try:
        tree = json.loads(parser.parse_sql_json(text))
    except parser.ParseError as exc:
        offset = int(exc.args[1]) if len(exc.args) > 1 else 0  # a character index
        return _raise(str(exc.args[0]) if exc.args else str(exc), text.count("\n", 0, offset) + 1)
    data = text.encode("utf-8")  # the tree's locations count bytes
    out: list[Statement] = []
    for raw in tree.get("stmts", ()):
        ((kind, node),) = raw["stmt"].items()
        start = _first_token(data, raw.get("stmt_location", 0))
        length = raw.get("stmt_len", 0)
        end = raw.get("stmt_location", 0) + length if length else len(data)
        body = data[start:end].decode("utf-8", "replace").strip()
        out.append(Statement(kind, node, data.count(b"\n", 0, start) + 1, body))
    return out


def _raise(message: str, line: int) -> list[Statement]:
    raise ParseFailure(message, line)


def _first_token(data: bytes, at: int) -> int:
    """Skip whitespace and comments: older parsers point a statement at the previous `;`."""
    n = len(data)
    while at < n:
        if data[at] in b" \t\r\n\f":
            at += 1
        elif data.startswith(b"--", at):
            nl = data.find(b"\n", at)
            at = n if nl < 0 else nl + 1
        elif data.startswith(b"/*", at):
            at = _block_comment_end(data, at)
        else:
            break
    return at


def _block_comment_end(data: bytes, at: int) -> int:
    depth, at = 0, at
    while at < len(data):
        if data.startswith(b"/*", at):
            depth, at = depth + 1, at + 2
        elif data.startswith(b"*/", at):
            depth, at = depth - 1, at + 2
            if depth == 0:
                return at
        else:
            at += 1
    return at


def unwrap(node: Node) -> tuple[str, Node]:
    """Return the type name and fields of a wrapped node `{"Type": {...}}`."""
    ((kind, fields),) = node.items()
    return kind, fields


def relname(node: Node | None) -> str:
    """Return the table name of a RangeVar (empty when absent)."""
    return str(node.get("relname", "")) if node else ""


def type_name(type_node: Node | None) -> str:
    """Return the last part of a TypeName (`pg_catalog.int4` -> `int4`)."""
    if not type_node:
        return ""
    names = type_node.get("names", ())
    return str(names[-1]["String"]["sval"]) if names else ""


def walk(value: Any) -> Iterator[tuple[str, Node]]:
    """Yield every wrapped node under value (an expression), depth first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key[:1].isupper() and isinstance(inner, dict):
                yield key, inner
            yield from walk(inner)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
