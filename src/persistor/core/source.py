"""Reading a script's text: includes, placeholders, directives and the checksum.

The expanded text is what runs and what the checksum covers. Each line of it
remembers the file and line it came from, so errors point at the source.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from persistor.core import formats
from persistor.core.placeholders import SESSION_BUILTINS, define_advice, lines_text
from persistor.errors import Problem, SourceLocation

CHECKSUM_ALGORITHM = "sha256"
KNOWN_DIRECTIVES = frozenset({"no-transaction"})

_INCLUDE_RE = re.compile(r"^[ \t]*\\(ir|include_relative|i|include)[ \t]+(.+?)[ \t]*;?[ \t]*$")
_PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")
_DIRECTIVE_RE = re.compile(r"^\s*--\s*persistor:([A-Za-z0-9_-]+)\s*$")


class ExpandedScript(NamedTuple):
    """The fully expanded text of a script and where each of its lines came from."""

    text: str
    checksum: str
    directives: frozenset[str]
    problems: tuple[Problem, ...] = ()
    # origins[i] is the (file, line) of line i+1 of text; empty when the text is
    # the file itself, unchanged line for line.
    origins: tuple[tuple[str, int], ...] = ()
    path: str = ""

    def locate(self, line: int) -> SourceLocation:
        """Map a 1-based line of the expanded text to the file and line it came from."""
        if self.origins and 1 <= line <= len(self.origins):
            path, src_line = self.origins[line - 1]
            return SourceLocation(path, src_line)
        return SourceLocation(self.path, line)


def read_file(path: str | Path) -> bytes:
    """Return a file's bytes.

    os.open/os.read with the size from fstat: a third of open().read()'s cost,
    which matters when every run reads every script (10,000 of them in W5).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) == size:
            return data  # asked for one byte more and got exactly size: at the end
        chunks = [data]  # the file changed size under us: read to the end
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def checksum_of(text: str) -> str:
    """Return the stored form of a text's checksum: '<algorithm>:<hex>'."""
    return f"{CHECKSUM_ALGORITHM}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def normalise(raw: bytes) -> str:
    """Decode UTF-8, drop a byte-order mark and turn CRLF/CR line endings into LF."""
    text = raw.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_directives(text: str) -> tuple[frozenset[str], list[str]]:
    """Read '-- persistor:<name>' comments from the leading comment lines."""
    found: set[str] = set()
    unknown: list[str] = []
    for line in text.split("\n", 20)[:20]:
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        m = _DIRECTIVE_RE.match(stripped)
        if m:
            name = m.group(1)
            if name in KNOWN_DIRECTIVES:
                found.add(name)
            else:
                unknown.append(name)
    return frozenset(found), unknown


