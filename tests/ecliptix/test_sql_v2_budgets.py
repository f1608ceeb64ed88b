"""Version 2 budgets on the verification side, kept per number whatever the
region, with known devices apart: failed checks per number (24 h sliding
window) and per (number, known device); flows per number and per (number,
device) per hour; and the event_log row each exhausted budget writes."""

from __future__ import annotations

import uuid

from tests.ecliptix.sql_support import Conn, make_device, make_phone, move_back, one, scalar
from tests.ecliptix.verification_support import (
    RIGHT,
    WRONG,
    check,
    events,
    failures,
    fresh_flow_for,
    guess_wrong,
    issue,
    known_device,
    start_flow,
)

REGIONS = [None, "US", "GB", "DE", "FR"]


def exhaust_number(db: Conn, number: str) -> None:
    """Ten failed checks on the number from strangers' devices in three regions."""
    for region, guesses in ((None, 5), ("US", 3), ("GB", 2)):
        flow = fresh_flow_for(db, number, region)
        for _ in range(guesses):
            assert guess_wrong(db, flow)["outcome"] != "number_locked"
    assert failures(db, number) == 10


def test_strangers_share_ten_failed_checks_per_number_in_all_regions(db: Conn) -> None:
    number = "+447700900123"
    exhaust_number(db, number)
    for region in REGIONS:
        flow = fresh_flow_for(db, number, region)
        otp = issue(db, flow)
        row = check(db, flow, RIGHT)  # even the right code is not compared
        assert row == {
            "outcome": "number_locked",
            "otp_unique_id": None,
            "attempts_left": None,
            "flow_status": "pending",
        }
        assert scalar(db, "SELECT status FROM otp_records WHERE unique_id = %s", (otp,)) == (
            "pending"
        )
    assert failures(db, number) == 10  # nothing counted while locked
    logged = events(db, "number_check_budget_exhausted")
    assert len(logged) == 1
    assert number not in logged[0] and WRONG not in logged[0] and RIGHT not in logged[0]
    assert "10 failed checks" in logged[0]
    # other numbers are untouched
    other = fresh_flow_for(db, "+447700900124")
    issue(db, other)
    assert check(db, other, RIGHT)["outcome"] == "verified"


def test_number_budget_window_slides(db: Conn) -> None:
    number = "+447700900125"
    exhaust_number(db, number)
    flow = fresh_flow_for(db, number, "FR")
    issue(db, flow)
    move_back(db, "failed_otp_attempts", "attempt_time", "23 hours 59 min", "true")
    assert check(db, flow)["outcome"] == "number_locked"
    # the oldest failure leaves the 24 h window: exactly one more check
    db.execute(
        "UPDATE failed_otp_attempts SET attempt_time = now() - interval '24 hours 1 s' "
        "WHERE id = (SELECT min(id) FROM failed_otp_attempts)"
    )
    assert check(db, flow)["outcome"] == "invalid_code"
    assert check(db, flow)["outcome"] == "number_locked"
    move_back(db, "failed_otp_attempts", "attempt_time", "1 day", "true")
    assert check(db, flow, RIGHT)["outcome"] == "verified"


def test_known_device_keeps_its_own_budget(db: Conn) -> None:
    number = "+447700900126"
    owner = known_device(db, number, "GB")
    exhaust_number(db, number)
    # the owner's device, in any region of the number, still verifies
    phone_us = make_phone(db, number, "US", owner)
    flow = one(db, "initiate_verification_flow", owner, phone_us, "login", 1)["unique_identifier"]
    issue(db, flow)
    assert check(db, flow)["outcome"] == "invalid_code"
    assert check(db, flow, RIGHT)["outcome"] == "verified"
    known = db.execute(
        "SELECT app_device_id, known_device FROM failed_otp_attempts WHERE known_device"
    ).fetchall()
    assert known == [(owner, True)]


def test_known_device_budget_is_ten_and_its_own(db: Conn) -> None:
    number = "+447700900127"
    owner = known_device(db, number)
    second = known_device(db, number)
    phone = make_phone(db, number, None, owner)
    for _ in range(2):
        for purpose in ("login", "password_recovery"):
            row = one(db, "initiate_verification_flow", owner, phone, purpose, 1)
            flow = row["unique_identifier"]
            for _ in range(5):
                if failures(db, number) < 10:
                    guess_wrong(db, flow)
        if failures(db, number) >= 10:
            break
    assert failures(db, number) == 10
    flow = one(db, "initiate_verification_flow", owner, phone, "update_phone", 1)
    issue(db, flow["unique_identifier"])
    assert check(db, flow["unique_identifier"], RIGHT)["outcome"] == "number_locked"
    assert len(events(db, "device_check_budget_exhausted")) == 1
    assert events(db, "number_check_budget_exhausted") == []
    # neither the other known device nor a stranger is locked by it
    flow2 = one(db, "initiate_verification_flow", second, phone, "login", 1)["unique_identifier"]
    issue(db, flow2)
    assert check(db, flow2, RIGHT)["outcome"] == "verified"
    stranger = fresh_flow_for(db, number, "US")
    issue(db, stranger)
    assert check(db, stranger, RIGHT)["outcome"] == "verified"


def test_deleted_membership_is_not_a_known_device(db: Conn) -> None:
    number = "+447700900128"
    owner = known_device(db, number)
    assert scalar(db, "SELECT ecliptix_is_known_device(%s, %s)", (number, owner))
    assert not scalar(db, "SELECT ecliptix_is_known_device(%s, %s)", ("+447700900129", owner))
    db.execute("UPDATE memberships SET is_deleted = true")
    assert not scalar(db, "SELECT ecliptix_is_known_device(%s, %s)", (number, owner))


