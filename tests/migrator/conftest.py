"""Fixtures for migrator tests: a database of each engine, a migrations folder, the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from persistor.cli.main import main
from persistor.settings_table import environment_variables
from tests.conftest import get_pg_server, pg_params


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in environment_variables(os.environ):  # every variable settings read, no more
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray persistor.toml / pyproject.toml


@pytest.fixture(params=["sqlite", *(f"postgresql-{label}" for label in pg_params())])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database of each engine (PostgreSQL on every configured server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    server = get_pg_server(request.param.split("-", 1)[1])
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """An empty migrations folder."""
    path = tmp_path / "migrations"
    path.mkdir()
    return path


def write(folder: Path, name: str, text: str) -> Path:
    """Write a migration file (creating subfolders) and return its path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class CliResult:
    """What one in-process run of the command line produced."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `persistor ARGS…` in-process and return exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def role(pg_url: str) -> Iterator[str]:
    """A login role with no privileges beyond connecting; dropped after the test."""
    name = "mig_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def tables(url: str) -> set[str]:
    """Return the user tables in the database (history table excluded)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    else:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
    return {r[0] for r in rows} - {"schema_history"}


def history(url: str) -> list[tuple[Any, ...]]:
    """Return (version, description, type, script, success) rows in rank order."""
    query = (
        "SELECT version, description, type, script, success FROM schema_history "
        "ORDER BY installed_rank"
    )
    if url.startswith("sqlite"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return [(*r[:4], bool(r[4])) for r in conn.execute(query).fetchall()]
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]
