"""status while another migrator works: what runs now is `running`, not `failed`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from persistor import api
from persistor.settings import Settings
from tests.conftest import url_as
from tests.migrator.conftest import write

pytestmark = pytest.mark.postgres

SLOW_SCRIPT = """-- persistor:no-transaction
CREATE TABLE before_gate (id int);
SELECT count(*) FROM gate;
CREATE TABLE after_gate (id int);
"""


def _progress(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT checksum FROM schema_history WHERE script = 'V2__slow.sql' AND NOT success"
        ).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture(params=["session", "table"])
def blocked_migrate(
    request: pytest.FixtureRequest, pg_url: str, migrations: Path
) -> Iterator[tuple[Settings, subprocess.Popen[str], psycopg.Connection[Any]]]:
    """A migrate stopped inside V2's second statement by a lock the test holds."""
    settings = Settings(url=pg_url, locations=(migrations,), lock_mode=str(request.param))
    write(migrations, "V1__gate.sql", "CREATE TABLE gate (id int);")
    api.migrate(settings)
    write(migrations, "V2__slow.sql", SLOW_SCRIPT)
    gate = psycopg.connect(pg_url)
    gate.execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSISTOR_")}
    env["PERSISTOR_LOCK_MODE"] = str(request.param)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "persistor",
            "migrate",
            "--url",
            pg_url,
            "--location",
            str(migrations),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (_progress(pg_url) or "").startswith("partial-sha256:1:"):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "migrate never reached the gate"
            time.sleep(0.05)
        yield settings, run, gate
    finally:
        gate.close()
        if run.poll() is None:
            run.kill()
        run.communicate()


def _states(settings: Settings) -> dict[str, str]:
    return {m.script: m.state for m in api.status(settings).migrations}


def test_status_shows_the_script_running_then_applied(
    blocked_migrate: tuple[Settings, subprocess.Popen[str], psycopg.Connection[Any]],
    cli: Any,
) -> None:
    settings, run, gate = blocked_migrate
    result = api.status(settings)
    assert {m.script: m.state for m in result.migrations} == {
        "V1__gate.sql": "applied",
        "V2__slow.sql": "running",
    }
    assert result.lock_holder is not None
    assert result.problems == ()
    shown = cli("status", "--url", settings.url or "", "--location", str(settings.locations[0]))
    assert "running" in shown.out
    assert "A migration is in progress" in shown.out
    assert api.validate(settings).scripts_checked == 2  # a running script is not a problem

    gate.rollback()  # open the gate
    _, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    after = api.status(settings)
    assert _states(settings) == {"V1__gate.sql": "applied", "V2__slow.sql": "applied"}
    assert after.lock_holder is None


def test_a_killed_migrators_script_shows_failed(
    blocked_migrate: tuple[Settings, subprocess.Popen[str], psycopg.Connection[Any]],
) -> None:
    settings, run, gate = blocked_migrate
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    # The server notices a dead client only when it next talks to it; end the
    # blocked backend the way an operator (or client_connection_check_interval) would.
    gate.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    gate.rollback()
    if settings.lock_mode == "table":
        # A leased lock outlives its dead owner until the lease runs out
        # (30 s); until then the script honestly shows as running.
        assert _states(settings)["V2__slow.sql"] == "running"
        gate.execute("UPDATE schema_history_lock SET expires_at = now() - interval '1 second'")
        gate.commit()
    deadline = time.monotonic() + 30
    while _states(settings)["V2__slow.sql"] != "failed":
        assert time.monotonic() < deadline, _states(settings)
        time.sleep(0.05)
    result = api.status(settings)
    assert result.lock_holder is None
    assert result.problems == ()  # a killed no-transaction script: the next migrate resumes it


def test_status_by_a_role_that_may_read_history_but_not_the_lock_table(
    pg_url: str, migrations: Path, role: str
) -> None:
    write(migrations, "V1__a.sql", "CREATE TABLE a (id int);")
    api.migrate(Settings(url=pg_url, locations=(migrations,), lock_mode="table"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON schema_history TO {role}")
    reader = Settings(url=url_as(pg_url, role), locations=(migrations,))
    result = api.status(reader)
    assert [m.state for m in result.migrations] == ["applied"]
    assert result.lock_holder is None
