"""The tunable limits live in one place (ecliptix_limits) and the functions
obey a change made by one UPDATE statement, as a later migration would."""

from __future__ import annotations

from tests.ecliptix.sql_support import (
    Conn,
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

SPEC = {
    "flow_lifetime_seconds": 300,
    "verified_flow_validity_seconds": 86400,
    "flows_per_phone_per_window": 30,
    "flow_rate_window_seconds": 3600,
    "otps_per_flow": 5,
    "otp_resend_cooldown_seconds": 30,
    "membership_failures_per_window": 5,
    "membership_failure_window_seconds": 3600,
    "login_failures_per_window": 5,
    "login_failure_window_seconds": 300,
    "login_lockout_seconds": 300,
    # v2: recovery-eligibility budget and retention periods
    "recovery_checks_per_window": 10,
    "recovery_check_window_seconds": 3600,
    "ended_flow_retention_seconds": 30 * 86400,
    "attempt_retention_seconds": 90 * 86400,
    "event_log_retention_seconds": 180 * 86400,
    "ended_lock_retention_seconds": 86400,
    "soft_deleted_retention_seconds": 30 * 86400,
    "unreferenced_retention_seconds": 30 * 86400,
    # version 2, verification side (V002)
    "failed_checks_per_otp": 3,
    "failed_checks_per_flow": 5,
    "failed_checks_per_number": 10,
    "failed_checks_per_known_device": 10,
    "failed_check_window_seconds": 86400,
    "flows_per_device_per_window": 5,
}


def test_limits_seeded_with_spec_numbers(db: Conn) -> None:
    assert dict(db.execute("SELECT name, value FROM ecliptix_limits").fetchall()) == SPEC


def test_no_limit_number_hard_coded_in_functions(db: Conn) -> None:
    # the contract numbers appear in no function body (they are read from the table)
    bodies = db.execute(
        "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
    ).fetchall()
    for name, src in bodies:
        for token in ("'5 min", "'30 s", "'1 hour", "'24 hour", ">= 30", ">= 5"):
            assert token not in src, (name, token)


def test_flows_per_hour_30_to_31(db: Conn) -> None:
    devices = [make_device(db) for _ in range(32)]
    phone = make_phone(db)
    for device in devices[:30]:
        assert make_flow(db, device, phone)["outcome"] == "created"
    refused = one(db, "initiate_verification_flow", devices[30], phone, "registration")
    assert refused["outcome"] == "global_rate_limit_exceeded"
    db.execute("UPDATE ecliptix_limits SET value = 31 WHERE name = 'flows_per_phone_per_window'")
    assert make_flow(db, devices[30], phone)["outcome"] == "created"
    refused = one(db, "initiate_verification_flow", devices[31], phone, "registration")
    assert refused["outcome"] == "global_rate_limit_exceeded"


def test_other_limits_are_read_from_the_table(db: Conn) -> None:
    db.execute(
        "UPDATE ecliptix_limits SET value = CASE name "
        "WHEN 'flow_lifetime_seconds' THEN 600 WHEN 'otps_per_flow' THEN 2 "
        "WHEN 'otp_resend_cooldown_seconds' THEN 120 "
        "WHEN 'login_failures_per_window' THEN 2 WHEN 'login_lockout_seconds' THEN 900 "
        "WHEN 'membership_failures_per_window' THEN 1 ELSE value END"
    )
    device = make_device(db)
    phone = make_phone(db, None, None, device)
    flow = make_flow(db, device, phone)["unique_identifier"]
    assert (
        scalar(
            db, "SELECT extract(epoch FROM expires_at - created_at)::int FROM verification_flows"
        )
        == 600
    )
    make_otp(db, flow)
    move_back(db, "otp_records", "created_at", "60 s", "true")
    assert one(db, "request_resend_otp", flow)["outcome"] == "resend_cooldown_active"
    assert one(db, "insert_otp_record", flow, "h", "s", "-infinity")["outcome"] == (
        "resend_cooldown_active"
    )
    move_back(db, "otp_records", "created_at", "60 s", "true")
    make_otp(db, flow)
    assert one(db, "insert_otp_record", flow, "h", "s", "-infinity")["outcome"] == (
        "max_otp_attempts_reached"
    )

    number = new_number()
    assert one(db, "login_membership", number)["outcome"] == "phone_number_not_found"
    assert one(db, "login_membership", number)["outcome"] == "phone_number_not_found"
    assert one(db, "login_membership", number)["outcome"] == "15"

    reg = verified_registration(db)
    assert one(db, "create_membership", reg["flow"], 1, reg["otp"], "otp_verified")["outcome"] == (
        "verification_flow_not_found"
    )
    assert one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")["outcome"] == (
        "60"
    )
