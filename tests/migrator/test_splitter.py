"""Tests for the SQL statement splitter (persistor.core.splitter).

The property tests run a few hundred examples by default.  For a long fuzzing
run, opt in with the environment variable ``PERSISTOR_FUZZ_EXAMPLES``, e.g.::

    PERSISTOR_FUZZ_EXAMPLES=100000 python -m pytest tests/migrator/test_splitter.py -k property --timeout=0

(``--timeout=0`` lifts the suite's 300 s per-test limit; 100,000 examples of
one property take about 15 minutes on two cores.)
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass

import pglast
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistor.core.no_transaction import needs_no_transaction
from persistor.core.splitter import SplitError, Statement, split_statements

_FUZZ_EXAMPLES = int(os.environ.get("PERSISTOR_FUZZ_EXAMPLES") or 0)
settings.register_profile("splitter", max_examples=120, deadline=None, database=None)
settings.register_profile(
    "splitter-fuzz",
    max_examples=max(_FUZZ_EXAMPLES, 1),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
PROPERTY = settings(settings.get_profile("splitter-fuzz" if _FUZZ_EXAMPLES else "splitter"))


def texts(sql: str, dialect: str = "postgresql") -> list[str]:
    return [s.text for s in split_statements(sql, dialect)]  # type: ignore[arg-type]


def check_positions(sql: str, statements: list[Statement]) -> None:
    previous_end = 0
    for s in statements:
        assert s.text
        assert s.text == s.text.rstrip(" \t\n\r\f\v")
        assert sql[s.offset :].startswith(s.text)
        assert s.line == sql.count("\n", 0, s.offset) + 1
        assert s.offset >= previous_end
        previous_end = s.offset + len(s.text)


# ---------------------------------------------------------------------------
# Examples: PostgreSQL


def test_basic_split_with_offsets_and_lines() -> None:
    sql = "SELECT 1;\n-- comment ; here\n\n  SELECT 2 ;\r\n/* c */ SELECT 3"
    assert split_statements(sql) == [
        Statement("SELECT 1", 0, 1),
        Statement("SELECT 2", 31, 4),
        Statement("SELECT 3", 51, 5),
    ]


def test_empty_and_comment_only_statements_are_dropped() -> None:
    assert split_statements("") == []
    assert split_statements(" ;;\n ; -- nothing\n/* ; */ ;") == []
    assert texts("SELECT 1;;;SELECT 2;") == ["SELECT 1", "SELECT 2"]


def test_last_statement_without_semicolon_is_kept() -> None:
    assert split_statements("SELECT 1;\nSELECT 2 \n\n") == [
        Statement("SELECT 1", 0, 1),
        Statement("SELECT 2", 10, 2),
    ]


def test_comments_inside_and_after_a_statement_are_kept() -> None:
    assert texts("SELECT 1 /* a; */ + 2 -- b;\n;") == ["SELECT 1 /* a; */ + 2 -- b;"]
    assert texts("SELECT 1 -- trailing, no newline") == ["SELECT 1 -- trailing, no newline"]


def test_single_quoted_strings() -> None:
    sql = "SELECT 'a;b', 'it''s;';SELECT '\\';"
    # standard_conforming_strings: a backslash is an ordinary character.
    assert split_statements(sql) == [
        Statement("SELECT 'a;b', 'it''s;'", 0, 1),
        Statement("SELECT '\\'", 23, 1),
    ]


def test_e_strings_have_backslash_escapes() -> None:
    sql = "SELECT E'\\'';SELECT e'a;\\\\';SELECT E'x''y;\\n';SELECT 1"
    assert texts(sql) == ["SELECT E'\\''", "SELECT e'a;\\\\'", "SELECT E'x''y;\\n'", "SELECT 1"]


def test_e_only_when_a_token_of_its_own() -> None:
    # "somE'…'" is the identifier somE then a plain string: no backslash escape.
    assert texts("SELECT somE'\\';SELECT 2") == ["SELECT somE'\\'", "SELECT 2"]
    # After a quoted identifier or a closing dollar quote, E'…' is an E-string.
    assert texts("SELECT \"x\"E'\\';';SELECT 2") == ["SELECT \"x\"E'\\';'", "SELECT 2"]
    assert texts("SELECT $$a$$E'\\';';SELECT 2") == ["SELECT $$a$$E'\\';'", "SELECT 2"]


def test_unicode_and_other_prefixed_strings_are_plain() -> None:
    sql = "SELECT U&'d\\0061t;';SELECT X'1F', B'01', N'n;';SELECT U&'\\' UESCAPE '!'"
    assert texts(sql) == [
        "SELECT U&'d\\0061t;'",
        "SELECT X'1F', B'01', N'n;'",
        "SELECT U&'\\' UESCAPE '!'",
    ]


def test_quoted_identifiers() -> None:
    sql = 'CREATE TABLE "a;b" ("c""d;" int);SELECT 1'
    assert split_statements(sql) == [
        Statement('CREATE TABLE "a;b" ("c""d;" int)', 0, 1),
        Statement("SELECT 1", 33, 1),
    ]


def test_line_comments() -> None:
    sql = "SELECT 1 -- ; ' \" $$ /*\n, 2;\n-- SELECT 3;\nSELECT 4"
    assert split_statements(sql) == [
        Statement("SELECT 1 -- ; ' \" $$ /*\n, 2", 0, 1),
        Statement("SELECT 4", 42, 4),
    ]
    # A carriage return ends a -- comment too, as in PostgreSQL.
    assert texts("SELECT 1 --x\r;SELECT 2") == ["SELECT 1 --x", "SELECT 2"]


def test_block_comments_nest() -> None:
    sql = "SELECT 1 /* /* */ ; */ ;SELECT /* a /* b /* c ; */ */ ; */ 2; /**/ SELECT 3"
    assert texts(sql) == [
        "SELECT 1 /* /* */ ; */",
        "SELECT /* a /* b /* c ; */ */ ; */ 2",
        "SELECT 3",
    ]
    assert texts("SELECT 1 /*/ ; */; SELECT 2") == ["SELECT 1 /*/ ; */", "SELECT 2"]
    assert texts("SELECT 1 /* ***/; SELECT 2 */") == ["SELECT 1 /* ***/", "SELECT 2 */"]


def test_dollar_quotes() -> None:
    sql = (
        "SELECT $$a;'b$$;\n"
        "CREATE FUNCTION f() RETURNS int AS $fn$\n"
        "BEGIN\n  PERFORM $$inner;$$, $x$;$x$;\n  RETURN 1;\nEND\n$fn$ LANGUAGE plpgsql;\n"
        "SELECT $A$ $a$ ; $A$"
    )
    assert split_statements(sql) == [
        Statement("SELECT $$a;'b$$", 0, 1),
        Statement(
            "CREATE FUNCTION f() RETURNS int AS $fn$\n"
            "BEGIN\n  PERFORM $$inner;$$, $x$;$x$;\n  RETURN 1;\nEND\n$fn$ LANGUAGE plpgsql",
            17,
            2,
        ),
        Statement("SELECT $A$ $a$ ; $A$", 133, 8),
    ]


def test_dollar_quote_tag_closes_only_on_its_own_tag() -> None:
    assert texts("SELECT $a$ $ab$ ; $b$a$;SELECT 2") == ["SELECT $a$ $ab$ ; $b$a$", "SELECT 2"]
    assert texts("SELECT $_1$ ; $_1$;SELECT 2") == ["SELECT $_1$ ; $_1$", "SELECT 2"]


def test_dollar_in_identifiers_and_parameters() -> None:
    # a$b and x1$ are identifiers; $1 is a parameter; none starts a dollar quote.
    sql = "SELECT a$b$ ; SELECT x1$$ ; SELECT $1 ; SELECT $1$$;$$; SELECT 2"
    assert texts(sql) == ["SELECT a$b$", "SELECT x1$$", "SELECT $1", "SELECT $1$$;$$", "SELECT 2"]
    # After a number, $$ does open a dollar quote (PostgreSQL lexes 1 then $$).
    assert texts("SELECT 1$$;$$; SELECT 2") == ["SELECT 1$$;$$", "SELECT 2"]
    assert texts("SELECT t.a1$$;SELECT 2") == ["SELECT t.a1$$", "SELECT 2"]
    # A digit does not start a tag: $1a$ is not a dollar quote.
    assert texts("SELECT $1a$;SELECT 2") == ["SELECT $1a$", "SELECT 2"]


def test_semicolons_inside_parentheses_do_not_split() -> None:
    sql = (
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
        "INSERT INTO b VALUES (2));\nSELECT 1"
    )
    assert split_statements(sql) == [
        Statement(
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
            "INSERT INTO b VALUES (2))",
            0,
            1,
        ),
        Statement("SELECT 1", 94, 2),
    ]
    # A stray ")" does not make the depth negative.
    assert texts("SELECT 1); SELECT 2") == ["SELECT 1)", "SELECT 2"]


BEGIN_ATOMIC = """\
CREATE OR REPLACE FUNCTION f(a int) RETURNS int
LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;
  SELECT (CASE a WHEN 1 THEN 2 END);
  SELECT CASE WHEN a > 0 THEN CASE WHEN a > 1 THEN 2 END END;
