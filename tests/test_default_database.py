"""The main job: `persistor migrate` with nothing configured deploys Ecliptix on the embedded server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from persistor.ecliptix_app import PACKAGED_MIGRATIONS
from tests.conftest import PgServer
from tests.ecliptix.sql_support import TABLES

FUNCTIONS = {
    "get_phone_number",
    "register_app_device_if_not_exists",
    "ensure_phone_number",
    "verify_phone_for_secret_key_recovery",
    "get_full_flow_state",
    "initiate_verification_flow",
    "request_resend_otp",
    "insert_otp_record",
    "update_otp_status",
    "update_verification_flow_status",
    "expire_associated_otp",
    "log_login_attempt",
    "log_membership_attempt",
    "create_membership",
    "update_membership_secure_key",
    "login_membership",
    "verify_otp",
}


def _version(script: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.split(r"[._]", script[1 : script.index("__")]))


# What the packaged migrations hold (later versions add scripts; these follow).
VERSIONED = sorted((p.name for p in PACKAGED_MIGRATIONS.glob("V*__*.sql")), key=_version)
REPEATABLE = sorted(p.name for p in PACKAGED_MIGRATIONS.glob("R__*.sql"))
LATEST = VERSIONED[-1][1 : VERSIONED[-1].index("__")]


def persistor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "persistor", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PERSISTOR_") and k != "DATABASE_URL"
    }
    env.update(extra)
    return env


def test_migrate_with_nothing_configured_deploys_ecliptix_on_embedded(tmp_path: Path) -> None:
    env = clean_env(PERSISTOR_EMBEDDED_DIR=str(tmp_path / "pg"))
    try:
        first = persistor("migrate", env=env)
        assert first.returncode == 0, first.stderr
        assert "embedded PostgreSQL, data directory" in first.stdout
        assert "applied V001__initial_production_baseline.sql" in first.stdout
        assert (
            f"Applied {len(VERSIONED) + len(REPEATABLE)} script(s); now at version {LATEST}."
            in first.stdout
        )

        again = persistor("migrate", env=env)
        assert again.returncode == 0
        assert "Nothing to do" in again.stdout

        status = persistor("status", "--json", env=env)
        assert status.returncode == 0
        doc = json.loads(status.stdout)
        assert {m["state"] for m in doc["migrations"]} == {"applied"}
        assert [m["type"] for m in doc["migrations"]] == ["versioned"] * len(VERSIONED) + [
            "repeatable"
        ] * len(REPEATABLE)

        url = doc["database"]["url"].replace("postgres:***@", "postgres@")
        with psycopg.connect(url) as conn:
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            triggers = conn.execute(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND NOT t.tgisinternal AND t.tgname LIKE '%updated_at%'"
            ).fetchone()
            functions = {
                r[0]
                for r in conn.execute(
                    "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'public'"
                )
            }
        assert tables >= set(TABLES)
        assert triggers == (9,)
        assert functions >= FUNCTIONS

        demo = persistor("demo", env=env)
        assert demo.returncode == 0, demo.stderr
        assert "Login succeeded." in demo.stdout
    finally:
        stopped = persistor("stop-embedded", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert "Stopped the embedded PostgreSQL" in stopped.stdout


def test_editing_one_function_script_redeploys_only_it_and_a_limit_changes_in_one_statement(
    pg_server: PgServer, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(PACKAGED_MIGRATIONS, migrations)
    url = pg_server.create_database()
    env = clean_env()
    try:
        assert (
            persistor("migrate", "--url", url, "--location", str(migrations), env=env).returncode
            == 0
        )

        script = migrations / "R__03_verification_flow_functions.sql"
        script.write_text(script.read_text() + "\n-- reviewed " + uuid.uuid4().hex + "\n")
        result = persistor(
            "migrate", "--url", url, "--location", str(migrations), "--json", env=env
        )
        assert result.returncode == 0, result.stderr
        assert [a["script"] for a in json.loads(result.stdout)["applied"]] == [
            "R__03_verification_flow_functions.sql"
        ]

        (migrations / "V9000__allow_31_flows_per_hour.sql").write_text(
            "UPDATE ecliptix_limits SET value = 31 WHERE name = 'flows_per_phone_per_window';\n"
        )
        result = persistor(
            "migrate", "--url", url, "--location", str(migrations), "--json", env=env
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["current_version"] == "9000"

        with psycopg.connect(url, autocommit=True) as conn:
            phone = conn.execute(
                "SELECT unique_id FROM ensure_phone_number('+15550001111', 'US')"
            ).fetchone()
            assert phone is not None
            outcomes = []
            for n in range(32):
                # a device of its own each time: one device has a limit of its own
                device = conn.execute(
                    "SELECT unique_id FROM register_app_device_if_not_exists(gen_random_uuid(), gen_random_uuid(), 1)"
                ).fetchone()
                assert device is not None
                purpose = ["registration", "login", "password_recovery", "update_phone"][n % 4]
                row = conn.execute(
                    "SELECT outcome FROM initiate_verification_flow(%s, %s, %s)",
                    (device[0], phone[0], purpose),
                ).fetchone()
                assert row is not None
                outcomes.append(row[0])
                # a new flow each time: expire the pending one of that purpose
                conn.execute(
                    "UPDATE verification_flows SET status = 'expired' WHERE status = 'pending'"
                )
        assert outcomes[:31] == ["created"] * 31
        assert outcomes[31] == "global_rate_limit_exceeded"
    finally:
        pg_server.drop_database(url)


def test_stress_command_reports_every_invariant_holding(pg_server: PgServer) -> None:
    url = pg_server.create_database()
    env = clean_env()
    try:
        assert persistor("migrate", "--url", url, env=env).returncode == 0
        result = persistor(
            "stress", "--url", url, "--clients", "8", "--duration", "1", "--json", env=env
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["invariants_hold"] is True
        assert report["total_calls"] > 0
        assert len(report["invariants"]) >= 8
    finally:
        pg_server.drop_database(url)
