"""Recognising the migration files of other tools: Flyway extras, dbmate and golang-migrate.

scripts.py reads persistor's own (Flyway-style) names and asks this module
about every other `.sql` file; source.py asks it where a dbmate file's up
and down sections are. A location holds one format only; which one it is
follows from the files themselves (`location_format`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from persistor.errors import Problem

FLYWAY = "flyway"  # persistor's own names: V/U/R, plus B baselines and SQL callbacks
DBMATE = "dbmate"
GOLANG_MIGRATE = "golang-migrate"
EMPTY = "empty"  # a location with no migration in it

CALLBACK_EVENTS = (
    "beforeValidate",
    "afterValidate",
    "beforeMigrate",
    "beforeEachMigrate",
    "afterEachMigrate",
    "afterMigrate",
    "afterMigrateError",
)

_CALLBACK_RE = re.compile(r"(?P<event>" + "|".join(CALLBACK_EVENTS) + r")(?:__(?P<desc>.+))?\.sql")
_GOLANG_RE = re.compile(r"(?P<version>[0-9]+)_(?P<desc>.+)\.(?P<direction>up|down)\.sql")
_DBMATE_RE = re.compile(r"(?P<version>[0-9]+)_(?P<desc>.+)\.sql")
# dbmate's markers: '-- migrate:up' / '-- migrate:down', optionally followed by options.
_MARKER_RE = re.compile(r"^[ \t]*--[ \t]*migrate:(?P<which>up|down)\b(?P<options>.*)$")
_MARKER_BYTES = re.compile(rb"^[ \t]*--[ \t]*migrate:up\b", re.MULTILINE)


class ForeignName(NamedTuple):
    """A dbmate or golang-migrate file name, read."""

    format: str
    kind: str  # "V" (the up half) or "U" (the down half)
    version: str
    description: str
    section: str | None  # dbmate: "up" or "down" of the same file; golang-migrate: None


def callback_event(base: str) -> str | None:
    """Return the Flyway callback event a file name stands for (afterMigrate__x.sql), or None."""
    m = _CALLBACK_RE.fullmatch(base)
    return m["event"] if m else None


def foreign_names(base: str, head: bytes | None) -> list[ForeignName]:
    """Read a golang-migrate or dbmate file name; [] when it is neither.

    head is the file's bytes (only asked for names that look like dbmate's):
    a `<digits>_<name>.sql` file is dbmate's only when it holds the
    `-- migrate:up` marker, so a helper a Flyway script includes is not one.
    """
    m = _GOLANG_RE.fullmatch(base)
    if m:
        kind = "V" if m["direction"] == "up" else "U"
        return [ForeignName(GOLANG_MIGRATE, kind, m["version"], m["desc"], None)]
    m = _DBMATE_RE.fullmatch(base)
    if m and head is not None and _MARKER_BYTES.search(head):
        return [
            ForeignName(DBMATE, "V", m["version"], m["desc"], "up"),
            ForeignName(DBMATE, "U", m["version"], m["desc"], "down"),
        ]
    return []


def looks_like_dbmate(base: str) -> bool:
    """Say whether a file name has dbmate's shape, so its content is worth reading."""
    return _DBMATE_RE.fullmatch(base) is not None and _GOLANG_RE.fullmatch(base) is None


def location_format(formats: Iterable[str]) -> str:
    """Return the one format of a location's migrations, or 'a, b' when it mixes several."""
    found = sorted(set(formats))
    return ", ".join(found) if found else EMPTY


class Section(NamedTuple):
    """The lines of a dbmate section: first and last line of its body (1-based, inclusive)."""

    first: int
    last: int
    transaction: bool


class DbmateSections(NamedTuple):
    """A dbmate file split at its markers, or what is wrong with it."""

    up: Section | None
    down: Section | None
    problem: str | None = None


def dbmate_sections(text: str) -> DbmateSections:
    """Find the `-- migrate:up` and `-- migrate:down` sections of a dbmate file's text."""
    lines = text.split("\n")
    markers: list[tuple[str, int, bool]] = []
    for n, line in enumerate(lines, start=1):
        m = _MARKER_RE.match(line)
        if m is None:
            continue
        options = m["options"].split()
        unknown = [o for o in options if o not in ("transaction:false", "transaction:true")]
        if unknown:
            return DbmateSections(
                None,
                None,
                f"line {n}: unknown dbmate option {unknown[0]!r}; "
                "the only option is transaction:false",
            )
        markers.append((m["which"], n, "transaction:false" not in options))
    problem = _marker_problem(lines, markers)
    if problem is not None:
        return DbmateSections(None, None, problem)
    found: dict[str, Section] = {}
    for i, (which, n, transaction) in enumerate(markers):
        last = markers[i + 1][1] - 1 if i + 1 < len(markers) else len(lines)
        found[which] = Section(n + 1, last, transaction)
    return DbmateSections(found.get("up"), found.get("down"))


def _marker_problem(lines: list[str], markers: list[tuple[str, int, bool]]) -> str | None:
    which = [m[0] for m in markers]
    if which.count("up") != 1 or which.count("down") > 1:
        return (
            "a dbmate migration needs exactly one '-- migrate:up' line and at most one "
            "'-- migrate:down' line"
        )
    if which[0] != "up":
        return f"line {markers[0][1]}: '-- migrate:down' comes before '-- migrate:up'; put up first"
    before = [
        n
        for n, line in enumerate(lines[: markers[0][1] - 1], start=1)
        if line.strip() and not line.strip().startswith("--")
    ]
    if before:
        return (
            f"line {before[0]}: SQL before '-- migrate:up' belongs to no section; "
            "move it below the marker"
        )
    return None


def marker_line(text: str) -> tuple[int, str] | None:
    """Return a dbmate marker in a text as (line, marker): the down marker if any, or None."""
    if "migrate:" not in text:
        return None
    found: dict[str, int] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        m = _MARKER_RE.match(line)
        if m:
            found.setdefault(m["which"], n)
    which = "down" if "down" in found else "up"
    return (found[which], f"-- migrate:{which}") if found else None


_NAMING = {
    FLYWAY: "name it V<version>__<description>.sql (or R__, U<version>__, B<version>__)",
    DBMATE: "name it <timestamp>_<name>.sql with a '-- migrate:up' line",
    GOLANG_MIGRATE: "name it <version>_<name>.up.sql (and its undo <version>_<name>.down.sql)",
}


def unused_files(others: Iterable[tuple[str, str]], included: set[str]) -> list[Problem]:
    """Warn about each .sql file of a location that no migration is or includes."""
    warnings = []
    for name, fmt in others:
        if name in included:
            continue
        naming = _NAMING.get(fmt, "name it as a migration")
        warnings.append(
            Problem(
                "not_a_migration",
                name,
                f"is not a migration (the location's format: {fmt}) and no migration includes "
                f"it, so persistor never runs it; to run it, {naming}; otherwise move it out "
                "of the migration locations",
            )
        )
    return warnings