class _Expander:
    def __init__(
        self,
        roots: Sequence[Path],
        placeholders: Mapping[str, str],
        script_name: str,
        session: Mapping[str, str] | None = None,
    ) -> None:
        self.roots = list(roots)  # already absolute and resolved by the caller
        self.placeholders = placeholders
        self.session = session or {}
        self.script_name = script_name
        self.problems: list[Problem] = []
        self.lines: list[str] = []
        self.origins: list[tuple[str, int]] = []
        # Lines whose checksummed form differs from what runs (session built-ins).
        self.checksum_lines: dict[int, str] = {}
        self.undefined: dict[str, list[tuple[str, int]]] = {}  # name -> where it is used

    def problem(self, code: str, message: str) -> None:
        self.problems.append(Problem(code, self.script_name, message))

    def inside_roots(self, path: Path) -> bool:
        return any(path == root or root in path.parents for root in self.roots)

    def read(self, path: Path, shown: str) -> str | None:
        try:
            raw = read_file(path)
        except OSError as exc:
            self.problem("unreadable", f"cannot read {shown}: {exc.strerror}")
            return None
        try:
            return normalise(raw)
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            self.problem(
                "encoding",
                f"{shown} line {line} is not valid UTF-8 (byte offset {exc.start}); "
                "save the file as UTF-8",
            )
            return None

    def expand(
        self,
        path: Path,
        shown: str,
        stack: tuple[Path, ...],
        text: str | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        """Expand a file (or, with span, its lines first..last) into self.lines."""
        if text is None:
            text = self.read(path, shown)
        if text is None:
            return
        simple = "\\" not in text and "${" not in text
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        first = 1
        if span is not None:
            first = span[0]
            lines = lines[span[0] - 1 : span[1]]
        if simple:
            self.lines.extend(lines)
            self.origins.extend((shown, n) for n in range(first, first + len(lines)))
            return
        for n, line in enumerate(lines, start=first):
            m = _INCLUDE_RE.match(line) if line.lstrip().startswith("\\") else None
            if m:
                self.include(path, shown, n, m.group(1), m.group(2), stack)
                continue
            if "${" in line:
                line = self.substitute(line, shown, n)
            self.lines.append(line)
            self.origins.append((shown, n))

    def include(
        self, path: Path, shown: str, n: int, command: str, target: str, stack: tuple[Path, ...]
    ) -> None:
        if command in ("i", "include"):
            self.problem(
                "include",
                f"{shown} line {n}: \\{command} resolves from the current directory; "
                f"use \\ir so the path is relative to the including file",
            )
            return
        target = target.strip("'\"")
        resolved = (path.parent / target).resolve()
        where = f"{shown} line {n}"
        if not self.inside_roots(resolved):
            self.problem(
                "include",
                f"{where}: \\ir {target} points outside the migration locations; "
                "move the file inside a location",
            )
        elif resolved in stack:
            chain = " -> ".join(p.name for p in (*stack, resolved))
            self.problem(
                "include", f"{where}: \\ir {target} makes a cycle ({chain}); remove one include"
            )
        elif not resolved.is_file():
            self.problem("include", f"{where}: \\ir {target}: file not found ({resolved})")
        else:
            self.expand(resolved, self.shown_name(resolved), (*stack, resolved))

    def shown_name(self, path: Path) -> str:
        for root in self.roots:
            if root in path.parents:
                return path.relative_to(root).as_posix()
        return str(path)

    def substitute(self, line: str, shown: str, n: int) -> str:
        as_written = False

        def replace(m: re.Match[str]) -> str:
            nonlocal as_written
            name = m.group(1)
            value = self.placeholders.get(name)
            if value is None and name in self.session:
                value = self.session[name]
            if value is None:
                self.undefined.setdefault(name, []).append((shown, n))
                return m.group(0)
            if name in SESSION_BUILTINS:
                as_written = True
            return value

        replaced = _PLACEHOLDER_RE.sub(replace, line)
        if as_written:
            self.checksum_lines[len(self.lines)] = _PLACEHOLDER_RE.sub(
                lambda m: (
                    m.group(0)
                    if m.group(1) in SESSION_BUILTINS
                    else self.placeholders.get(m.group(1), m.group(0))
                ),
                line,
            )
        return replaced

    def report_undefined(self) -> None:
        """Report each undefined placeholder once for the script, with every line using it."""
        for name, uses in self.undefined.items():
            # (a line using the same placeholder twice is listed once)
            where = lines_text(list(dict.fromkeys(uses)), self.script_name)
            self.problem(
                "placeholder",
                f"placeholder ${{{name}}} is not defined ({where}); {define_advice(name)}",
            )

    def checksum_text(self, text: str) -> str:
        """Return the text the checksum covers: session built-ins as written."""
        if not self.checksum_lines:
            return text
        lines = list(self.lines)
        for index, line in self.checksum_lines.items():
            lines[index] = line
        return "\n".join(lines) + "\n"


def expand_script(
    path: str | Path,
    name: str,
    roots: Sequence[Path],
    placeholders: Mapping[str, str],
    *,
    section: str | None = None,
    session: Mapping[str, str] | None = None,
    repeatable: bool = False,
) -> ExpandedScript:
    """Expand a script's includes and placeholders and compute its checksum.

    roots must be absolute, resolved paths, and path must lie inside one of them.
    `${persistor:filename}` and `${flyway:filename}` (the script's file name)
    are built in; session supplies the other `${flyway:…}` built-ins.
    section picks the "up" or "down" section of a dbmate file. The checksum takes
    those session built-ins as written, except a repeatable's (Flyway's rule:
    `-- ${flyway:timestamp}` in a repeatable makes it run on every migrate).
    """
    if section is None:
        fast = _plain_script(path, name)
        if fast is not None:
            return fast
    base = name.rsplit("/", 1)[-1]
    fixed = {"persistor:filename": base, "flyway:filename": base}
    expander = _Expander(roots, {**fixed, **placeholders}, name, session)
    full = Path(path)
    text = expander.read(full, name)
    extra: set[str] = set()
    if text is not None and section is not None:
        span = _section_span(expander, text, section)
        if span is not None:
            expander.expand(full, name, (full,), text, span[:2])
            if not span[2]:
                extra.add("no-transaction")
    elif text is not None:
        _check_markers(expander, text)
        expander.expand(full, name, (full,), text)
    if repeatable:
        expander.checksum_lines.clear()
    return _finish(expander, name, extra, keep_origins=section is not None)


def _section_span(expander: _Expander, text: str, section: str) -> tuple[int, int, bool] | None:
    sections = formats.dbmate_sections(text)
    if sections.problem is not None:
        expander.problem("dbmate", sections.problem)
        return None
    found = sections.up if section == "up" else sections.down
    body = text.split("\n")[found.first - 1 : found.last] if found is not None else []
    if not any(line.strip() and not line.strip().startswith("--") for line in body):
        what = "has no '-- migrate:down' section" if found is None else "has an empty down section"
        if section == "up":
            what = "has an empty '-- migrate:up' section; write the migration below it"
        else:
            what += "; write the undo below a '-- migrate:down' line"
        expander.problem("no_undo" if section == "down" else "empty", what)
        return None
    assert found is not None
    return found.first, found.last, found.transaction


def _check_markers(expander: _Expander, text: str) -> None:
    """Refuse a whole-file script that still holds dbmate's up/down markers."""
    marker = formats.marker_line(text)
    if marker is None:
        return
    line, which = marker
    expander.problem(
        "dbmate_markers",
        f"line {line}: '{which}' is a dbmate marker, but this file runs "
        "whole, so its down half would run right after its up half; move the down half into "
        "its own undo script (U<version>__<description>.sql) and delete the marker lines, or "
        "keep dbmate's <timestamp>_<name>.sql name in a dbmate location",
    )


def _finish(
    expander: _Expander, name: str, extra: set[str], *, keep_origins: bool
) -> ExpandedScript:
    expander.report_undefined()
    text = "\n".join(expander.lines) + ("\n" if expander.lines else "")
    directives, unknown = read_directives(text)
    for directive in unknown:
        expander.problem(
            "directive",
            f"unknown directive '-- persistor:{directive}'; known: "
            + ", ".join(sorted(KNOWN_DIRECTIVES)),
        )
    if not text.strip() and not expander.problems:
        # (an include that failed leaves the text empty too; that was reported)
        expander.problem("empty", "the file is empty; write the migration or delete the file")
    plain = not keep_origins and all(origin[0] == name for origin in expander.origins)
    return ExpandedScript(
        text=text,
        checksum=checksum_of(expander.checksum_text(text)),
        directives=directives | extra,
        problems=tuple(expander.problems),
        origins=() if plain else tuple(expander.origins),
        path=name,
    )


def _plain_script(path: str | Path, name: str) -> ExpandedScript | None:
    """Read a script that needs no expansion at all, or return None.

    Most scripts have no include, placeholder, CR or BOM: their expanded text
    is the file itself (plus a final newline), so the line-by-line work and
    the line map can be skipped. The result is identical to the slow path's.
    """
    try:
        raw = read_file(path)
    except OSError:
        return None
    if b"\\" in raw or b"${" in raw or b"\r" in raw or raw.startswith(b"\xef\xbb\xbf"):
        return None
    if b"migrate:" in raw:  # maybe a dbmate marker: the slow path says
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n"):
        text += "\n"
        raw += b"\n"
    directives: frozenset[str] = frozenset()
    if "persistor:" in text:
        found, unknown = read_directives(text)
        if unknown:
            return None  # the slow path reports it
        directives = found
    problems: tuple[Problem, ...] = ()
    if not text.strip():
        problems = (
            Problem("empty", name, "the file is empty; write the migration or delete the file"),
        )
    checksum = f"{CHECKSUM_ALGORITHM}:{hashlib.sha256(raw).hexdigest()}"
    return ExpandedScript(text, checksum, directives, problems, (), name)
