"""The autocommit fast path runs prepared statements of its own: they must survive what a session does."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from ecliptix import (
    EcliptixClient,
    FlowPurpose,
    FlowStatus,
    InsertOtpOutcome,
    LoginOutcome,
    OtpStatus,
    _fastpath,
)

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]


def _flow(client: EcliptixClient, number: str = "+15550170") -> uuid.UUID:
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    phone = client.ensure_phone_number(number, "US", device).unique_id
    assert phone is not None
    flow = client.initiate_verification_flow(
        device, phone, FlowPurpose.REGISTRATION, 5
    )  # connection 5
    assert flow.unique_identifier is not None
    return flow.unique_identifier


@pytest.mark.parametrize("command", ["DISCARD ALL", "DEALLOCATE ALL"])
def test_statements_dropped_by_the_session_are_prepared_again(db: Conn, command: str) -> None:
    client = EcliptixClient(db)
    flow = _flow(client)
    assert client.get_full_flow_state(flow) is not None  # prepared now
    db.execute(command)
    state = client.get_full_flow_state(flow)
    assert state is not None and state.status is FlowStatus.PENDING
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_clients_sharing_a_connection_share_its_statements(db: Conn) -> None:
    first, second = EcliptixClient(db), EcliptixClient(db, schema="public")
    flow = _flow(first)
    assert first.get_full_flow_state(flow) == second.get_full_flow_state(flow)
    assert EcliptixClient(db).get_full_flow_state(flow) == first.get_full_flow_state(flow)
    row = db.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row is not None and row[0] <= 8  # one per (query text), not per client


def test_values_round_trip_as_text(db: Conn) -> None:
    client = EcliptixClient(db)
    flow = _flow(client)
    expires = dt.datetime.now(dt.timezone(dt.timedelta(hours=5, minutes=30))).replace(
        microsecond=123456
    ) + dt.timedelta(minutes=4)  # a code never outlives its flow (5 minutes)
    otp = client.insert_otp_record(flow, "hash", "salt\\x00'\"é", expires)
    assert otp.outcome is InsertOtpOutcome.CREATED
    state = client.get_full_flow_state(flow)
    assert state is not None
    assert state.otp_expires_at == expires and state.otp_salt == "salt\\x00'\"é"
    assert otp.otp_unique_id is not None
    assert client.update_otp_status(otp.otp_unique_id, OtpStatus.VERIFIED).success
    assert client.update_verification_flow_status(flow, FlowStatus.VERIFIED) == 1
    member = client.create_membership(flow, 5, otp.otp_unique_id, "otp_verified")
    assert member.membership_unique_id is not None
    key = bytes(range(256))  # every byte value, through bytea's text form
    assert client.update_membership_secure_key(member.membership_unique_id, key).success
    assert client.login_membership("+15550170").secure_key == key
    assert client.login_membership(None).kind is LoginOutcome.PHONE_NUMBER_CANNOT_BE_EMPTY
    assert client.get_phone_number(uuid.uuid4()) is None


def test_pipeline_mode_takes_the_transaction_path(db: Conn) -> None:
    client = EcliptixClient(db)
    flow = _flow(client)
    with db.pipeline():
        state = client.get_full_flow_state(flow)
    assert state is not None and state.unique_identifier == flow


def test_database_errors_keep_their_psycopg_class(db: Conn) -> None:
    with pytest.raises(psycopg.errors.UndefinedFunction):
        EcliptixClient(db, schema="pg_catalog").expire_associated_otp(uuid.uuid4())
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    client = EcliptixClient(db)
    assert client.expire_associated_otp(uuid.uuid4()) == 0


def test_no_statement_is_prepared_when_the_connection_turns_them_off(db: Conn) -> None:
    db.prepare_threshold = None  # as behind a transaction-pooling PgBouncer
    client = EcliptixClient(db)
    flow = _flow(client)
    for _ in range(8):
        assert client.get_full_flow_state(flow) is not None
    row = db.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row == (0,)


def test_fast_path_only_on_the_psycopg_versions_it_was_tested_with() -> None:
    assert _fastpath.supports("3.3.9") and _fastpath.supports("3.3.0")
    for version in ("3.1.20", "3.2.13", "3.4.0", "4.0.0", "3.30.1"):
        assert not _fastpath.supports(version), version
    assert _fastpath.supports(psycopg.__version__) == _fastpath.AVAILABLE


def test_the_plain_path_gives_the_same_rows(db: Conn) -> None:
    # The path every psycopg takes when the fast one is not available.
    fast = EcliptixClient(db)
    flow = _flow(fast)
    with db.transaction():  # inside a caller's transaction the client uses a cursor
        plain = EcliptixClient(db).get_full_flow_state(flow)
    assert plain == fast.get_full_flow_state(flow) and plain is not None
