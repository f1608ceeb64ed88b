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

from collections.abc import Iterator

from persistor.core.sql_scan import (
    E_SQ_END,
    NOT_IDENT,
    PG_FAST,
    PG_WORD,
    Dialect,
    SplitError,
    Statement,
    StatementCollector,
    end_of_pg_special,
    end_of_quoted,
    is_ident_char,
)
from persistor.core.sqlite_splitter import split_sqlite

__all__ = ["SplitError", "Statement", "Token", "pg_tokens", "split_statements"]


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
        return split_sqlite(sql)
    raise ValueError(f"unknown SQL dialect {dialect!r}")


def _split_pg(sql: str) -> list[Statement]:
    # One long loop on purpose (over 50 lines): its state lives in locals, and
    # splitting into functions would cost a call per token on the hot path of
    # every migrate (W1/W4 in bench/).
    out = StatementCollector(sql)
    fast_search = PG_FAST.search
    word_search = PG_WORD.search
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
                pos = end_of_quoted(sql, i + 1, E_SQ_END, "quoted string")
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
                    and (i - 2 < pos or not is_ident_char(sql[i - 2]))
                ):
                    pos = end_of_quoted(sql, i, E_SQ_END, "quoted string")
                    continue
            elif c == "$" and i > pos and is_ident_char(sql[i - 1]):
                j = i - 1
                while j > pos and is_ident_char(sql[j - 1]):
                    j -= 1
                run = sql[j:i]
                if not (run.isascii() and run.isdigit()):  # $ belongs to this word
                    end = NOT_IDENT.search(sql, i)
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
            pos = end_of_pg_special(sql, i, c)
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
                pos = end_of_pg_special(sql, i, c)
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
    search = PG_WORD.search
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
                pos = end_of_quoted(sql, i + 1, E_SQ_END, "quoted string")
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
                pos = end_of_pg_special(sql, i, c)
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
