"""Lint rules on the parse tree: each hazard flagged, its safe twin not; ignores; bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistor.errors import UsageError, ValidationError
from persistor.lint.catalog import RULES
from persistor.lint.findings import Finding
from persistor.lint.linter import lint
from persistor.settings import load_settings

# (rule, hazardous script, its safe twin). "existing" tables are ones the file did not create.
CASES: list[tuple[str, str, str]] = [
    (
        "index-not-concurrent",
        "CREATE INDEX ix_t_v ON t (v);",
        "CREATE INDEX CONCURRENTLY ix_t_v ON t (v);",
    ),
    (
        "index-not-concurrent",
        "CREATE UNIQUE INDEX ix_t_v ON public.t (v);",
        "CREATE TABLE t (id bigint, v text);\nCREATE UNIQUE INDEX ix_t_v ON t (v);",
    ),
    (
        "index-not-concurrent",
        "CREATE INDEX ix_p ON parted (v);",
        "CREATE INDEX ix_p ON ONLY parted (v);",  # partitions then get theirs CONCURRENTLY
    ),
    ("drop-index-not-concurrent", "DROP INDEX ix_t_v;", "DROP INDEX CONCURRENTLY ix_t_v;"),
    ("reindex-not-concurrent", "REINDEX TABLE t;", "REINDEX TABLE CONCURRENTLY t;"),
    ("reindex-not-concurrent", "REINDEX INDEX ix;", "REINDEX (CONCURRENTLY) INDEX ix;"),
    (
        "constraint-not-valid",
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id);",
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT fk;",
    ),
    (
        "constraint-not-valid",
        "ALTER TABLE t ADD CONSTRAINT ck CHECK (a > 0);",
        "CREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT ck CHECK (a > 0);",
    ),
    (
        "unique-without-index",
        "ALTER TABLE t ADD CONSTRAINT uq UNIQUE (a);",
        "ALTER TABLE t ADD CONSTRAINT uq UNIQUE USING INDEX ix_t_a;",
    ),
    (
        "unique-without-index",
        "ALTER TABLE t ADD PRIMARY KEY (id);",
        "ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING INDEX ix_t_id;",
    ),
    (
        "set-not-null",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT a_nn;\n"
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
    ),
    (
        "set-not-null",
        # NOT VALID and never validated: SET NOT NULL still scans.
        "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;",
    ),
    (
        "column-type-change",
        "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
        "ALTER TABLE t ALTER COLUMN a TYPE varchar(200);",
    ),
    (
        "column-type-change",
        "ALTER TABLE t ALTER COLUMN a TYPE text USING a::text;",
        "ALTER TABLE t ALTER COLUMN a TYPE text;",
    ),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();",
        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();",
    ),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT clock_timestamp();",
        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT CURRENT_TIMESTAMP;",
    ),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN r float8 NOT NULL DEFAULT (random() * 10);",
        "CREATE TABLE t (id bigint);\nALTER TABLE t ADD COLUMN r float8 DEFAULT random();",
    ),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN n bigserial;",
        "ALTER TABLE t ADD COLUMN n bigint DEFAULT 0;",
    ),
    ("table-rewrite", "VACUUM FULL t;", "VACUUM (ANALYZE) t;"),
    ("table-rewrite", "CLUSTER t USING ix;", "ANALYZE t;"),
    ("table-rewrite", "ALTER TABLE t SET TABLESPACE fast;", "ALTER TABLE t SET (fillfactor = 90);"),
    (
        "table-rewrite",
        "REFRESH MATERIALIZED VIEW mv;",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv;",
    ),
    ("drop-table", "DROP TABLE t;", "CREATE TABLE t (id bigint);\nDROP TABLE t;"),
    ("drop-table", "TRUNCATE t;", "DELETE FROM t WHERE false;"),
    ("drop-column", "ALTER TABLE t DROP COLUMN a;", "ALTER TABLE t ADD COLUMN b text;"),
    (
        "rename",
        "ALTER TABLE t RENAME TO t2;",
        "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;",
    ),
    ("rename", "ALTER TABLE t RENAME COLUMN a TO b;", "ALTER INDEX ix RENAME TO ix2;"),
    (
        "prefer-bigint-identity",
        "CREATE TABLE t (id serial PRIMARY KEY, v text);",
        "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);",
    ),
    (
        "prefer-bigint-identity",
        "CREATE TABLE t (id integer, v text, CONSTRAINT pk PRIMARY KEY (id));",
        "CREATE TABLE t (a integer, b integer, CONSTRAINT pk PRIMARY KEY (a, b));",
    ),
    (
        "prefer-timestamptz",
        "CREATE TABLE t (id bigint, at timestamp);",
        "CREATE TABLE t (id bigint, at timestamptz);",
    ),
    (
        "prefer-timestamptz",
        "ALTER TABLE t ADD COLUMN at timestamp without time zone;",
        "ALTER TABLE t ADD COLUMN at timestamp with time zone;",
    ),
]


def lint_sql(tmp_path: Path, sql: str, name: str = "V2__change.sql", **kw: object) -> list[Finding]:
    path = tmp_path / name
    path.write_text(sql + "\n", encoding="utf-8")
    settings = load_settings(env={}, **kw)  # type: ignore[arg-type]
    return list(lint(settings, [path]).findings)


def rules_of(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def test_every_rule_of_the_spec_has_a_case() -> None:
    assert {rule for rule, _, _ in CASES} == set(RULES)


@pytest.mark.parametrize(("rule", "hazard", "safe"), CASES)
def test_hazard_is_flagged_and_its_safe_twin_is_not(
    tmp_path: Path, rule: str, hazard: str, safe: str
) -> None:
    found = lint_sql(tmp_path, hazard)
    assert rule in rules_of(found), found
    assert rule not in rules_of(lint_sql(tmp_path, safe))
    finding = next(f for f in found if f.rule == rule)
    assert finding.severity == RULES[rule].severity
    assert finding.file.endswith("V2__change.sql")
    assert finding.line == hazard.count("\n") + 1  # each hazard is the last statement
    assert finding.why == RULES[rule].why and finding.fix == RULES[rule].fix


def test_a_finding_names_the_line_and_statement_after_comments(tmp_path: Path) -> None:
    sql = "-- add the index\n\nCREATE TABLE n (id bigint);\n/* block */\nCREATE INDEX ix ON t (v);"
    (finding,) = lint_sql(tmp_path, sql)
    assert (finding.rule, finding.line) == ("index-not-concurrent", 5)
    assert finding.statement == "CREATE INDEX ix ON t (v)"
    assert "ix on existing table t" in finding.message


def test_function_bodies_are_not_linted_as_sql(tmp_path: Path) -> None:
    body = (
        "CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n  DROP TABLE t;\n  CREATE INDEX ix ON t (v);\n  VACUUM FULL t;\nEND $fn$;\n"
        "DO $$ BEGIN EXECUTE 'TRUNCATE t'; END $$;"
    )
    assert lint_sql(tmp_path, body, "R__functions.sql") == []


def test_repeatable_scripts_get_only_the_rewrite_and_drop_rules(tmp_path: Path) -> None:
    sql = "CREATE INDEX ix ON t (v);\nDROP TABLE old;\nALTER TABLE t DROP COLUMN a;\nCLUSTER t;"
    found = rules_of(lint_sql(tmp_path, sql, "R__views.sql"))
    assert sorted(found) == ["drop-column", "drop-table", "table-rewrite"]


def test_ignore_on_the_line_before_covers_that_statement_only(tmp_path: Path) -> None:
    sql = (
        "-- persistor:lint-ignore drop-table\n-- empty since V3: nothing reads it\n"
        "DROP TABLE a;\nDROP TABLE b;"
    )
    (finding,) = lint_sql(tmp_path, sql)
    assert finding.statement == "DROP TABLE b"


def test_ignore_lists_several_rules(tmp_path: Path) -> None:
    sql = (
        "-- persistor:lint-ignore volatile-default, drop-column\n"
        "ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid(), DROP COLUMN a, "
        "ALTER COLUMN b TYPE bigint;"
    )
    assert rules_of(lint_sql(tmp_path, sql)) == ["column-type-change"]


def test_ignore_in_the_file_header_covers_the_whole_file(tmp_path: Path) -> None:
    sql = (
        "-- V7: retire the v1 tables (empty since V5)\n-- persistor:lint-ignore drop-table\n\n"
        "DROP TABLE a;\n\nTRUNCATE b;\nCREATE INDEX ix ON t (v);"
    )
    assert rules_of(lint_sql(tmp_path, sql)) == ["index-not-concurrent"]


def test_unknown_rule_in_an_ignore_comment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        lint_sql(tmp_path, "-- persistor:lint-ignore drop-tabel\nDROP TABLE a;")
    assert "V2__change.sql:1" in str(err.value)
    assert "unknown rule(s) drop-tabel" in str(err.value) and "known: " in str(err.value)


def test_ignore_comment_that_covers_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        lint_sql(tmp_path, "DROP TABLE a;\n-- persistor:lint-ignore drop-table\n\nDROP TABLE b;")
    assert "V2__change.sql:2" in str(err.value) and "not right above a statement" in str(err.value)
    with pytest.raises(ValidationError, match="names no rule"):
        lint_sql(tmp_path, "DROP TABLE x;\n-- persistor:lint-ignore ,\nDROP TABLE a;")


def test_unparsable_file_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        lint_sql(tmp_path, "CREATE TABLE a (id bigint);\n\nALTER TABLE a ADD COLUMN;")
    assert err.value.exit_code == 5
    assert "V2__change.sql:3: cannot be parsed" in str(err.value)
    assert "fix the SQL" in str(err.value)


def test_configuration_disables_and_raises_rules(tmp_path: Path) -> None:
    (tmp_path / "persistor.toml").write_text(
        'lint.disable = ["index-not-concurrent"]\nlint.error = ["drop-table"]\n'
    )
    found = lint_sql(tmp_path, "CREATE INDEX ix ON t (v);\nDROP TABLE a;", cwd=tmp_path)
    assert [(f.rule, f.severity) for f in found] == [("drop-table", "error")]


def test_unknown_rule_in_the_configuration_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "persistor.toml").write_text('[lint]\ndisable = ["no-such-rule"]\n')
    with pytest.raises(UsageError) as err:
        load_settings(env={}, cwd=tmp_path)
    assert err.value.exit_code == 2
    assert "lint disable names unknown rule(s) no-such-rule" in str(err.value)
    assert "persistor.toml" in str(err.value)
    (tmp_path / "persistor.toml").write_text('[lint]\nignore = ["drop-table"]\n')
    with pytest.raises(UsageError, match="unknown key"):
        load_settings(env={}, cwd=tmp_path)


def test_packaged_ecliptix_migrations_lint_clean() -> None:
    result = lint(load_settings(env={}))
    assert result.files >= 10 and result.statements > 100
    assert result.findings == ()
