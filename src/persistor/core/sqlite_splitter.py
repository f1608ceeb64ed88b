"""The SQLite statement splitter: `sqlite3_complete`'s rules (see `persistor.core.splitter`)."""

from __future__ import annotations

from persistor.core.sql_scan import (
    BQ_END,
    DQ_END,
    SQ_END,
    SQLITE_FAST,
    SQLITE_WORD,
    Statement,
    StatementCollector,
    end_of_line_comment,
    end_of_quoted,
    end_of_sqlite_comment,
    unterminated,
)

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
        return end_of_quoted(sql, i, SQ_END, "quoted string")
    if c == '"':
        return end_of_quoted(sql, i, DQ_END, "quoted identifier")
    if c == "`":
        return end_of_quoted(sql, i, BQ_END, "`quoted identifier`")
    if c == "[":
        end = sql.find("]", i + 1)
        if end < 0:
            raise unterminated(sql, i, "[quoted identifier]")
        return end + 1
    if c == "-":
        return end_of_line_comment(sql, i, pg=False)
    return end_of_sqlite_comment(sql, i)


def split_sqlite(sql: str) -> list[Statement]:
    """Split SQLite text into statements (the state machine above)."""
    # One loop on purpose: its state lives in locals, as in the PostgreSQL splitter.
    out = StatementCollector(sql)
    fast_search = SQLITE_FAST.search
    word_search = SQLITE_WORD.search
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
