"""Version 2 membership rules: no takeover, no lock-out of the owner, audit.

create_membership counts failures per (number, device of the flow) and never
hands a membership to another device's caller; a set secure key is replaced
only after a verified password_recovery flow of the membership's own device,
used up by the change; login failures and locks are kept per (number,
device) when the device is given; recovery-eligibility checks are budgeted
per number. Every lock-out, exhausted budget, key change, refused key change
and recovery check writes one event_log row. Time passing is simulated by
moving stored timestamps back.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.ecliptix.sql_support import (
    Conn,
    fingerprint,
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

REFUSED_KEY = {
    "success": False,
    "message": "Secure key change requires a verified recovery flow",
    "membership_unique_id": None,
    "status": None,
    "creation_status": None,
}


def events(db: Conn, event_type: str | None = None) -> list[tuple[str, str]]:
    rows = db.execute("SELECT event_type, message FROM event_log ORDER BY id").fetchall()
    return [(t, m) for t, m in rows if event_type is None or t == event_type]


def member_with_key(db: Conn, key: bytes = b"owner-key") -> dict[str, Any]:
    """The owner: a verified registration, its membership and its first key."""
    reg = verified_registration(db)
    m = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    assert m["outcome"] == "created"
    assert one(db, "update_membership_secure_key", m["membership_unique_id"], key)["success"]
    return {**reg, "membership": m["membership_unique_id"]}


def end_verified_flows(db: Conn) -> None:
    """Let the verified flows' validity run out (a recovery comes days later)."""
    move_back(db, "verification_flows", "expires_at", "25 hours", "status = 'verified'")


def verified_recovery(db: Conn, device: uuid.UUID, phone: uuid.UUID) -> uuid.UUID:
    """A password_recovery flow of (device, phone), verified through its OTP."""
    flow: uuid.UUID = make_flow(db, device, phone, "password_recovery", 77)["unique_identifier"]
    otp = make_otp(db, flow)
    assert one(db, "update_otp_status", otp, "verified")["success"]
    return flow


def key_of(db: Conn, membership: uuid.UUID) -> bytes:
    return bytes(
        scalar(db, "SELECT secure_key FROM memberships WHERE unique_id = %s", (membership,))
    )


def attacker_flow(db: Conn, number: str, region: str | None = None) -> dict[str, Any]:
    """An attacker's own (unverified) registration flow for the victim's number."""
    device = make_device(db)
    phone = make_phone(db, number, region, device)
    flow = make_flow(db, device, phone, "registration", 13)["unique_identifier"]
    return {"device": device, "phone": phone, "flow": flow, "otp": make_otp(db, flow)}


# --- create_membership ------------------------------------------------------


def test_stranger_failures_never_block_the_owners_registration(db: Conn) -> None:
    device = make_device(db)
    number = new_number()
    phone = make_phone(db, number, None, device)
    flow = make_flow(db, device, phone, "registration", 42)["unique_identifier"]
    otp = make_otp(db, flow)
    bad = attacker_flow(db, number)
    one(db, "update_otp_status", otp, "verified")

    for _ in range(5):
        row = one(db, "create_membership", bad["flow"], 13, bad["otp"], "otp_verified")
        assert row["outcome"] == "verification_flow_not_verified"
    assert one(db, "create_membership", bad["flow"], 13, bad["otp"], "otp_verified")["outcome"] == (
        "60"
    )
    # the same number in another region is the same budget for that device
    other = make_phone(db, number, "FR", bad["device"])
    other_flow = make_flow(db, bad["device"], other, "registration", 13)["unique_identifier"]
    assert one(db, "create_membership", other_flow, 13, bad["otp"], "otp_verified")["outcome"] == (
        "60"
    )
    # the owner, on the owner's device, is not blocked
    created = one(db, "create_membership", flow, 42, otp, "otp_verified", device)
    assert created["outcome"] == "created"
    counted = db.execute(
        "SELECT app_device_id, count(*) FROM membership_attempts "
        "WHERE NOT is_success AND outcome <> 'rate_limited' GROUP BY 1"
    ).fetchall()
    assert counted == [(bad["device"], 5)]


def test_budget_exhaustion_is_audited_once(db: Conn) -> None:
    reg = verified_registration(db)
    for _ in range(5):
        one(db, "create_membership", reg["flow"], 1, reg["otp"], "otp_verified")
    for _ in range(3):
        assert one(db, "create_membership", reg["flow"], 1, reg["otp"], "otp_verified")[
            "outcome"
        ] == ("60")
    [(_, message)] = events(db, "membership_creation_budget_exhausted")
    assert f"phone_number_id={reg['phone']}" in message
    assert f"app_device_id={reg['device']}" in message and "failures=5" in message


