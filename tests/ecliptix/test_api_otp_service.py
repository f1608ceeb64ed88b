"""issue_otp, check_otp and verify_otp against the real database, with the OTP keyring."""

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
    OtpKeyError,
    OtpKeyring,
    OtpStatus,
    VerifyOtpOutcome,
)
from ecliptix.otp import ENV_VAR

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]
KEYS = OtpKeyring.generate("test-current")


@pytest.fixture
def client(db: Conn) -> EcliptixClient:
    return EcliptixClient(db, otp_keys=KEYS)


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


def past_cooldown(db: Conn, flow: uuid.UUID) -> None:
    # Moving stored times back is the same as time passing (spec convention).
    db.execute(
        "UPDATE otp_records SET created_at = created_at - interval '1 minute'"
        " WHERE flow_unique_id = %s",
        [flow],
    )


def test_issue_stores_the_keyed_digest_and_the_key_id(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.created and issued.outcome is InsertOtpOutcome.CREATED
    assert issued.code is not None and len(issued.code) == 6 and issued.code.isdigit()
    assert issued.code not in repr(issued)
    row = db.execute(
        "SELECT o.otp_hash, o.otp_salt, o.expires_at, f.expires_at FROM otp_records o"
        " JOIN verification_flows f ON f.unique_id = o.flow_unique_id WHERE o.unique_id = %s",
        [issued.otp_unique_id],
    ).fetchone()
    assert row is not None
    stored, salt, otp_expires, flow_expires = row
    assert stored == KEYS.digest(flow, issued.code) and salt == "test-current"
    assert otp_expires == flow_expires  # 5 minutes asked, capped at the flow's own expiry
    state = client.get_full_flow_state(flow)
    assert state is not None and state.otp_hash is None and state.otp_salt == "test-current"


def test_right_code_verifies_the_flow_once(client: EcliptixClient) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow, lifetime=dt.timedelta(minutes=2), digits=8)
    assert issued.code is not None and len(issued.code) == 8
    check = client.check_otp(flow, issued.code)
    assert check.verified and check.outcome is VerifyOtpOutcome.VERIFIED
    assert check.otp_unique_id == issued.otp_unique_id and check.flow_status is FlowStatus.VERIFIED
    state = client.get_full_flow_state(flow)
    assert state is not None and state.status is FlowStatus.VERIFIED
    assert state.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    again = client.check_otp(flow, issued.code)
    assert again.outcome is VerifyOtpOutcome.FLOW_NOT_FOUND_OR_INVALID and not again.verified


