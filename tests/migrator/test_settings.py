"""The settings table: the loader, the options, the README and the fixtures all agree with it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from persistor.cli.main import cli as click_group
from persistor.errors import UsageError
from persistor.settings import Settings, load_settings
from persistor.settings_table import TABLE, Setting, environment_variables

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_configuration_rows() -> list[list[str]]:
    """Return the cells of each row of the README's Configuration table."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration") :]
    lines = section[section.index("| setting |") :].split("\n\n", 1)[0].splitlines()
    return [
        [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        for line in lines[2:]
    ]


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def check_row(setting: Setting, cells: list[str]) -> None:
    label, command_line, environment, key, default = cells
    assert label == setting.label
    if setting.flags:
        prefix = f"{setting.command} " if setting.command else ""
        spans = code_spans(command_line)
        assert spans, command_line
        for span in spans:
            assert span.startswith(prefix), span
            assert span[len(prefix) :].split()[0] in setting.flags, span
    else:
        assert command_line == "—"
    if setting.env:
        assert [s.split("=")[0] for s in code_spans(environment)] == list(setting.env)
    else:
        assert environment == "—"
    assert re.split(r"[ =]", code_spans(key)[0].strip("[]"))[0] == setting.key
    assert default.replace("`", "") == setting.shown_default


def test_readme_configuration_table_matches_the_settings_table() -> None:
    rows = readme_configuration_rows()
    assert [r[0] for r in rows] == [s.label for s in TABLE]
    for setting, cells in zip(TABLE, rows, strict=True):
        check_row(setting, cells)


def test_settings_fields_are_the_table_with_its_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert set(fields) - {"locations_configured", "config_file"} == {s.key for s in TABLE}
    defaults = Settings()
    for setting in TABLE:
        expected = setting.factory() if setting.factory else setting.default
        assert getattr(defaults, setting.key) == expected, setting.key
    assert load_settings(env={}) == defaults


def test_every_flag_of_the_table_is_an_option_of_its_commands() -> None:
    for name, command in click_group.commands.items():
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        for setting in TABLE:
            if setting.flags and setting.command in (None, name):
                assert set(setting.flags) <= opts, (name, setting.key)


def test_fixtures_clear_exactly_the_variables_settings_read() -> None:
    env = {
        "PERSISTOR_LOCK_MODE": "table",
        "DATABASE_URL": "sqlite:///x.db",
        "PERSISTOR_PLACEHOLDERS_APP": "a",
        "PERSISTOR_TEST_URL": "postgresql://keep/me",
        "PERSISTOR_FUZZ_EXAMPLES": "5",
        "HOME": "/home/me",
    }
    assert environment_variables(env) == [
        "PERSISTOR_LOCK_MODE",
        "DATABASE_URL",
        "PERSISTOR_PLACEHOLDERS_APP",
    ]
    assert load_settings(env=env).lock_mode == "table"


def test_each_setting_read_from_each_source(tmp_path: Path) -> None:
    (tmp_path / "persistor.toml").write_text(
        'history_table = "from_file"\nlock_timeout = 7\nconnect_timeout = 3\n'
        'out_of_order = true\nlocations = ["db"]\nembedded_dir = "pg"\n'
        '[placeholders]\nfile = "f"\nboth = "file"\n'
    )
    env = {
        "PERSISTOR_LOCK_TIMEOUT": "8",
        "PERSISTOR_LOCK_MODE": "TABLE",
        "PERSISTOR_LOCK_LEASE": "4",
        "PERSISTOR_CLEAN_ENABLED": "yes",
        "PERSISTOR_PLACEHOLDERS_BOTH": "env",
        "PERSISTOR_SCHEMA": "s",
    }
    overrides: dict[str, Any] = {"lock_timeout": "9", "placeholders": ["cli=c"]}
    settings = load_settings(overrides, env=env, cwd=tmp_path)
    assert settings.history_table == "from_file"
    assert (settings.lock_timeout, settings.lock_lease, settings.lock_mode) == (9.0, 4.0, "table")
    assert settings.connect_timeout == 3 and settings.out_of_order and settings.clean_enabled
    assert settings.locations == ((tmp_path / "db").resolve(),) and settings.locations_configured
    assert settings.embedded_dir == (tmp_path / "pg").resolve()
    # BOTH keeps its case, and (all upper case) still sets its lower-case twin too
    assert dict(settings.placeholders) == {"file": "f", "both": "env", "BOTH": "env", "cli": "c"}
    assert settings.schema == "s" and settings.config_file == tmp_path / "persistor.toml"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"env": {"PERSISTOR_LOCK_TIMEOUT": "soon"}}, "lock_timeout must be a number of seconds, got 'soon' from PERSISTOR_LOCK_TIMEOUT"),
        ({"env": {"PERSISTOR_LOCK_MODE": "row"}}, "lock_mode must be one of session, table, got 'row' from PERSISTOR_LOCK_MODE"),
        ({"file": "lock_lease = 0.5\n"}, "lock_lease must be at least 1 second, got 0.5 in "),
        ({"file": "placeholders = 5\n"}, "placeholders must be a table of names and values, got 5 in "),
        ({"file": "locations = 5\n"}, "locations must be a folder or a list of folders, got 5 in "),
        ({"overrides": {"placeholders": ["x"]}}, "placeholders must be NAME=VALUE ('x' is not), got ['x']"),
        ({"overrides": {"lock_timout": 1}}, "load_settings: unknown setting(s) lock_timout; known:"),
    ],
)  # fmt: skip
def test_a_bad_value_names_the_setting_and_where_it_came_from(
    tmp_path: Path, source: dict[str, Any], message: str
) -> None:
    if "file" in source:
        (tmp_path / "persistor.toml").write_text(source["file"])
    with pytest.raises(UsageError) as info:
        load_settings(source.get("overrides"), env=source.get("env", {}), cwd=tmp_path)
    assert message in str(info.value)
