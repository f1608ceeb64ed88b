"""Membership functions: attempt logging, create_membership (with its failure
window), update_membership_secure_key, login_membership (with its lockout).
Time passing is simulated by moving stored timestamps back."""

from __future__ import annotations

import uuid
from typing import Any

from tests.ecliptix.sql_support import (
    Conn,
    call,
    make_device,
    make_flow,
    make_otp,
    make_phone,
    move_back,
    new_number,
    one,
    scalar,
    verified_registration,
)

NOT_FOUND = {
    "membership_unique_id": None,
    "status": None,
    "creation_status": None,
    "outcome": "verification_flow_not_found",
}


def attempts(db: Conn) -> list[tuple[str, bool]]:
    return db.execute("SELECT outcome, is_success FROM membership_attempts ORDER BY id").fetchall()


def logins(db: Conn) -> list[tuple[str, bool]]:
    return db.execute("SELECT outcome, is_success FROM login_attempts ORDER BY id").fetchall()


def test_log_attempts(db: Conn) -> None:
    # RETURNS void: SELECT * FROM fn() gives one row holding the empty void value
    assert call(db, "log_login_attempt", "+123", "whatever", True) == [{"log_login_attempt": ""}]
    phone = make_phone(db)
    assert len(call(db, "log_membership_attempt", phone, "x", False)) == 1
    row = db.execute(
        "SELECT phone_number, outcome, is_success, attempted_at = now() - (now() - attempted_at)"
        " FROM login_attempts"
    ).fetchone()
    assert row == ("+123", "whatever", True, True)
    assert db.execute(
        "SELECT phone_number_id, outcome, is_success FROM membership_attempts"
    ).fetchall() == [(phone, "x", False)]
    rettype = scalar(
        db,
        "SELECT prorettype::regtype::text FROM pg_proc WHERE proname = %s",
        ("log_login_attempt",),
    )
    assert rettype == "void"


def test_create_membership_created_and_exists(db: Conn) -> None:
    reg = verified_registration(db)
    # another pending flow of the phone (the verified one would be returned instead)
    other_flow = scalar(
        db,
        "INSERT INTO verification_flows (phone_number_id, app_device_id, purpose, expires_at) "
        "SELECT f.phone_number_id, f.app_device_id, 'login', now() + interval '5 min' "
        "FROM verification_flows f RETURNING unique_id",
    )
    other_otp = make_otp(db, other_flow)
    one(db, "log_membership_attempt", reg["phone"], "some_failure", False)
    one(db, "log_membership_attempt", reg["phone"], "rate_limited", False)

    # the OTP is verified (inactive already); make it active to see it retired
    db.execute("UPDATE otp_records SET is_active = true WHERE unique_id = %s", (reg["otp"],))
    row = one(db, "create_membership", reg["flow"], 42, reg["otp"], "passphrase_set")
    assert row["outcome"] == "created" and row["membership_unique_id"] is not None
    assert (row["status"], row["creation_status"]) == ("active", "passphrase_set")
    stored = db.execute(
        "SELECT unique_id, phone_number_id, app_device_id, verification_flow_id, status, "
        "creation_status, secure_key FROM memberships"
    ).fetchall()
    assert stored == [
        (
            row["membership_unique_id"],
            reg["phone"],
            reg["device"],
            reg["flow"],
            "active",
            "passphrase_set",
            None,
        )
    ]
    assert scalar(db, "SELECT is_active FROM otp_records WHERE unique_id = %s", (reg["otp"],)) is (
        False
    )
    # failed attempts (refusals included) are gone; the success is logged
    assert attempts(db) == [("created", True)]

    again = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    assert again == {**row, "outcome": "membership_already_exists"}
    assert attempts(db)[-1] == ("membership_already_exists", True)

    # an OTP of another flow is never touched
    row = one(db, "create_membership", reg["flow"], 42, other_otp, "otp_verified")
    assert row["outcome"] == "membership_already_exists"
    assert scalar(db, "SELECT is_active FROM otp_records WHERE unique_id = %s", (other_otp,))

    # a deleted membership does not block a new one
    db.execute("UPDATE memberships SET is_deleted = true")
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")["outcome"] == (
        "created"
    )


def test_create_membership_flow_not_found(db: Conn) -> None:
    assert one(db, "create_membership", uuid.uuid4(), 42, uuid.uuid4(), "otp_verified") == (
        NOT_FOUND
    )
    assert attempts(db) == []  # no phone known: nothing logged
    reg = verified_registration(db)
    # wrong connection id
    assert one(db, "create_membership", reg["flow"], 43, reg["otp"], "otp_verified") == NOT_FOUND
    assert attempts(db) == [("verification_flow_not_found", False)]
    # a flow stored with NULL connection id never matches
    db.execute("UPDATE verification_flows SET connection_id = NULL")
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified") == NOT_FOUND
    db.execute("UPDATE verification_flows SET connection_id = 42")
    # purpose must be registration
    db.execute("UPDATE verification_flows SET purpose = 'login'")
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified") == NOT_FOUND
    db.execute("UPDATE verification_flows SET purpose = 'registration'")
    # deleted phone
    db.execute("UPDATE phone_numbers SET is_deleted = true")
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified") == NOT_FOUND
    db.execute("UPDATE phone_numbers SET is_deleted = false")
    # deleted flow: unknown, so not logged
    db.execute("UPDATE verification_flows SET is_deleted = true")
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified") == NOT_FOUND
    assert len(attempts(db)) == 4
    assert scalar(db, "SELECT count(*) FROM memberships") == 0