# --- flows per number and per (number, device) -------------------------------


def test_thirty_flows_per_number_across_regions(db: Conn) -> None:
    number = "+447700900130"
    owner = known_device(db, number)  # one flow already
    for i in range(29):
        start_flow(db, number=number, region=REGIONS[i % len(REGIONS)])
    assert len(events(db, "number_flow_budget_exhausted")) == 1
    for region in REGIONS:
        stranger = make_device(db)
        phone = make_phone(db, number, region, stranger)
        row = one(db, "initiate_verification_flow", stranger, phone, "registration", 1)
        assert row["outcome"] == "global_rate_limit_exceeded"
        assert row["unique_identifier"] is None
    # a known device of the number is held only to its own limit
    phone = make_phone(db, number, "FR", owner)
    assert one(db, "initiate_verification_flow", owner, phone, "login", 1)["outcome"] == "created"
    # after the hour, strangers are welcome again
    move_back(db, "verification_flows", "created_at", "1 hour", "true")
    stranger = make_device(db)
    phone = make_phone(db, number, "DE", stranger)
    assert one(db, "initiate_verification_flow", stranger, phone, "login", 1)["outcome"] == (
        "created"
    )
    assert len(events(db, "number_flow_budget_exhausted")) == 1


def test_five_flows_per_number_and_device(db: Conn) -> None:
    number = "+447700900131"
    device = known_device(db, number)  # a known device: this limit holds for it too
    purposes = ["login", "password_recovery", "update_phone", "unspecified"]
    for region, purpose in zip(REGIONS[1:], purposes, strict=True):
        phone = make_phone(db, number, region, device)
        row = one(db, "initiate_verification_flow", device, phone, purpose, 1)
        assert row["outcome"] == "created", (region, purpose)
    logged = events(db, "device_flow_budget_exhausted")
    assert len(logged) == 1 and str(device) in logged[0]
    phone = make_phone(db, number, None, device)
    refused = one(db, "initiate_verification_flow", device, phone, "login", 1)
    assert refused["outcome"] == "global_rate_limit_exceeded"
    # other devices are not affected
    assert start_flow(db, number=number)["flow"] is not None
    move_back(db, "verification_flows", "created_at", "1 hour", "app_device_id = %s", device)
    assert one(db, "initiate_verification_flow", device, phone, "login", 1)["outcome"] == "created"


def test_budgets_are_read_from_ecliptix_limits(db: Conn) -> None:
    db.execute(
        "UPDATE ecliptix_limits SET value = CASE name "
        "WHEN 'failed_checks_per_otp' THEN 1 WHEN 'failed_checks_per_flow' THEN 2 "
        "WHEN 'failed_checks_per_number' THEN 3 WHEN 'flows_per_device_per_window' THEN 1 "
        "WHEN 'flows_per_phone_per_window' THEN 3 ELSE value END"
    )
    number = "+447700900132"
    reg = start_flow(db, number=number)
    assert guess_wrong(db, reg["flow"])["outcome"] == "otp_retired"
    assert guess_wrong(db, reg["flow"])["outcome"] == "flow_failed"
    phone = make_phone(db, number, None, reg["device"])
    assert one(db, "initiate_verification_flow", reg["device"], phone, "login", 1)["outcome"] == (
        "global_rate_limit_exceeded"
    )
    flow = fresh_flow_for(db, number)
    assert guess_wrong(db, flow)["outcome"] == "otp_retired"
    flow = fresh_flow_for(db, number)  # the third flow of the number
    issue(db, flow)
    assert check(db, flow)["outcome"] == "number_locked"
    device = make_device(db)
    phone = make_phone(db, number, "US", device)
    assert one(db, "initiate_verification_flow", device, phone, "login", 1)["outcome"] == (
        "global_rate_limit_exceeded"
    )


def test_otp_and_flow_budget_events(db: Conn) -> None:
    reg = start_flow(db)
    for _ in range(5):
        guess_wrong(db, reg["flow"])
    otp_events = events(db, "otp_check_budget_exhausted")
    flow_events = events(db, "flow_check_budget_exhausted")
    assert len(otp_events) == 1 and len(flow_events) == 1
    assert str(reg["flow"]) in flow_events[0] and "5 failed checks" in flow_events[0]
    first_otp = scalar(db, "SELECT unique_id FROM otp_records ORDER BY id LIMIT 1")
    assert str(first_otp) in otp_events[0]
    for message in otp_events + flow_events:
        assert reg["number"] not in message and WRONG not in message


def test_flow_of_unknown_id_is_refused_without_counting(db: Conn) -> None:
    assert check(db, uuid.uuid4())["outcome"] == "flow_not_found_or_invalid"
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 0


def test_most_otps_per_flow_logged_once(db: Conn) -> None:
    reg = start_flow(db)
    for _ in range(5):
        issue(db, reg["flow"])
    move_back(db, "otp_records", "created_at", "31 s", "true")
    assert one(db, "request_resend_otp", reg["flow"])["outcome"] == "max_otp_attempts_reached"
    assert one(db, "request_resend_otp", reg["flow"])["outcome"] == "flow_not_found_or_invalid"
    logged = events(db, "flow_otp_budget_exhausted")
    assert logged == [f"flow {reg['flow']}: 5 OTPs issued; the flow failed"]
