"""Each EcliptixClient method returns the right typed row for its main outcomes."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from ecliptix import (
    CreationStatus,
    DeviceRegistration,
    DeviceRegistrationStatus,
    EcliptixClient,
    EnsuredPhone,
    EnsurePhoneOutcome,
    FlowInitiation,
    FlowOutcome,
    FlowPurpose,
    FlowState,
    FlowStatus,
    InsertOtpOutcome,
    LoginOutcome,
    LoginResult,
    MembershipCreation,
    MembershipOutcome,
    MembershipStatus,
    OtpKeyring,
    OtpStatus,
    PhoneNumber,
    PurgedRows,
    RecoveryOutcome,
    ResendOutcome,
    SecureKeyUpdate,
    StatusUpdate,
)

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]


KEYS = OtpKeyring.generate("test")


@pytest.fixture
def client(db: Conn) -> EcliptixClient:
    return EcliptixClient(db, otp_keys=KEYS)


def past_cooldown(db: Conn, flow: uuid.UUID) -> None:
    # Moving stored times back is the same as time passing (spec convention).
    db.execute(
        "UPDATE otp_records SET created_at = created_at - interval '1 minute'"
        " WHERE flow_unique_id = %s",
        [flow],
    )


@dataclass(frozen=True)
class Flow:
    device: uuid.UUID
    phone: uuid.UUID
    number: str
    flow: uuid.UUID
    connection_id: int


def new_flow(
    client: EcliptixClient, number: str = "+15550101", purpose: str = "registration"
) -> Flow:
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    phone = client.ensure_phone_number(number, "US", device).unique_id
    assert phone is not None
    started = client.initiate_verification_flow(device, phone, purpose, 42)
    assert started.unique_identifier is not None
    return Flow(device, phone, number, started.unique_identifier, 42)


def verified_flow(client: EcliptixClient, number: str = "+15550101") -> tuple[Flow, uuid.UUID]:
    flow = new_flow(client, number)
    issued = client.issue_otp(flow.flow)
    assert issued.code is not None and issued.otp_unique_id is not None
    assert client.check_otp(flow.flow, issued.code).verified
    return flow, issued.otp_unique_id


def member(client: EcliptixClient, number: str = "+15550101") -> tuple[Flow, uuid.UUID]:
    flow, otp = verified_flow(client, number)
    made = client.create_membership(flow.flow, flow.connection_id, otp, "otp_verified")
    assert made.membership_unique_id is not None
    return flow, made.membership_unique_id


def test_register_device_created_then_exists(client: EcliptixClient) -> None:
    instance, device = uuid.uuid4(), uuid.uuid4()
    first = client.register_app_device_if_not_exists(instance, device, device_type=3)
    again = client.register_app_device_if_not_exists(instance, device)
    assert isinstance(first, DeviceRegistration)
    assert first.status is DeviceRegistrationStatus.CREATED and first.status.value == 2
    assert again == DeviceRegistration(first.unique_id, DeviceRegistrationStatus.EXISTS)


def test_ensure_phone_outcomes_are_enums(client: EcliptixClient) -> None:
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    other = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    created = client.ensure_phone_number("+15550102", "CH")
    assert isinstance(created, EnsuredPhone) and created.success
    assert created.outcome is EnsurePhoneOutcome.CREATED
    assert client.ensure_phone_number("+15550102", "CH").outcome is EnsurePhoneOutcome.EXISTS
    linked = client.ensure_phone_number("+15550102", "CH", device)
    assert (linked.outcome, linked.unique_id) == (EnsurePhoneOutcome.ASSOCIATED, created.unique_id)
    bad = client.ensure_phone_number("+15550102", "CH", uuid.uuid4())
    assert bad.outcome is EnsurePhoneOutcome.EXISTING_BUT_INVALID_APP_DEVICE and not bad.success
    both = client.ensure_phone_number("+15550103", None, other)
    assert both.outcome is EnsurePhoneOutcome.CREATED_AND_ASSOCIATED
    orphan = client.ensure_phone_number("+15550104", None, uuid.uuid4())
    assert orphan.outcome is EnsurePhoneOutcome.CREATED_BUT_INVALID_APP_DEVICE
    assert orphan.unique_id is not None and not orphan.success


def test_get_phone_number_row_or_none(client: EcliptixClient) -> None:
    made = client.ensure_phone_number("+15550105", None)
    assert made.unique_id is not None
    assert client.get_phone_number(made.unique_id) == PhoneNumber("+15550105", None, made.unique_id)
    assert client.get_phone_number(uuid.uuid4()) is None


def test_initiate_flow_outcomes_and_state(client: EcliptixClient) -> None:
    flow = new_flow(client, purpose="login")
    again = client.initiate_verification_flow(flow.device, flow.phone, FlowPurpose.LOGIN, 77)
    assert isinstance(again, FlowInitiation)
    assert again.outcome is FlowOutcome.RETRIEVED and again.unique_identifier == flow.flow
    assert again.status is FlowStatus.PENDING and again.purpose is FlowPurpose.LOGIN
    assert again.connect_id == 77 and again.otp_count == 0
    missing = client.initiate_verification_flow(flow.device, uuid.uuid4(), "login")
    assert missing.outcome is FlowOutcome.PHONE_NOT_FOUND
    assert missing.unique_identifier is None and missing.status is None
    no_device = client.initiate_verification_flow(uuid.uuid4(), flow.phone, "login")
    assert no_device.outcome is FlowOutcome.APP_DEVICE_NOT_FOUND

    state = client.get_full_flow_state(flow.flow)
    assert isinstance(state, FlowState)
    assert (state.unique_identifier, state.phone_number_identifier) == (flow.flow, flow.phone)
    assert state.status is FlowStatus.PENDING and state.purpose is FlowPurpose.LOGIN
    assert state.expires_at.tzinfo is not None and state.otp_unique_identifier is None
    assert client.get_full_flow_state(uuid.uuid4()) is None


def test_verified_flow_is_returned_for_a_new_initiation(client: EcliptixClient) -> None:
    flow, _ = verified_flow(client)
    again = client.initiate_verification_flow(flow.device, flow.phone, "registration")
    assert again.outcome is FlowOutcome.VERIFIED and again.status is FlowStatus.VERIFIED


def test_otp_records_and_resend(client: EcliptixClient, db: Conn) -> None:
    flow = new_flow(client)
    assert client.request_resend_otp(flow.flow) is ResendOutcome.RESEND_ALLOWED
    assert client.request_resend_otp(uuid.uuid4()) is ResendOutcome.FLOW_NOT_FOUND_OR_INVALID
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    first = client.insert_otp_record(flow.flow, "h1", "s1", expires)
    assert first.outcome is InsertOtpOutcome.CREATED and first.otp_unique_id is not None
    assert client.request_resend_otp(flow.flow) is ResendOutcome.RESEND_COOLDOWN_ACTIVE
    cooling = client.insert_otp_record(flow.flow, "h", "s", expires)
    assert cooling.outcome is InsertOtpOutcome.RESEND_COOLDOWN_ACTIVE
    state = client.get_full_flow_state(flow.flow)
    assert state is not None and state.otp_unique_identifier == first.otp_unique_id
    # The hash stays in the database; the key id (salt) is given.
    assert (state.otp_hash, state.otp_salt, state.otp_status) == (None, "s1", OtpStatus.PENDING)
    assert "s1" not in repr(state)  # secrets stay out of logs
    for _ in range(4):
        past_cooldown(db, flow.flow)
        client.insert_otp_record(flow.flow, "h", "s", expires, OtpStatus.PENDING)
    past_cooldown(db, flow.flow)
    refused = client.insert_otp_record(flow.flow, "h", "s", expires)
    assert (refused.otp_unique_id, refused.outcome) == (
        None,
        InsertOtpOutcome.MAX_OTP_ATTEMPTS_REACHED,
    )
    gone = client.insert_otp_record(uuid.uuid4(), "h", "s", expires)
    assert gone.outcome is InsertOtpOutcome.FLOW_NOT_FOUND_OR_INVALID


def test_otp_status_and_expiry(client: EcliptixClient, db: Conn) -> None:
    flow = new_flow(client)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    otp = client.insert_otp_record(flow.flow, "h", "s", expires).otp_unique_id
    assert otp is not None
    assert client.expire_associated_otp(flow.flow) == 1
    assert client.expire_associated_otp(flow.flow) == 0
    refused = client.update_otp_status(otp, "pending")
    assert refused == StatusUpdate(False, "Cannot transition from expired to pending")
    past_cooldown(db, flow.flow)
    fresh = client.insert_otp_record(flow.flow, "h", "s", expires).otp_unique_id
    assert fresh is not None
    assert client.update_otp_status(fresh, OtpStatus.FAILED) == StatusUpdate(
        True, "OTP status updated successfully"
    )
    assert not client.update_otp_status(uuid.uuid4(), "failed").success


def test_update_verification_flow_status_counts_rows(client: EcliptixClient) -> None:
    flow = new_flow(client)
    assert client.update_verification_flow_status(flow.flow, FlowStatus.EXPIRED) == 1
    assert client.update_verification_flow_status(uuid.uuid4(), "expired") == 0


def test_attempt_logs_append_a_row(client: EcliptixClient, db: Conn) -> None:
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    phone = client.ensure_phone_number("+15550106", None).unique_id
    assert phone is not None
    client.log_login_attempt("+15550106", "probe", False)
    client.log_login_attempt("+15550106", "probe", False, device)
    client.log_membership_attempt(phone, "probe", True)
    row = db.execute(
        "SELECT (SELECT array_agg(app_device_id ORDER BY app_device_id NULLS FIRST)"
        "        FROM login_attempts WHERE outcome = 'probe'),"
        " (SELECT count(*) FROM membership_attempts WHERE outcome = 'probe' AND is_success)"
    ).fetchone()
    assert row == ([None, device], 1)
    with pytest.raises(ValueError, match="app_device_id"):
        client.log_login_attempt("+15550106", "probe", False, "not-a-uuid")  # type: ignore[arg-type]


def test_create_membership_outcomes(client: EcliptixClient) -> None:
    pending = new_flow(client, "+15550107")
    otp = client.issue_otp(pending.flow).otp_unique_id
    assert otp is not None
    early = client.create_membership(pending.flow, 42, otp, CreationStatus.OTP_VERIFIED)
    assert early.kind is MembershipOutcome.VERIFICATION_FLOW_NOT_VERIFIED
    assert early.membership_unique_id is None and early.rate_limited_minutes is None

    flow, otp = verified_flow(client, "+15550108")
    wrong = client.create_membership(flow.flow, 43, otp, "otp_verified")
    assert wrong.outcome == "verification_flow_not_found" and wrong.creation_status is None
    made = client.create_membership(flow.flow, 42, otp, "otp_verified")
    assert isinstance(made, MembershipCreation) and made.kind is MembershipOutcome.CREATED
    assert made.status is MembershipStatus.ACTIVE
    assert made.creation_status is CreationStatus.OTP_VERIFIED
    again = client.create_membership(flow.flow, 42, otp, "otp_verified")
    assert again.kind is MembershipOutcome.MEMBERSHIP_ALREADY_EXISTS
    assert again.membership_unique_id == made.membership_unique_id


def test_create_membership_rate_limit_is_minutes(client: EcliptixClient) -> None:
    flow, otp = verified_flow(client, "+15550109")
    for _ in range(5):
        client.log_membership_attempt(flow.phone, "verification_flow_not_found", False)
    limited = client.create_membership(flow.flow, 42, otp, "secure_key_set")
    assert limited.kind is MembershipOutcome.RATE_LIMITED and limited.outcome.isdecimal()
    assert limited.rate_limited_minutes is not None and 1 <= limited.rate_limited_minutes <= 60
    assert limited.membership_unique_id is None
    assert limited.creation_status is CreationStatus.SECURE_KEY_SET


def test_secure_key_recovery_and_login(client: EcliptixClient) -> None:
    recovery = client.verify_phone_for_secret_key_recovery
    assert recovery("+15550110").outcome is RecoveryOutcome.PHONE_NOT_FOUND
    flow, membership = member(client, "+15550110")
    assert recovery("+15550110", "US").outcome is RecoveryOutcome.NO_SECURE_KEY
    assert client.login_membership("+15550110").kind is LoginOutcome.SECURE_KEY_NOT_SET

    assert client.update_membership_secure_key(membership, None) == SecureKeyUpdate(
        False, "Secure key cannot be empty", None, None, None
    )
    assert not client.update_membership_secure_key(uuid.uuid4(), b"k").success
    updated = client.update_membership_secure_key(membership, b"\x00key")
    assert updated == SecureKeyUpdate(
        True,
        "Secure key updated successfully",
        membership,
        MembershipStatus.ACTIVE,
        CreationStatus.SECURE_KEY_SET,
    )
    eligible = recovery("+15550110", "US")
    assert eligible.outcome is RecoveryOutcome.ELIGIBLE_FOR_RECOVERY and eligible.success
    assert eligible.phone_number_id == flow.phone

    login = client.login_membership("+15550110")
    assert isinstance(login, LoginResult) and login.succeeded
    assert login.kind is LoginOutcome.SUCCESS and login.locked_minutes is None
    assert (login.membership_unique_id, login.status) == (membership, MembershipStatus.ACTIVE)
    assert login.secure_key == b"\x00key" and isinstance(login.secure_key, bytes)
    assert "key" not in repr(login).replace("secure_key", "")


@pytest.mark.parametrize("empty", [None, ""])
def test_login_with_no_number_is_an_outcome_not_an_error(
    client: EcliptixClient, empty: str | None
) -> None:
    result = client.login_membership(empty)
    assert result.kind is LoginOutcome.PHONE_NUMBER_CANNOT_BE_EMPTY


def test_login_lockout_is_minutes(client: EcliptixClient) -> None:
    for _ in range(5):
        result = client.login_membership("+15550111")
        assert result.kind is LoginOutcome.PHONE_NUMBER_NOT_FOUND and not result.succeeded
    locked = client.login_membership("+15550111")
    assert (locked.outcome, locked.locked_minutes, locked.kind) == ("5", 5, LoginOutcome.LOCKED_OUT)
    assert locked.membership_unique_id is None and locked.secure_key is None


def test_login_failures_are_kept_per_device(client: EcliptixClient) -> None:
    stranger, owner = (
        client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
        for _ in range(2)
    )
    for _ in range(5):
        assert client.login_membership("+15550113", stranger).kind is (
            LoginOutcome.PHONE_NUMBER_NOT_FOUND
        )
    assert client.login_membership("+15550113", stranger).kind is LoginOutcome.LOCKED_OUT
    # Another device of the same number is not locked by the stranger's failures.
    assert client.login_membership("+15550113", owner).kind is LoginOutcome.PHONE_NUMBER_NOT_FOUND
    with pytest.raises(ValueError, match="app_device_id"):
        client.login_membership("+15550113", str(owner))  # type: ignore[arg-type]


def test_purge_deletes_old_ended_flows_in_batches(client: EcliptixClient, db: Conn) -> None:
    flows = [new_flow(client, f"+1555012{i}") for i in range(3)]
    for flow in flows:
        assert client.update_verification_flow_status(flow.flow, FlowStatus.EXPIRED) == 1
    db.execute(
        "UPDATE verification_flows SET created_at = created_at - interval '40 days',"
        " updated_at = updated_at - interval '40 days', expires_at = expires_at - interval '40 days'"
    )
    first = client.ecliptix_purge(batch_size=2)
    assert all(isinstance(r, PurgedRows) for r in first)
    deleted = {r.table_name: r.rows_deleted for r in first}
    assert deleted.get("verification_flows") == 2  # at most one batch per table per call
    again = {r.table_name: r.rows_deleted for r in client.ecliptix_purge()}
    assert again.get("verification_flows") == 1
    assert db.execute("SELECT count(*) FROM verification_flows").fetchone() == (0,)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="batch_size"):
            client.ecliptix_purge(bad)  # type: ignore[arg-type]


def test_methods_join_the_callers_transaction(client: EcliptixClient, db: Conn) -> None:
    with db.transaction(force_rollback=True):
        made = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
        assert made.status is DeviceRegistrationStatus.CREATED
    row = db.execute("SELECT count(*) FROM app_devices").fetchone()
    assert row == (0,)


def test_database_errors_roll_back_to_a_savepoint_in_the_callers_transaction(
    client: EcliptixClient, db: Conn
) -> None:
    with db.transaction():
        kept = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
        with pytest.raises(psycopg.errors.UndefinedFunction):
            EcliptixClient(db, schema="pg_catalog").expire_associated_otp(uuid.uuid4())
        assert client.get_full_flow_state(uuid.uuid4()) is None  # transaction still usable
    row = db.execute("SELECT count(*) FROM app_devices WHERE unique_id = %s", [kept.unique_id])
    assert row.fetchone() == (1,)


def test_own_transactions_run_at_read_committed(ecliptix_url: str) -> None:
    # A session defaulting to SERIALIZABLE must still get READ COMMITTED from
    # the client, as the functions refuse other levels.
    with psycopg.connect(ecliptix_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        client = EcliptixClient(conn, schema="public")
        made = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
        assert made.status is DeviceRegistrationStatus.CREATED
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        client.ensure_phone_number("+15550112", None, made.unique_id)
    with psycopg.connect(ecliptix_url) as check:
        row = check.execute("SELECT count(*) FROM phone_number_devices").fetchone()
    assert row == (1,)


def test_callers_stricter_transaction_is_not_silently_downgraded(ecliptix_url: str) -> None:
    # Inside the caller's REPEATABLE READ transaction the client adds only a
    # savepoint, so the database's own refusal (SQLSTATE 25000) reaches the caller.
    with psycopg.connect(ecliptix_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        client = EcliptixClient(conn)
        with conn.transaction(), pytest.raises(psycopg.errors.InvalidTransactionState):
            client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
