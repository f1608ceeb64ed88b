"""Core functions: get_phone_number, register_app_device_if_not_exists,
ensure_phone_number, verify_phone_for_secret_key_recovery, and bad input."""

from __future__ import annotations

import uuid

import pytest

from tests.ecliptix.sql_support import (
    Conn,
    call,
    expect_bad_input,
    fingerprint,
    make_device,
    make_phone,
    one,
    scalar,
    verified_registration,
)


def test_get_phone_number(db: Conn) -> None:
    phone = make_phone(db, "+4917000000001", "DE")
    assert call(db, "get_phone_number", phone) == [
        {"phone_number": "+4917000000001", "region": "DE", "unique_id": phone}
    ]
    assert call(db, "get_phone_number", uuid.uuid4()) == []
    db.execute("UPDATE phone_numbers SET is_deleted = true")
    assert call(db, "get_phone_number", phone) == []


def test_register_device_created_exists_restored(db: Conn) -> None:
    device_id, instance = uuid.uuid4(), uuid.uuid4()
    first = one(db, "register_app_device_if_not_exists", instance, device_id, 3)
    assert first["status"] == 2
    again = one(db, "register_app_device_if_not_exists", uuid.uuid4(), device_id, 1)
    assert again == {"unique_id": first["unique_id"], "status": 1}
    assert scalar(db, "SELECT device_type FROM app_devices") == 3
    db.execute("UPDATE app_devices SET is_deleted = true")
    restored = one(db, "register_app_device_if_not_exists", instance, device_id, 5)
    assert restored == {"unique_id": first["unique_id"], "status": 2}
    assert db.execute("SELECT count(*), bool_or(is_deleted) FROM app_devices").fetchone() == (
        1,
        False,
    )


def test_ensure_phone_outcomes(db: Conn) -> None:
    device = make_device(db)
    other = make_device(db)
    created = one(db, "ensure_phone_number", "+15550001000", None, None)
    assert created["outcome"] == "created" and created["success"] is True
    phone = created["unique_id"]
    assert one(db, "ensure_phone_number", "+15550001000", None, None) == {
        **created,
        "outcome": "exists",
        "message": one(db, "ensure_phone_number", "+15550001000", None)["message"],
    }
    # the same number in another region is another phone
    assert one(db, "ensure_phone_number", "+15550001000", "US")["outcome"] == "created"

    bad = one(db, "ensure_phone_number", "+15550001000", None, uuid.uuid4())
    assert (bad["unique_id"], bad["outcome"], bad["success"]) == (
        phone,
        "existing_but_invalid_app_device",
        False,
    )
    assert bad["message"]

    assoc = one(db, "ensure_phone_number", "+15550001000", None, device)
    assert (assoc["unique_id"], assoc["outcome"], assoc["success"]) == (phone, "associated", True)
    assoc2 = one(db, "ensure_phone_number", "+15550001000", None, other)
    assert assoc2["outcome"] == "associated"
    links = dict(
        db.execute("SELECT app_device_id, is_primary FROM phone_number_devices").fetchall()
    )
    assert links == {device: True, other: False}
    # again: idempotent
    assert one(db, "ensure_phone_number", "+15550001000", None, device)["outcome"] == "associated"
    assert scalar(db, "SELECT count(*) FROM phone_number_devices") == 2

    # a deleted link is restored; primary only if no other non-deleted link
    db.execute(
        "UPDATE phone_number_devices SET is_deleted = true WHERE app_device_id = %s", (device,)
    )
    one(db, "ensure_phone_number", "+15550001000", None, device)
    assert (
        scalar(
            db, "SELECT is_primary FROM phone_number_devices WHERE app_device_id = %s", (device,)
        )
        is False
    )
    db.execute("UPDATE phone_number_devices SET is_deleted = true")
    one(db, "ensure_phone_number", "+15550001000", None, other)
    row = db.execute(
        "SELECT is_primary, is_deleted FROM phone_number_devices WHERE app_device_id = %s",
        (other,),
    ).fetchone()
    assert row == (True, False)

    # a deleted device is not valid
    db.execute("UPDATE app_devices SET is_deleted = true WHERE unique_id = %s", (device,))
    assert (
        one(db, "ensure_phone_number", "+15550001000", None, device)["outcome"]
        == "existing_but_invalid_app_device"
    )


def test_ensure_phone_created_with_device(db: Conn) -> None:
    device = make_device(db)
    row = one(db, "ensure_phone_number", "+15550002000", "GB", device)
    assert (row["outcome"], row["success"]) == ("created_and_associated", True)
    assert db.execute(
        "SELECT phone_number_id, is_primary FROM phone_number_devices"
    ).fetchall() == [(row["unique_id"], True)]
    bad = one(db, "ensure_phone_number", "+15550003000", "GB", uuid.uuid4())
    assert (bad["outcome"], bad["success"]) == ("created_but_invalid_app_device", False)
    assert bad["unique_id"] is not None
    assert call(db, "get_phone_number", bad["unique_id"])[0]["phone_number"] == "+15550003000"
    assert scalar(db, "SELECT count(*) FROM phone_number_devices") == 1


