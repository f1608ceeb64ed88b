"""The resume protocol of failed no-transaction scripts, without a database."""

from __future__ import annotations

import hashlib

import pytest

from persistor.core import resume
from persistor.core.resume import Progress, progress_checksum, read_progress, resume_point
from persistor.core.runner import PreparedScript, prepare
from persistor.core.scripts import ScriptFile, parse_name
from persistor.core.source import ExpandedScript, checksum_of
from persistor.core.splitter import Statement, split_statements
from persistor.engines.base import HistoryRow
from persistor.errors import Problem

NAME = "V2__idx.sql"
HEAD = "-- persistor:no-transaction\n"
ORIGINAL = (
    "CREATE INDEX CONCURRENTLY t_id ON t (id);\n"
    "CREATE INDEX CONCURRENTLY t_x ON t (nosuchcolumn);\n"
    "CREATE INDEX CONCURRENTLY t_y ON t (y);\n"
)


def statements(sql: str = ORIGINAL) -> list[Statement]:
    return split_statements(sql)


def failed_row(checksum: str | None, *, success: bool = False) -> HistoryRow:
    return HistoryRow(7, "2", "idx", "SQL", NAME, checksum, "tester", None, 0, success)


def test_progress_checksum_names_the_count_and_digest_of_the_statements_done() -> None:
    done = "CREATE INDEX CONCURRENTLY t_id ON t (id)\x00CREATE INDEX CONCURRENTLY t_x ON t (nosuchcolumn)"
    digest = hashlib.sha256(done.encode()).hexdigest()
    assert progress_checksum(statements(), 2) == f"partial-sha256:2:{digest}"
    assert read_progress(progress_checksum(statements(), 2)) == Progress(2, digest)


def test_no_statement_done_has_the_digest_of_nothing() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    assert progress_checksum(statements(), 0) == f"partial-sha256:0:{empty}"


@pytest.mark.parametrize(
    ("checksum", "success", "expected"),
    [
        ("partial-sha256:1:abc", False, True),
        ("partial-sha256:1:abc", True, False),  # a success row never resumes
        (checksum_of("SELECT 1;"), False, False),  # failed inside a transaction: nothing ran
        (None, False, False),
        ("sha256:partial-sha256:1:abc", False, False),
    ],
)
def test_only_failed_rows_with_progress_are_resumable(
    checksum: str | None, success: bool, expected: bool
) -> None:
    assert resume.resumable(failed_row(checksum, success=success)) is expected


@pytest.mark.parametrize(
    "checksum",
    [
        None,
        "sha256:abc",
        "partial-sha256:",
        "partial-sha256:x:abc",
        "partial-sha256:-1:abc",
        "partial-sha256:\u0663:abc",  # an Arabic-Indic three is a digit, but not a count
    ],
)
def test_malformed_progress_reads_as_none(checksum: str | None) -> None:
    assert read_progress(checksum) is None


@pytest.mark.parametrize("done", [0, 1, 2, 3])
def test_an_unchanged_script_resumes_after_the_statements_done(done: int) -> None:
    row = failed_row(progress_checksum(statements(), done))
    assert resume_point(NAME, statements(), False, row) == done


def test_fixing_the_failed_statement_keeps_the_resume_point() -> None:
    row = failed_row(progress_checksum(statements(), 1))
    fixed = statements(ORIGINAL.replace("nosuchcolumn", "x"))
    assert resume_point(NAME, fixed, False, row) == 1


@pytest.mark.parametrize(
    ("why", "sql", "transactional", "done_text"),
    [
        ("a done statement was edited", ORIGINAL.replace("(id)", "(id, x)"), False, "1"),
        ("statements were inserted before", "SELECT 1;\n" + ORIGINAL, False, "1"),
        ("the file got shorter than the progress", "SELECT 1;\n", False, "2"),
        ("it now runs in a transaction", ORIGINAL, True, "1"),
    ],
)
def test_a_changed_script_cannot_resume(
    why: str, sql: str, transactional: bool, done_text: str
) -> None:
    row = failed_row(progress_checksum(statements(), int(done_text)))
    problem = resume_point(NAME, statements(sql), transactional, row)
    assert isinstance(problem, Problem), why
    assert (problem.code, problem.script) == ("resume_changed", NAME)
    assert f"after {done_text} statement(s) ran, and those statements have changed" in (
        problem.message
    )
    assert "run `persistor repair`" in problem.message


def test_a_malformed_progress_row_needs_repair() -> None:
    problem = resume_point(NAME, statements(), False, failed_row("partial-sha256:x:abc"))
    assert isinstance(problem, Problem)
    assert "after 0 statement(s) ran" in problem.message


def _file() -> ScriptFile:
    parsed = parse_name(f"/migrations/{NAME}", NAME)
    assert isinstance(parsed, ScriptFile)
    return parsed


def _source(sql: str) -> ExpandedScript:
    return ExpandedScript(sql, checksum_of(sql), frozenset({"no-transaction"}))


def test_prepare_starts_a_resumed_script_after_the_statements_done() -> None:
    row = failed_row(progress_checksum(statements(), 1))
    prepared = prepare(
        _file(), _source(HEAD + ORIGINAL.replace("nosuchcolumn", "x")), "postgresql", row
    )
    assert isinstance(prepared, PreparedScript)
    assert (prepared.start, prepared.replaces, prepared.transactional) == (1, 7, False)
    assert prepared.statements[prepared.start].text.endswith("ON t (x)")


def test_prepare_refuses_to_resume_a_script_whose_done_statements_changed() -> None:
    row = failed_row(progress_checksum(statements(), 1))
    prepared = prepare(_file(), _source(HEAD + "SELECT 1;\n" + ORIGINAL), "postgresql", row)
    assert isinstance(prepared, Problem)
    assert prepared.code == "resume_changed"


def test_prepare_without_a_failed_row_starts_at_the_first_statement() -> None:
    prepared = prepare(_file(), _source(HEAD + ORIGINAL), "postgresql")
    assert isinstance(prepared, PreparedScript)
    assert (prepared.start, prepared.replaces) == (0, None)