def test_failures_logged_by_the_application_count_for_every_device(db: Conn) -> None:
    # log_membership_attempt names no device: the application's own failures
    # count for every device of the number, as in version 1.
    reg = verified_registration(db)
    for _ in range(5):
        one(db, "log_membership_attempt", reg["phone"], "app_failure", False)
    row = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    assert row["outcome"] == "60"


def test_a_caller_naming_its_device_gets_only_its_own_flow(db: Conn) -> None:
    owner = member_with_key(db)
    stranger = make_device(db)
    # the owner's verified flow, its connection and even its OTP id leaked:
    # a caller that says it is another device gets nothing
    for _ in range(7):
        row = one(
            db, "create_membership", owner["flow"], 42, owner["otp"], "otp_verified", stranger
        )
        assert (row["membership_unique_id"], row["status"]) == (None, None)
        assert row["outcome"] in ("verification_flow_not_found", "60")
    # those failures count against the stranger, not the owner's device
    again = one(
        db, "create_membership", owner["flow"], 42, owner["otp"], "otp_verified", owner["device"]
    )
    assert (again["outcome"], again["membership_unique_id"]) == (
        "membership_already_exists",
        owner["membership"],
    )
    assert (
        scalar(
            db,
            "SELECT count(*) FROM membership_attempts WHERE app_device_id = %s AND NOT is_success",
            (owner["device"],),
        )
        == 0
    )


def test_verified_flow_past_its_validity_creates_nothing(db: Conn) -> None:
    reg = verified_registration(db)
    one(db, "update_verification_flow_status", reg["flow"], "verified")  # valid 24 h
    move_back(db, "verification_flows", "expires_at", "24 hours 1 s", "true")
    row = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    assert row["outcome"] == "verification_flow_not_verified"
    assert scalar(db, "SELECT count(*) FROM memberships") == 0


# --- update_membership_secure_key ----------------------------------------------


def test_set_key_cannot_be_replaced_without_recovery(db: Conn) -> None:
    owner = member_with_key(db)
    assert events(db, "secure_key_set") == [
        (
            "secure_key_set",
            f"membership_id={owner['membership']} app_device_id={owner['device']}",
        )
    ]
    before = fingerprint(db)
    refused = one(db, "update_membership_secure_key", owner["membership"], b"attacker-key")
    assert refused == REFUSED_KEY
    assert key_of(db, owner["membership"]) == b"owner-key"
    after = fingerprint(db)
    assert {t for t in before if before[t] != after[t]} == {"event_log"}
    [(_, message)] = events(db, "secure_key_change_refused")
    assert str(owner["membership"]) in message
    assert "attacker-key" not in message and "owner-key" not in message


def test_recovery_flow_of_the_own_device_replaces_the_key_once(db: Conn) -> None:
    owner = member_with_key(db)
    end_verified_flows(db)
    recovery = verified_recovery(db, owner["device"], owner["phone"])
    assert one(
        db, "update_membership_secure_key", owner["membership"], b"new-key", owner["device"]
    ) == {
        "success": True,
        "message": "Secure key updated successfully",
        "membership_unique_id": owner["membership"],
        "status": "active",
        "creation_status": "secure_key_set",
    }
    assert key_of(db, owner["membership"]) == b"new-key"
    assert scalar(
        db,
        "SELECT recovery_used_at IS NOT NULL FROM verification_flows WHERE unique_id = %s",
        (recovery,),
    )
    [(_, message)] = events(db, "secure_key_replaced")
    assert f"recovery_flow_id={recovery}" in message
    # used up: the next change needs another recovery
    assert (
        one(db, "update_membership_secure_key", owner["membership"], b"third", owner["device"])
        == REFUSED_KEY
    )
    assert key_of(db, owner["membership"]) == b"new-key"
    assert one(db, "login_membership", owner["number"])["secure_key"] == b"new-key"


