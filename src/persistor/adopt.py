"""Taking over a database another tool built (Flyway, DbUp, dbmate, golang-migrate).

Two things, both without a driver: refusing to run over another tool's
history before persistor has one of its own (every script would run a
second time), and turning that history into persistor's rows for
`baseline`. The engines find and read the other tools' tables
(engines/foreign.py); what the rows mean is decided here.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from persistor.core.planner import NO_FILE
from persistor.core.scripts import Discovery, ScriptFile, Version
from persistor.core.source import ExpandedScript, read_file
from persistor.engines.base import Engine, HistoryRow, HistoryType, NewHistoryRow
from persistor.engines.foreign import TOOL_NAMES, ForeignHistory, ForeignRow, ForeignTable
from persistor.errors import Problem, UsageError, ValidationError

SOURCES = ("flyway", "dbup", "dbmate", "golang-migrate", "none")


def refuse_over_foreign(engine: Engine, command: str, history: Sequence[HistoryRow] = ()) -> None:
    """Raise ValidationError (exit 5) if another tool's history is there and persistor's is not.

    Called with the history rows when they were read; an empty history
    table (left by a run of an older persistor) counts as none.
    """
    if history:
        return  # persistor's own history rules this database
    found = engine.find_foreign_histories()
    if found:
        raise ValidationError([_foreign_problem(engine, f, command) for f in found])


def _foreign_problem(engine: Engine, found: ForeignTable, command: str) -> Problem:
    tool = TOOL_NAMES[found.tool]
    return Problem(
        "foreign_history",
        f"{engine.schema}.{found.table}",
        f"is {tool}'s history and persistor has none yet, so every script would count as "
        f"pending and run again; {command} stopped, and nothing was run or created. Adopt it "
        f"first: `persistor baseline --from {found.tool}` (same --url and --schema) records "
        f"what {tool} applied as applied. "
        "If that table belongs to another application, start persistor's own history beside "
        "it with `persistor baseline --from none --baseline-version 0`",
    )


def choose(found: Sequence[ForeignTable], wanted: str | None) -> ForeignTable | None:
    """Return the history `baseline` imports: the one asked for, or the only one there."""
    if wanted == "none":
        return None
    if wanted is not None:
        if wanted not in SOURCES:
            raise UsageError(f"--from {wanted!r}: give one of {', '.join(SOURCES)}")
        for f in found:
            if f.tool == wanted:
                return f
        there = ", ".join(f"{TOOL_NAMES[f.tool]} ({f.table})" for f in found) or "none"
        raise UsageError(
            f"--from {wanted}: no {TOOL_NAMES[wanted]} history table in the target schema "
            f"(found: {there}); check --url and --schema, or leave --from out"
        )
    if len(found) > 1:
        names = " and ".join(f"{TOOL_NAMES[f.tool]} ({f.table})" for f in found)
        raise UsageError(
            f"found {names}: say which to import with --from "
            f"{'|'.join(f.tool for f in found)}, or --from none to import neither"
        )
    return found[0] if found else None


class Adoption(NamedTuple):
    """persistor's history rows made from another tool's, and what baseline says about them."""

    rows: tuple[NewHistoryRow, ...]
    no_file: tuple[str, ...]  # imported as history that needs no file
    notes: tuple[str, ...]  # rows not imported, and why


def flyway_checksum(data: bytes) -> int:
    """Return Flyway's checksum of a file: CRC32 over its lines without line ends, BOM dropped.

    Flyway reads the file line by line (\\n, \\r\\n or \\r end a line), strips
    a byte-order mark from the first, and feeds each line's UTF-8 bytes to
    java.util.zip.CRC32; the stored value is that CRC as a signed 32-bit int.
    """
    # surrogateescape: bytes that are not UTF-8 are hashed as they are.
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    crc = 0
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        crc = zlib.crc32(line.encode("utf-8", "surrogateescape"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def adopt(
    history: ForeignHistory, discovery: Discovery, sources: Mapping[str, ExpandedScript]
) -> Adoption:
    """Turn another tool's history into persistor's rows; ValidationError if it cannot be."""
    if history.dirty:
        version = history.rows[0].version if history.rows else "?"
        raise ValidationError(
            [
                Problem(
                    "foreign_dirty",
                    history.table,
                    f"golang-migrate left version {version} dirty: that migration stopped "
                    "halfway. Finish or undo it by hand, mark it clean with golang-migrate "
                    f"(`migrate force {version}`, or the version before it if you undid it), "
                    "then run `persistor baseline` again; nothing was imported",
                )
            ]
        )
    files = _LocalFiles(discovery, sources)
    if history.tool == "flyway":
        adoption = _from_flyway(history.rows, files)
    elif history.tool == "golang-migrate":
        adoption = _from_golang_migrate(history.rows, files)
    else:
        adoption = _from_versions(history, files)
    if adoption.rows:
        return adoption
    # Nothing applied yet: a marker row still makes the history persistor's
    # own, or every later run would refuse over the other tool's table.
    tool = TOOL_NAMES[history.tool]
    marker = ForeignRow("0", f"{tool} history was empty", "BASELINE", "", None, None, None, 0, True)
    out = _Rows()
    out.add("BASELINE", marker, f"<< {tool} history adopted >>", None)
    return out.done()._replace(notes=adoption.notes)


class _LocalFiles:
    """The scripts on disk, found by version or repeatable description."""

    def __init__(self, discovery: Discovery, sources: Mapping[str, ExpandedScript]) -> None:
        self.sources = sources
        self.versioned = {f.version: f for f in discovery.versioned if f.version is not None}
        self.repeatable = {f.description: f for f in discovery.repeatable}

    def by_version(self, text: str | None) -> ScriptFile | None:
        version = _version(text)
        return None if version is None else self.versioned.get(version)

    def checksum(self, f: ScriptFile) -> str:
        return self.sources[f.name].checksum


def _version(text: str | None) -> Version | None:
    try:
        return Version.parse(text) if text else None
    except ValueError:
        return None


class _Rows:
    """Rows being built, numbered in order."""

    def __init__(self) -> None:
        self.rows: list[NewHistoryRow] = []
        self.no_file: list[str] = []
        self.notes: list[str] = []

    def add(
        self, kind: HistoryType, row: ForeignRow, script: str, checksum: str | None, **kw: str
    ) -> None:
        if kind == NO_FILE:
            self.no_file.append(script)
        self.rows.append(
            NewHistoryRow(
                installed_rank=len(self.rows) + 1,
                version=kw.get("version", row.version),
                description=kw.get("description", row.description),
                type=kind,
                script=script,
                checksum=checksum,
                execution_time_ms=row.execution_time_ms,
                success=True,
                installed_by=row.installed_by,
                installed_at=row.installed_at,
            )
        )

    def done(self) -> Adoption:
        return Adoption(tuple(self.rows), tuple(self.no_file), tuple(self.notes))


# Flyway's row types, and what each becomes in persistor's history.
_FLYWAY_BASELINES = ("BASELINE", "SQL_BASELINE", "JDBC_BASELINE")
_FLYWAY_UNDO = ("UNDO_SQL", "UNDO_JDBC", "UNDO_SCRIPT")


def _from_flyway(rows: Sequence[ForeignRow], files: _LocalFiles) -> Adoption:
    out = _Rows()
    # A repeatable has a row per run; only the last one says whether it changed since.
    last_run = {r.description: i for i, r in enumerate(rows) if r.version is None and r.success}
    for i, row in enumerate(rows):
        if row.type == "SCHEMA":
            continue  # Flyway's marker for the schemas it created: no script
        if not row.success:
            out.notes.append(
                f"{row.script}: failed under Flyway (success = false), so it is not imported "
                "as applied; persistor runs it as pending. Check what it left behind first"
            )
        elif row.type in _FLYWAY_BASELINES:
            # A B script (or Flyway's baseline): what it covers counts as applied.
            out.add("BASELINE", row, row.script, None)
        elif row.type in _FLYWAY_UNDO:
            out.add("UNDO", row, row.script, None)
        elif row.type == "DELETE":
            out.add("DELETE", row, row.script, None)
        elif row.type == "SQL":
            _flyway_sql(
                out, row, files, latest=row.version is not None or last_run[row.description] == i
            )
        else:  # JDBC (a Java class), SCRIPT, …: applied, and never a file of ours
            out.add(NO_FILE, row, row.script, _flyway_stored(row))
    return out.done()


def _flyway_sql(out: _Rows, row: ForeignRow, files: _LocalFiles, *, latest: bool) -> None:
    if row.version is not None:
        f = files.by_version(row.version)
    else:
        f = files.repeatable.get(row.description)
    if f is None:
        out.add(NO_FILE, row, row.script, _flyway_stored(row))
        return
    if row.checksum is not None and flyway_checksum(read_file(f.path)) == row.checksum:
        # The file is what Flyway applied: from now on persistor's checksum
        # guards it, and an unchanged repeatable is not run again.
        out.add("SQL", row, f.name, files.checksum(f), description=f.description)
        return
    if row.version is None:
        if latest:
            out.notes.append(f"{f.name}: changed since Flyway last ran it; migrate runs it again")
    else:
        out.notes.append(
            f"{f.name}: differs from what Flyway applied (checksum {row.checksum}); kept as "
            "applied. Put any change in a new migration"
        )
    out.add("SQL", row, f.name, _flyway_stored(row), description=f.description)


def _flyway_stored(row: ForeignRow) -> str | None:
    # Not persistor's algorithm: such a checksum never counts as a change.
    return None if row.checksum is None else f"flyway-crc32:{row.checksum}"


def _from_versions(history: ForeignHistory, files: _LocalFiles) -> Adoption:
    """DbUp's script names and dbmate's versions: each an applied version."""
    out = _Rows()
    tool = TOOL_NAMES[history.tool]
    keyed = []
    for row in history.rows:
        version = _version(row.version) if row.version else _dbup_version(row.script)
        if version is None:
            out.notes.append(f"{row.script}: no version in its name, so it is not imported")
        else:
            keyed.append((version, row))
    for version, row in sorted(keyed, key=lambda k: k[0]):
        f = files.versioned.get(version)
        if f is not None:
            out.add(
                "SQL",
                row,
                f.name,
                files.checksum(f),
                version=version.text,
                description=f.description,
            )
        else:
            out.add(
                NO_FILE,
                row,
                row.script or version.text,
                None,
                version=version.text,
                description=f"applied by {tool}",
            )
    return out.done()


def _dbup_version(script: str) -> Version | None:
    """Read the version of a DbUp script name such as 'App.Migrations.V001__Baseline.sql'."""
    m = _DBUP_NAME_RE.search(script.rsplit("/", 1)[-1])
    return _version(m.group(1)) if m else None


# DbUp records embedded-resource names: namespace, then the file's own name.
_DBUP_NAME_RE = re.compile(r"(?:^|\.)V([0-9]+(?:[._][0-9]+)*)__", re.IGNORECASE)


def _from_golang_migrate(rows: Sequence[ForeignRow], files: _LocalFiles) -> Adoption:
    """golang-migrate keeps one version: every file up to it was applied."""
    out = _Rows()
    current = _version(rows[0].version) if rows else None
    if current is None:
        return out.done()
    for version, f in sorted(files.versioned.items()):
        if version <= current:
            out.add(
                "SQL",
                rows[0],
                f.name,
                files.checksum(f),
                version=version.text,
                description=f.description,
            )
    if current not in files.versioned:
        out.add(
            NO_FILE,
            rows[0],
            current.text,
            None,
            version=current.text,
            description="applied by golang-migrate",
        )
    return out.done()
