"""Finding migration files in the locations and reading their names."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import NamedTuple, TypeVar

from persistor.core import formats
from persistor.core.source import read_file
from persistor.errors import Problem


class ScriptKind(enum.Enum):
    """What a migration file is, by its name."""

    VERSIONED = "V"
    REPEATABLE = "R"
    UNDO = "U"
    BASELINE = "B"  # Flyway's baseline migration: a fresh database starts from it
    CALLBACK = "callback"  # Flyway's SQL callback (beforeMigrate.sql, …): never in history


class Version(NamedTuple):
    """A migration version: digits with '.' or '_' separators, compared part by part."""

    text: str
    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse '1.2', '001' or '2026_11_25'; trailing zero parts do not matter."""
        return _parse_version(text)

    # Equal and ordered by parts alone ('1.0' == '1'); the tuple's own
    # comparisons would look at the text first.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.parts == other.parts

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.parts)

    def __lt__(self, other: tuple[object, ...]) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts < other.parts

    def __le__(self, other: tuple[object, ...]) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts <= other.parts

    def __gt__(self, other: tuple[object, ...]) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts > other.parts

    def __ge__(self, other: tuple[object, ...]) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts >= other.parts

    def __str__(self) -> str:
        return self.text


_VERSION_RE = re.compile(r"[0-9]+(?:[._][0-9]+)*")
_SEPARATOR_RE = re.compile(r"[._]")


@cache
def _parse_version(text: str) -> Version:
    # Cached: the same versions are parsed for files and for history rows.
    if not _VERSION_RE.fullmatch(text):
        raise ValueError(f"not a version: {text!r} (expected digits separated by '.' or '_')")
    parts = tuple(int(p) for p in _SEPARATOR_RE.split(text))
    while len(parts) > 1 and parts[-1] == 0:
        parts = parts[:-1]
    return Version(text=text, parts=parts)


_VERSIONED_RE = re.compile(
    r"(?P<kind>[VUB])(?P<version>[0-9]+(?:[._][0-9]+)*)__(?P<desc>.*[^_].*)\.sql"
)
_KINDS = {k.value: k for k in ScriptKind}
_REPEATABLE_RE = re.compile(r"R__(?P<desc>.*[^_].*)\.sql")
# Names that were probably meant as migrations: a V/R/U prefix in any case
# followed by a digit or an underscore.
_ATTEMPT_RE = re.compile(r"[VvRrUu](\d|_).*\.sql", re.IGNORECASE)
# Python migrations: versioned and repeatable only (an undo stays SQL).
_PYTHON_RE = re.compile(r"(?:V(?P<version>[0-9]+(?:[._][0-9]+)*)|R)__(?P<desc>.*[^_].*)\.py")
_PYTHON_ATTEMPT_RE = re.compile(r"[VvRrUu](\d|_).*\.py", re.IGNORECASE)


class ScriptFile(NamedTuple):
    """A migration file found on disk."""

    kind: ScriptKind
    version: Version | None
    description: str
    path: str  # absolute file path (a str: Path objects cost too much for 10,000 files)
    name: str  # path relative to its location, with '/' separators
    section: str | None = None  # dbmate: the "up" or "down" section of the file

    @property
    def sort_key(self) -> tuple[int, tuple[int, ...], str]:
        """Order: versioned by version, then repeatables by description."""
        if self.version is not None:
            return (0, self.version.parts, self.name)
        return (1, (), self.description)

    @property
    def is_python(self) -> bool:
        """Whether this is a Python migration (V…__name.py, R__name.py) rather than SQL."""
        return self.path.endswith(".py")


class Discovery(NamedTuple):
    """Every migration file in the locations, and what is wrong with their names."""

    versioned: tuple[ScriptFile, ...]
    repeatable: tuple[ScriptFile, ...]
    undo: dict[Version, ScriptFile]
    problems: tuple[Problem, ...]
    baselines: tuple[ScriptFile, ...] = ()  # Flyway B scripts, by version
    callbacks: tuple[ScriptFile, ...] = ()  # Flyway SQL callbacks, by name
    formats: tuple[tuple[str, str], ...] = ()  # (location, format) for each location
    # .sql files that are no migration, each with its location's format
    others: tuple[tuple[str, str], ...] = ()