def test_create_membership_requires_verified_flow(db: Conn) -> None:
    device = make_device(db)
    phone = make_phone(db, None, None, device)
    flow = make_flow(db, device, phone, "registration", 9)["unique_identifier"]
    otp = make_otp(db, flow)
    row = one(db, "create_membership", flow, 9, otp, "otp_verified")
    assert row == {**NOT_FOUND, "outcome": "verification_flow_not_verified"}
    assert attempts(db) == [("verification_flow_not_verified", False)]
    assert scalar(db, "SELECT count(*) FROM memberships") == 0


def test_create_membership_failure_window(db: Conn) -> None:
    reg = verified_registration(db)
    args = (reg["flow"], 42, reg["otp"], "secure_key_set")
    for _ in range(5):
        assert one(db, "create_membership", reg["flow"], 1, reg["otp"], "otp_verified")[
            "outcome"
        ] == ("verification_flow_not_found")
    refused = one(db, "create_membership", *args)
    assert refused == {
        "membership_unique_id": None,
        "status": None,
        "creation_status": "secure_key_set",
        "outcome": "60",
    }
    assert attempts(db)[-1] == ("rate_limited", False)
    # 23 minutes later: 37 minutes to wait, rounded up
    move_back(db, "membership_attempts", "attempted_at", "23 min", "true")
    assert one(db, "create_membership", *args)["outcome"] == "37"
    # refusals are not counted: many retries, and just under an hour they still wait 1 min
    move_back(db, "membership_attempts", "attempted_at", "36 min 30 s", "outcome <> 'rate_limited'")
    assert one(db, "create_membership", *args)["outcome"] == "1"
    move_back(db, "membership_attempts", "attempted_at", "31 s", "outcome <> 'rate_limited'")
    created = one(db, "create_membership", *args)
    assert created["outcome"] == "created"
    assert attempts(db) == [("created", True)]


def test_create_membership_wait_until_fewer_than_five_remain(db: Conn) -> None:
    reg = verified_registration(db)
    for minutes_ago in (50, 40, 30, 20, 10, 5):
        db.execute(
            "INSERT INTO membership_attempts (phone_number_id, outcome, attempted_at) "
            "VALUES (%s, 'failed', now() - make_interval(mins => %s))",
            (reg["phone"], minutes_ago),
        )
    # success rows and deleted rows do not count; the 5th newest failure is 40 min old
    db.execute(
        "INSERT INTO membership_attempts (phone_number_id, outcome, is_success) "
        "SELECT %s, 'ok', true FROM generate_series(1, 5)",
        (reg["phone"],),
    )
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")["outcome"] == (
        "20"
    )
    db.execute(
        "UPDATE membership_attempts SET is_deleted = true "
        "WHERE attempted_at < now() - interval '35 min'"
    )
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")["outcome"] == (
        "created"
    )


def test_update_membership_secure_key(db: Conn) -> None:
    empty = {
        "success": False,
        "message": "Secure key cannot be empty",
        "membership_unique_id": None,
        "status": None,
        "creation_status": None,
    }
    assert one(db, "update_membership_secure_key", uuid.uuid4(), None) == empty
    assert one(db, "update_membership_secure_key", uuid.uuid4(), b"") == empty
    assert one(db, "update_membership_secure_key", uuid.uuid4(), b"k") == {
        **empty,
        "message": "Membership not found or deleted",
    }
    reg = verified_registration(db)
    m = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    mid = m["membership_unique_id"]
    db.execute("UPDATE memberships SET status = 'inactive'")
    assert one(db, "update_membership_secure_key", mid, b"\x00key") == {
        "success": True,
        "message": "Secure key updated successfully",
        "membership_unique_id": mid,
        "status": "active",
        "creation_status": "secure_key_set",
    }
    assert db.execute("SELECT secure_key, status, creation_status FROM memberships").fetchone() == (
        b"\x00key",
        "active",
        "secure_key_set",
    )
    assert attempts(db)[-1] == ("secure_key_updated", True)
    db.execute("UPDATE memberships SET is_deleted = true")
    assert one(db, "update_membership_secure_key", mid, b"k")["message"] == (
        "Membership not found or deleted"
    )


def member_with_key(db: Conn, key: bytes = b"secret") -> dict[str, Any]:
    reg = verified_registration(db)
    m = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    one(db, "update_membership_secure_key", m["membership_unique_id"], key)
    return {**reg, "membership": m["membership_unique_id"]}


