"""Version 2: codes are checked in the database, once (verify_otp, every
outcome in rule order), hashes are never read back, the v1 functions obey
the same rules, and a verified flow goes only to the device that verified it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from tests.ecliptix.sql_support import (
    Conn,
    call,
    expect_bad_input,
    fingerprint,
    make_device,
    move_back,
    one,
    scalar,
)
from tests.ecliptix.verification_support import (
    RIGHT,
    WRONG,
    check,
    events,
    guess_wrong,
    issue,
    start_flow,
)

NOT_FOUND = "flow_not_found_or_invalid"


def result(
    outcome: str, otp: uuid.UUID | None, left: int | None, status: str | None
) -> dict[str, object]:
    return {"outcome": outcome, "otp_unique_id": otp, "attempts_left": left, "flow_status": status}


def test_verify_otp_signature_and_privileges(db: Conn) -> None:
    row = db.execute(
        """SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                  p.prosecdef, p.proconfig
           FROM pg_proc p
           WHERE p.proname = 'verify_otp' AND p.pronamespace = current_schema()::regnamespace"""
    ).fetchall()
    assert len(row) == 1
    args, res, secdef, config = row[0]
    assert args == "p_flow_unique_id uuid, p_code_digest text"
    assert res == "TABLE(outcome text, otp_unique_id uuid, attempts_left integer, flow_status text)"
    assert secdef and any(c.startswith("search_path=") for c in config)
    assert "verify_otp" in scalar(db, "SELECT ecliptix_contract_functions()::text[]")
    assert not scalar(
        db, "SELECT has_function_privilege('public', 'verify_otp(uuid, text)', 'EXECUTE')"
    )


def test_verified(db: Conn) -> None:
    reg = start_flow(db)
    otp = issue(db, reg["flow"])
    assert check(db, reg["flow"], RIGHT) == result("verified", otp, 0, "verified")
    assert db.execute(
        "SELECT status, is_active FROM otp_records WHERE unique_id = %s", (otp,)
    ).fetchone() == ("verified", False)
    assert db.execute(
        "SELECT status, expires_at - updated_at FROM verification_flows"
    ).fetchone() == ("verified", timedelta(hours=24))
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 0
    # checked once: the flow is no longer pending
    assert check(db, reg["flow"], RIGHT) == result(NOT_FOUND, None, None, "verified")


def test_invalid_code_then_otp_retired(db: Conn) -> None:
    reg = start_flow(db)
    otp = issue(db, reg["flow"])
    assert check(db, reg["flow"]) == result("invalid_code", otp, 2, "pending")
    assert check(db, reg["flow"]) == result("invalid_code", otp, 1, "pending")
    assert check(db, reg["flow"]) == result("otp_retired", otp, 0, "pending")
    assert db.execute("SELECT status, is_active FROM otp_records").fetchone() == ("failed", False)
    # a retired code never verifies, even the right digest
    assert check(db, reg["flow"], RIGHT) == result("no_active_otp", None, None, "pending")
    rows = db.execute(
        "SELECT otp_unique_id, flow_unique_id, phone_number, app_device_id, known_device "
        "FROM failed_otp_attempts"
    ).fetchall()
    assert rows == [(otp, reg["flow"], reg["number"], reg["device"], False)] * 3


def test_flow_failed_after_five_over_all_otps(db: Conn) -> None:
    reg = start_flow(db)
    outcomes = [guess_wrong(db, reg["flow"])["outcome"] for _ in range(5)]
    assert outcomes == [
        "invalid_code",
        "invalid_code",
        "otp_retired",
        "invalid_code",
        "flow_failed",
    ]
    second = scalar(db, "SELECT unique_id FROM otp_records ORDER BY id DESC LIMIT 1")
    assert db.execute(
        "SELECT status, is_active FROM otp_records WHERE unique_id = %s", (second,)
    ).fetchone() == ("failed", False)
    assert scalar(db, "SELECT status FROM verification_flows") == "failed"
    assert check(db, reg["flow"], RIGHT) == result(NOT_FOUND, None, None, "failed")
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 5


def test_flow_failed_result_row(db: Conn) -> None:
    reg = start_flow(db)
    for _ in range(4):
        guess_wrong(db, reg["flow"])
    otp = issue(db, reg["flow"])  # the third OTP: the flow's budget ends first
    assert check(db, reg["flow"]) == result("flow_failed", otp, 0, "failed")


def test_flow_not_found_or_invalid(db: Conn) -> None:
    assert check(db, uuid.uuid4()) == result(NOT_FOUND, None, None, None)
    reg = start_flow(db)
    issue(db, reg["flow"])
    db.execute("UPDATE verification_flows SET is_deleted = true")
    assert check(db, reg["flow"], RIGHT) == result(NOT_FOUND, None, None, None)
    db.execute("UPDATE verification_flows SET is_deleted = false, status = 'expired'")
    assert check(db, reg["flow"], RIGHT) == result(NOT_FOUND, None, None, "expired")
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 0


def test_flow_expired(db: Conn) -> None:
    reg = start_flow(db)
    issue(db, reg["flow"])
    move_back(db, "verification_flows", "expires_at", "5 min", "true")
    assert check(db, reg["flow"], RIGHT) == result("flow_expired", None, None, "expired")
    assert scalar(db, "SELECT status FROM verification_flows") == "expired"
    assert check(db, reg["flow"], RIGHT)["outcome"] == NOT_FOUND


def test_no_active_otp(db: Conn) -> None:
    reg = start_flow(db)
    assert check(db, reg["flow"], RIGHT) == result("no_active_otp", None, None, "pending")
    otp = issue(db, reg["flow"])
    # an OTP past its own expires_at never verifies, whatever the flow's
    db.execute("UPDATE otp_records SET expires_at = now() - interval '1 s'")
    assert check(db, reg["flow"], RIGHT) == result("no_active_otp", None, None, "pending")
    db.execute("UPDATE otp_records SET expires_at = now() + interval '1 min', is_active = false")
    assert check(db, reg["flow"], RIGHT)["outcome"] == "no_active_otp"
    db.execute("UPDATE otp_records SET is_active = true, is_deleted = true")
    assert check(db, reg["flow"], RIGHT)["outcome"] == "no_active_otp"
    db.execute("UPDATE otp_records SET is_deleted = false")
    assert check(db, reg["flow"], RIGHT) == result("verified", otp, 0, "verified")
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 0


def test_rule_order_expired_before_locked_before_no_otp(db: Conn) -> None:
    reg = start_flow(db)
    # lock the number: 10 failures in the window
    db.execute(
        "INSERT INTO failed_otp_attempts (otp_unique_id, flow_unique_id, phone_number, "
        "app_device_id) SELECT %s, %s, %s, %s FROM generate_series(1, 10)",
        (issue(db, reg["flow"]), reg["flow"], reg["number"], reg["device"]),
    )
    db.execute("UPDATE otp_records SET is_active = false")
    assert check(db, reg["flow"], RIGHT) == result("number_locked", None, None, "pending")
    move_back(db, "verification_flows", "expires_at", "5 min", "true")
    assert check(db, reg["flow"], RIGHT)["outcome"] == "flow_expired"


def test_verify_otp_bad_input(db: Conn) -> None:
    reg = start_flow(db)
    issue(db, reg["flow"])
    expect_bad_input(db, "verify_otp", None, RIGHT, param="p_flow_unique_id")
    expect_bad_input(db, "verify_otp", reg["flow"], None, param="p_code_digest")
    expect_bad_input(db, "verify_otp", reg["flow"], "", param="p_code_digest")
    expect_bad_input(db, "verify_otp", reg["flow"], "f" * 256, param="p_code_digest")


def test_verify_otp_refuses_other_isolation_levels(db: Conn, ecliptix_url: str) -> None:
    reg = start_flow(db)
    issue(db, reg["flow"])
    before = fingerprint(db)
    with psycopg.connect(ecliptix_url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.Error) as info:
            call(conn, "verify_otp", reg["flow"], WRONG)
        assert info.value.sqlstate == "25000"
        assert "verify_otp" in (info.value.diag.message_primary or "")
    assert fingerprint(db) == before


# --- the hash is never read back ------------------------------------------


def test_hash_never_returned(db: Conn) -> None:
    reg = start_flow(db)
    issue(db, reg["flow"])
    state = one(db, "get_full_flow_state", reg["flow"])
    assert state["otp_hash"] is None and state["otp_salt"] == "key-1"
    assert state["otp_unique_identifier"] is not None
    again = one(db, "initiate_verification_flow", reg["device"], reg["phone"], "registration")
    assert again["outcome"] == "retrieved" and again["otp_hash"] is None
    assert again["otp_salt"] == "key-1"


# --- update_otp_status and update_verification_flow_status in version 2 ----


def test_update_otp_status_failed_counts_as_a_check(db: Conn) -> None:
    reg = start_flow(db)
    otp = issue(db, reg["flow"])
    assert check(db, reg["flow"])["attempts_left"] == 2
    assert one(db, "update_otp_status", otp, "failed")["success"]
    assert one(db, "update_otp_status", otp, "failed")["success"]  # again: nothing new
    rows = db.execute(
        "SELECT phone_number, app_device_id, known_device FROM failed_otp_attempts"
    ).fetchall()
    assert rows == [(reg["number"], reg["device"], False)] * 2
    # three more recorded failures (one per new OTP) fail the flow at five
    for _ in range(3):
        assert one(db, "update_otp_status", issue(db, reg["flow"]), "failed")["success"]
    assert scalar(db, "SELECT status FROM verification_flows") == "failed"
    assert len(events(db, "flow_check_budget_exhausted")) == 1


def test_update_otp_status_never_verifies_past_expiry(db: Conn) -> None:
    reg = start_flow(db)
    otp = issue(db, reg["flow"])
    db.execute("UPDATE otp_records SET expires_at = now() - interval '1 s'")
    assert one(db, "update_otp_status", otp, "verified") == {
        "success": False,
        "message": "Cannot transition from expired to verified",
    }
    assert db.execute("SELECT status, is_active FROM otp_records").fetchone() == (
        "expired",
        False,
    )
    assert scalar(db, "SELECT status FROM verification_flows") == "pending"


def test_update_otp_status_refused_when_number_locked(db: Conn) -> None:
    reg = start_flow(db)
    for _ in range(2):
        for _ in range(5):
            guess_wrong(db, reg["flow"])
        reg = start_flow(db, number=reg["number"])
    otp = issue(db, reg["flow"])
    assert one(db, "update_otp_status", otp, "verified") == {
        "success": False,
        "message": "Failed-check budget exhausted for this number",
    }
    assert scalar(db, "SELECT status FROM otp_records WHERE unique_id = %s", (otp,)) == "pending"
    assert scalar(
        db, "SELECT status FROM verification_flows WHERE unique_id = %s", (reg["flow"],)
    ) == ("pending")


def test_update_verification_flow_status_cannot_verify_without_otp(db: Conn) -> None:
    reg = start_flow(db)
    assert one(db, "update_verification_flow_status", reg["flow"], "verified") == {
        "rows_affected": 0
    }
    # and so a stranger's device never gets a verified flow of the number
    stranger = make_device(db)
    row = one(db, "initiate_verification_flow", stranger, reg["phone"], "registration")
    assert row["outcome"] == "created" and row["status"] == "pending"


def test_verified_flow_goes_only_to_its_device(db: Conn) -> None:
    reg = start_flow(db)
    issue(db, reg["flow"])
    assert check(db, reg["flow"], RIGHT)["outcome"] == "verified"
    for purpose in ("registration", "login", "password_recovery"):
        attacker = make_device(db)
        row = one(db, "initiate_verification_flow", attacker, reg["phone"], purpose, 7)
        assert row["outcome"] == "created" and row["unique_identifier"] != reg["flow"]
        assert row["status"] == "pending"
    purpose = scalar(
        db, "SELECT purpose FROM verification_flows WHERE unique_id = %s", (reg["flow"],)
    )
    mine = one(db, "initiate_verification_flow", reg["device"], reg["phone"], purpose)
    assert (mine["outcome"], mine["unique_identifier"]) == ("verified", reg["flow"])


# --- insert_otp_record: cooldown and expiry -------------------------------


def test_insert_otp_record_cooldown(db: Conn) -> None:
    reg = start_flow(db)
    expires = scalar(db, "SELECT expires_at FROM verification_flows")
    first = one(db, "insert_otp_record", reg["flow"], RIGHT, "k", expires)
    assert first["outcome"] == "created"
    again = one(db, "insert_otp_record", reg["flow"], RIGHT, "k", expires)
    assert again == {"otp_unique_id": None, "outcome": "resend_cooldown_active"}
    move_back(db, "otp_records", "created_at", "29 s", "true")
    assert one(db, "insert_otp_record", reg["flow"], RIGHT, "k", expires)["outcome"] == (
        "resend_cooldown_active"
    )
    move_back(db, "otp_records", "created_at", "1 s", "true")
    assert one(db, "insert_otp_record", reg["flow"], RIGHT, "k", expires)["outcome"] == "created"
    assert scalar(db, "SELECT otp_count FROM verification_flows") == 2


def test_insert_otp_record_never_outlives_flow(db: Conn) -> None:
    reg = start_flow(db)
    expires = scalar(db, "SELECT expires_at FROM verification_flows")
    message = expect_bad_input(
        db,
        "insert_otp_record",
        reg["flow"],
        RIGHT,
        "k",
        expires + timedelta(microseconds=1),
        param="p_expires_at",
    )
    assert "flow" in message
    assert one(db, "insert_otp_record", reg["flow"], RIGHT, "k", expires)["outcome"] == "created"
