"""Split SQL migration files into statements, the way psql and sqlite3 do.

The migrator runs a file statement by statement, so that a failing statement
can be reported with its file and line, and so that statements PostgreSQL
refuses inside a transaction block can be recognised (`pg_tokens` feeds
`persistor.core.no_transaction`).

The lexer is hand-written and single-pass.  Instead of looking at every
character it jumps between the characters that can matter (quotes, comment
starts, ``$``, ``;`` and parentheses) with compiled regular-expression searches
and ``str.find``; the bodies of strings, comments and dollar quotes are skipped
in one step each.  Words are only looked at where they matter: the first words
of each statement (to recognise ``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` and,
for SQLite, ``CREATE [TEMP] TRIGGER``) and the rest of those statements.  Every
character is therefore looked at a bounded number of times: splitting is
linear in the size of the input.

PostgreSQL rules (as in the backend's ``scan.l`` and psql's ``psqlscan.l``):

* ``'…'`` strings with ``''`` escapes and no backslash escapes
  (``standard_conforming_strings`` on); ``E'…'`` strings also with backslash
  escapes; ``U&'…'``, ``B'…'``, ``X'…'`` and ``N'…'`` are plain strings.
* ``"…"`` identifiers with ``""`` escapes (they may hold ``;``).
* ``--`` comments up to the end of the line; ``/* … */`` comments, which nest.
* ``$$…$$`` and ``$tag$…$tag$`` dollar quotes (the tag is made of identifier
  characters other than ``$`` and does not start with a digit).  ``$1`` is a
  parameter, and ``$`` inside a word (``a$b``) is part of that identifier.
* A ``;`` inside parentheses does not end the statement (psql's rule; this is
  what keeps ``CREATE RULE … DO ALSO (INSERT …; INSERT …)`` together).
* In a statement starting ``CREATE [OR REPLACE] {FUNCTION|PROCEDURE}``, a
  SQL-standard body ``BEGIN ATOMIC … END`` keeps its ``;``.  As psql does, the
  splitter counts, outside parentheses, ``BEGIN``/``CASE`` … ``END`` nesting
  (``CASE`` only once inside a body).  Unlike psql, a ``BEGIN`` only opens a
  body when the next token is ``ATOMIC``, which is the only way the grammar
  opens one: an identifier spelt ``begin`` (a column alias or parameter
  default, say) no longer swallows the rest of the file.  For every input on
  which psql's heuristic gives the server's statements, both agree.
* psql backslash meta-commands and ``:variables`` are not interpreted.

SQLite rules (as in ``sqlite3_complete``): ``'…'`` strings, ``"…"``, `` `…` ``
and ``[…]`` identifiers, ``--`` and non-nesting ``/* … */`` comments, and
``CREATE [TEMP|TEMPORARY] TRIGGER … BEGIN …; END`` whose inner ``;`` belong to
the trigger: such a statement ends at a ``;`` that follows ``END`` that itself
follows a ``;``.  There are no dollar quotes and parentheses do not matter.

An unterminated string, quoted identifier, block comment or dollar quote is an
error (`SplitError`), even where SQLite would accept a comment running to the
end of the input: in a migration file it is almost certainly a mistake.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["SplitError", "Statement", "Token", "pg_tokens", "split_statements"]

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
_SQ_END = re.compile(r"(?:[^']++|'')*+'")
_E_SQ_END = re.compile(r"(?:[^'\\]++|\\.|'')*+'", re.DOTALL)
_DQ_END = re.compile(r'(?:[^"]++|"")*+"')
_BQ_END = re.compile(r"(?:[^`]++|``)*+`")
_NOT_IDENT = re.compile(_NOT_IDC)
_PARAM = re.compile(r"\$[0-9]+")
_DOLLAR_TAG = re.compile(f"\\$(?:{_ID}{_TAG_C}*)?\\$")
_PG_COMMENT_MARK = re.compile(r"/\*|\*/")
_PG_NEWLINE = re.compile(r"[\n\r]")

# Fast mode: only the characters that can change the lexer's state.
_PG_FAST = re.compile(r"--|/\*|['\"$;()]")
_SQLITE_FAST = re.compile(r"--|/\*|['\"`\[;]")

# Word mode: every token.  Groups: e = E'…' string start, w = word,
# n = number, s = special character, o = any other character.  As in
# PostgreSQL 16+ (integer_junk, param_junk), identifier characters right after
# digits belong to the same token, "$" included: "$" only starts a dollar quote
# or parameter after digits alone ("1$$…$$"), never after "1e" or "x1".
_PG_WORD = re.compile(
    f"(?P<e>[eE]')|(?P<w>{_ID}{_IDC}*)|(?P<n>[0-9][0-9.]*(?:{_ID}{_IDC}*)?)"
    r"|(?P<s>--|/\*|['\"$;()])|(?P<o>[^ \t\n\r\f\v])"
)
_SQLITE_WORD = re.compile(
    f"(?P<w>{_ID}{_IDC}*)|(?P<n>[0-9]{_IDC_DOT}*)"
    r"|(?P<s>--|/\*|['\"`\[;])|(?P<o>[^ \t\n\r\f\v])"
)


def _is_ident_char(c: str) -> bool:
    return c in _ASCII_IDENT_CHARS or c >= "\x80"


def _line_of(sql: str, index: int) -> int:
    return sql.count("\n", 0, index) + 1


def _unterminated(sql: str, start: int, what: str) -> SplitError:
    line = _line_of(sql, start)
    return SplitError(f"unterminated {what} starting on line {line}", line)


def _end_of_quoted(sql: str, start: int, pattern: re.Pattern[str], what: str) -> int:
    """Index just past the quoted token whose opening quote is at ``start``."""
    m = pattern.match(sql, start + 1)
    if m is None:
        raise _unterminated(sql, start, what)
    return m.end()


def _end_of_pg_comment(sql: str, start: int) -> int:
    """Index just past the nesting ``/* … */`` comment opened at ``start``."""
    depth = 1
    pos = start + 2
    search = _PG_COMMENT_MARK.search
    while True:
        m = search(sql, pos)
        if m is None:
            raise _unterminated(sql, start, "/* comment")
        pos = m.end()
        if sql[m.start()] == "/":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos


def _end_of_sqlite_comment(sql: str, start: int) -> int:
    end = sql.find("*/", start + 2)
    if end < 0:
        raise _unterminated(sql, start, "/* comment")
    return end + 2


def _end_of_line_comment(sql: str, start: int, pg: bool) -> int:
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
        raise _unterminated(sql, start, f"dollar-quoted string {tag}")
    return end + len(tag)


def _end_of_pg_special(sql: str, i: int, c: str) -> int:
    """Index past the quote, comment or dollar token starting at ``i``."""
    if c == "'":
        return _end_of_quoted(sql, i, _SQ_END, "quoted string")
    if c == '"':
        return _end_of_quoted(sql, i, _DQ_END, "quoted identifier")
    if c == "$":
        return _end_of_dollar(sql, i)
    if c == "-":
        return _end_of_line_comment(sql, i, pg=True)
    return _end_of_pg_comment(sql, i)


# ---------------------------------------------------------------------------
# Splitting


class _Out:
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


def split_statements(sql: str, dialect: Dialect = "postgresql") -> list[Statement]:
    """Split ``sql`` into its statements.

    Statements end at a top-level ``;`` (see the module documentation for what
    "top-level" means in each dialect).  Statements that are empty or only
    comments and whitespace are dropped; a last statement without ``;`` is
    kept.  Raises `SplitError` for an unterminated quoted string, quoted
    identifier, block comment or dollar quote, naming the line where it
    started.
    """
    if dialect == "postgresql":
        return _split_pg(sql)
    if dialect == "sqlite":
        return _split_sqlite(sql)
    raise ValueError(f"unknown SQL dialect {dialect!r}")


def _split_pg(sql: str) -> list[Statement]:
    out = _Out(sql)
    fast_search = _PG_FAST.search
    word_search = _PG_WORD.search
    pos = 0
    start = -1  # offset of the current statement's first token, -1 if none yet
    parens = 0
    word_mode = True  # False once the statement is known not to be a routine
    nwords = 0  # words seen while deciding whether this is CREATE FUNCTION/PROCEDURE
    routine = False
    begin_depth = 0  # BEGIN ATOMIC / CASE … END nesting in a routine
    after_begin = False  # the previous token was BEGIN (outside parentheses)
    while True:
        if word_mode:
            m = word_search(sql, pos)
            if m is None:
                break
            i = m.start()
            kind = m.lastgroup
            if start < 0 and kind != "s":
                start = i
            if kind == "w":
                pos = m.end()
                word = m.group().lower()
                if not routine:
                    nwords += 1
                    if nwords == 1:
                        word_mode = word == "create"
                    elif nwords == 2:
                        routine = word in ("function", "procedure")
                        word_mode = routine or word == "or"
                    elif nwords == 3:
                        word_mode = word == "replace"
                    else:
                        routine = word_mode = word in ("function", "procedure")
                elif parens == 0:
                    if after_begin and word == "atomic":
                        begin_depth += 1
                        after_begin = False
                    else:
                        after_begin = word == "begin"
                        if word == "end":
                            if begin_depth:
                                begin_depth -= 1
                        elif word == "case" and begin_depth:
                            begin_depth += 1
                continue
            if kind == "e":
                after_begin = False
                pos = _end_of_quoted(sql, i + 1, _E_SQ_END, "quoted string")
                continue
            if kind != "s":
                after_begin = False
                pos = m.end()
                continue
            c = sql[i]
        else:
            m = fast_search(sql, pos)
            if m is None:
                break
            i = m.start()
            c = sql[i]
            if c == "'":
                # E'…' when the E is a token of its own.
                if (
                    i - 1 >= pos
                    and sql[i - 1] in "eE"
                    and (i - 2 < pos or not _is_ident_char(sql[i - 2]))
                ):
                    pos = _end_of_quoted(sql, i, _E_SQ_END, "quoted string")
                    continue
            elif c == "$" and i > pos and _is_ident_char(sql[i - 1]):
                j = i - 1
                while j > pos and _is_ident_char(sql[j - 1]):
                    j -= 1
                run = sql[j:i]
                if not (run.isascii() and run.isdigit()):  # $ belongs to this word
                    end = _NOT_IDENT.search(sql, i)
                    pos = len(sql) if end is None else end.start()
                    continue
        # A special character, in either mode.
        if c == ";":
            pos = i + 1
            if parens == 0 and begin_depth == 0:
                if start >= 0:
                    out.add(start, i)
                start = -1
                word_mode = True
                nwords = 0
                routine = False
            after_begin = False
        elif c == "-" or c == "/":  # a comment
            pos = _end_of_pg_special(sql, i, c)
        else:
            if start < 0:
                start = i
            after_begin = False
            if c == "(":
                pos = i + 1
                parens += 1
            elif c == ")":
                pos = i + 1
                if parens:
                    parens -= 1
            else:
                pos = _end_of_pg_special(sql, i, c)
    if start >= 0:
        out.add(start, len(sql))
    return out.statements


# sqlite3_complete()'s state machine.  Tokens: 0 ';', 1 other, 2 EXPLAIN,
# 3 CREATE, 4 TEMP/TEMPORARY, 5 TRIGGER, 6 END (whitespace and comments are
# ignored).  States: 0 start, 1 normal, 2 EXPLAIN, 3 CREATE, 4 in a trigger,
# 5 ';' in a trigger, 6 '; END' in a trigger.
_SQLITE_NORMAL = 1
_SQLITE_TRANS: tuple[tuple[int, ...], ...] = (
    # ;  other EXPLAIN CREATE TEMP TRIGGER END
    (0, 1, 2, 3, 1, 1, 1),  # 0 start
    (0, 1, 1, 1, 1, 1, 1),  # 1 normal
    (0, 2, 1, 3, 1, 1, 1),  # 2 EXPLAIN
    (0, 1, 1, 1, 3, 4, 1),  # 3 CREATE
    (5, 4, 4, 4, 4, 4, 4),  # 4 trigger
    (5, 4, 4, 4, 4, 4, 6),  # 5 ';' in a trigger
    (0, 4, 4, 4, 4, 4, 4),  # 6 '; END' in a trigger
)
_SQLITE_WORDS = {"explain": 2, "create": 3, "temp": 4, "temporary": 4, "trigger": 5, "end": 6}


def _end_of_sqlite_special(sql: str, i: int, c: str) -> int:
    if c == "'":
        return _end_of_quoted(sql, i, _SQ_END, "quoted string")
    if c == '"':
        return _end_of_quoted(sql, i, _DQ_END, "quoted identifier")
    if c == "`":
        return _end_of_quoted(sql, i, _BQ_END, "`quoted identifier`")
    if c == "[":
        end = sql.find("]", i + 1)
        if end < 0:
            raise _unterminated(sql, i, "[quoted identifier]")
        return end + 1
    if c == "-":
        return _end_of_line_comment(sql, i, pg=False)
    return _end_of_sqlite_comment(sql, i)


def _split_sqlite(sql: str) -> list[Statement]:
    out = _Out(sql)
    fast_search = _SQLITE_FAST.search
    word_search = _SQLITE_WORD.search
    pos = 0
    start = -1
    state = 0
    while True:
        if state == _SQLITE_NORMAL:
            m = fast_search(sql, pos)
            if m is None:
                break
            i = m.start()
            c = sql[i]
            if c == ";":
                pos = i + 1
                out.add(start, i)
                start = -1
                state = 0
            else:
                pos = _end_of_sqlite_special(sql, i, c)
            continue
        m = word_search(sql, pos)
        if m is None:
            break
        i = m.start()
        kind = m.lastgroup
        c = sql[i]
        if kind == "s" and c in "-/":  # a comment: whitespace to the state machine
            pos = _end_of_sqlite_special(sql, i, c)
            continue
        if c == ";":
            pos = i + 1
            state = _SQLITE_TRANS[state][0]
            if state == 0:
                if start >= 0:
                    out.add(start, i)
                start = -1
            continue
        if start < 0:
            start = i
        if kind == "w":
            token = _SQLITE_WORDS.get(m.group().lower(), 1)
            pos = m.end()
        elif kind == "s":
            token = 1
            pos = _end_of_sqlite_special(sql, i, c)
        else:
            token = 1
            pos = m.end()
        state = _SQLITE_TRANS[state][token]
    if start >= 0:
        out.add(start, len(sql))
    return out.statements


# ---------------------------------------------------------------------------
# Tokens of one statement, for recognising what kind of statement it is

# (kind, value): kind is "word" (lower-cased), "ident", "str", "num", "param" or "op"
Token = tuple[str, str]


def pg_tokens(sql: str) -> Iterator[Token]:
    """The significant tokens of the first statement of ``sql`` (PostgreSQL rules).

    Stops at the first top-level ``;`` and, quietly, at an unterminated token.
    """
    search = _PG_WORD.search
    pos = 0
    parens = 0
    try:
        while True:
            m = search(sql, pos)
            if m is None:
                return
            i = m.start()
            kind = m.lastgroup
            if kind == "w":
                pos = m.end()
                yield "word", m.group().lower()
            elif kind == "n":
                pos = m.end()
                yield "num", m.group()
            elif kind == "o":
                pos = m.end()
                yield "op", m.group()
            elif kind == "e":
                pos = _end_of_quoted(sql, i + 1, _E_SQ_END, "quoted string")
                yield "str", sql[i + 2 : pos - 1]
            else:
                c = sql[i]
                if c in ";()":
                    pos = i + 1
                    if c == "(":
                        parens += 1
                    elif c == ")":
                        parens -= 1
                    elif parens <= 0:
                        return
                    yield "op", c
                    continue
                pos = _end_of_pg_special(sql, i, c)
                if c == "'":
                    yield "str", sql[i + 1 : pos - 1].replace("''", "'")
                elif c == '"':
                    yield "ident", sql[i + 1 : pos - 1].replace('""', '"')
                elif c == "$":
                    if pos == i + 1:
                        yield "op", "$"
                    else:  # a dollar-quoted string or a parameter
                        yield ("str" if sql[pos - 1] == "$" else "param"), sql[i:pos]
    except SplitError:
        return