def describe(raw: str) -> str:
    """Turn the description part of a file name into words."""
    return raw.replace("_", " ").strip()


def parse_name(path: str, name: str) -> ScriptFile | Problem | None:
    """Read one file name: a script, a naming problem, or None for a non-migration file."""
    base = name.rsplit("/", 1)[-1]
    if base.endswith(".py"):
        return _parse_python_name(path, name, base)
    m = _VERSIONED_RE.fullmatch(base)
    if m:
        kind = _KINDS[m["kind"]]  # (a dict: ScriptKind("V") costs more, 10,000 times)
        version = Version.parse(m["version"])
        return ScriptFile(kind, version, describe(m["desc"]), path, name)
    m = _REPEATABLE_RE.fullmatch(base)
    if m:
        return ScriptFile(ScriptKind.REPEATABLE, None, describe(m["desc"]), path, name)
    if _ATTEMPT_RE.fullmatch(base):
        return Problem("bad_name", name, _naming_advice(base))
    return None


def _parse_python_name(path: str, name: str, base: str) -> ScriptFile | Problem | None:
    """Read a .py name: a Python migration, a naming problem, or None for a helper module."""
    m = _PYTHON_RE.fullmatch(base)
    if m:
        version = Version.parse(m["version"]) if m["version"] else None
        kind = ScriptKind.VERSIONED if version is not None else ScriptKind.REPEATABLE
        return ScriptFile(kind, version, describe(m["desc"]), path, name)
    if _PYTHON_ATTEMPT_RE.fullmatch(base):
        return Problem(
            "bad_name",
            name,
            "looks like a Python migration but does not match V<version>__<name>.py or "
            "R__<name>.py (undo scripts stay SQL); rename it, or "
            "move it out of the migration locations",
        )
    return None


def _naming_advice(base: str) -> str:
    prefix = base[0]
    if prefix.islower():
        return (
            f"looks like a migration but the prefix '{prefix}' is lower case; "
            f"rename it to start with '{prefix.upper()}' (e.g. V001__add_users.sql)"
        )
    if prefix in "VU" and base[1:2].isdecimal() and not base[1:2].isascii():
        return (
            f"writes its version with non-ASCII digits; use 0-9, e.g. {prefix}001__description.sql"
        )
    if prefix in "VU" and not re.match(r"[VU][0-9]", base):
        return f"has no version after the prefix; name it like {prefix}001__description.sql"
    if "__" not in base:
        return (
            "needs two underscores between the version and the description; "
            "name it like V001__add_users.sql or R__views.sql"
        )
    return (
        "does not match V<version>__<description>.sql, U<version>__<description>.sql "
        "or R__<description>.sql; rename it, or move it out of the migration locations"
    )


K = TypeVar("K", Version, str)


class _Found:
    """The scripts found so far, each kept once by version or description."""

    __slots__ = (
        "baselines",
        "by_description",
        "by_version",
        "callbacks",
        "formats",
        "others",
        "problems",
        "undo",
    )

    def __init__(self) -> None:
        self.by_version: dict[Version, ScriptFile] = {}
        self.by_description: dict[str, ScriptFile] = {}
        self.undo: dict[Version, ScriptFile] = {}
        self.baselines: dict[Version, ScriptFile] = {}
        self.callbacks: list[ScriptFile] = []
        self.formats: list[tuple[str, str]] = []
        self.others: list[tuple[str, str]] = []
        self.problems: list[Problem] = []

    def add(self, script: ScriptFile) -> None:
        """Keep a script, or record it as a duplicate of one already kept."""
        if script.kind is ScriptKind.CALLBACK:
            self.callbacks.append(script)
        elif script.version is None:
            self._keep(self.by_description, script.description, script, first_wins=True)
        elif script.kind is ScriptKind.UNDO:
            self._keep(self.undo, script.version, script, first_wins=False)
        elif script.kind is ScriptKind.BASELINE:
            self._keep(self.baselines, script.version, script, first_wins=True)
        else:
            self._keep(self.by_version, script.version, script, first_wins=True)

    def _keep(
        self, kept: dict[K, ScriptFile], key: K, script: ScriptFile, *, first_wins: bool
    ) -> None:
        twin = kept.get(key)
        if twin is not None:
            self.problems.append(_duplicate(script, twin))
            if first_wins:
                return
        kept[key] = script

    def scan(self, location: Path) -> None:
        """Read every .sql file of one location; all of its migrations must be of one format."""
        prefix = len(str(location)) + 1
        seen: dict[str, list[ScriptFile]] = {}
        others: list[str] = []
        for path in _sql_files(location):
            name = path[prefix:].replace(os.sep, "/")
            parsed = _classify(path, name)
            if isinstance(parsed, Problem):
                self.problems.append(parsed)
                continue
            if not parsed:
                others.append(name)
            for fmt, script in parsed:
                seen.setdefault(fmt, []).append(script)
                self.add(script)
        fmt = formats.location_format(seen)
        self.formats.append((str(location), fmt))
        self.others.extend((name, fmt) for name in others)
        if len(seen) > 1:
            self.problems.append(_mixed(location, seen))