END;
SELECT 2;
CREATE PROCEDURE p() LANGUAGE sql BEGIN /* c */ ATOMIC INSERT INTO t VALUES (1); END;
SELECT 3"""


def test_begin_atomic_bodies() -> None:
    statements = split_statements(BEGIN_ATOMIC)
    end = BEGIN_ATOMIC.index("\nEND;") + 4
    assert statements[0] == Statement(BEGIN_ATOMIC[:end], 0, 1)
    assert statements[1] == Statement("SELECT 2", end + 2, 8)
    assert statements[2].text == (
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN /* c */ ATOMIC INSERT INTO t VALUES (1); END"
    )
    assert statements[2].line == 9
    assert statements[3].text == "SELECT 3"
    assert len(statements) == 4
    assert texts(BEGIN_ATOMIC) == [s.strip() for s in pglast.split(BEGIN_ATOMIC)]


def test_begin_atomic_only_in_create_function_or_procedure() -> None:
    # A transaction block is three statements.
    assert texts("BEGIN; SELECT 1; END;") == ["BEGIN", "SELECT 1", "END"]
    # CASE … END outside a routine body does not count.
    assert texts("SELECT CASE WHEN true THEN 1 END; SELECT 2") == [
        "SELECT CASE WHEN true THEN 1 END",
        "SELECT 2",
    ]
    # Other CREATE statements do not track BEGIN.
    assert texts("CREATE TABLE begin (atomic int); SELECT 1") == [
        "CREATE TABLE begin (atomic int)",
        "SELECT 1",
    ]
    # The words must be words: not in strings, quoted identifiers or comments.
    sql = "CREATE FUNCTION f() RETURNS text LANGUAGE sql RETURN 'begin atomic'; SELECT 1"
    assert texts(sql) == [
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql RETURN 'begin atomic'",
        "SELECT 1",
    ]


def test_begin_not_followed_by_atomic_opens_no_body() -> None:
    # psql would count this BEGIN and swallow the next statement; the server
    # (and this splitter) see two statements.
    sql = "CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1; SELECT 1"
    assert texts(sql) == [s.strip() for s in pglast.split(sql)]
    assert len(texts(sql)) == 2
    # psql counts "AS begin" as a nested BEGIN and would swallow "SELECT 2".
    sql = (
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS begin; END; SELECT 2"
    )
    assert texts(sql) == [s.strip() for s in pglast.split(sql)]
    assert len(texts(sql)) == 2


def test_begin_atomic_is_case_insensitive_and_counts_case_only_outside_parentheses() -> None:
    sql = (
        "create function f() returns int language sql Begin Atomic select case when true then "
        "(case when false then 1 end) end; end; select 2"
    )
    assert texts(sql) == [s.strip() for s in pglast.split(sql)]
    assert len(texts(sql)) == 2
    # RETURN CASE … END: no body, CASE does not count.
    sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN CASE WHEN true THEN 1 END; SELECT 2"
    assert len(texts(sql)) == 2


def test_statement_starting_with_an_identifier_holding_dollars() -> None:
    assert split_statements("x$$y;\nSELECT 1") == [
        Statement("x$$y", 0, 1),
        Statement("SELECT 1", 6, 2),
    ]


def test_dollar_quoted_function_bodies_hide_begin_end() -> None:
    sql = (
        "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$"
        " LANGUAGE plpgsql; SELECT 1"
    )
    assert len(texts(sql)) == 2


def test_json_literals_are_just_text() -> None:
    sql = """SELECT '{"a": ":name", "b": "%s", "c": "?;"}'::jsonb ? 'a' ; SELECT 2"""
    assert texts(sql) == [
        """SELECT '{"a": ":name", "b": "%s", "c": "?;"}'::jsonb ? 'a'""",
        "SELECT 2",
    ]


def test_non_ascii_offsets_are_character_offsets() -> None:
    sql = "SELECT 'é;ü';\nSELECT \"ñ\" ;SELECT 3"
    assert split_statements(sql) == [
        Statement("SELECT 'é;ü'", 0, 1),
        Statement('SELECT "ñ"', 14, 2),
        Statement("SELECT 3", 26, 2),
    ]


@pytest.mark.parametrize(
    ("sql", "what", "line"),
    [
        ("SELECT 1;\nSELECT 'abc;\n\n", "quoted string", 2),
        ("SELECT 'it''", "quoted string", 1),
        ("\n\nSELECT E'\\'", "quoted string", 3),
        ('SELECT "a;', "quoted identifier", 1),
        ("SELECT 1 /* a\n/* b */\n", "/* comment", 1),
        ("SELECT 1;\n\nSELECT $fn$ body $$ $$\n", "dollar-quoted string $fn$", 3),
        ("SELECT $$ x $ $", "dollar-quoted string $$", 1),
    ],
)
def test_unterminated_constructs_raise(sql: str, what: str, line: int) -> None:
    with pytest.raises(SplitError) as info:
        split_statements(sql)
    assert info.value.line == line
    assert f"unterminated {what} starting on line {line}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="dialect"):
        split_statements("SELECT 1", "oracle")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Examples: SQLite


def test_sqlite_quotes() -> None:
    sql = "SELECT 'a;''b', \"c;\"\"d\", `e;``f`, [g;h] FROM t;SELECT '\\';SELECT $$;$$"
    assert texts(sql, "sqlite") == [
        "SELECT 'a;''b', \"c;\"\"d\", `e;``f`, [g;h] FROM t",
        "SELECT '\\'",
        "SELECT $$",
        "$$",
    ]


def test_sqlite_comments_do_not_nest() -> None:
    sql = "SELECT 1 /* /* */ ; */ ; -- x;\nSELECT 2"
    assert split_statements(sql, "sqlite") == [
        Statement("SELECT 1 /* /* */", 0, 1),
        Statement("*/", 20, 1),
        Statement("SELECT 2", 31, 2),
    ]


SQLITE_TRIGGERS = """\
CREATE TRIGGER t1 AFTER INSERT ON a
BEGIN
  INSERT INTO log VALUES (new.id, 'x;y');
  UPDATE b SET n = CASE WHEN n > 1 THEN 0 ELSE 1 END;