def test_ensure_phone_after_soft_delete_creates_new(db: Conn) -> None:
    first = make_phone(db, "+15550005000")
    db.execute("UPDATE phone_numbers SET is_deleted = true")
    row = one(db, "ensure_phone_number", "+15550005000", None)
    assert row["outcome"] == "created" and row["unique_id"] != first


@pytest.mark.parametrize(
    "number",
    ["15550100200", "+05550100200", "+1555010", "+1555010020030040", "+1 555 0100", "+1555O100200"],
)
def test_ensure_phone_new_rows_take_e164_only(db: Conn, number: str) -> None:
    # version 2: '+', then 8 to 15 digits, the first not 0 (22023 naming p_phone_number)
    message = expect_bad_input(db, "ensure_phone_number", number, None, param="p_phone_number")
    assert "E.164" in message
    assert scalar(db, "SELECT count(*) FROM phone_numbers") == 0


def test_ensure_phone_e164_edges(db: Conn) -> None:
    for number in ("+15550100", "+155501002003004"):  # 8 and 15 digits
        assert one(db, "ensure_phone_number", number, None)["outcome"] == "created"


def test_ensure_phone_existing_non_e164_row_left_as_it_is(db: Conn) -> None:
    # a row from version 1 that is not E.164 is still found, used and linked
    device = make_device(db)
    db.execute("INSERT INTO phone_numbers (phone_number, region) VALUES ('5550100', 'US')")
    legacy = scalar(db, "SELECT unique_id FROM phone_numbers")
    assert one(db, "ensure_phone_number", "5550100", "US")["outcome"] == "exists"
    row = one(db, "ensure_phone_number", "5550100", "US", device)
    assert (row["unique_id"], row["outcome"]) == (legacy, "associated")
    # but in another region (no row yet) it is a new row, refused
    expect_bad_input(db, "ensure_phone_number", "5550100", "GB", param="p_phone_number")


def test_verify_phone_for_secret_key_recovery(db: Conn) -> None:
    assert one(db, "verify_phone_for_secret_key_recovery", "+9999", None) == {
        "success": False,
        "message": one(db, "verify_phone_for_secret_key_recovery", "+9999")["message"],
        "outcome": "phone_not_found",
        "phone_number_id": None,
    }
    reg = verified_registration(db)
    row = one(db, "verify_phone_for_secret_key_recovery", reg["number"], None)
    assert (row["success"], row["outcome"], row["phone_number_id"]) == (
        False,
        "membership_not_found",
        reg["phone"],
    )
    # region must match (NULL matches NULL only)
    assert one(db, "verify_phone_for_secret_key_recovery", reg["number"], "US")["outcome"] == (
        "phone_not_found"
    )
    m = one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")
    assert m["outcome"] == "created"
    row = one(db, "verify_phone_for_secret_key_recovery", reg["number"])
    assert (row["success"], row["outcome"]) == (False, "no_secure_key")
    db.execute("UPDATE memberships SET secure_key = ''::bytea")
    assert one(db, "verify_phone_for_secret_key_recovery", reg["number"])["outcome"] == (
        "no_secure_key"
    )
    one(db, "update_membership_secure_key", m["membership_unique_id"], b"k")
    row = one(db, "verify_phone_for_secret_key_recovery", reg["number"])
    assert (row["success"], row["outcome"], row["phone_number_id"]) == (
        True,
        "eligible_for_recovery",
        reg["phone"],
    )
    assert row["message"]
    db.execute("UPDATE memberships SET is_deleted = true")
    assert one(db, "verify_phone_for_secret_key_recovery", reg["number"])["outcome"] == (
        "membership_not_found"
    )


# --- bad input: every function, each raises 22xxx/23xxx naming the parameter ---

U = uuid.UUID(int=1)

