"""Upgrade a version 1 database that holds data to version 2 with persistor.

Version 1 is deployed from tests/ecliptix/data/v1_migrations (the scripts
exactly as version 1 shipped them) and filled through its own functions:
devices, phones in several regions, flows in every status and purpose, OTPs,
failed checks, memberships with and without keys, login and membership
attempts, a lock-out, audit rows, soft-deleted rows, a registered
application role. Then the same database and history table are migrated with
the packaged folder. Every row is still there with its values (new columns
aside), and version 1 callers - version 1 parameter lists, version 1 role -
keep working.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from persistor.api import migrate
from persistor.ecliptix_app import PACKAGED_MIGRATIONS
from persistor.settings import Settings
from tests.conftest import PgServer, url_as
from tests.ecliptix.deploy import V1_MIGRATIONS
from tests.ecliptix.sql_support import (
    V1_STATE_TABLES,
    Conn,
    make_device,
    make_flow,
    make_otp,
    make_phone,
    move_back,
    new_number,
    one,
    scalar,
)

V1_TABLES = (*V1_STATE_TABLES, "ecliptix_app_roles")
PURPOSES = ("unspecified", "registration", "login", "password_recovery", "update_phone")


@pytest.fixture
def v1_url(pg_url: str) -> str:
    """A database deployed from the version 1 scripts."""
    result = migrate(Settings(url=pg_url, locations=(V1_MIGRATIONS,), locations_configured=True))
    assert result.current_version == "001"
    return pg_url


@pytest.fixture
def app_role(pg_server: PgServer, v1_url: str) -> Iterator[str]:
    """A login role registered with version 1's ecliptix_grant_app_role."""
    name = "upg_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(v1_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def register(db: Conn, key: bytes | None, region: str | None = None) -> dict[str, Any]:
    """A version 1 registration: device, phone, verified flow, membership, key."""
    device = make_device(db)
    number = new_number()
    phone = make_phone(db, number, region, device)
    flow = make_flow(db, device, phone, "registration", 42)["unique_identifier"]
    otp = make_otp(db, flow)
    assert one(db, "update_otp_status", otp, "verified")["success"]
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 1
    made = one(db, "create_membership", flow, 42, otp, "otp_verified")
    assert made["outcome"] == "created"
    if key is not None:
        assert one(db, "update_membership_secure_key", made["membership_unique_id"], key)["success"]
    return {
        "device": device,
        "number": number,
        "phone": phone,
        "flow": flow,
        "otp": otp,
        "membership": made["membership_unique_id"],
    }


def flows_in_every_state(db: Conn) -> dict[str, Any]:
    """Flows of every purpose and status, with OTPs in every status."""
    device = make_device(db)
    phone = make_phone(db, new_number(), "DE", device)
    flows = {p: make_flow(db, device, phone, p, 7)["unique_identifier"] for p in PURPOSES}
    otps = {p: make_otp(db, f) for p, f in flows.items()}
    # a pending login flow that stays pending (a second OTP retires the first)
    pending = make_flow(db, make_device(db), phone, "login", 8)["unique_identifier"]
    make_otp(db, pending)
    make_otp(db, pending)
    one(db, "update_otp_status", otps["login"], "failed")
    one(db, "update_otp_status", otps["update_phone"], "failed")
    one(db, "update_verification_flow_status", flows["update_phone"], "failed")
    one(db, "expire_associated_otp", flows["unspecified"])
    one(db, "update_verification_flow_status", flows["unspecified"], "expired")
    one(db, "update_otp_status", otps["password_recovery"], "verified")
    # a verified registration flow nobody has created a membership from yet
    one(db, "update_otp_status", otps["registration"], "verified")
    one(db, "update_verification_flow_status", flows["registration"], "verified")
    return {"device": device, "phone": phone, "flows": flows, "otps": otps, "pending": pending}


def fill_v1(db: Conn, role: str) -> dict[str, Any]:
    """Fill a version 1 database through version 1's functions."""
    db.execute(sql.SQL("SELECT * FROM ecliptix_grant_app_role({})").format(sql.Literal(role)))
    owner = register(db, b"owner-key", "US")
    keyless = register(db, None, None)
    fr = make_phone(db, owner["number"], "FR", make_device(db))  # same number, another region
    states = flows_in_every_state(db)
    # logins: successes, failures, and a number locked out right now
    assert one(db, "login_membership", owner["number"])["outcome"] == "success"
    locked = new_number()
    for _ in range(5):
        one(db, "login_membership", locked)
    assert one(db, "login_membership", locked)["outcome"] == "5"
    one(db, "log_login_attempt", owner["number"], "app_failure", False)
    # membership attempts, a rate-limited create_membership among them
    for _ in range(6):
        one(db, "create_membership", keyless["flow"], 1, keyless["otp"], "otp_verified")
    one(db, "log_membership_attempt", owner["phone"], "app_note", True)
    one(db, "verify_phone_for_secret_key_recovery", owner["number"], "US")
    # audit rows (version 1 functions write none) and soft-deleted rows
    db.execute("INSERT INTO event_log (event_type, message) VALUES ('v1_note', 'kept')")
    gone = register(db, b"gone-key")
    db.execute(
        "UPDATE memberships SET is_deleted = true WHERE unique_id = %s", (gone["membership"],)
    )
    db.execute(
        "UPDATE phone_number_devices SET is_deleted = true WHERE app_device_id = %s",
        (gone["device"],),
    )
    move_back(db, "login_attempts", "attempted_at", "1 min", "outcome = 'app_failure'")
    return {"owner": owner, "keyless": keyless, "fr": fr, "states": states, "locked": locked}


