"""The command line's own behaviour: --json on every failure, -v/-vv logs, light start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import persistor
from tests.migrator.conftest import write


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("migrate", "--json", "--no-such-option"), "No such option '--no-such-option'"),
        (("--json", "migrat"), "No such command 'migrat'"),
        (("new", "--json"), "Missing argument 'NAME'"),
        (("status", "--json", "--lock-mode", "row"), "lock_mode must be one of session, table"),
        (("status", "--json", "--lock-timeout", "soon"), "lock_timeout must be a number"),
        (("status", "--json", "-p", "novalue"), "placeholders must be NAME=VALUE"),
    ],
)
def test_bad_command_line_with_json_prints_the_error_document(
    cli: Any, args: tuple[str, ...], message: str
) -> None:
    result = cli(*args)
    assert result.code == 2
    error = result.json()["error"]
    assert (error["type"], error["exit_code"]) == ("UsageError", 2)
    assert message in error["message"]
    assert message in result.err


def test_bad_command_line_without_json_prints_nothing_on_stdout(cli: Any) -> None:
    result = cli("migrate", "--no-such-option")
    assert (result.code, result.out) == (2, "")
    assert "No such option '--no-such-option'" in result.err


@pytest.fixture
def failing_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `persistor status` hit a bug: an exception persistor does not raise on purpose."""
    import persistor.api

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in persistor")

    monkeypatch.setattr(persistor.api, "status", boom)


@pytest.mark.usefixtures("failing_status")
def test_unexpected_error_with_json_prints_a_document(cli: Any, tmp_path: Path) -> None:
    result = cli("status", "--url", f"sqlite:///{tmp_path / 'x.db'}", "--json")
    assert result.code == 1
    error = result.json()["error"]
    assert (error["type"], error["exit_code"]) == ("UnexpectedError", 1)
    assert error["message"] == "RuntimeError: a bug in persistor"
    assert "unexpected error: RuntimeError" in result.err
    assert "run again with -vv for the traceback" in result.err
    assert "Traceback" not in result.err


@pytest.mark.usefixtures("failing_status")
def test_vv_shows_the_traceback_of_an_unexpected_error(cli: Any, tmp_path: Path) -> None:
    result = cli("status", "--url", f"sqlite:///{tmp_path / 'x.db'}", "-vv")
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert "run again with -vv" not in result.err


def test_new_under_a_file_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    not_a_folder = write(tmp_path, "notes.txt", "keep me")
    result = cli("new", "x", "--location", str(not_a_folder / "db"), "--json")
    assert result.code == 2
    error = result.json()["error"]
    assert error["type"] == "UsageError"
    assert f"cannot create the migrations folder {not_a_folder / 'db'}" in error["message"]
    assert not_a_folder.read_text() == "keep me"


def test_v_logs_connection_lock_and_each_script(cli: Any, migrations: Path, tmp_path: Path) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    write(migrations, "V2__b.sql", "CREATE TABLE b (id int);")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = cli("migrate", "--url", url, "--location", str(migrations), "-v")
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("[persistor.")]
    expected = [
        f"connecting to {url}",
        "took the migration lock on main.schema_history",
        "applying V1__a.sql (1 of 2)",
        "applied V1__a.sql in",
        "applying V2__b.sql (2 of 2)",
        "applied V2__b.sql in",
        "releasing the migration lock",
    ]
    for text in expected:
        assert any(text in line for line in lines), (text, lines)
    assert "DEBUG" not in result.err  # debug lines are for -vv
    quiet = cli("status", "--url", url, "--location", str(migrations))
    assert "[persistor." not in quiet.err  # logging ends with the run that asked for it


def test_vv_logs_where_settings_came_from_without_the_password(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSISTOR_LOCK_TIMEOUT", "12")
    url = "postgresql://someone:hunter2secret@127.0.0.1:1/nowhere"
    result = cli("-v", "test", "--url", url, "-v")  # -v before and after the command add up
    assert result.code == 3
    assert "lock_timeout = 12.0 from PERSISTOR_LOCK_TIMEOUT" in result.err
    assert "url = postgresql://someone:***@127.0.0.1:1/nowhere" in result.err
    assert "hunter2secret" not in result.out + result.err


def test_the_package_exports_its_api_once_and_lazily() -> None:
    names = set(persistor.__all__)
    assert {"migrate", "load_settings", "LockError", "PrivilegeError", "Settings"} <= names
    namespace: dict[str, Any] = {}
    exec("from persistor import *", namespace)
    assert names == set(namespace) - {"__builtins__"}
    with pytest.raises(AttributeError):
        _ = persistor.no_such_name
    code = (
        "import sys; from persistor.cli.main import main; code = main(['--version']); "
        "print(code, sorted(m for m in sys.modules if m.startswith(('persistor', 'psycopg'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # --version loads the command line and the settings table, not the API or a driver.
    assert proc.stdout.splitlines()[-1] == (
        "0 ['persistor', 'persistor.cli', 'persistor.cli.fleet', 'persistor.cli.inspect', "
        "'persistor.cli.main', 'persistor.cli.options', 'persistor.errors', "
        "'persistor.setting_values', 'persistor.settings_table']"
    )