BAD_CALLS = [
    ("get_phone_number", (None,), "p_phone_unique_id"),
    ("register_app_device_if_not_exists", (None, U, 1), "p_app_instance_id"),
    ("register_app_device_if_not_exists", (U, None, 1), "p_device_id"),
    ("register_app_device_if_not_exists", (U, U, None), "p_device_type"),
    ("ensure_phone_number", (None, None), "p_phone_number"),
    ("ensure_phone_number", ("", None), "p_phone_number"),
    ("ensure_phone_number", ("1" * 19, None), "p_phone_number"),
    ("ensure_phone_number", ("+1", "usa"), "p_region"),
    ("ensure_phone_number", ("+1", "us"), "p_region"),
    ("ensure_phone_number", ("+1", "U"), "p_region"),
    ("ensure_phone_number", ("+1", ""), "p_region"),
    ("ensure_phone_number", ("+1", None), "p_phone_number"),
    ("ensure_phone_number", ("+0123456789", "US"), "p_phone_number"),
    ("verify_phone_for_secret_key_recovery", (None,), "p_phone_number"),
    ("verify_phone_for_secret_key_recovery", ("1" * 19,), "p_phone_number"),
    ("verify_phone_for_secret_key_recovery", ("+1", "Xx"), "p_region"),
    ("get_full_flow_state", (None,), "p_flow_unique_id"),
    ("initiate_verification_flow", (None, U, "login"), "p_app_device_id"),
    ("initiate_verification_flow", (U, None, "login"), "p_phone_unique_id"),
    ("initiate_verification_flow", (U, U, None), "p_purpose"),
    ("initiate_verification_flow", (U, U, "signup"), "p_purpose"),
    ("request_resend_otp", (None,), "p_flow_unique_id"),
    ("insert_otp_record", (None, "h", "s", "2030-01-01Z"), "p_flow_unique_id"),
    ("insert_otp_record", (U, None, "s", "2030-01-01Z"), "p_otp_hash"),
    ("insert_otp_record", (U, "h" * 256, "s", "2030-01-01Z"), "p_otp_hash"),
    ("insert_otp_record", (U, "h", None, "2030-01-01Z"), "p_otp_salt"),
    ("insert_otp_record", (U, "h", "s" * 256, "2030-01-01Z"), "p_otp_salt"),
    ("insert_otp_record", (U, "h", "s", None), "p_expires_at"),
    ("insert_otp_record", (U, "h", "s", "2030-01-01Z", "verified"), "p_status"),
    ("insert_otp_record", (U, "h", "s", "2030-01-01Z", None), "p_status"),
    ("update_otp_status", (None, "failed"), "p_otp_unique_id"),
    ("update_otp_status", (U, None), "p_new_status"),
    ("update_otp_status", (U, "done"), "p_new_status"),
    ("update_verification_flow_status", (None, "verified"), "p_flow_unique_id"),
    ("update_verification_flow_status", (U, "done"), "p_new_status"),
    ("update_verification_flow_status", (U, None), "p_new_status"),
    ("expire_associated_otp", (None,), "p_flow_unique_id"),
    ("log_login_attempt", (None, "x", False), "p_phone_number"),
    ("log_login_attempt", ("1" * 19, "x", False), "p_phone_number"),
    ("log_login_attempt", ("+1", None, False), "p_outcome"),
    ("log_login_attempt", ("+1", "x" * 256, False), "p_outcome"),
    ("log_login_attempt", ("+1", "x", None), "p_is_success"),
    ("log_membership_attempt", (None, "x", False), "p_phone_number_id"),
    ("log_membership_attempt", (U, None, False), "p_outcome"),
    ("log_membership_attempt", (U, "x", None), "p_is_success"),
    ("create_membership", (None, 1, U, "otp_verified"), "p_flow_unique_id"),
    ("create_membership", (U, None, U, "otp_verified"), "p_connection_id"),
    ("create_membership", (U, 1, None, "otp_verified"), "p_otp_unique_id"),
    ("create_membership", (U, 1, U, None), "p_creation_status"),
    ("create_membership", (U, 1, U, "active"), "p_creation_status"),
    ("update_membership_secure_key", (None, b"k"), "p_membership_unique_id"),
    ("login_membership", ("1" * 19,), "p_phone_number"),
]


BAD_BY_FUNCTION: dict[str, list[tuple[tuple[object, ...], str]]] = {}
for _fn, _args, _param in BAD_CALLS:
    BAD_BY_FUNCTION.setdefault(_fn, []).append((_args, _param))


@pytest.mark.parametrize("fn", sorted(BAD_BY_FUNCTION))
def test_bad_input_raises_and_changes_nothing(db: Conn, fn: str) -> None:
    reg = verified_registration(db)  # some state that must stay untouched
    for args, param in BAD_BY_FUNCTION[fn]:
        real = tuple(reg["flow"] if a is U and fn != "log_membership_attempt" else a for a in args)
        expect_bad_input(db, fn, *real, param=param)


def test_log_membership_attempt_unknown_phone_is_fk_error(db: Conn) -> None:
    expect_bad_input(db, "log_membership_attempt", uuid.uuid4(), "x", False, param="membership")


def test_support_fingerprint_sees_changes(db: Conn) -> None:
    before = fingerprint(db)
    db.execute("INSERT INTO event_log (event_type, message) VALUES ('x', 'y')")
    assert fingerprint(db) != before
