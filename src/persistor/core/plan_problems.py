"""The problems the planner reports, each worded with what to do about it."""

from __future__ import annotations

from persistor.core.scripts import ScriptFile, Version
from persistor.core.source import ExpandedScript
from persistor.engines.base import HistoryRow
from persistor.errors import Problem


def changed_problem(f: ScriptFile, row: HistoryRow, src: ExpandedScript) -> Problem:
    return Problem(
        "changed",
        f.name,
        f"was changed after it was applied (stored {row.checksum}, file "
        f"{src.checksum}); restore the file, put the change in a new migration, "
        "or run `persistor repair` to accept the file as it is",
    )


def out_of_order_problem(f: ScriptFile, version: Version, highest: Version) -> Problem:
    return Problem(
        "out_of_order",
        f.name,
        f"version {version} is lower than the highest applied version {highest} "
        "and was never applied; renumber it above "
        f"{highest}, or run migrate with --out-of-order to apply it",
    )


def missing_problem(row: HistoryRow) -> Problem:
    return Problem(
        "missing",
        row.script,
        "was applied but its file is not in the migration locations; restore the file, "
        "or run `persistor repair` to mark it deleted",
    )


def failed_problem(row: HistoryRow) -> Problem:
    return Problem(
        "failed",
        row.script,
        "failed in an earlier run and is recorded as failed; fix the database by hand if "
        "needed, then run `persistor repair` to remove the failed row",
    )