def _classify(path: str, name: str) -> list[tuple[str, ScriptFile]] | Problem:
    """Read one file name: persistor's (Flyway's) own first, then the other tools' formats."""
    parsed = parse_name(path, name)
    if isinstance(parsed, Problem):
        return parsed
    if parsed is not None:
        return [(formats.FLYWAY, parsed)]
    base = name.rsplit("/", 1)[-1]
    event = formats.callback_event(base)
    if event is not None:
        callback = ScriptFile(ScriptKind.CALLBACK, None, base[: -len(".sql")], path, name)
        return [(formats.FLYWAY, callback)]
    head = read_file(path) if formats.looks_like_dbmate(base) else None
    return [
        (
            f.format,
            ScriptFile(
                ScriptKind(f.kind),
                Version.parse(f.version),
                describe(f.description),
                path,
                name,
                f.section,
            ),
        )
        for f in formats.foreign_names(base, head)
    ]


def _mixed(location: Path, seen: dict[str, list[ScriptFile]]) -> Problem:
    examples = "; ".join(f"{fmt}: {files[0].name}" for fmt, files in sorted(seen.items()))
    return Problem(
        "mixed_formats",
        str(location),
        f"holds migrations of more than one format ({examples}); a location holds one "
        "format only: move each format's files into a location of its own",
    )


def discover(locations: Sequence[Path]) -> Discovery:
    """Find all migration files under the locations (recursively), sorted."""
    found = _Found()
    for location in locations:
        if not location.is_dir():
            found.problems.append(
                Problem(
                    "missing_location",
                    str(location),
                    "migration location does not exist or is not a directory; "
                    "create it or fix --location / PERSISTOR_LOCATIONS",
                )
            )
            continue
        found.scan(location)
    versioned = sorted(found.by_version.values(), key=lambda s: s.sort_key)
    repeatable = sorted(found.by_description.values(), key=lambda s: s.sort_key)
    return Discovery(
        tuple(versioned),
        tuple(repeatable),
        found.undo,
        tuple(found.problems),
        tuple(sorted(found.baselines.values(), key=lambda s: s.sort_key)),
        tuple(sorted(found.callbacks, key=lambda s: s.name.rsplit("/", 1)[-1])),
        tuple(found.formats),
        tuple(found.others),
    )


def _duplicate(one: ScriptFile, other: ScriptFile) -> Problem:
    what = (
        f"version {one.version}" if one.version is not None else f"description {one.description!r}"
    )
    return Problem(
        "duplicate",
        one.name,
        f"{what} is used by both {other.path} and {one.path}; give one of them another "
        f"{'version' if one.version is not None else 'name'}",
    )


_SUFFIXES = (".sql", ".py")  # SQL scripts and Python migrations


def _sql_files(location: Path) -> Iterable[str]:
    # os.walk is much faster than Path.rglob for thousands of files; sorted so
    # discovery is the same on every filesystem.
    found: list[str] = []
    for folder, dirs, files in os.walk(location):
        dirs.sort()
        found.extend(os.path.join(folder, f) for f in files if f.lower().endswith(_SUFFIXES))
    found.sort()
    return found