def test_login_outcomes(db: Conn) -> None:
    def login(number: str | None) -> dict[str, Any]:
        return one(db, "login_membership", number)

    empty = {"membership_unique_id": None, "status": None, "secure_key": None}
    assert login(None) == {**empty, "outcome": "phone_number_cannot_be_empty"}
    assert login("") == {**empty, "outcome": "phone_number_cannot_be_empty"}
    assert logins(db) == []

    assert login("+000") == {**empty, "outcome": "phone_number_not_found"}
    reg = verified_registration(db)
    assert login(reg["number"])["outcome"] == "membership_not_found"
    m = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    assert login(reg["number"])["outcome"] == "secure_key_not_set"
    one(db, "update_membership_secure_key", m["membership_unique_id"], b"k1")
    db.execute("UPDATE memberships SET status = 'inactive'")
    assert login(reg["number"]) == {**empty, "outcome": "inactive_membership"}
    db.execute("UPDATE memberships SET status = 'active'")
    assert logins(db) == [
        ("phone_number_not_found", False),
        ("membership_not_found", False),
        ("secure_key_not_set", False),
        ("inactive_membership", False),
    ]
    assert login(reg["number"]) == {
        "membership_unique_id": m["membership_unique_id"],
        "status": "active",
        "outcome": "success",
        "secure_key": b"k1",
    }
    # success clears the number's failures (not other numbers')
    assert logins(db) == [("phone_number_not_found", False), ("success", True)]


def test_login_any_region_newest_membership(db: Conn) -> None:
    first = member_with_key(db, b"old")
    # the same number in another region, with a newer membership
    device = make_device(db)
    phone = make_phone(db, first["number"], "FR", device)
    flow = make_flow(db, device, phone, "registration", 42)["unique_identifier"]
    otp = make_otp(db, flow)
    one(db, "update_otp_status", otp, "verified")
    db.execute("UPDATE memberships SET created_at = created_at - interval '1 min'")
    m = one(db, "create_membership", flow, 42, otp, "otp_verified")
    one(db, "update_membership_secure_key", m["membership_unique_id"], b"new")
    row = one(db, "login_membership", first["number"])
    assert (row["outcome"], row["secure_key"]) == ("success", b"new")


def test_successful_logins_do_not_lock(db: Conn) -> None:
    mem = member_with_key(db)
    for _ in range(8):
        assert one(db, "login_membership", mem["number"])["outcome"] == "success"


def test_login_lockout_and_its_end(db: Conn) -> None:
    number = new_number()
    for _ in range(5):
        assert one(db, "login_membership", number)["outcome"] == "phone_number_not_found"
    # the sixth locks for 5 minutes and is not logged
    assert one(db, "login_membership", number)["outcome"] == "5"
    assert len(logins(db)) == 5
    assert scalar(db, "SELECT locked_until - locked_at FROM login_lockouts") == (
        __import__("datetime").timedelta(minutes=5)
    )
    assert one(db, "login_membership", number)["outcome"] == "5"
    move_back(db, "login_lockouts", "locked_until", "2 min 30 s", "true")
    assert one(db, "login_membership", number)["outcome"] == "3"  # 2.5 min left, rounded up
    move_back(db, "login_lockouts", "locked_until", "2 min 29 s", "true")
    assert one(db, "login_membership", number)["outcome"] == "1"
    assert len(logins(db)) == 5  # nothing logged while locked
    # another number is not affected
    assert one(db, "login_membership", new_number())["outcome"] == "phone_number_not_found"
    # the lock ends: it is cleared with the attempts it counted
    move_back(db, "login_lockouts", "locked_until", "2 s", "true")
    assert one(db, "login_membership", number)["outcome"] == "phone_number_not_found"
    assert scalar(db, "SELECT count(*) FROM login_lockouts") == 0
    assert scalar(db, "SELECT count(*) FROM login_attempts WHERE phone_number = %s", (number,)) == 1


def test_login_window_and_success_clears_lock(db: Conn) -> None:
    mem = member_with_key(db)
    number = mem["number"]
    db.execute("UPDATE memberships SET status = 'inactive'")
    for _ in range(4):
        assert one(db, "login_membership", number)["outcome"] == "inactive_membership"
    # failures older than 5 minutes fall out of the window
    move_back(db, "login_attempts", "attempted_at", "5 min 1 s", "true")
    for _ in range(4):
        assert one(db, "login_membership", number)["outcome"] == "inactive_membership"
    db.execute("UPDATE memberships SET status = 'active'")
    assert one(db, "login_membership", number)["outcome"] == "success"
    assert scalar(db, "SELECT count(*) FROM login_attempts WHERE NOT is_success") == 0
    # logged failures from log_login_attempt also count toward the lock
    for _ in range(5):
        one(db, "log_login_attempt", number, "external_failure", False)
    assert one(db, "login_membership", number)["outcome"] == "5"
    # after the lock ended a correct login succeeds and clears the lock state
    move_back(db, "login_lockouts", "locked_until", "6 min", "true")
    assert one(db, "login_membership", number)["outcome"] == "success"
    assert scalar(db, "SELECT count(*) FROM login_lockouts") == 0
