"""Verification-flow functions: every outcome, including the time-based ones
(flow expiry, resend cooldown, hourly flow limit) by moving stored times back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.ecliptix.sql_support import (
    Conn,
    call,
    make_device,
    make_flow,
    make_otp,
    make_phone,
    move_back,
    one,
    scalar,
)

FLOW_COLUMNS = [
    "unique_identifier",
    "phone_number_identifier",
    "app_device_identifier",
    "connect_id",
    "expires_at",
    "status",
    "purpose",
    "otp_count",
    "otp_unique_identifier",
    "otp_flow_unique_id",
    "otp_hash",
    "otp_salt",
    "otp_expires_at",
    "otp_status",
    "otp_is_active",
]


DevicePhone = tuple[uuid.UUID, uuid.UUID]


@pytest.fixture
def dp(db: Conn) -> DevicePhone:
    device = make_device(db)
    return device, make_phone(db, None, None, device)


def phone_id(db: Conn, phone: uuid.UUID) -> int:
    return int(scalar(db, "SELECT id FROM phone_numbers WHERE unique_id = %s", (phone,)))


def test_get_full_flow_state(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone, "login", 7)["unique_identifier"]
    state = one(db, "get_full_flow_state", flow)
    assert list(state) == FLOW_COLUMNS
    assert state["unique_identifier"] == flow
    assert state["phone_number_identifier"] == phone
    assert state["app_device_identifier"] == device
    assert (state["connect_id"], state["status"], state["purpose"], state["otp_count"]) == (
        7,
        "pending",
        "login",
        0,
    )
    assert all(state[c] is None for c in FLOW_COLUMNS[8:])
    lifetime = scalar(db, "SELECT expires_at - created_at FROM verification_flows")
    assert lifetime == timedelta(minutes=5)

    otp = make_otp(db, flow)
    state = one(db, "get_full_flow_state", flow)
    assert state["otp_unique_identifier"] == otp and state["otp_flow_unique_id"] == flow
    # version 2: the hash is never read back (otp_hash NULL); the salt names the key
    assert (state["otp_hash"], state["otp_salt"], state["otp_status"], state["otp_is_active"]) == (
        None,
        "salt",
        "pending",
        True,
    )
    assert state["otp_count"] == 1
    # an expired OTP is not shown
    move_back(db, "otp_records", "expires_at", "10 min", "true")
    assert one(db, "get_full_flow_state", flow)["otp_unique_identifier"] is None
    # no row for an unknown or deleted flow
    assert call(db, "get_full_flow_state", uuid.uuid4()) == []
    db.execute("UPDATE verification_flows SET is_deleted = true")
    assert call(db, "get_full_flow_state", flow) == []


def test_initiate_not_found(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    row = one(db, "initiate_verification_flow", device, uuid.uuid4(), "login", None)
    assert row["outcome"] == "phone_not_found"
    assert all(row[c] is None for c in FLOW_COLUMNS)
    row = one(db, "initiate_verification_flow", uuid.uuid4(), phone, "login", None)
    assert row["outcome"] == "app_device_not_found"
    assert all(row[c] is None for c in FLOW_COLUMNS)
    db.execute("UPDATE phone_numbers SET is_deleted = true")
    assert one(db, "initiate_verification_flow", device, phone, "login")["outcome"] == (
        "phone_not_found"
    )
    db.execute("UPDATE phone_numbers SET is_deleted = false")
    db.execute("UPDATE app_devices SET is_deleted = true")
    assert one(db, "initiate_verification_flow", device, phone, "login")["outcome"] == (
        "app_device_not_found"
    )
    assert scalar(db, "SELECT count(*) FROM verification_flows") == 0


def test_initiate_created_retrieved_and_connection_id(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    created = one(db, "initiate_verification_flow", device, phone, "registration", 1)
    assert created["outcome"] == "created" and created["connect_id"] == 1
    flow = created["unique_identifier"]
    again = one(db, "initiate_verification_flow", device, phone, "registration", None)
    assert (again["outcome"], again["unique_identifier"], again["connect_id"]) == (
        "retrieved",
        flow,
        1,
    )
    moved = one(db, "initiate_verification_flow", device, phone, "registration", 2)
    assert (moved["outcome"], moved["unique_identifier"], moved["connect_id"]) == (
        "retrieved",
        flow,
        2,
    )
    # another purpose or device is another flow
    other = one(db, "initiate_verification_flow", device, phone, "login", 2)
    assert other["outcome"] == "created" and other["unique_identifier"] != flow
    device2 = make_device(db)
    assert one(db, "initiate_verification_flow", device2, phone, "login")["outcome"] == "created"


def test_initiate_expires_passed_pending_flow(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    old = make_flow(db, device, phone)["unique_identifier"]
    move_back(db, "verification_flows", "expires_at", "5 min", "true")
    row = one(db, "initiate_verification_flow", device, phone, "registration", 42)
    assert row["outcome"] == "created" and row["unique_identifier"] != old
    assert one(db, "get_full_flow_state", old)["status"] == "expired"


def verify_through_otp(db: Conn, flow: uuid.UUID) -> uuid.UUID:
    """Verify a flow the version 1 way: its OTP verified, then the flow confirmed."""
    otp = make_otp(db, flow)
    assert one(db, "update_otp_status", otp, "verified")["success"]
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 1
    return otp


def test_initiate_returns_verified_flow(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone, "registration")["unique_identifier"]
    verify_through_otp(db, flow)
    # version 2: only to the device that verified it, for the same purpose ...
    row = one(db, "initiate_verification_flow", device, phone, "registration", None)
    assert (row["outcome"], row["unique_identifier"], row["status"]) == (
        "verified",
        flow,
        "verified",
    )
    # ... another purpose (a password recovery, say) starts a flow of its own
    row = one(db, "initiate_verification_flow", device, phone, "password_recovery", None)
    assert (row["outcome"], row["status"]) == ("created", "pending")
    assert row["unique_identifier"] != flow
    # ... every other device gets a flow of its own
    device2 = make_device(db)
    row = one(db, "initiate_verification_flow", device2, phone, "login", None)
    assert row["outcome"] == "created" and row["unique_identifier"] != flow
    # newest first
    db.execute("UPDATE verification_flows SET created_at = created_at - interval '2 min'")
    flow2 = one(db, "initiate_verification_flow", device, phone, "registration", None)
    assert (flow2["outcome"], flow2["unique_identifier"]) == ("verified", flow)
    # an expired verified flow is not returned
    move_back(db, "verification_flows", "expires_at", "25 hours", "true")
    row = one(db, "initiate_verification_flow", device, phone, "login", None)
    assert row["outcome"] == "created"


def test_initiate_global_rate_limit_window(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    pid = phone_id(db, phone)
    # 29 earlier flows (some deleted, some not pending) within the hour count
    # (version 2: made by other devices, each under its own limit of 5)
    others = [make_device(db) for _ in range(29)]
    db.execute(
        "INSERT INTO verification_flows (phone_number_id, app_device_id, status, expires_at, "
        "is_deleted) SELECT %s, d, 'expired', now(), g %% 2 = 0 "
        "FROM unnest(%s::uuid[]) WITH ORDINALITY AS t(d, g)",
        (pid, others),
    )
    assert make_flow(db, device, phone, "login")["outcome"] == "created"  # the 30th
    row = one(db, "initiate_verification_flow", device, phone, "registration", None)
    assert row["outcome"] == "global_rate_limit_exceeded"
    assert all(row[c] is None for c in FLOW_COLUMNS)
    # even retrieving the pending one is refused (checks run in order)
    assert one(db, "initiate_verification_flow", device, phone, "login")["outcome"] == (
        "global_rate_limit_exceeded"
    )
    # a flow created just under an hour ago still counts; over an hour no longer
    db.execute(
        "UPDATE verification_flows SET created_at = now() - interval '59 min 50 s' "
        "WHERE id = (SELECT min(id) FROM verification_flows)"
    )
    assert one(db, "initiate_verification_flow", device, phone, "registration")["outcome"] == (
        "global_rate_limit_exceeded"
    )
    db.execute(
        "UPDATE verification_flows SET created_at = now() - interval '61 min' "
        "WHERE id = (SELECT min(id) FROM verification_flows)"
    )
    assert one(db, "initiate_verification_flow", device, phone, "registration")["outcome"] == (
        "created"
    )
    assert one(db, "initiate_verification_flow", device, phone, "update_phone")["outcome"] == (
        "global_rate_limit_exceeded"
    )


def test_request_resend_otp(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    assert one(db, "request_resend_otp", uuid.uuid4()) == {"outcome": "flow_not_found_or_invalid"}
    flow = make_flow(db, device, phone)["unique_identifier"]
    assert one(db, "request_resend_otp", flow)["outcome"] == "resend_allowed"  # no OTP yet
    make_otp(db, flow)
    assert one(db, "request_resend_otp", flow)["outcome"] == "resend_cooldown_active"
    move_back(db, "otp_records", "created_at", "29 s", "true")
    assert one(db, "request_resend_otp", flow)["outcome"] == "resend_cooldown_active"
    move_back(db, "otp_records", "created_at", "2 s", "true")
    assert one(db, "request_resend_otp", flow)["outcome"] == "resend_allowed"
    make_otp(db, flow)  # the newest OTP decides
    assert one(db, "request_resend_otp", flow)["outcome"] == "resend_cooldown_active"
    # max OTPs: flow becomes failed
    db.execute("UPDATE verification_flows SET otp_count = 5")
    assert one(db, "request_resend_otp", flow)["outcome"] == "max_otp_attempts_reached"
    assert one(db, "get_full_flow_state", flow)["status"] == "failed"
    assert one(db, "request_resend_otp", flow)["outcome"] == "flow_not_found_or_invalid"


def test_request_resend_otp_expired_flow(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    move_back(db, "verification_flows", "expires_at", "5 min", "true")
    assert one(db, "request_resend_otp", flow)["outcome"] == "flow_expired"
    assert one(db, "get_full_flow_state", flow)["status"] == "expired"
    assert one(db, "request_resend_otp", flow)["outcome"] == "flow_not_found_or_invalid"
    flow2 = make_flow(db, device, phone)["unique_identifier"]
    db.execute("UPDATE verification_flows SET is_deleted = true WHERE unique_id = %s", (flow2,))
    assert one(db, "request_resend_otp", flow2)["outcome"] == "flow_not_found_or_invalid"


def test_insert_otp_record(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    missing = one(db, "insert_otp_record", uuid.uuid4(), "h", "s", "2099-01-01Z")
    assert missing == {"otp_unique_id": None, "outcome": "flow_not_found_or_invalid"}
    flow = make_flow(db, device, phone)["unique_identifier"]
    otps = []
    for _ in range(5):
        otps.append(make_otp(db, flow))
        move_back(db, "otp_records", "created_at", "30 s", "true")  # past the resend cooldown
    rows = db.execute(
        "SELECT unique_id, status, is_active, phone_number_id FROM otp_records ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == otps
    assert [(r[1], r[2]) for r in rows] == [("expired", False)] * 4 + [("pending", True)]
    assert {r[3] for r in rows} == {phone_id(db, phone)}
    assert one(db, "get_full_flow_state", flow)["otp_count"] == 5
    expires = scalar(db, "SELECT expires_at FROM verification_flows")
    sixth = one(db, "insert_otp_record", flow, "h", "s", expires, "pending")
    assert sixth == {"otp_unique_id": None, "outcome": "max_otp_attempts_reached"}
    assert one(db, "get_full_flow_state", flow)["status"] == "failed"
    assert one(db, "insert_otp_record", flow, "h", "s", expires)["outcome"] == (
        "flow_not_found_or_invalid"
    )
    assert scalar(db, "SELECT count(*) FROM otp_records") == 5


def test_insert_otp_record_flow_invalid(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    move_back(db, "verification_flows", "expires_at", "5 min", "true")
    assert one(db, "insert_otp_record", flow, "h", "s", "2099-01-01Z")["outcome"] == (
        "flow_not_found_or_invalid"
    )
    db.execute("UPDATE verification_flows SET expires_at = now() + interval '1 min'")
    db.execute("UPDATE verification_flows SET status = 'verified'")
    assert one(db, "insert_otp_record", flow, "h", "s", "2099-01-01Z")["outcome"] == (
        "flow_not_found_or_invalid"
    )
    assert scalar(db, "SELECT count(*) FROM otp_records") == 0


MSG_INVALID = "OTP not found, deleted, or flow invalid/expired"
OK = {"success": True, "message": "OTP status updated successfully"}


def test_update_otp_status_transitions(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    allowed = {
        ("pending", "pending"),
        ("pending", "verified"),
        ("pending", "expired"),
        ("pending", "failed"),
        ("failed", "failed"),
        ("failed", "expired"),
        ("verified", "verified"),
        ("verified", "expired"),
        ("expired", "expired"),
    }
    flow = make_flow(db, device, phone)["unique_identifier"]
    otp = make_otp(db, flow)
    for old in ("pending", "verified", "expired", "failed"):
        for new in ("pending", "verified", "expired", "failed"):
            db.execute(
                "UPDATE otp_records SET status = %s, is_active = %s", (old, old == "pending")
            )
            db.execute("UPDATE verification_flows SET status = 'pending'")
            row = one(db, "update_otp_status", otp, new)
            if (old, new) in allowed:
                assert row == OK, (old, new)
                assert scalar(db, "SELECT status FROM otp_records") == new
                assert scalar(db, "SELECT is_active FROM otp_records") is (new == "pending")
            else:
                assert row == {
                    "success": False,
                    "message": f"Cannot transition from {old} to {new}",
                }, (old, new)
                assert scalar(db, "SELECT status FROM otp_records") == old
    # version 2: setting failed again on a failed OTP records nothing new
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 1


def test_update_otp_status_effects(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    assert one(db, "update_otp_status", uuid.uuid4(), "verified") == {
        "success": False,
        "message": MSG_INVALID,
    }
    flow = make_flow(db, device, phone)["unique_identifier"]
    otp = make_otp(db, flow)
    assert one(db, "update_otp_status", otp, "failed") == OK
    assert one(db, "update_otp_status", otp, "failed") == OK
    # version 2: the second 'failed' records nothing new
    assert db.execute(
        "SELECT otp_unique_id, flow_unique_id FROM failed_otp_attempts"
    ).fetchall() == [(otp, flow)]
    # a failed code can never verify the flow
    assert one(db, "update_otp_status", otp, "verified")["success"] is False
    assert one(db, "get_full_flow_state", flow)["status"] == "pending"

    move_back(db, "otp_records", "created_at", "30 s", "true")
    otp2 = make_otp(db, flow)
    expires = scalar(db, "SELECT expires_at FROM verification_flows")
    assert one(db, "update_otp_status", otp2, "verified") == OK
    state = one(db, "get_full_flow_state", flow)
    assert state["status"] == "verified" and state["expires_at"] == expires
    # the flow is no longer pending: further changes refused
    assert one(db, "update_otp_status", otp2, "expired")["message"] == MSG_INVALID


def test_update_otp_status_flow_invalid_or_otp_deleted(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    otp = make_otp(db, flow)
    db.execute("UPDATE otp_records SET is_deleted = true")
    assert one(db, "update_otp_status", otp, "verified")["message"] == MSG_INVALID
    db.execute("UPDATE otp_records SET is_deleted = false")
    move_back(db, "verification_flows", "expires_at", "5 min", "true")
    assert one(db, "update_otp_status", otp, "verified")["message"] == MSG_INVALID
    db.execute("UPDATE verification_flows SET expires_at = now() + interval '1 min'")
    db.execute("UPDATE verification_flows SET is_deleted = true")
    assert one(db, "update_otp_status", otp, "verified")["message"] == MSG_INVALID
    assert scalar(db, "SELECT status FROM otp_records") == "pending"


def test_update_otp_status_pending_retires_other_active(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    first = make_otp(db, flow)
    move_back(db, "otp_records", "created_at", "30 s", "true")
    second = make_otp(db, flow)
    # make the first pending-but-inactive, then re-set it pending: it becomes active
    db.execute("UPDATE otp_records SET status = 'pending' WHERE unique_id = %s", (first,))
    assert one(db, "update_otp_status", first, "pending") == OK
    rows = dict(db.execute("SELECT unique_id, (status, is_active)::text FROM otp_records"))
    assert rows == {first: "(pending,t)", second: "(expired,f)"}


def test_update_verification_flow_status(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    assert one(db, "update_verification_flow_status", uuid.uuid4(), "failed") == {
        "rows_affected": 0
    }
    flow = make_flow(db, device, phone)["unique_identifier"]
    expires = scalar(db, "SELECT expires_at FROM verification_flows")
    assert one(db, "update_verification_flow_status", flow, "pending")["rows_affected"] == 1
    assert one(db, "update_verification_flow_status", flow, "failed")["rows_affected"] == 1
    assert db.execute("SELECT status, expires_at FROM verification_flows").fetchone() == (
        "failed",
        expires,
    )
    # version 2: failed (and expired) are final
    for status in ("verified", "pending", "expired"):
        assert one(db, "update_verification_flow_status", flow, status)["rows_affected"] == 0
    assert scalar(db, "SELECT status FROM verification_flows") == "failed"
    assert one(db, "update_verification_flow_status", flow, "failed")["rows_affected"] == 1
    db.execute("UPDATE verification_flows SET is_deleted = true")
    assert one(db, "update_verification_flow_status", flow, "expired")["rows_affected"] == 0


def test_update_verification_flow_status_verified_needs_verified_otp(
    db: Conn, dp: DevicePhone
) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    # version 2: no verified OTP, no verified flow
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 0
    otp = make_otp(db, flow)
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 0
    assert scalar(db, "SELECT status FROM verification_flows") == "pending"
    assert one(db, "update_otp_status", otp, "verified") == OK
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 1
    # valid for 24 h from when its code was verified
    assert scalar(
        db, "SELECT f.expires_at - r.updated_at FROM verification_flows f, otp_records r"
    ) == timedelta(hours=24)
    # repeating it later never extends the validity
    move_back(db, "otp_records", "updated_at", "1 hour", "true")
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 1
    assert scalar(
        db, "SELECT f.expires_at - r.updated_at FROM verification_flows f, otp_records r"
    ) == timedelta(hours=24)
    # a verified flow never goes back to pending; expiring it is final
    assert one(db, "update_verification_flow_status", flow, "pending")["rows_affected"] == 0
    assert one(db, "update_verification_flow_status", flow, "expired")["rows_affected"] == 1
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 0
    assert scalar(db, "SELECT status FROM verification_flows") == "expired"


def test_update_verification_flow_status_not_after_validity(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    verify_through_otp(db, flow)
    move_back(db, "otp_records", "updated_at", "24 hours", "true")
    assert one(db, "update_verification_flow_status", flow, "verified")["rows_affected"] == 0


def test_expire_associated_otp(db: Conn, dp: DevicePhone) -> None:
    device, phone = dp
    flow = make_flow(db, device, phone)["unique_identifier"]
    assert one(db, "expire_associated_otp", flow) == {"rows_affected": 0}
    make_otp(db, flow)
    move_back(db, "otp_records", "created_at", "30 s", "true")
    otp = make_otp(db, flow)
    assert one(db, "expire_associated_otp", flow) == {"rows_affected": 1}
    assert db.execute(
        "SELECT status, is_active FROM otp_records WHERE unique_id = %s", (otp,)
    ).fetchone() == ("expired", False)
    assert one(db, "expire_associated_otp", flow) == {"rows_affected": 0}
    assert call(db, "expire_associated_otp", uuid.uuid4()) == [{"rows_affected": 0}]
