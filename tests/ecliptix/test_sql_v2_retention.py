"""ecliptix_purge: every retention rule, its boundaries, batches, skipped
locks and bad input. Time passing is simulated by moving every stored
timestamp back (shift_time), never by sleeping."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.ecliptix.sql_support import (
    PURGED_TABLES,
    Conn,
    Row,
    call,
    expect_bad_input,
    make_device,
    make_flow,
    make_otp,
    make_phone,
    new_number,
    one,
    scalar,
)
from tests.ecliptix.test_sql_v2_membership import end_verified_flows, member_with_key


def shift_time(db: Conn, interval: str) -> None:
    """Pretend ``interval`` passed: move every timestamp of every Ecliptix table back."""
    rows = db.execute(
        "SELECT table_name, array_agg(column_name::text ORDER BY column_name) "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND data_type = 'timestamp with time zone' AND table_name = ANY(%s) GROUP BY 1",
        (list(PURGED_TABLES),),
    ).fetchall()
    for table, columns in rows:
        sets = ", ".join(f"{c} = {c} - %(i)s::interval" for c in columns)
        db.execute(f"UPDATE {table} SET {sets}", {"i": interval})  # names from the catalog


def counts(db: Conn) -> dict[str, int]:
    return {t: scalar(db, f"SELECT count(*) FROM {t}") for t in PURGED_TABLES}


def purge(db: Conn, batch: int = 5000) -> dict[str, int]:
    return {r["table_name"]: r["rows_deleted"] for r in call(db, "ecliptix_purge", batch)}


def purge_until_done(db: Conn, batch: int = 5000, calls: int = 50) -> dict[str, int]:
    total: dict[str, int] = {}
    for _ in range(calls):
        done = purge(db, batch)
        if not done:
            return total
        for table, n in done.items():
            total[table] = total.get(table, 0) + n
    raise AssertionError(f"purge still deleting after {calls} calls: {total}")


def attacker_traffic(db: Conn, victim: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID, Row]:
    """A fresh attacker device on the victim's number: a flow with a wrong code and
    a failed creation, wrong passwords until locked out, a recovery check.
    Returns the device, the flow and the login that met the lock."""
    device = make_device(db)
    make_phone(db, victim["number"], None, device)
    flow: uuid.UUID = make_flow(db, device, victim["phone"], "registration", 9)["unique_identifier"]
    otp = make_otp(db, flow)
    one(db, "update_otp_status", otp, "failed")
    one(db, "create_membership", flow, 9, otp, "otp_verified")
    for _ in range(5):
        one(db, "log_login_attempt", victim["number"], "wrong_password", False, device)
    login = one(db, "login_membership", victim["number"], device)
    one(db, "verify_phone_for_secret_key_recovery", victim["number"])
    return device, flow, login


def junk(db: Conn) -> dict[str, Any]:
    """What an attacker leaves: a device linked to a victim number with a flow
    that expired (an OTP, a failed check, a failed creation), failed logins
    locking it out, recovery checks; plus a device and a phone nobody uses."""
    owner = member_with_key(db)
    end_verified_flows(db)  # the attack comes later
    device, flow, login = attacker_traffic(db, owner)
    assert login["outcome"] == "5"
    one(db, "update_verification_flow_status", flow, "expired")
    # a soft-deleted membership of another registration
    gone = member_with_key(db, b"gone")
    db.execute(
        "UPDATE memberships SET is_deleted = true WHERE unique_id = %s", (gone["membership"],)
    )
    return {
        "owner": owner,
        "device": device,
        "flow": flow,
        "idle_device": make_device(db),
        "idle_phone": make_phone(db),
        "gone": gone,
    }


def test_each_rule_at_its_boundary(db: Conn) -> None:
    scene = junk(db)
    owner = scene["owner"]
    before = counts(db)

    shift_time(db, "29 days")
    # only the ended lock is older than its day of retention
    assert purge(db) == {"login_device_lockouts": 1}

    shift_time(db, "2 days")  # 31 days: flows, soft-deleted rows, unused devices and phones
    deleted = purge_until_done(db)
    assert deleted == {
        "memberships": 1,  # the soft-deleted one, which frees its flow
        "failed_otp_attempts": 1,
        "otp_records": 2,
        "verification_flows": 2,  # the attacker's and the deleted membership's
        "phone_number_devices": 2,  # links to them
        "app_devices": 3,  # their devices and the idle one
        "phone_numbers": 1,  # the idle one; the deleted membership's waits for its attempts
    }
    assert (
        scalar(db, "SELECT count(*) FROM verification_flows WHERE unique_id = %s", (scene["flow"],))
        == 0
    )
    assert (
        scalar(
            db,
            "SELECT count(*) FROM app_devices WHERE unique_id = ANY(%s)",
            ([scene["device"], scene["idle_device"]],),
        )
        == 0
    )

    shift_time(db, "58 days")  # 89 days: attempts stay a little longer
    assert purge(db) == {}
    shift_time(db, "2 days")
    assert purge(db) == {
        "login_attempts": before["login_attempts"],
        "membership_attempts": before["membership_attempts"],
        "recovery_eligibility_checks": 1,
        "phone_numbers": 1,  # no attempt references it any more
    }
    shift_time(db, "90 days")  # 181 days: events
    assert purge(db) == {"event_log": before["event_log"]}

    # the owner lost nothing: device, phone, link, flow, membership, key
    assert counts(db) == {
        **{t: 0 for t in PURGED_TABLES},
        "app_devices": 1,
        "phone_numbers": 1,
        "phone_number_devices": 1,
        "verification_flows": 1,
        "otp_records": 1,
        "memberships": 1,
    }
    login = one(db, "login_membership", owner["number"], owner["device"])
    assert (login["outcome"], login["secure_key"]) == ("success", b"owner-key")


def test_referenced_rows_stay(db: Conn) -> None:
    owner = member_with_key(db)
    # a deleted device and phone still referenced by a flow; a deleted flow
    # that a membership was created from
    device = make_device(db)
    phone = make_phone(db, None, None, device)
    flow = make_flow(db, device, phone, "login", 3)["unique_identifier"]
    db.execute("UPDATE app_devices SET is_deleted = true WHERE unique_id = %s", (device,))
    db.execute("UPDATE phone_numbers SET is_deleted = true WHERE unique_id = %s", (phone,))
    db.execute(
        "UPDATE verification_flows SET is_deleted = true WHERE unique_id = %s", (owner["flow"],)
    )
    shift_time(db, "29 days")
    purge_until_done(db)
    shift_time(db, "2 days")
    # the flow ended only 31 days ago minus its 5 minutes: now everything of
    # the login flow goes, and with it the deleted device, phone and link
    deleted = purge_until_done(db)
    assert deleted == {
        "verification_flows": 1,
        "phone_number_devices": 1,
        "app_devices": 1,
        "phone_numbers": 1,
    }
    assert scalar(db, "SELECT count(*) FROM verification_flows WHERE unique_id = %s", (flow,)) == 0
    # the owner's deleted flow stays: a membership was created from it
    assert (
        scalar(db, "SELECT count(*) FROM verification_flows WHERE unique_id = %s", (owner["flow"],))
        == 1
    )


def test_batches_bound_each_table(db: Conn) -> None:
    number = new_number()
    for i in range(10):
        one(db, "log_login_attempt", number, f"x{i}", False)
        db.execute("INSERT INTO event_log (event_type, message) VALUES ('test', %s)", (str(i),))
    phone = make_phone(db)
    for _ in range(10):
        make_device(db)
    shift_time(db, "200 days")
    seen = []
    while done := purge(db, 3):
        assert max(done.values()) <= 3, done
        seen.append(done)
    assert len(seen) == 4
    assert sum(d.get("login_attempts", 0) for d in seen) == 10
    assert sum(d.get("app_devices", 0) for d in seen) == 10
    assert sum(d.get("event_log", 0) for d in seen) >= 10
    assert scalar(db, "SELECT count(*) FROM phone_numbers WHERE unique_id = %s", (phone,)) == 0


def test_rows_locked_by_others_are_skipped_without_waiting(db: Conn, ecliptix_url: str) -> None:
    number = new_number()
    for i in range(4):
        one(db, "log_login_attempt", number, f"x{i}", False)
    devices = [make_device(db) for _ in range(3)]
    shift_time(db, "200 days")
    with psycopg.connect(ecliptix_url) as other:
        # an open transaction holds one attempt (row lock) and one device
        # (key share, as a foreign-key check inserting a reference does)
        other.execute("SELECT 1 FROM login_attempts WHERE outcome = 'x0' FOR UPDATE")
        other.execute("SELECT 1 FROM app_devices WHERE unique_id = %s FOR KEY SHARE", (devices[0],))
        db.execute("SET statement_timeout = '10s'")  # waiting would fail the test
        assert purge(db) == {"login_attempts": 3, "app_devices": 2}
        assert scalar(db, "SELECT count(*) FROM login_attempts") == 1
        assert scalar(db, "SELECT count(*) FROM app_devices") == 1
        other.rollback()
    assert purge(db) == {"login_attempts": 1, "app_devices": 1}


def test_retention_periods_are_read_from_ecliptix_limits(db: Conn) -> None:
    number = new_number()
    one(db, "log_login_attempt", number, "x", False)
    shift_time(db, "2 days")
    assert purge(db) == {}
    db.execute("UPDATE ecliptix_limits SET value = 86400 WHERE name = 'attempt_retention_seconds'")
    assert purge(db) == {"login_attempts": 1}
    # never below a window that still counts attempts (the longest is an hour)
    db.execute("UPDATE ecliptix_limits SET value = 1 WHERE name = 'attempt_retention_seconds'")
    one(db, "log_login_attempt", number, "y", False)
    shift_time(db, "59 min")
    assert purge(db) == {}
    shift_time(db, "2 min")
    assert purge(db) == {"login_attempts": 1}


def test_purge_input_and_isolation(db: Conn, ecliptix_url: str) -> None:
    assert call(db, "ecliptix_purge") == []
    message = expect_bad_input(db, "ecliptix_purge", 0, param="p_batch_size")
    assert "at least 1" in message
    expect_bad_input(db, "ecliptix_purge", None, param="p_batch_size")
    with psycopg.connect(ecliptix_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.Error) as info:
            call(conn, "ecliptix_purge", 10)
        assert info.value.sqlstate == "25000"


def test_purge_signature(db: Conn) -> None:
    row = db.execute(
        "SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prosecdef "
        "FROM pg_proc p WHERE p.proname = 'ecliptix_purge' "
        "AND p.pronamespace = current_schema()::regnamespace"
    ).fetchall()
    assert row == [
        (
            "p_batch_size integer DEFAULT 5000",
            "TABLE(table_name text, rows_deleted bigint)",
            True,
        )
    ]