def test_only_the_members_device_uses_its_recovery_flow(db: Conn) -> None:
    # Between the owner's code check and the owner's key update, the owner's
    # verified recovery flow is there to be used: by the owner's device only.
    owner = member_with_key(db)
    end_verified_flows(db)
    recovery = verified_recovery(db, owner["device"], owner["phone"])
    stranger = make_device(db)
    for caller in (None, stranger):
        args = (owner["membership"], b"stolen") + ((caller,) if caller else ())
        assert one(db, "update_membership_secure_key", *args) == REFUSED_KEY
    assert key_of(db, owner["membership"]) == b"owner-key"
    assert scalar(
        db,
        "SELECT recovery_used_at IS NULL FROM verification_flows WHERE unique_id = %s",
        (recovery,),
    )
    refusals = [m for _, m in events(db, "secure_key_change_refused")]
    assert len(refusals) == 2 and all("reason=not_the_members_device" in m for m in refusals)
    done = one(db, "update_membership_secure_key", owner["membership"], b"mine", owner["device"])
    assert done["success"]
    assert key_of(db, owner["membership"]) == b"mine"


def test_recovery_flows_that_do_not_qualify(db: Conn) -> None:
    owner = member_with_key(db)
    end_verified_flows(db)
    device, phone = owner["device"], owner["phone"]
    stranger = make_device(db)
    other_phone = make_phone(db, new_number(), None, device)
    candidates = [
        # another device's recovery of the same number
        make_flow(
            db, stranger, make_phone(db, owner["number"], None, stranger), "password_recovery", 5
        ),
        # the owner's device's recovery of another number
        make_flow(db, device, other_phone, "password_recovery", 5),
        # the owner's device, the right number, the wrong purpose
        make_flow(db, device, phone, "login", 5),
    ]
    bare = make_flow(db, device, phone, "password_recovery", 5)["unique_identifier"]
    for flow in candidates:
        one(db, "update_otp_status", make_otp(db, flow["unique_identifier"]), "verified")
    # a recovery flow marked verified without any verified OTP
    one(db, "update_verification_flow_status", bare, "verified")
    assert one(db, "update_membership_secure_key", owner["membership"], b"x", device) == REFUSED_KEY

    # a proper one, but its validity ran out
    end_verified_flows(db)
    db.execute("UPDATE verification_flows SET is_deleted = true WHERE unique_id = %s", (bare,))
    recovery = verified_recovery(db, device, phone)
    move_back(db, "verification_flows", "expires_at", "1 hour", "unique_id = %s", recovery)
    assert one(db, "update_membership_secure_key", owner["membership"], b"x", device) == REFUSED_KEY
    assert key_of(db, owner["membership"]) == b"owner-key"
    assert len(events(db, "secure_key_change_refused")) == 2


def test_recovery_works_from_another_region_row_of_the_number(db: Conn) -> None:
    owner = member_with_key(db)
    end_verified_flows(db)
    fr = make_phone(db, owner["number"], "FR", owner["device"])
    verified_recovery(db, owner["device"], fr)
    assert one(db, "update_membership_secure_key", owner["membership"], b"k2", owner["device"])[
        "success"
    ]


# --- login ------------------------------------------------------------------


def test_failures_from_other_devices_never_lock_the_owners_device(db: Conn) -> None:
    owner = member_with_key(db)
    number = owner["number"]
    attacker = make_device(db)
    for _ in range(5):
        one(db, "log_login_attempt", number, "wrong_password", False, attacker)
    assert one(db, "login_membership", number, attacker)["outcome"] == "5"
    assert one(db, "login_membership", number, attacker)["outcome"] == "5"
    ok = one(db, "login_membership", number, owner["device"])
    assert (ok["outcome"], ok["secure_key"]) == ("success", b"owner-key")
    # the caller that names no device keeps version 1's per-number bucket,
    # which the device-tagged failures are not part of
    assert one(db, "login_membership", number)["outcome"] == "success"
    assert db.execute(
        "SELECT phone_number, app_device_id FROM login_device_lockouts"
    ).fetchall() == [(number, attacker)]
    assert scalar(db, "SELECT count(*) FROM login_lockouts") == 0
    [(_, message)] = events(db, "login_locked_out")
    assert f"app_device_id={attacker}" in message and "failures=5" in message


def test_log_login_attempt_records_the_device(db: Conn) -> None:
    device = make_device(db)
    one(db, "log_login_attempt", "+15550001", "x", False, device)
    one(db, "log_login_attempt", "+15550001", "y", True)
    assert db.execute(
        "SELECT outcome, app_device_id FROM login_attempts ORDER BY id"
    ).fetchall() == [("x", device), ("y", None)]
    # an unknown device is recorded as given: the row is the audit trail
    stranger = uuid.uuid4()
    one(db, "login_membership", "+15550002", stranger)
    assert scalar(db, "SELECT app_device_id FROM login_attempts ORDER BY id DESC LIMIT 1") == (
        stranger
    )


