"""Placeholders keep their case, any name can be set somewhere, a missing one is reported once (#11, 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from persistor.settings import load_settings
from tests.migrator.conftest import tables, write


def _run(cli: Any, url: str, folder: Path, *args: str) -> Any:
    return cli(*args, "--url", url, "--location", str(folder))


def test_problem_6_an_environment_placeholder_keeps_its_case(
    cli: Any, db_url: str, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(migrations, "V1__t.sql", "CREATE TABLE ${tableName} (id integer);\n")
    monkeypatch.setenv("PERSISTOR_PLACEHOLDERS_tableName", "from_env")
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 0, result.err
    assert tables(db_url) == {"from_env"}


def test_an_upper_case_variable_still_sets_its_lower_case_name() -> None:
    env = {"PERSISTOR_PLACEHOLDERS_APP_ROLE": "app", "PERSISTOR_PLACEHOLDERS_appRole": "x"}
    placeholders = load_settings(env=env).placeholders
    assert dict(placeholders) == {"APP_ROLE": "app", "app_role": "app", "appRole": "x"}


def test_a_name_no_variable_can_carry_is_set_in_the_configuration_file(
    cli: Any, db_url: str, migrations: Path, tmp_path: Path
) -> None:
    write(migrations, "V1__t.sql", "CREATE TABLE ${app-table.name} (id integer);\n")
    (tmp_path / "persistor.toml").write_text('[placeholders]\n"app-table.name" = "from_file"\n')
    result = _run(cli, db_url, migrations, "migrate")
    assert result.code == 0, result.err
    assert tables(db_url) == {"from_file"}


def test_problem_6_an_undefined_placeholder_is_reported_once_per_file_with_every_line(
    cli: Any, db_url: str, migrations: Path
) -> None:
    body = "".join(f"INSERT INTO t VALUES ('${{appRole}}', {n});\n" for n in range(99))
    write(migrations, "V1__t.sql", "CREATE TABLE t (r text, n integer);\n" + body)
    write(migrations, "V2__u.sql", "\\ir parts/more.sql\nSELECT '${appRole}';\n")
    write(migrations, "parts/more.sql", "SELECT '${appRole}';\n")
    result = _run(cli, db_url, migrations, "validate", "--json")
    assert result.code == 5
    problems = result.json()["error"]["problems"]
    assert [(p["code"], p["script"]) for p in problems] == [
        ("placeholder", "V1__t.sql"),
        ("placeholder", "V2__u.sql"),
    ]
    lines = ", ".join(str(n) for n in range(2, 101))
    assert problems[0]["message"].startswith(
        f"placeholder ${{appRole}} is not defined (lines {lines}); "
    )
    assert "(parts/more.sql line 1; line 2)" in problems[1]["message"]


def test_problem_6_the_advice_names_a_variable_that_works(
    cli: Any, db_url: str, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(migrations, "V1__t.sql", "CREATE TABLE ${tableName} (id integer);\n")
    refused = _run(cli, db_url, migrations, "validate")
    assert refused.code == 5
    assert "the environment variable PERSISTOR_PLACEHOLDERS_tableName" in refused.err
    # Following the advice works.
    monkeypatch.setenv("PERSISTOR_PLACEHOLDERS_tableName", "advised")
    assert _run(cli, db_url, migrations, "migrate").code == 0
    assert tables(db_url) == {"advised"}


def test_the_advice_for_a_name_no_variable_can_carry_names_the_file(
    cli: Any, db_url: str, migrations: Path
) -> None:
    write(migrations, "V1__t.sql", "SELECT '${app-role}';\n")
    refused = _run(cli, db_url, migrations, "validate")
    assert refused.code == 5
    assert "PERSISTOR_PLACEHOLDERS_" not in refused.err
    assert 'as "app-role" under [placeholders] in persistor.toml' in refused.err
