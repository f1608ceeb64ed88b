"""`-- persistor:lint-ignore RULE[,RULE…]` comments: which statements they cover.

A comment in the block of comment lines right above a statement (no blank
line between) covers that statement. One in the file's leading comments,
separated from the first statement by a blank line, covers the whole file.
An id that names no rule, or a comment that covers nothing, is an error:
a typo must not silently ignore nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from persistor.lint.catalog import RULES, known_rules_text

MARKER = "persistor:lint-ignore"
_IGNORE_RE = re.compile(r"^\s*--\s*persistor:lint-ignore(?:\s+(.*?))?\s*$")


class Ignores(NamedTuple):
    """The rules ignored for the whole file, per statement line, and what was wrong."""

    whole_file: frozenset[str]
    by_line: dict[int, frozenset[str]]  # statement's first line -> rules ignored for it
    problems: tuple[tuple[int, str], ...]  # (line, message)


NONE = Ignores(frozenset(), {}, ())


def read_ignores(text: str, statement_lines: Sequence[int]) -> Ignores:
    """Read the ignore comments of a script whose statements start on statement_lines."""
    if MARKER not in text:
        return NONE
    lines = text.split("\n")
    found: dict[int, frozenset[str]] = {}
    problems: list[tuple[int, str]] = []
    for n, line in enumerate(lines, start=1):
        if MARKER not in line:
            continue
        m = _IGNORE_RE.match(line)
        if m is None:
            continue  # not a comment line of its own (e.g. inside a string)
        ids = [i for i in re.split(r"[\s,]+", m.group(1) or "") if i]
        unknown = [i for i in ids if i not in RULES]
        if not ids:
            problems.append((n, f"'-- {MARKER}' names no rule; known: {known_rules_text()}"))
        elif unknown:
            problems.append(
                (
                    n,
                    f"'-- {MARKER}' names unknown rule(s) {', '.join(unknown)}; "
                    f"known: {known_rules_text()}",
                )
            )
        else:
            found[n] = frozenset(ids)
    return _assign(lines, found, statement_lines, problems)


def _assign(
    lines: list[str],
    found: dict[int, frozenset[str]],
    statement_lines: Sequence[int],
    problems: list[tuple[int, str]],
) -> Ignores:
    by_line: dict[int, frozenset[str]] = {}
    used: set[int] = set()
    for start in statement_lines:
        n, rules = start - 1, frozenset[str]()
        while n >= 1 and lines[n - 1].lstrip().startswith("--"):
            if n in found:
                rules |= found[n]
                used.add(n)
            n -= 1
        if rules:
            by_line[start] = rules
    first = statement_lines[0] if statement_lines else len(lines) + 1
    whole: frozenset[str] = frozenset()
    for n, rules in found.items():
        if n in used:
            continue
        if n < first:
            whole |= rules
        else:
            problems.append(
                (
                    n,
                    f"'-- {MARKER}' is not right above a statement (a blank line or code is "
                    "between); put it on the line before the statement it is for",
                )
            )
    return Ignores(whole, by_line, tuple(problems))
