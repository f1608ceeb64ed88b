"""The repository's .pre-commit-hooks.yaml, run by the real pre-commit in a temporary git repo."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.toolbox.conftest import REPO, clean_env, run

pytest.importorskip("pre_commit")
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git_repo(root: Path) -> Path:
    """Make a git repository holding a persistor project with one good migration."""
    root.mkdir()
    (root / "persistor.toml").write_text('locations = ["db"]\n')
    (root / "db").mkdir()
    (root / "db" / "V1__items.sql").write_text("CREATE TABLE items (id integer);\n")
    for args in (
        ["init", "-q"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "t"],
    ):
        run(["git", *args], root)
    run(["git", "add", "-A"], root)
    return root


def hook_env(tmp_path: Path) -> dict[str, str]:
    """The environment for pre-commit: its own home; the hook gets persistor from this repository
    (what the hook installs) and its dependencies from ours, so no download is needed."""
    return clean_env(
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        PIP_NO_DEPS="1",
        PYTHONPATH=sysconfig.get_paths()["purelib"],
    )


def test_validate_hook_passes_then_stops_bad_migrations(tmp_path: Path) -> None:
    project = git_repo(tmp_path / "project")
    env = hook_env(tmp_path)
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "persistor-validate"]
    good = run([*pre_commit, "--all-files"], project, env, timeout=300)
    assert good.code == 0, good.out
    assert "persistor validate (offline)" in good.out and "Passed" in good.out

    (project / "db" / "V2__broken.sql").write_text("CREATE TABLE tags (id integer;\n")
    (project / "db" / "v3_lower.sql").write_text("SELECT 1;\n")
    (project / "db" / "V4__fill.py").write_text("import no_such_module\n")
    run(["git", "add", "-A"], project)
    bad = run([*pre_commit, "--all-files"], project, env, timeout=300)
    assert bad.code == 1, bad.out
    assert "Failed" in bad.out and "exit code: 5" in bad.out
    assert 'V2__broken.sql:1: syntax error at or near ";"' in bad.out
    assert "v3_lower.sql: looks like a migration but the prefix 'v' is lower case" in bad.out
    assert "V4__fill.py:1: fails on import: ModuleNotFoundError" in bad.out


def test_lint_hook_stops_a_blocking_index_on_an_existing_table(tmp_path: Path) -> None:
    project = git_repo(tmp_path / "project")
    env = hook_env(tmp_path)
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "persistor-lint"]
    good = run([*pre_commit, "--all-files"], project, env, timeout=300)
    assert good.code == 0, good.out
    assert "persistor lint" in good.out and "Passed" in good.out

    (project / "db" / "V2__index.sql").write_text("CREATE INDEX ix_items_id ON items (id);\n")
    run(["git", "add", "-A"], project)
    bad = run([*pre_commit, "--all-files"], project, env, timeout=300)
    assert bad.code == 1, bad.out
    assert "Failed" in bad.out and "exit code: 5" in bad.out
    assert "index-not-concurrent" in bad.out and "V2__index.sql" in bad.out


def test_hooks_file_defines_validate_and_lint() -> None:
    text = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "entry: persistor validate --offline" in text
    assert "entry: persistor lint" in text and "files: \\.sql$" in text
