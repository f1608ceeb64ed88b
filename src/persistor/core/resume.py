"""Resuming a failed no-transaction script where it stopped.

A no-transaction script runs statement by statement, so a failure (or a kill)
can leave some of its statements applied. Its history row is written with
success = false before the first statement, and its checksum column records
how far it got: ``partial-sha256:<statements done>:<sha256 of those statements>``.
The next migrate resumes after the statements done, provided the file still
begins with exactly those statements; otherwise the user must `repair`.

This module is the whole protocol: the planner asks it which failed rows can
resume, the runner asks it for the progress checksum to record and for the
statement to resume at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from persistor.engines.base import HistoryRow
from persistor.errors import Problem

if TYPE_CHECKING:  # the splitter is imported only when a script runs
    from persistor.core.splitter import Statement

PARTIAL_PREFIX = "partial-sha256:"


class Progress(NamedTuple):
    """What a progress checksum says: statements done, and the digest of their text."""

    done: int
    digest: str


def resumable(row: HistoryRow) -> bool:
    """Return whether a history row is a failed attempt that recorded its progress."""
    return not row.success and (row.checksum or "").startswith(PARTIAL_PREFIX)


def progress_digest(statements: Sequence[Statement]) -> str:
    """Return the digest that identifies the statements a failed attempt completed."""
    return hashlib.sha256("\x00".join(s.text for s in statements).encode("utf-8")).hexdigest()


def progress_checksum(statements: Sequence[Statement], done: int) -> str:
    """Return the checksum column of a script whose first `done` statements have run."""
    return f"{PARTIAL_PREFIX}{done}:{progress_digest(statements[:done])}"


def read_progress(checksum: str | None) -> Progress | None:
    """Read a progress checksum; None when it is not one or is malformed."""
    if checksum is None or not checksum.startswith(PARTIAL_PREFIX):
        return None
    done, _, digest = checksum[len(PARTIAL_PREFIX) :].partition(":")
    if not (done.isascii() and done.isdigit()):
        return None
    return Progress(int(done), digest)


def resume_point(
    script: str, statements: Sequence[Statement], transactional: bool, failed: HistoryRow
) -> int | Problem:
    """Return the index of the statement to resume at, or why the script cannot resume.

    It resumes only when it still runs outside a transaction and still begins
    with exactly the statements the failed attempt completed.
    """
    progress = read_progress(failed.checksum)
    if (
        progress is None
        or transactional
        or progress.done > len(statements)
        or progress_digest(statements[: progress.done]) != progress.digest
    ):
        done = progress.done if progress is not None else 0
        return Problem(
            "resume_changed",
            script,
            f"failed in an earlier run after {done} statement(s) ran, and those "
            "statements have changed since; run `persistor repair` to clear the failed row "
            "(the script then runs again from its first statement)",
        )
    return progress.done