END;
CREATE TEMP TRIGGER IF NOT EXISTS t2 BEFORE DELETE ON a BEGIN SELECT 1; END ;
SELECT 'end';
CREATE TABLE trigger_log (x);
explain create temporary trigger t3 after update on a begin select 1; /* c */ end"""


def test_sqlite_triggers() -> None:
    got = split_statements(SQLITE_TRIGGERS, "sqlite")
    assert [s.line for s in got] == [1, 6, 7, 8, 9]
    assert got[0].text == SQLITE_TRIGGERS[: SQLITE_TRIGGERS.index("\nEND;") + 4]
    assert got[1].text == (
        "CREATE TEMP TRIGGER IF NOT EXISTS t2 BEFORE DELETE ON a BEGIN SELECT 1; END"
    )
    assert [s.text for s in got[2:]] == [
        "SELECT 'end'",
        "CREATE TABLE trigger_log (x)",
        "explain create temporary trigger t3 after update on a begin select 1; /* c */ end",
    ]
    for s in got:
        assert sqlite3.complete_statement(s.text + ";")


def test_sqlite_trigger_runs_in_sqlite() -> None:
    sql = (
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\nCREATE TABLE log (id, note, n);\n"
        "CREATE TRIGGER t1 AFTER INSERT ON a BEGIN\n"
        "  INSERT INTO log VALUES (new.id, 'x;y', 5);\n"
        "  UPDATE log SET n = CASE WHEN n > 1 THEN 0 ELSE 1 END;\n"
        "END;\nINSERT INTO a VALUES (7);"
    )
    db = sqlite3.connect(":memory:")
    try:
        for s in split_statements(sql, "sqlite"):
            db.execute(s.text)
        assert db.execute("SELECT id, note, n FROM log").fetchall() == [(7, "x;y", 0)]
    finally:
        db.close()


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("SELECT 'a", "quoted string"),
        ('SELECT "a', "quoted identifier"),
        ("SELECT `a", "`quoted identifier`"),
        ("SELECT [a", "[quoted identifier]"),
        ("SELECT 1 /* a", "/* comment"),
    ],
)
def test_sqlite_unterminated(sql: str, what: str) -> None:
    with pytest.raises(SplitError, match=re.escape(f"unterminated {what}")):
        split_statements(sql, "sqlite")


# ---------------------------------------------------------------------------
# needs_no_transaction


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX CONCURRENTLY i ON t (a)",
        "create unique index concurrently if not exists i on t (a)",
        "-- persistor\n/* a /* nested */ comment */ CREATE INDEX\nConcurrently ON t (a)",
        "DROP INDEX CONCURRENTLY IF EXISTS i",
        "REINDEX INDEX CONCURRENTLY i",
        "REINDEX TABLE CONCURRENTLY s.t",
        "REINDEX (VERBOSE) TABLE CONCURRENTLY t",
        "REINDEX (CONCURRENTLY) TABLE t",
        "REINDEX (CONCURRENTLY true, VERBOSE) INDEX i",
        "REINDEX SCHEMA s",
        "REINDEX DATABASE d",
        "REINDEX SYSTEM",
        "VACUUM",
        "vacuum (analyze, verbose) t",
        "VACUUM FULL t",
        "CLUSTER",
        "CLUSTER VERBOSE",
        "CLUSTER (VERBOSE)",
        "CREATE DATABASE d",
        "DROP DATABASE IF EXISTS d WITH (FORCE)",
        'ALTER DATABASE "d" SET TABLESPACE ts',
        "ALTER SYSTEM SET work_mem = '64MB'",
        "ALTER SYSTEM RESET ALL",
        "CREATE TABLESPACE ts LOCATION '/data/ts'",
        "DROP TABLESPACE ts",
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p",
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (copy_data = false)",
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = true)",
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot)",
        "DROP SUBSCRIPTION s",
        "ALTER SUBSCRIPTION s REFRESH PUBLICATION",
        "ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false)",
        "ALTER SUBSCRIPTION s SET PUBLICATION p",
        "ALTER SUBSCRIPTION s ADD PUBLICATION p WITH (refresh = true)",
        "ALTER SUBSCRIPTION s DROP PUBLICATION p WITH (copy_data = false)",
        "ALTER SUBSCRIPTION s SET (failover = true)",
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
        'ALTER TABLE IF EXISTS ONLY s.p DETACH PARTITION s."p;1" CONCURRENTLY',
        "DISCARD ALL",
        "COMMIT PREPARED 'x'",
        "ROLLBACK PREPARED 'x'",
        "  \n\tvacuum;",
    ],
)
def test_needs_no_transaction_positive(sql: str) -> None:
    assert needs_no_transaction(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "",
        "-- only a comment",
        "CREATE INDEX i ON t (a)",
        'CREATE INDEX "concurrently" ON t (a)',
        "CREATE INDEX i ON t (concurrently)",
        "DROP INDEX i",
        "REINDEX TABLE t",
        "REINDEX (CONCURRENTLY false) TABLE t",
        "REINDEX (VERBOSE) INDEX i",
        "ANALYZE t",
        "CLUSTER t",
        "CLUSTER VERBOSE t USING i",
        "CLUSTER (VERBOSE) t",
        "SELECT 'VACUUM'",
        "SELECT 1 -- VACUUM",
        "/* VACUUM */ SELECT 1",
        "/* /* nested */ VACUUM */ SELECT 1",
        '"vacuum"',
        "SELECT vacuum FROM t",
        "SELECT $$CREATE DATABASE d$$",
        "SELECT E'\\' CREATE DATABASE d'",
        "CREATE TABLE databases (a int)",
        "CREATE TABLE t (x int); VACUUM",
        "ALTER DATABASE d SET work_mem = '1MB'",
        "ALTER DATABASE d RENAME TO e",
        "ALTER TABLE t ADD COLUMN concurrently_x int",
        "ALTER TABLE p DETACH PARTITION p1",
        "ALTER TABLE p DETACH PARTITION p1 FINALIZE",
        "ALTER TABLESPACE ts RENAME TO u",
        "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = false)",
        "CREATE SUBSCRIPTION s CONNECTION 'h' PUBLICATION p WITH (connect = false, enabled = 0)",
        "CREATE SUBSCRIPTION s CONNECTION 'h' PUBLICATION p WITH (create_slot = 'off')",
        "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
        "ALTER SUBSCRIPTION s ENABLE",
        "ALTER SUBSCRIPTION s DISABLE",
        "ALTER SUBSCRIPTION s SET (slot_name = NONE)",
        "ALTER SUBSCRIPTION s CONNECTION 'VACUUM'",
        "DISCARD PLANS",
        "COMMIT",
        "ROLLBACK",
        "CREATE INDEX /* CONCURRENTLY */ i ON t (a)",
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ VACUUM $$",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
        "ALTER TYPE e ADD VALUE 'x'",
        "SELECT 'unterminated VACUUM",
    ],
)
def test_needs_no_transaction_negative(sql: str) -> None:
    assert not needs_no_transaction(sql)


# ---------------------------------------------------------------------------
# Property tests

_SEPARATORS = [
    " ",
    "\n",
    "\t",
    "  \n  ",
    "\r\n",
    " /* c; ' \" $$ */ ",
    "/* a /* b; */ c */",
    " -- x; ' \" $$ /* \n",
    "\n-- only a comment;\n\n",
]
_EXPRESSIONS = [
    "1",
    "3.5",
    "-1",
    "'a;b'",
    "'it''s; ok'",
    "'é;ü'",
    "'\\'",
    "E'x\\'y;z'",
    "E'\\\\'",
    "e'a''b;\\n'",
    "U&'d\\0061t;'",
    '\'{"k": ":name", "p": "%s?"}\'::jsonb',
    "'{\"a\": 1}'::jsonb ? 'a'",
    "$$a;b$$",
    "$$$$",
    "$fn$ x $$inner;$$ y $fn$",
    "$a$ $b$ ; $b$ $A$ $a$",
    "a$b",
    "x1$",
    '"col;x"',
    '"q""d;"',
    "$1",
    "(SELECT 1)",
    "CASE WHEN true THEN 1 END",
    "ARRAY[1, 2]",
    "'x' || 'y;'",
]


@dataclass
class Script:
    sql: str
    statements: list[str]
    offsets: list[int]


@st.composite
def _joined(draw: st.DrawFn, tokens: list[str], separators: list[str] = _SEPARATORS) -> str:
    out = [tokens[0]]
    for token in tokens[1:]:
        out.append(draw(st.sampled_from(separators)))
        out.append(token)
    return "".join(out)


@st.composite
def _expression(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(_EXPRESSIONS), min_size=1, max_size=3))
    tokens: list[str] = []
    for i, part in enumerate(parts):
        if i:
            tokens.append("||" if draw(st.booleans()) else "+")
        tokens.append(f"({part})::text" if i or len(parts) > 1 else part)
    return draw(_joined(tokens))


@st.composite
def _select(draw: st.DrawFn) -> str:
    exprs = draw(st.lists(_expression(), min_size=1, max_size=3))
    tokens = ["SELECT"]
    for i, e in enumerate(exprs):
        if i:
            tokens.append(",")
        tokens.append(e)
    return draw(_joined(tokens))


@st.composite
def _atomic_body_statement(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(_select())
    if choice == 1:
        inner = draw(_joined(["CASE", "WHEN", "a", ">", "1", "THEN", "2", "END"]))
        return draw(
            _joined(["SELECT", "CASE", "WHEN", "a", ">", "0", "THEN", inner, "ELSE", "0", "END"])
        )
    return draw(_joined(["INSERT", "INTO", "t", "VALUES", "(", draw(_expression()), ")"]))


@st.composite
def _routine(draw: st.DrawFn) -> str:
    head = draw(
        st.sampled_from(
            [
                "CREATE FUNCTION f ( a int ) RETURNS int LANGUAGE sql",
                "CREATE OR REPLACE FUNCTION f ( a int ) RETURNS int",
                "create or replace procedure p ( a int ) language sql",
                "Create Procedure p ( a int )",
            ]
        ).map(str.split)
    )
    body = draw(st.lists(_atomic_body_statement(), min_size=1, max_size=3))
    tokens = [*head, "BEGIN", "ATOMIC"]
    for b in body:
        tokens.extend([b, ";"])
    tokens.append("END")
    return draw(_joined(tokens))


_FIXED_STATEMENTS = [
    ["CREATE", "FUNCTION", "g", "(", ")", "RETURNS", "int", "AS",
     "$body$ BEGIN RETURN 1; END $body$", "LANGUAGE", "plpgsql"],
    ["CREATE", "RULE", "r", "AS", "ON", "INSERT", "TO", "t", "DO", "ALSO", "(",
     "INSERT", "INTO", "a", "VALUES", "(", "1", ")", ";",
     "INSERT", "INTO", "b", "VALUES", "(", "2", ")", ")"],
    ["CREATE", "TABLE", '"t;1"', "(", "a", "int", ",", '"b;"', "text", "DEFAULT", "'x;'", ")"],
    ["CREATE", "INDEX", "CONCURRENTLY", "i", "ON", "t", "(", "a", ")"],
    ["BEGIN"],
    ["END"],
    ["DO", "$do$ BEGIN PERFORM 1; END $do$"],
]  # fmt: skip


@st.composite
def _pg_statement(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice <= 1:
        return draw(_select())
    if choice == 2:
        return draw(_routine())
    return draw(_joined(draw(st.sampled_from(_FIXED_STATEMENTS))))


@st.composite
def _script(
    draw: st.DrawFn, statement: st.SearchStrategy[str], separators: list[str] = _SEPARATORS
) -> Script:
    statements = draw(st.lists(statement, min_size=1, max_size=5))
    seps = st.lists(st.sampled_from([*separators, ";", " ; "]), max_size=3).map("".join)
    parts = [draw(seps)]
    offsets: list[int] = []
    length = len(parts[0])
    for i, s in enumerate(statements):
        if i:
            between = draw(seps)
            parts.append(between)
            length += len(between)
        offsets.append(length)
        ending = draw(st.sampled_from(["", " ", "\n", "\t \n"])) + ";"
        if i == len(statements) - 1 and draw(st.booleans()):
            ending = draw(st.sampled_from(["", " ", "\n"]))  # no final ';'
        parts.extend([s, ending])
        length += len(s) + len(ending)
    if parts[-1].endswith(";"):
        parts.append(draw(seps))
    return Script("".join(parts), statements, offsets)


@PROPERTY
@given(_script(_pg_statement()))
def test_property_pg_split_gives_back_generated_statements(script: Script) -> None:
    got = split_statements(script.sql)
    assert [s.text for s in got] == script.statements
    assert [s.offset for s in got] == script.offsets
    check_positions(script.sql, got)


@PROPERTY
@given(_script(_pg_statement()))
def test_property_pg_split_agrees_with_the_postgresql_parser(script: Script) -> None:
    expected = [s.strip() for s in pglast.split(script.sql, with_parser=True)]
    assert [s.text for s in split_statements(script.sql)] == expected


_TRICKY_CHARS = "';\"$()-/*\\eEU&aA1_ \n[]`béin"
_TRICKY_WORDS = [
    "BEGIN", "ATOMIC", "END", "CASE", "CREATE", "FUNCTION", "OR", "REPLACE", "PROCEDURE",
    "TRIGGER", "TEMP", "EXPLAIN", "$$", "$a$", "/*", "*/", "--", "E'", "U&'", "\n", ";",
]  # fmt: skip
_arbitrary = st.one_of(
    st.text(),
    st.text(alphabet=_TRICKY_CHARS),
    st.lists(st.one_of(st.sampled_from(_TRICKY_WORDS), st.text(_TRICKY_CHARS, max_size=3))).map(
        " ".join
    ),
)


@PROPERTY
@given(_arbitrary, st.sampled_from(["postgresql", "sqlite"]))
def test_property_arbitrary_text_splits_or_raises_split_error(sql: str, dialect: str) -> None:
    try:
        got = split_statements(sql, dialect)  # type: ignore[arg-type]
    except SplitError as e:
        assert 1 <= e.line <= sql.count("\n") + 1
        return
    check_positions(sql, got)
    # Re-splitting one statement gives it back (it has no top-level ';' left),
    # except for SQLite, where "END" after a trigger's ';' is context-dependent.
    if dialect == "postgresql":
        for s in got:
            assert texts(s.text) == [s.text]


_SOUP_CHARS = "';\"$-/*\\eEU&aZ1_ \nb\u00e9x."
_SOUP_WORDS = [
    "$$", "$a$", "$1", "/*", "*/", "--", "E'", "U&'", "\n", ";", "a$", "1e", "x1$", "$_$",
    "''", "\\'", "1.5", "e",
]  # fmt: skip
_soup = st.lists(
    st.one_of(st.sampled_from(_SOUP_WORDS), st.text(_SOUP_CHARS, max_size=3)), max_size=25
).map("".join)


@PROPERTY
@given(_soup)
def test_property_pg_lexing_agrees_with_the_postgresql_scanner(soup: str) -> None:
    """Token soup (no parentheses, no routines): split like libpg_query's scanner.

    pglast.split(with_parser=False) only returns statements that start with a
    keyword, so every statement is made to start with SELECT and only those
    are compared.
    """
    sql = "select " + soup.replace(";", ";select ") + "\n;"
    try:
        expected: list[str] | None = [s.strip() for s in pglast.split(sql, with_parser=False)]
    except pglast.parser.ParseError as e:
        if "unterminated" not in str(e):
            return  # another lexical error, e.g. "trailing junk after numeric literal"
        expected = None
    try:
        got: list[str] | None = [s.text for s in split_statements(sql)]
    except SplitError:
        got = None
    if expected is None or got is None:
        assert expected is None and got is None, (expected, got)
        return
    assert [g for g in got if g.startswith("select")] == [
        e for e in expected if e.startswith("select")
    ]


@PROPERTY
@given(_arbitrary)
def test_property_needs_no_transaction_never_raises(sql: str) -> None:
    needs_no_transaction(sql)


_SQLITE_SEPARATORS = [s for s in _SEPARATORS if "/* b" not in s] + ["/* a /* b; */"]
_SQLITE_EXPRESSIONS = [
    "1",
    "'a;b'",
    "'it''s;'",
    "'\\'",
    '"c;""d"',
    "`e;``f`",
    "[g;h]",
    "x'0A'",
    "$$",
    "CASE WHEN 1 THEN 2 END",
    "'/* -- ;'",
]


@st.composite
def _sqlite_select(draw: st.DrawFn) -> str:
    exprs = draw(st.lists(st.sampled_from(_SQLITE_EXPRESSIONS), min_size=1, max_size=3))
    tokens = ["SELECT"]
    for i, e in enumerate(exprs):
        if i:
            tokens.append(",")
        tokens.append(e)
    return draw(_joined(tokens, _SQLITE_SEPARATORS))


@st.composite
def _sqlite_statement(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(_sqlite_select())
    head = draw(
        st.sampled_from(
            [
                "CREATE TRIGGER t AFTER INSERT ON a",
                "create temp trigger if not exists t before delete on a",
                "CREATE TEMPORARY TRIGGER t INSTEAD OF UPDATE ON v",
            ]
        ).map(str.split)
    )
    body = draw(st.lists(_sqlite_select(), min_size=1, max_size=3))
    tokens = [*head, "BEGIN"]
    for b in body:
        tokens.extend([b, ";"])
    tokens.append("END")
    return draw(_joined(tokens, _SQLITE_SEPARATORS))


@PROPERTY
@given(_script(_sqlite_statement(), _SQLITE_SEPARATORS))
def test_property_sqlite_split_gives_back_generated_statements(script: Script) -> None:
    got = split_statements(script.sql, "sqlite")
    assert [s.text for s in got] == script.statements
    assert [s.offset for s in got] == script.offsets
    check_positions(script.sql, got)
    for s in got:
        assert sqlite3.complete_statement(s.text + ";")
