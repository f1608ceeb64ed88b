"""Property tests of file-name parsing and include resolution.

PERSISTOR_FUZZ_EXAMPLES=100000 runs each property that many times (the long
mode, with pytest's --timeout=0); the default keeps the normal suite fast.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistor.core.scripts import ScriptFile, ScriptKind, Version, parse_name
from persistor.core.source import expand_script
from persistor.errors import Problem

EXAMPLES = int(os.environ.get("PERSISTOR_FUZZ_EXAMPLES", "0")) or None
fuzz = settings(
    max_examples=EXAMPLES or 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
if EXAMPLES:  # a long fuzz run keeps no example database; a normal run replays failures
    fuzz = settings(fuzz, database=None)

version_parts = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=4)
separators = st.sampled_from([".", "_"])
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@st.composite
def version_texts(draw: st.DrawFn) -> str:
    parts = draw(version_parts)
    widths = [draw(st.integers(min_value=len(str(p)), max_value=len(str(p)) + 3)) for p in parts]
    text = str(parts[0]).zfill(widths[0])
    for part, width in zip(parts[1:], widths[1:], strict=True):
        text += draw(separators) + str(part).zfill(width)
    return text


@fuzz
@given(version_texts(), st.lists(words, min_size=1, max_size=4), st.sampled_from(["V", "U"]))
def test_versioned_names_round_trip(version: str, description: list[str], prefix: str) -> None:
    name = f"{prefix}{version}__{'_'.join(description)}.sql"
    parsed = parse_name(name, name)
    assert isinstance(parsed, ScriptFile)
    assert parsed.kind is (ScriptKind.VERSIONED if prefix == "V" else ScriptKind.UNDO)
    assert parsed.version is not None and parsed.version.text == version
    assert parsed.description == " ".join(description)


@fuzz
@given(version_texts(), version_texts())
def test_versions_compare_numerically_part_by_part(a: str, b: str) -> None:
    def numbers(text: str) -> list[int]:
        parts = [int(p) for p in text.replace("_", ".").split(".")]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return parts

    va, vb = Version.parse(a), Version.parse(b)
    assert (va < vb) == (numbers(a) < numbers(b))
    assert (va == vb) == (numbers(a) == numbers(b))


@fuzz
@given(st.text(min_size=0, max_size=40))
def test_any_file_name_is_a_script_a_problem_or_ignored(stem: str) -> None:
    name = stem.replace("/", "_") + ".sql"
    parsed = parse_name(name, name)
    assert parsed is None or isinstance(parsed, ScriptFile | Problem)
    if isinstance(parsed, Problem):
        assert parsed.script == name
        assert "rename" in parsed.message or "name it like" in parsed.message
    if parsed is None:
        # ignored names never look like a migration prefix: a version is ASCII
        # digits, but any decimal digit after the prefix reads as an attempt
        assert not (name[:1] in "VvRrUu" and name[1:2].isdecimal() | (name[1:2] == "_"))


# Include graphs: files f0..fn, each including some others (maybe itself).
graphs = st.integers(min_value=1, max_value=5).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.lists(st.integers(min_value=0, max_value=n - 1), max_size=3), min_size=n, max_size=n
        ),
        st.booleans(),
    )
)


def _reaches_cycle(edges: list[list[int]], start: int) -> bool:
    def visit(node: int, stack: tuple[int, ...]) -> bool:
        if node in stack:
            return True
        return any(visit(nxt, (*stack, node)) for nxt in edges[node])

    return visit(start, ())


def _expected_lines(edges: list[list[int]], node: int) -> list[str]:
    lines = [f"SELECT {node};"]
    for nxt in edges[node]:
        lines += _expected_lines(edges, nxt)
    return lines


@fuzz
@given(graphs)
def test_include_resolution(graph: tuple[int, list[list[int]], bool]) -> None:
    n, edges, escape = graph
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve() / "migrations"
        (root / "lib").mkdir(parents=True)
        (root.parent / "outside.sql").write_text("SELECT 'outside';\n")
        for i in range(n):
            body = f"SELECT {i};\n" + "".join(f"\\ir f{j}.sql\n" for j in edges[i])
            (root / "lib" / f"f{i}.sql").write_text(body)
        top = root / "V1__top.sql"
        top.write_text("\\ir lib/f0.sql\n" + ("\\ir ../outside.sql\n" if escape else ""))
        result = expand_script(top, "V1__top.sql", [root], {})
    messages = " ".join(p.message for p in result.problems)
    assert ("makes a cycle" in messages) == _reaches_cycle(edges, 0)
    assert ("outside the migration locations" in messages) == escape
    if not result.problems:
        assert result.text.splitlines() == _expected_lines(edges, 0)
        # every line maps back to the file and line it came from
        for number, line in enumerate(result.text.splitlines(), start=1):
            loc = result.locate(number)
            assert loc.path.startswith("lib/f")
            assert line == f"SELECT {loc.path[5:-4]};"
