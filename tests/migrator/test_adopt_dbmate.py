"""A database built and migrated by dbmate itself, adopted with `persistor baseline`.

dbmate is the npm package `dbmate` (.ci/run installs it into bench/.tools/npm,
as bench/setup.sh does); without it these tests skip and say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from persistor.core.scripts import discover
from tests.migrator.conftest import write

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]

FILES = {
    "20240101100000_create_users.sql": (
        "-- migrate:up\nCREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n"
        "INSERT INTO users (name) VALUES ('first');\n\n"
        "-- migrate:down\nDROP TABLE users;\n"
    ),
    "20240102100000_index_users.sql": (
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY users_name ON users (name);\n\n"
        "-- migrate:down\nDROP INDEX users_name;\n"
    ),
}
NEXT = (
    "20240301100000_add_email.sql",
    "-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n\n"
    "-- migrate:down\nALTER TABLE users DROP COLUMN email;\n",
)


def _dbmate() -> str:
    found = (
        os.environ.get("PERSISTOR_DBMATE")
        or shutil.which("dbmate")
        or str(REPO / "bench/.tools/npm/node_modules/.bin/dbmate")
    )
    if not Path(found).is_file():
        pytest.skip(
            "dbmate is not installed: .ci/run installs it with npm into bench/.tools/npm "
            "(npm install dbmate there), or set PERSISTOR_DBMATE to its path"
        )
    return found


def _dbmate_url(url: str) -> str:
    """Return the database URL in the form dbmate reads (a socket directory as ?socket=)."""
    with psycopg.connect(url) as conn:
        info = conn.info
        where = (
            f"@/{info.dbname}?socket={info.host}"
            if info.host.startswith("/")
            else (f"@{info.host}:{info.port}/{info.dbname}?sslmode=disable")
        )
        if info.host.startswith("/"):
            where += f"&port={info.port}"
        return f"postgres://{info.user}{where}"


def _built_by_dbmate(url: str, folder: Path) -> None:
    for name, text in FILES.items():
        write(folder, name, text)
    done = subprocess.run(
        [
            _dbmate(),
            "--url",
            _dbmate_url(url),
            "--migrations-dir",
            str(folder),
            "--no-dump-schema",
            "up",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["20240101100000", "20240102100000"]


def test_dbmate_database_adopted_and_continued(cli: Any, pg_url: str, tmp_path: Path) -> None:
    """The dbmate folder stays dbmate's; persistor continues from a folder of its own."""
    _built_by_dbmate(pg_url, tmp_path / "dbmate")
    ours = tmp_path / "persistor"
    write(ours, "V20240301100000__add_email.sql", "ALTER TABLE users ADD COLUMN email text;")
    args = ("--url", pg_url, "--location", str(ours))
    refused = cli("migrate", *args)
    assert refused.code == 5 and "`persistor baseline --from dbmate`" in refused.err
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    assert "Imported 2 row(s) from dbmate (schema_migrations)" in adopted.out
    assert cli("migrate", *args).code == 0
    doc = cli("status", *args, "--json").json()
    assert [(m["version"], m["state"]) for m in doc["migrations"]] == [
        ("20240101100000", "applied_no_file"),
        ("20240102100000", "applied_no_file"),
        ("20240301100000", "applied"),
    ]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)  # seed ran once


def test_dbmate_folder_adopted_and_continued(cli: Any, pg_url: str, tmp_path: Path) -> None:
    """persistor reads the dbmate folder itself and continues it with a new dbmate file."""
    folder = tmp_path / "dbmate"
    _built_by_dbmate(pg_url, folder)
    assert discover([folder]).versioned, "persistor reads the dbmate folder itself"
    write(folder, *NEXT)
    args = ("--url", pg_url, "--location", str(folder))
    adopted = cli("baseline", *args)
    assert adopted.code == 0, adopted.err
    migrated = cli("migrate", *args, "--json")
    assert migrated.code == 0, migrated.err
    assert [a["script"] for a in migrated.json()["applied"]] == [NEXT[0]]
    doc = cli("status", *args, "--json").json()
    assert doc["problems"] == []
    assert {m["state"] for m in doc["migrations"]} == {"applied"}
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)  # seed ran once
