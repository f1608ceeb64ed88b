"""Parsing every SQL script offline with an engine's parser, for `validate`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from persistor.core.scripts import ScriptFile
from persistor.core.source import ExpandedScript
from persistor.errors import Problem

SyntaxCheck = Callable[[str], list[tuple[int, str]]]


def parse_all(
    files: Iterable[ScriptFile],
    sources: Mapping[str, ExpandedScript],
    check: SyntaxCheck,
    problems: list[Problem],
) -> int:
    """Parse each SQL script with `check`, adding what it finds to problems; return the count.

    Python migrations and scripts that could not be expanded are skipped.
    """
    parsed = 0
    for f in files:
        src = sources[f.name]
        if src.problems or f.is_python:
            continue
        for offset, message in check(src.text):
            loc = src.locate(src.text.count("\n", 0, offset) + 1)
            problems.append(Problem("syntax", f.name, f"{loc}: {message}; fix the SQL"))
        parsed += 1
    return parsed