def snapshot(db: Conn) -> dict[str, list[dict[str, Any]]]:
    """Every row of every version 1 table, as JSON."""
    out = {}
    for table in V1_TABLES:
        rows = db.execute(
            sql.SQL("SELECT to_jsonb(t)::text FROM {} t").format(sql.Identifier(table))
        ).fetchall()
        out[table] = [json.loads(r[0]) for r in rows]
    return out


def same_rows(before: list[dict[str, Any]], after: list[dict[str, Any]], table: str) -> None:
    """Every row before is there after with the same values in the old columns.
    updated_at may only move forward (a backfill is an update)."""

    def key(row: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in row.items() if k != "updated_at"}, sort_keys=True)

    old_columns = set(before[0]) if before else set()
    projected = [{k: row[k] for k in old_columns} for row in after]
    if table == "ecliptix_limits":  # descriptions were reworded; values stay
        before = [{k: r[k] for k in ("name", "value")} for r in before]
        projected = [{k: r[k] for k in ("name", "value")} for r in projected]
        assert {key(r) for r in before} <= {key(r) for r in projected}
        return
    assert sorted(map(key, projected)) == sorted(map(key, before)), table
    if "updated_at" in old_columns:
        was = {key(r): r["updated_at"] for r in before}
        for row in projected:
            assert row["updated_at"] >= was[key(row)], (table, row)


def test_v1_database_with_data_upgrades_to_v2(v1_url: str, app_role: str) -> None:
    with psycopg.connect(v1_url, autocommit=True) as db:
        filled = fill_v1(db, app_role)
        before = snapshot(db)
        history = scalar(db, "SELECT count(*) FROM schema_history")
    assert all(before[t] for t in V1_TABLES), [t for t in V1_TABLES if not before[t]]

    result = migrate(Settings(url=v1_url, locations=(PACKAGED_MIGRATIONS,)))
    applied = [a.script for a in result.applied]
    assert "V003__membership_security_and_retention.sql" in applied
    assert (
        result.current_version
        == sorted(p.name[1:].split("__")[0] for p in PACKAGED_MIGRATIONS.glob("V*__*.sql"))[-1]
    )

    with psycopg.connect(v1_url, autocommit=True) as db:
        assert scalar(db, "SELECT count(*) FROM schema_history") == history + len(applied)
        after = snapshot(db)
        for table in V1_TABLES:
            same_rows(before[table], after[table], table)
        assert (
            scalar(db, "SELECT count(*) FROM login_attempts WHERE app_device_id IS NOT NULL") == 0
        )
        v1_callers_keep_working(db, filled)
    with psycopg.connect(url_as(v1_url, app_role), autocommit=True) as conn:
        v1_role_keeps_working(conn, filled)


def v1_callers_keep_working(db: Conn, filled: dict[str, Any]) -> None:
    """Version 1 parameter lists, version 1 expectations."""
    owner, keyless, states = filled["owner"], filled["keyless"], filled["states"]
    login = one(db, "login_membership", owner["number"])
    assert (login["outcome"], login["membership_unique_id"], login["secure_key"]) == (
        "success",
        owner["membership"],
        b"owner-key",
    )
    # the lock-out written by version 1 still holds for version 1 callers
    assert one(db, "login_membership", filled["locked"])["outcome"] in ("4", "5")
    # the same device's verified flow: the membership it made, and a new one
    again = one(db, "create_membership", owner["flow"], 42, owner["otp"], "otp_verified")
    assert (again["outcome"], again["membership_unique_id"]) == (
        "membership_already_exists",
        owner["membership"],
    )
    reg_flow, reg_otp = states["flows"]["registration"], states["otps"]["registration"]
    db.execute("UPDATE verification_flows SET connection_id = 7 WHERE unique_id = %s", (reg_flow,))
    assert (
        one(db, "create_membership", reg_flow, 7, reg_otp, "otp_verified")["outcome"] == "created"
    )
    state = one(db, "get_full_flow_state", states["pending"])
    assert (state["status"], state["otp_status"], state["otp_is_active"]) == (
        "pending",
        "pending",
        True,
    )
    assert (
        one(db, "initiate_verification_flow", make_device(db), filled["fr"], "login")["outcome"]
        == "created"
    )
    # the first key of a membership created in version 1 is set as before
    first = one(db, "update_membership_secure_key", keyless["membership"], b"first")
    assert first["success"] and first["creation_status"] == "secure_key_set"
    assert one(db, "verify_phone_for_secret_key_recovery", owner["number"], "US")["outcome"] == (
        "eligible_for_recovery"
    )
    one(db, "log_login_attempt", owner["number"], "v1_call", True)
    one(db, "log_membership_attempt", owner["phone"], "v1_call", True)


def v1_role_keeps_working(conn: Conn, filled: dict[str, Any]) -> None:
    """The application role registered in version 1 may call the re-created
    functions, and still nothing else."""
    owner = filled["owner"]
    assert one(conn, "login_membership", owner["number"])["outcome"] == "success"
    assert (
        one(conn, "register_app_device_if_not_exists", uuid.uuid4(), uuid.uuid4(), 1)["status"] == 2
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM ecliptix_purge()")