def test_wrong_codes_count_down_and_retire_the_code(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None and issued.otp_unique_id is not None
    wrong = other_code(issued.code)
    first = client.check_otp(flow, wrong)
    assert (first.outcome, first.attempts_left) == (VerifyOtpOutcome.INVALID_CODE, 2)
    assert client.check_otp(flow, wrong).attempts_left == 1
    third = client.check_otp(flow, wrong)
    assert (third.outcome, third.attempts_left) == (VerifyOtpOutcome.OTP_RETIRED, 0)
    assert failed_attempts(db, issued.otp_unique_id) == 3
    # A retired code never verifies, even the right one.
    assert client.check_otp(flow, issued.code).outcome is VerifyOtpOutcome.NO_ACTIVE_OTP
    assert client.update_otp_status(issued.otp_unique_id, OtpStatus.VERIFIED).success is False


def test_a_new_code_replaces_the_old_one(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    old = client.issue_otp(flow)
    assert client.issue_otp(flow).outcome is InsertOtpOutcome.RESEND_COOLDOWN_ACTIVE
    past_cooldown(db, flow)
    new = client.issue_otp(flow)
    assert old.code is not None and new.code is not None and new.created
    if old.code != new.code:  # one in a million they are equal
        assert client.check_otp(flow, old.code).outcome is VerifyOtpOutcome.INVALID_CODE
    assert client.check_otp(flow, new.code).verified


def test_issue_reports_refusals_without_a_code(client: EcliptixClient) -> None:
    refused = client.issue_otp(uuid.uuid4())
    assert (refused.code, refused.otp_unique_id) == (None, None)
    assert refused.outcome is InsertOtpOutcome.FLOW_NOT_FOUND_OR_INVALID and not refused.created


def test_check_without_flow_or_otp(client: EcliptixClient) -> None:
    missing = client.check_otp(uuid.uuid4(), "123456")
    assert missing.outcome is VerifyOtpOutcome.FLOW_NOT_FOUND_OR_INVALID
    assert (missing.otp_unique_id, missing.attempts_left) == (None, None)
    flow = start_flow(client)
    assert client.check_otp(flow, "123456").outcome is VerifyOtpOutcome.NO_ACTIVE_OTP


def test_expired_code_and_expired_flow(client: EcliptixClient, db: Conn) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None
    db.execute(
        "UPDATE otp_records SET expires_at = now() - interval '1 second' WHERE unique_id = %s",
        [issued.otp_unique_id],
    )
    assert client.check_otp(flow, issued.code).outcome is VerifyOtpOutcome.NO_ACTIVE_OTP
    db.execute(
        "UPDATE verification_flows SET expires_at = now() - interval '1 second'"
        " WHERE unique_id = %s",
        [flow],
    )
    expired = client.check_otp(flow, issued.code)
    assert expired.outcome is VerifyOtpOutcome.FLOW_EXPIRED
    assert expired.flow_status is FlowStatus.EXPIRED


def test_codes_issued_under_an_older_key_verify_after_rotation(db: Conn) -> None:
    january, february = b"j" * 32, b"f" * 32
    before = EcliptixClient(db, otp_keys=OtpKeyring([("2026-01", january)]))
    flow = start_flow(before)
    issued = before.issue_otp(flow)
    assert issued.code is not None
    # The new key comes first; the old one stays until its codes have expired.
    dropped = EcliptixClient(db, otp_keys=OtpKeyring([("2026-02", february)]))
    with pytest.raises(OtpKeyError, match=ENV_VAR):
        dropped.check_otp(flow, issued.code)  # the key id in otp_salt is not held
    rotated = OtpKeyring([("2026-02", february), ("2026-01", january)])
    after = EcliptixClient(db, otp_keys=rotated)
    assert after.check_otp(flow, issued.code).verified
    second = start_flow(after, "+15550202")
    assert after.issue_otp(second).created
    assert db.execute(
        "SELECT otp_salt FROM otp_records WHERE flow_unique_id = %s", [second]
    ).fetchone() == ("2026-02",)


def test_otp_calls_refuse_to_run_without_a_key(db: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    client = EcliptixClient(db)
    flow = start_flow(client)  # calls that need no key still work
    for call in (lambda: client.issue_otp(flow), lambda: client.check_otp(flow, "123456")):
        with pytest.raises(OtpKeyError, match=f"{ENV_VAR} is not set") as info:
            call()
        assert "/dev/urandom" in str(info.value)
    assert db.execute("SELECT count(*) FROM otp_records").fetchone() == (0,)


def test_the_key_comes_from_the_environment(db: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "env-key:" + "QUJD" * 11)
    client = EcliptixClient(db)
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None
    assert client.check_otp(flow, issued.code).verified
    row = db.execute("SELECT otp_salt FROM otp_records").fetchone()
    assert row == ("env-key",)
    monkeypatch.setenv(ENV_VAR, "env-key:short")
    with pytest.raises(OtpKeyError, match="entry 1"):
        EcliptixClient(db)  # a malformed key is refused when the client is made


def test_verify_otp_takes_a_digest_not_a_code(client: EcliptixClient) -> None:
    flow = start_flow(client)
    issued = client.issue_otp(flow)
    assert issued.code is not None
    for bad in (issued.code, KEYS.digest(flow, issued.code).upper(), "", 123):
        with pytest.raises(ValueError, match="code_digest") as info:
            client.verify_otp(flow, bad)  # type: ignore[arg-type]
        assert issued.code not in str(info.value)
    assert client.verify_otp(flow, KEYS.digest(flow, issued.code)).verified
