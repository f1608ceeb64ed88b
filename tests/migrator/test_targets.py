"""Many targets: migrate, status and validate over many schemas and databases at once."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg
import pytest

from persistor.errors import EXIT_CODE_SEVERITY, worst_exit_code
from persistor.fleet import migrate_all, status_all, targets_from_file
from persistor.setting_values import Target
from persistor.settings import load_settings
from tests.conftest import url_as
from tests.migrator.conftest import write

pytestmark = pytest.mark.postgres


def _scripts(folder: Path) -> Path:
    write(folder, "V1__accounts.sql", "CREATE TABLE accounts (id int PRIMARY KEY);")
    write(folder, "V2__orders.sql", "CREATE TABLE orders (id int REFERENCES accounts);")
    return folder


def _tables(url: str, schema: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        return {r[0] for r in rows}


def _targets_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "targets.txt"
    path.write_text("# tenants, one a line\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrate_many_schemas_then_a_rerun_has_nothing_to_do(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path
) -> None:
    _scripts(migrations)
    lines = [f"{pg_url} schema=tenant_{n}" for n in range(5)] + [f"{pg_url} name=main"]
    targets = _targets_file(tmp_path, lines)
    first = cli("migrate", "--targets", str(targets), "-l", str(migrations), "--parallel", "3")
    assert first.code == 0, first.err
    assert "6 target(s): 6 done." in first.out
    for schema in [f"tenant_{n}" for n in range(5)] + ["public"]:
        assert _tables(pg_url, schema) == {"accounts", "orders", "schema_history"}
    again = cli("migrate", "--targets", str(targets), "-l", str(migrations), "--json")
    doc = again.json()
    assert again.code == 0 and doc["exit_code"] == 0
    assert [t["name"] for t in doc["targets"]][-1] == "main"
    assert [len(t["result"]["applied"]) for t in doc["targets"]] == [0] * 6
    assert {t["result"]["current_version"] for t in doc["targets"]} == {"2"}


def test_config_targets_share_the_url_and_status_reports_each(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path
) -> None:
    _scripts(migrations)
    (tmp_path / "persistor.toml").write_text(
        f'locations = ["{migrations}"]\n'
        '[[targets]]\nname = "eu"\nschema = "eu"\n'
        '[[targets]]\nname = "us"\nschema = "us"\n',
        encoding="utf-8",
    )
    assert cli("migrate", "--url", pg_url, "--targets", str(_targets_file(tmp_path, [
        f"{pg_url} schema=eu"]))).code == 0  # fmt: skip
    result = cli("status", "--url", pg_url, "--json")
    assert result.code == 0, result.err
    entries = {t["name"]: t for t in result.json()["targets"]}
    assert entries["eu"]["result"]["counts"] == {"applied": 2}
    assert entries["us"]["result"]["counts"] == {"pending": 2}
    text = cli("validate", "--url", pg_url)
    assert text.code == 0 and "eu  valid" in text.out and "us  valid" in text.out


def test_a_broken_target_stops_new_ones_unless_keep_going(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path
) -> None:
    _scripts(migrations)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # V2 fails there: the table exists
        conn.execute("CREATE SCHEMA t1; CREATE TABLE t1.orders (x int)")
    lines = [f"{pg_url} name=t{n} schema=t{n}" for n in range(6)]
    targets = _targets_file(tmp_path, lines)
    stopped = cli("migrate", "--targets", str(targets), "-l", str(migrations), "--parallel", "1")
    assert stopped.code == 4
    assert "1 of 6 target(s) failed: t1 (exit 4)" in stopped.err
    assert "t1  failed (exit 4): V2__orders.sql failed at V2__orders.sql:1" in stopped.out
    assert "6 target(s): 1 done, 1 failed, 4 skipped." in stopped.out
    assert _tables(pg_url, "t0") == {"accounts", "orders", "schema_history"}
    assert _tables(pg_url, "t1") == {"accounts", "orders", "schema_history"}  # V1 kept, V2 not
    assert all(_tables(pg_url, f"t{n}") == set() for n in range(2, 6))  # untouched
    going = cli("migrate", "--targets", str(targets), "-l", str(migrations), "--keep-going")
    assert going.code == 4
    assert "6 target(s): 5 done, 1 failed." in going.out
    for n in (0, *range(2, 6)):
        assert _tables(pg_url, f"t{n}") == {"accounts", "orders", "schema_history"}


def test_a_failed_canary_stops_the_rollout_even_with_keep_going(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path
) -> None:
    _scripts(migrations)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA c1; CREATE TABLE c1.orders (x int)")
    targets = _targets_file(tmp_path, [f"{pg_url} name=c{n} schema=c{n}" for n in range(5)])
    args = ("migrate", "--targets", str(targets), "-l", str(migrations), "--json")
    result = cli(*args, "--canary", "2", "--keep-going")
    states = [t["state"] for t in result.json()["targets"]]
    assert result.code == 4 and states == ["done", "failed", "skipped", "skipped", "skipped"]
    fine = cli(*args, "--canary", "1", "--parallel", "1")  # c0 passes; c1 then stops the rest
    assert [t["state"] for t in fine.json()["targets"]] == ["done", "failed", *["skipped"] * 3]


def test_unreachable_and_unprivileged_targets_are_named_with_their_codes(
    cli: Any, pg_url: str, role: str, migrations: Path, tmp_path: Path
) -> None:
    _scripts(migrations)
    dead = f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres"
    lines = [f"{dead} name=gone", f"{pg_url} name=ok schema=ok"]
    args = ("migrate", "-l", str(migrations), "--keep-going")
    result = cli(*args, "--targets", str(_targets_file(tmp_path, lines)))
    assert result.code == 3
    assert "gone  failed (exit 3): cannot connect to postgresql://postgres@127.0.0.1:" in result.out
    assert "ok    applied 2 script(s), at version 2" in result.out
    lines.append(f"{url_as(pg_url, role)} name=weak schema=ok")  # may not write ok's history
    worse = cli(*args, "--targets", str(_targets_file(tmp_path, lines)), "--json")
    doc = worse.json()
    assert worse.code == doc["exit_code"] == 1  # a missing privilege is worse than no server
    weak = doc["targets"][2]
    assert weak["exit_code"] == 1 and weak["error"]["type"] == "PrivilegeError"
    assert "GRANT" in weak["error"]["message"]


def test_malformed_url_and_duplicate_name_are_refused_before_anything_runs(
    cli: Any, pg_url: str, migrations: Path, tmp_path: Path
) -> None:
    _scripts(migrations)
    bad = _targets_file(tmp_path, [f"{pg_url} schema=a", "postgresql://db1:54x2/app"])
    result = cli("migrate", "--targets", str(bad), "-l", str(migrations))
    assert result.code == 2
    assert "target 'db1:54x2/app' has a malformed URL postgresql://db1:54x2/app" in result.err
    assert "host 'db1:54x2' has no valid port" in result.err
    assert _tables(pg_url, "a") == set()
    dup = _targets_file(tmp_path, [f"{pg_url} name=x schema=a", f"{pg_url} name=x schema=b"])
    result = cli("migrate", "--targets", str(dup), "-l", str(migrations), "--json")
    assert result.code == 2 and result.json()["error"]["type"] == "UsageError"
    assert "target 'x' is named twice" in result.json()["error"]["message"]
    junk = _targets_file(tmp_path, [f"{pg_url} tenant=a"])
    result = cli("status", "--targets", str(junk), "-l", str(migrations))
    assert result.code == 2 and "'tenant=a' is not name=NAME or schema=SCHEMA" in result.err


def test_the_python_api_returns_one_result_per_target(pg_url: str, migrations: Path) -> None:
    _scripts(migrations)
    settings = load_settings({"url": pg_url, "locations": [str(migrations)]}, env={})
    targets = [Target("a", None, "api_a"), Target("b", pg_url, "api_b")]
    seen: list[tuple[str, str]] = []
    result = migrate_all(settings, targets, parallel=2, on_progress=lambda e: seen.append(
        (e.target, e.kind)))  # fmt: skip
    assert result.exit_code == 0 and result.counts == {"done": 2, "failed": 0, "skipped": 0}
    assert [len(t.result.applied) for t in result.targets] == [2, 2]
    assert {("a", "started"), ("a", "finished"), ("b", "event")} <= set(seen)
    status = status_all(settings, targets, parallel=1)
    assert [t.result.current_version for t in status.targets] == ["2", "2"]


def test_targets_file_names_default_to_host_database_and_schema(tmp_path: Path) -> None:
    path = _targets_file(tmp_path, [
        "postgresql://app:secret@h1:5432,h2:5432/db?target_session_attrs=read-write schema=s",
        "sqlite:///x.db  # a comment after the URL",
    ])  # fmt: skip
    a, b = targets_from_file(path)
    assert a == Target(
        "h1:5432,h2:5432/db#s",
        "postgresql://app:secret@h1:5432,h2:5432/db?target_session_attrs=read-write",
        "s",
    )
    assert b.name == "x.db" and b.url == "sqlite:///x.db"


def test_worst_exit_code_follows_the_documented_order() -> None:
    assert worst_exit_code([]) == 0
    assert worst_exit_code([0, 5, 6]) == 6
    assert worst_exit_code([6, 3, 4]) == 4
    assert worst_exit_code([4, 1]) == 1 and worst_exit_code([1, 2]) == 2
    assert EXIT_CODE_SEVERITY[0] == 0 and worst_exit_code([2, 99]) == 99
