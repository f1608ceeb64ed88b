"""Helpers for the toolbox tests: small projects, and pytest run on them as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import get_pg_server

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[tool.persistor]
locations = ["migrations"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""


@dataclass
class Run:
    """What one run of a command printed, and its exit code."""

    code: int
    out: str


def clean_env(**extra: str) -> dict[str, str]:
    """Return the environment without persistor's settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSISTOR_")}
    env.pop("DATABASE_URL", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 240) -> Run:
    """Run a command and return its exit code and combined output."""
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def server_url() -> str:
    """The admin URL of the embedded server the inner test runs make their databases on."""
    return get_pg_server("embedded").admin_url


def databases(url: str, prefix: str) -> list[str]:
    """Return the names of the databases on the server starting with prefix."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return [str(r[0]) for r in rows]


def make_project(root: Path, files: dict[str, str]) -> Path:
    """Write a project (pyproject.toml plus `files`) under root and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def inner_pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run pytest on a project in a process of its own, with the plugin from the entry point."""
    return run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], project, env
    )
