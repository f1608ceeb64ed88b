"""`persistor validate --offline`: the file checks with no database at all (the pre-commit hook)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from persistor.cli.main import main
from persistor.settings_table import environment_variables


@pytest.fixture(autouse=True)
def _no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in environment_variables(os.environ):
        monkeypatch.delenv(name)
    embedded = tmp_path / "embedded"
    monkeypatch.setenv("PERSISTOR_EMBEDDED_DIR", str(embedded))  # would hold a started server
    monkeypatch.chdir(tmp_path)
    return embedded


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_offline_validate_needs_no_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    write(db, "V1__items.sql", "CREATE TABLE items (id integer);\n\\ir lib/grants.sql\n")
    write(db, "lib/grants.sql", "GRANT SELECT ON items TO ${reader};\n")
    write(db, "V2__fill.py", "def migrate(conn):\n    conn.execute('SELECT 1')\n")
    code = main(["validate", "--offline", "-l", str(db), "-p", "reader=app"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Valid: 2 script(s) checked, 1 parsed offline; no problems. (offline" in out
    assert not (tmp_path / "embedded").exists()  # no server was started


def test_offline_validate_reports_every_file_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    write(db, "V1__items.sql", "CREATE TABLE items (id integer);\n\\ir missing.sql\n")
    write(db, "V2__grants.sql", "GRANT SELECT ON items TO ${reader};\n")
    write(db, "V3__typo.sql", "CREAT TABLE x (id integer);\n")
    write(db, "V3_1_bad.sql", "SELECT 1;\n")
    write(db, "V4__fill.py", "import no_such_module\n")
    code = main(["validate", "--offline", "-l", str(db), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 5
    found = {p["script"]: p["message"] for p in doc["error"]["problems"]}
    assert set(found) == {
        "V1__items.sql",
        "V2__grants.sql",
        "V3__typo.sql",
        "V3_1_bad.sql",
        "V4__fill.py",
    }
    assert "missing.sql" in found["V1__items.sql"]
    assert "reader" in found["V2__grants.sql"]
    assert 'syntax error at or near "CREAT"' in found["V3__typo.sql"]
    assert "two underscores" in found["V3_1_bad.sql"]
    assert f"{db / 'V4__fill.py'}:1: fails on import: ModuleNotFoundError" in found["V4__fill.py"]
    assert not (tmp_path / "embedded").exists()
