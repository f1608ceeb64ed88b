"""The SQL of every workload, identical for every tool.

Each migration is a (name, sql) pair; the adapters in tools.py only wrap it in
the file layout each tool expects.
"""

from __future__ import annotations

W1_N = 1000


def w1(n: int = W1_N) -> list[tuple[str, str]]:
    """n tiny migrations: one CREATE TABLE each."""
    return [
        (f"t_{i:05d}", f"CREATE TABLE t_{i:05d} (id bigint primary key, v text);\n")
        for i in range(1, n + 1)
    ]


def _plpgsql(i: int) -> tuple[str, int]:
    """A ~50-line PL/pgSQL function with dollar quoting and semicolons in its body."""
    lines = [
        f"-- W4 function {i}: semicolons; 'quotes'; and $$ inside comments are not SQL",
        f"CREATE OR REPLACE FUNCTION w4_f_{i:03d}(p_n integer DEFAULT {i})",
        "    RETURNS bigint",
        "    LANGUAGE plpgsql",
        "AS $fn$",
        "DECLARE",
        "    v_total bigint := 0;",
        "    v_text  text := 'a;b;c';  -- a string holding semicolons",
        "    v_tag   text := $t$ $$ not the end; $t$;",
        "BEGIN",
    ]
    expected = 0
    for k in range(1, 37):
        lines.append(f"    v_total := v_total + {k} * p_n;  -- step {k};")
        expected += k * i
    lines += [
        "    IF length(v_text) <> 5 OR position(';' in v_tag) = 0 THEN",
        "        RAISE EXCEPTION 'unexpected: %; %', v_text, v_tag;",
        "    END IF;",
        "    RETURN v_total;",
        "END;",
        "$fn$;",
    ]
    return "\n".join(lines) + "\n", expected


# Each trap: (name, migration sql, check query, expected text of its single value)
TRAPS: list[tuple[str, str, str, str]] = [
    (
        "begin_atomic",
        "CREATE FUNCTION w4_trap_atomic(a integer) RETURNS integer\n"
        "    LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "    SELECT a + 1;\n"
        "    SELECT a + 2;\n"
        "END;\n"
        "CREATE TABLE w4_after_atomic (id int);\n",
        "SELECT w4_trap_atomic(40)::text || (SELECT count(*) FROM w4_after_atomic)::text",
        "420",
    ),
    (
        "e_string",
        "CREATE FUNCTION w4_trap_estr() RETURNS text LANGUAGE plpgsql\n"
        "AS E'BEGIN RETURN \\'it\\'\\'s; a \\\\ trap\\'; END;';\n"
        "CREATE TABLE w4_after_estr (v text);\n"
        "INSERT INTO w4_after_estr VALUES (E'x\\';y');\n",
        "SELECT w4_trap_estr() || '|' || (SELECT v FROM w4_after_estr)",
        "it's; a \\ trap|x';y",
    ),
    (
        "nested_comment",
        "/* outer comment /* nested */ ; still inside the outer one;\n"
        "   CREATE TABLE must_not_exist (id int); */\n"
        "CREATE FUNCTION w4_trap_nested() RETURNS integer LANGUAGE sql AS $$ SELECT 42 $$;\n",
        "SELECT w4_trap_nested()::text || (to_regclass('must_not_exist') IS NULL)::text",
        "42true",
    ),
    (
        "quoted_identifier",
        'CREATE TABLE "w4;table" ("col;1" integer, "it\'s" text);\n'
        "INSERT INTO \"w4;table\" VALUES (7, 'x');\n"
        'CREATE FUNCTION "w4_trap;ident"() RETURNS integer LANGUAGE sql\n'
        '    AS $$ SELECT "col;1" FROM "w4;table" $$;\n',
        'SELECT "w4_trap;ident"()::text',
        "7",
    ),
    (
        "json_colon_percent",
        "CREATE TABLE w4_json (doc jsonb);\n"
        'INSERT INTO w4_json VALUES (\'{"a":1,"name":":name","pct":"50%","fmt":"%(x)s %s"}\');\n'
        "CREATE FUNCTION w4_trap_json() RETURNS text LANGUAGE sql\n"
        "    AS $$ SELECT (doc->>'name') || (doc->>'pct') || (doc->>'a') || (doc->>'fmt') FROM w4_json $$;\n",
        "SELECT w4_trap_json()",
        ":name50%1%(x)s %s",
    ),
    (
        "nested_dollar_tags",
        "CREATE FUNCTION w4_trap_dollar() RETURNS text LANGUAGE plpgsql AS $$\n"
        "DECLARE\n"
        "    v text;\n"
        "BEGIN\n"
        "    EXECUTE $q$CREATE OR REPLACE FUNCTION w4_trap_inner() RETURNS text\n"
        "        LANGUAGE sql AS $i$ SELECT 'in;ner' $i$ $q$;\n"
        "    v := $t$x;y$t$ || w4_trap_inner_value();\n"
        "    RETURN v;\n"
        "END;\n"
        "$$;\n"
        "CREATE FUNCTION w4_trap_inner_value() RETURNS text LANGUAGE sql AS $body$ SELECT $x$;$$;$x$ $body$;\n",
        "SELECT w4_trap_dollar()",
        "x;y;$$;",
    ),
]

W4_N = 100


def w4(n: int = W4_N) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """n migrations: the traps plus plain ~50-line functions; and (label, check, expected)."""
    migrations: list[tuple[str, str]] = []
    checks: list[tuple[str, str, str]] = []
    plain = n - len(TRAPS)
    for i in range(1, plain + 1):
        body, expected = _plpgsql(i)
        migrations.append((f"fn_{i:03d}", body))
        checks.append(("plain", f"SELECT w4_f_{i:03d}()::text", str(expected)))
    for name, body, check, expected in TRAPS:
        migrations.append((f"trap_{name}", body))
        checks.append((name, check, expected))
    return migrations, checks


LINT_N = 10000


def lint_plpgsql(n: int = LINT_N) -> list[tuple[str, str]]:
    """n PL/pgSQL-heavy migrations (the W4 function shape) for `persistor lint`'s speed."""
    return [(f"fn_{i:05d}", _plpgsql(i)[0]) for i in range(1, n + 1)]
