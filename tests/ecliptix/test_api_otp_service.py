"""issue_otp and check_otp round trips against the real database."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from ecliptix import (
    EcliptixClient,
    FlowStatus,
    InsertOtpOutcome,
    OtpCheckOutcome,
    OtpStatus,
    verify_otp,
)

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]


@pytest.fixture
def client(db: Conn) -> EcliptixClient:
    return EcliptixClient(db)


def start_flow(client: EcliptixClient, number: str = "+15550201") -> uuid.UUID:
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    phone = client.ensure_phone_number(number, None, device).unique_id
    assert phone is not None
    flow = client.initiate_verification_flow(device, phone, "registration", 7).unique_identifier
    assert flow is not None
    return flow


def failed_attempts(db: Conn, otp: uuid.UUID) -> int:
    row = db.execute(
        "SELECT count(*) FROM failed_otp_attempts WHERE otp_unique_id = %s", [otp]
    ).fetchone()
    assert row is not None
    return int(row[0])


def other_code(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def test_issue_stores_only_a_hash_of_the_code(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.created and issued.outcome is InsertOtpOutcome.CREATED
    assert issued.code is not None and len(issued.code) == 6 and issued.code.isdigit()
    assert issued.code not in repr(issued)
    row = db.execute(
        "SELECT otp_hash, otp_salt, expires_at - created_at FROM otp_records WHERE unique_id = %s",
        [issued.otp_unique_id],
    ).fetchone()
    assert row is not None
    stored, salt, lifetime = row
    assert issued.code not in stored and issued.code not in salt
    assert verify_otp(issued.code, stored, salt)
    assert lifetime == dt.timedelta(minutes=5)


def test_right_code_verifies_the_flow_once(client: EcliptixClient) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow, lifetime=dt.timedelta(minutes=2), digits=8)
    assert issued.code is not None and len(issued.code) == 8
    check = client.check_otp(flow, issued.code)
    assert check.verified and check.outcome is OtpCheckOutcome.VERIFIED
    assert check.otp_unique_id == issued.otp_unique_id
    state = client.get_full_flow_state(flow)
    assert state is not None and state.status is FlowStatus.VERIFIED
    assert state.otp_unique_identifier is None  # the used code is no longer active
    # The same code cannot be used again.
    assert client.check_otp(flow, issued.code).outcome is OtpCheckOutcome.FLOW_NOT_PENDING


def test_wrong_code_is_recorded_and_retires_the_code(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None and issued.otp_unique_id is not None
    wrong = client.check_otp(flow, other_code(issued.code))
    assert wrong.outcome is OtpCheckOutcome.INVALID_CODE and not wrong.verified
    assert failed_attempts(db, issued.otp_unique_id) == 1
    # After a failure the right code is refused too: a failed OTP never verifies.
    retry = client.check_otp(flow, issued.code)
    assert retry.outcome is OtpCheckOutcome.NO_ACTIVE_OTP
    assert client.update_otp_status(issued.otp_unique_id, OtpStatus.VERIFIED).success is False
    state = client.get_full_flow_state(flow)
    assert state is not None and state.status is FlowStatus.PENDING
    assert failed_attempts(db, issued.otp_unique_id) == 1


def test_a_new_code_replaces_the_old_one(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    old = client.issue_otp(flow)
    new = client.issue_otp(flow)
    assert old.code is not None and new.code is not None and old.otp_unique_id is not None
    if old.code != new.code:  # one in a million they are equal
        assert client.check_otp(flow, old.code).outcome is OtpCheckOutcome.INVALID_CODE
        assert failed_attempts(db, old.otp_unique_id) == 0  # the failure is on the new OTP
        assert client.check_otp(flow, new.code).outcome is OtpCheckOutcome.NO_ACTIVE_OTP
    else:
        assert client.check_otp(flow, new.code).verified


def test_issue_reports_refusals_without_a_code(client: EcliptixClient) -> None:
    refused = client.issue_otp(uuid.uuid4())
    assert (refused.code, refused.otp_unique_id) == (None, None)
    assert refused.outcome is InsertOtpOutcome.FLOW_NOT_FOUND_OR_INVALID and not refused.created
    flow = start_flow(client)
    for _ in range(5):
        assert client.issue_otp(flow).created
    capped = client.issue_otp(flow)
    assert capped.outcome is InsertOtpOutcome.MAX_OTP_ATTEMPTS_REACHED and capped.code is None


def test_check_without_flow_or_otp(client: EcliptixClient) -> None:
    assert client.check_otp(uuid.uuid4(), "123456").outcome is OtpCheckOutcome.FLOW_NOT_FOUND
    flow = start_flow(client)
    assert client.check_otp(flow, "123456").outcome is OtpCheckOutcome.NO_ACTIVE_OTP


def test_expired_code_is_not_accepted(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None
    # Moving stored times back is the same as time passing (spec convention).
    db.execute(
        "UPDATE otp_records SET expires_at = now() - interval '1 second' WHERE unique_id = %s",
        [issued.otp_unique_id],
    )
    assert client.check_otp(flow, issued.code).outcome is OtpCheckOutcome.NO_ACTIVE_OTP


def test_peppered_client_round_trip(db: Conn) -> None:
    client = EcliptixClient(db, otp_pepper=b"server-secret")
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None
    state = client.get_full_flow_state(flow)
    assert state is not None and state.otp_hash is not None and ",k=1$" in state.otp_hash
    assert client.check_otp(flow, issued.code).verified


def test_right_code_on_an_expired_flow_is_rejected(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None
    db.execute(
        "UPDATE verification_flows SET expires_at = now() - interval '1 second'"
        " WHERE unique_id = %s",
        [flow],
    )
    check = client.check_otp(flow, issued.code)
    assert check.outcome is OtpCheckOutcome.REJECTED and not check.verified
    assert check.message == "OTP not found, deleted, or flow invalid/expired"
    state = client.get_full_flow_state(flow)
    assert state is not None and state.status is not FlowStatus.VERIFIED
