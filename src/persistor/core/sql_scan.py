"""Scanning primitives shared by the PostgreSQL and SQLite statement splitters.

Where each kind of quoted token, comment and dollar quote ends, the compiled
patterns the splitters jump with, and the collector of statements with their
line numbers. The rules themselves are described in `persistor.core.splitter`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["postgresql", "sqlite"]

#: Whitespace for both PostgreSQL and SQLite. Narrower than ``str.strip``'s,
#: which also strips e.g. U+00A0 (an identifier character to PostgreSQL).
_WS = " \t\n\r\f\v"


class SplitError(ValueError):
    """The SQL text has an unterminated quote, comment or dollar quote."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a SQL text.

    ``text`` runs from the statement's first significant character (comments
    and blank lines before it are not included) up to, not including, its
    terminating ``;``, with trailing whitespace stripped.  ``offset`` is the
    index in the input where ``text`` starts and ``line`` its 1-based line.
    """

    text: str
    offset: int
    line: int


# ---------------------------------------------------------------------------
# Regular expressions shared by both dialects

# Identifier characters are ASCII letters, digits, "_" (and "$" after the
# first) plus every non-ASCII character. The classes are written as the
# complement of the ASCII characters that are NOT allowed: a range up to
# U+10FFFF costs re.compile ~4 ms per class, which was 20 ms of every migrate
# that had a script to split; these compile in microseconds.
_ID = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"  # may start one: A-Z a-z _ non-ASCII
_IDC = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # may continue: also 0-9 $
_NOT_IDC = r"[\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_TAG_C = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # a dollar tag's: no $
_IDC_DOT = r"[^\x00-\x23\x25-\x2d\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # SQLite numbers
_ASCII_IDENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$")

# Bodies of quoted tokens, matched from just after the opening quote up to and
# including the closing one.  Possessive quantifiers: no backtracking, so a
# doubled quote is always an escape and never an end followed by a start.
SQ_END = re.compile(r"(?:[^']++|'')*+'")
E_SQ_END = re.compile(r"(?:[^'\\]++|\\.|'')*+'", re.DOTALL)
DQ_END = re.compile(r'(?:[^"]++|"")*+"')
BQ_END = re.compile(r"(?:[^`]++|``)*+`")
NOT_IDENT = re.compile(_NOT_IDC)
_PARAM = re.compile(r"\$[0-9]+")
_DOLLAR_TAG = re.compile(f"\\$(?:{_ID}{_TAG_C}*)?\\$")
_PG_COMMENT_MARK = re.compile(r"/\*|\*/")
_PG_NEWLINE = re.compile(r"[\n\r]")

# Fast mode: only the characters that can change the lexer's state.
PG_FAST = re.compile(r"--|/\*|['\"$;()]")
SQLITE_FAST = re.compile(r"--|/\*|['\"`\[;]")

# Word mode: every token.  Groups: e = E'…' string start, w = word,
# n = number, s = special character, o = any other character.  As in
# PostgreSQL 16+ (integer_junk, param_junk), identifier characters right after
# digits belong to the same token, "$" included: "$" only starts a dollar quote
# or parameter after digits alone ("1$$…$$"), never after "1e" or "x1".
PG_WORD = re.compile(
    f"(?P<e>[eE]')|(?P<w>{_ID}{_IDC}*)|(?P<n>[0-9][0-9.]*(?:{_ID}{_IDC}*)?)"
    r"|(?P<s>--|/\*|['\"$;()])|(?P<o>[^ \t\n\r\f\v])"
)
SQLITE_WORD = re.compile(
    f"(?P<w>{_ID}{_IDC}*)|(?P<n>[0-9]{_IDC_DOT}*)"
    r"|(?P<s>--|/\*|['\"`\[;])|(?P<o>[^ \t\n\r\f\v])"
)


def is_ident_char(c: str) -> bool:
    return c in _ASCII_IDENT_CHARS or c >= "\x80"


def _line_of(sql: str, index: int) -> int:
    return sql.count("\n", 0, index) + 1


def unterminated(sql: str, start: int, what: str) -> SplitError:
    line = _line_of(sql, start)
    return SplitError(f"unterminated {what} starting on line {line}", line)


def end_of_quoted(sql: str, start: int, pattern: re.Pattern[str], what: str) -> int:
    """Index just past the quoted token whose opening quote is at ``start``."""
    m = pattern.match(sql, start + 1)
    if m is None:
        raise unterminated(sql, start, what)
    return m.end()


def _end_of_pg_comment(sql: str, start: int) -> int:
    """Index just past the nesting ``/* … */`` comment opened at ``start``."""
    depth = 1
    pos = start + 2
    search = _PG_COMMENT_MARK.search
    while True:
        m = search(sql, pos)
        if m is None:
            raise unterminated(sql, start, "/* comment")
        pos = m.end()
        if sql[m.start()] == "/":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos


def end_of_sqlite_comment(sql: str, start: int) -> int:
    end = sql.find("*/", start + 2)
    if end < 0:
        raise unterminated(sql, start, "/* comment")
    return end + 2


def end_of_line_comment(sql: str, start: int, pg: bool) -> int:
    if pg:
        m = _PG_NEWLINE.search(sql, start + 2)
        return len(sql) if m is None else m.end()
    end = sql.find("\n", start + 2)
    return len(sql) if end < 0 else end + 1


def _end_of_dollar(sql: str, start: int) -> int:
    """Index past the dollar quote at ``start``, or ``start + 1`` for a lone ``$``."""
    m = _DOLLAR_TAG.match(sql, start)
    if m is None:  # a parameter ($1: the digits are part of it) or a stray $
        m = _PARAM.match(sql, start)
        return start + 1 if m is None else m.end()
    tag = m.group()
    end = sql.find(tag, m.end())
    if end < 0:
        raise unterminated(sql, start, f"dollar-quoted string {tag}")
    return end + len(tag)


def end_of_pg_special(sql: str, i: int, c: str) -> int:
    """Index past the quote, comment or dollar token starting at ``i``."""
    if c == "'":
        return end_of_quoted(sql, i, SQ_END, "quoted string")
    if c == '"':
        return end_of_quoted(sql, i, DQ_END, "quoted identifier")
    if c == "$":
        return _end_of_dollar(sql, i)
    if c == "-":
        return end_of_line_comment(sql, i, pg=True)
    return _end_of_pg_comment(sql, i)


class StatementCollector:
    """Collects statements, computing line numbers incrementally (linear)."""

    __slots__ = ("line", "line_pos", "sql", "statements")

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.statements: list[Statement] = []
        self.line = 1
        self.line_pos = 0

    def add(self, start: int, end: int) -> None:
        sql = self.sql
        text = sql[start:end].rstrip(_WS)
        if not text:
            return
        self.line += sql.count("\n", self.line_pos, start)
        self.line_pos = start
        self.statements.append(Statement(text, start, self.line))