def test_device_lock_ends_and_success_clears_only_its_bucket(db: Conn) -> None:
    owner = member_with_key(db)
    number, device = owner["number"], owner["device"]
    attacker = make_device(db)
    for who in (device, attacker):
        for _ in range(5):
            one(db, "log_login_attempt", number, "wrong_password", False, who)
    assert one(db, "login_membership", number, device)["outcome"] == "5"
    move_back(
        db, "login_device_lockouts", "locked_until", "2 min 30 s", "app_device_id = %s", device
    )
    assert one(db, "login_membership", number, device)["outcome"] == "3"
    move_back(db, "login_device_lockouts", "locked_until", "3 min", "app_device_id = %s", device)
    # the lock ended: cleared with its failures, and the login succeeds
    assert one(db, "login_membership", number, device)["outcome"] == "success"
    assert scalar(db, "SELECT count(*) FROM login_device_lockouts") == 0
    assert db.execute(
        "SELECT app_device_id, count(*) FROM login_attempts WHERE NOT is_success GROUP BY 1"
    ).fetchall() == [(attacker, 5)]
    assert one(db, "login_membership", number, attacker)["outcome"] == "5"


# --- recovery-eligibility checks ---------------------------------------------


def test_recovery_checks_budget_per_number(db: Conn) -> None:
    owner = member_with_key(db)
    number = owner["number"]
    for i in range(10):
        region = "FR" if i % 2 else None  # every region is the same number
        row = one(db, "verify_phone_for_secret_key_recovery", number, region)
        assert row["outcome"] in ("eligible_for_recovery", "phone_not_found"), row
    refused = one(db, "verify_phone_for_secret_key_recovery", number)
    assert refused == {
        "success": False,
        "message": "Too many recovery checks for this number; try again in 60 minutes",
        "outcome": "rate_limited",
        "phone_number_id": None,
    }
    # another number has its own budget
    assert one(db, "verify_phone_for_secret_key_recovery", new_number())["outcome"] == (
        "phone_not_found"
    )
    checks = events(db, "recovery_eligibility_check")
    assert len(checks) == 12
    assert "outcome=rate_limited" in checks[10][1] and "checks_in_window=10" in checks[10][1]
    [(_, exhausted)] = events(db, "recovery_check_budget_exhausted")
    assert "checks_in_window=10" in exhausted
    # refusals are not counted; once the window moves on, checks resume
    move_back(db, "recovery_eligibility_checks", "checked_at", "40 min", "true")
    assert one(db, "verify_phone_for_secret_key_recovery", number)["outcome"] == "rate_limited"
    assert "20 minutes" in one(db, "verify_phone_for_secret_key_recovery", number)["message"]
    move_back(db, "recovery_eligibility_checks", "checked_at", "20 min", "true")
    ok = one(db, "verify_phone_for_secret_key_recovery", number)
    assert (ok["outcome"], ok["phone_number_id"]) == ("eligible_for_recovery", owner["phone"])


def test_audit_rows_hold_no_key_hash_or_code(db: Conn) -> None:
    key = b"\x01SECRETKEYBYTES"
    owner = member_with_key(db, key)
    one(db, "update_membership_secure_key", owner["membership"], b"\x02OTHERSECRET")
    for _ in range(6):
        one(db, "log_login_attempt", owner["number"], "bad", False, owner["device"])
    one(db, "login_membership", owner["number"], owner["device"])
    one(db, "verify_phone_for_secret_key_recovery", owner["number"])
    stored_hashes = [r[0] for r in db.execute("SELECT otp_hash FROM otp_records").fetchall()]
    messages = " ".join(m for _, m in events(db))
    assert {t for t, _ in events(db)} >= {
        "secure_key_set",
        "secure_key_change_refused",
        "login_locked_out",
        "recovery_eligibility_check",
    }
    for secret in ("SECRETKEYBYTES", "OTHERSECRET", key.hex(), *stored_hashes):
        assert secret not in messages


def test_recovery_right_after_registration_gets_a_flow_of_its_own(db: Conn) -> None:
    # The registration flow stays verified for 24 h; a recovery started in that
    # time must not be handed the registration flow back.
    owner = member_with_key(db)
    started = make_flow(db, owner["device"], owner["phone"], "password_recovery", 78)
    assert started["outcome"] == "created"
    assert started["status"] == "pending"
