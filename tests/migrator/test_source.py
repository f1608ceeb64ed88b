"""Script expansion: the fast path for plain files gives exactly what full expansion gives."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from persistor.core import source
from persistor.core.source import _Expander, checksum_of, expand_script

_pieces = st.sampled_from(
    [
        "SELECT 1;",
        "\n",
        "\r\n",
        "-- c\n",
        "é",
        "\\ir x.sql\n",
        "${p}",
        "  ",
        "CREATE TABLE t (id int);",
        "",
    ]
)


def _slow(path: Path, name: str, roots: list[Path]) -> tuple[str, str]:
    expander = _Expander(roots, {"p": "v"}, name)
    expander.expand(path, name, (path,))
    text = "\n".join(expander.lines) + ("\n" if expander.lines else "")
    return text, checksum_of(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(_pieces, max_size=12).map("".join), st.booleans())
def test_fast_path_matches_full_expansion(body: str, bom: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        (root / "x.sql").write_text("SELECT 2;\n")
        path = root / "V1__a.sql"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))
        result = expand_script(path, "V1__a.sql", [root], {"p": "v"})
        text, checksum = _slow(path, "V1__a.sql", [root])
        assert result.text == text
        assert result.checksum == checksum


def test_crlf_bom_and_missing_final_newline_do_not_change_the_checksum(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    variants = [
        b"SELECT 1;\nSELECT 2;\n",
        b"SELECT 1;\r\nSELECT 2;\r\n",
        b"\xef\xbb\xbfSELECT 1;\nSELECT 2;",
        b"SELECT 1;\rSELECT 2;\r",
    ]
    sums = set()
    for n, raw in enumerate(variants):
        path = root / f"V{n + 1}__v.sql"
        path.write_bytes(raw)
        sums.add(expand_script(path, path.name, [root], {}).checksum)
    assert len(sums) == 1
    assert next(iter(sums)).startswith("sha256:")


def test_plain_script_is_used_for_plain_files(tmp_path: Path) -> None:
    path = tmp_path / "V1__a.sql"
    path.write_text("SELECT 1;\n")
    assert source._plain_script(path, "V1__a.sql") is not None
    path.write_text("SELECT ${x};\n")
    assert source._plain_script(path, "V1__a.sql") is None
