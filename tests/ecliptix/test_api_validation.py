"""Arguments are checked in Python, before any query, with errors naming the parameter."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from ecliptix import EcliptixClient
from tests.ecliptix.sql_support import TABLES

U = uuid.uuid4()
NOW = dt.datetime.now(dt.UTC)

# (method, args, kwargs, words the message must contain)
BAD_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("get_phone_number", (str(U),), {}, "phone_unique_id .* uuid.UUID"),
    ("get_phone_number", (None,), {}, "phone_unique_id is required"),
    ("register_app_device_if_not_exists", (None, U), {}, "app_instance_id is required"),
    ("register_app_device_if_not_exists", (U, "dev"), {}, "device_id .* uuid.UUID"),
    ("register_app_device_if_not_exists", (U, U, "1"), {}, "device_type .* int"),
    ("register_app_device_if_not_exists", (U, U, True), {}, "device_type .* int"),
    ("register_app_device_if_not_exists", (U, U, 2**31), {}, "device_type must fit"),
    ("ensure_phone_number", ("", None), {}, "phone_number must not be empty"),
    ("ensure_phone_number", (None, None), {}, "phone_number is required"),
    ("ensure_phone_number", ("+1" + "2" * 17, None), {}, "phone_number .* at most 18"),
    ("ensure_phone_number", ("+15550100", "us"), {}, "region .* two capital letters"),
    ("ensure_phone_number", ("+15550100", "USA"), {}, "region .* two capital letters"),
    ("ensure_phone_number", ("+15550100", ""), {}, "region .* two capital letters"),
    ("ensure_phone_number", ("+15550100", "ÉU"), {}, "region .* two capital letters"),
    ("ensure_phone_number", ("+15550100", "US", "dev"), {}, "app_device_id .* uuid.UUID"),
    ("verify_phone_for_secret_key_recovery", ("",), {}, "phone_number must not be empty"),
    ("verify_phone_for_secret_key_recovery", ("+15550100", "u1"), {}, "region"),
    ("get_full_flow_state", (1,), {}, "flow_unique_id .* uuid.UUID"),
    ("initiate_verification_flow", (U, U, "signup"), {}, "purpose must be one of .*registration"),
    ("initiate_verification_flow", (U, U, None), {}, "purpose must be one of"),
    ("initiate_verification_flow", (None, U, "login"), {}, "app_device_id is required"),
    ("initiate_verification_flow", (U, U, "login", "7"), {}, "connection_id .* int"),
    ("initiate_verification_flow", (U, U, "login", 2**63), {}, "connection_id must fit"),
    ("request_resend_otp", (None,), {}, "flow_unique_id is required"),
    ("insert_otp_record", (U, "h" * 256, "s", NOW), {}, "otp_hash .* at most 255"),
    ("insert_otp_record", (U, "h", "s" * 256, NOW), {}, "otp_salt .* at most 255"),
    ("insert_otp_record", (U, None, "s", NOW), {}, "otp_hash is required"),
    (
        "insert_otp_record",
        (U, "h", "s", NOW.replace(tzinfo=None)),
        {},
        "expires_at must be timezone-aware",
    ),
    ("insert_otp_record", (U, "h", "s", None), {}, "expires_at is required"),
    ("insert_otp_record", (U, "h", "s", NOW, "verified"), {}, "status must be pending"),
    ("insert_otp_record", (U, "h", "s", NOW, "done"), {}, "status must be one of"),
    ("update_otp_status", (U, "ok"), {}, "new_status must be one of .*verified"),
    ("update_otp_status", (U, None), {}, "new_status must be one of"),
    ("update_verification_flow_status", (U, "active"), {}, "new_status must be one of"),
    ("expire_associated_otp", ("x",), {}, "flow_unique_id"),
    ("log_login_attempt", ("", "x", False), {}, "phone_number must not be empty"),
    ("log_login_attempt", ("+15550100", "x" * 256, False), {}, "outcome .* at most 255"),
    ("log_login_attempt", ("+15550100", "x", None), {}, "is_success .* bool"),
    ("log_membership_attempt", (U, None, True), {}, "outcome is required"),
    ("log_membership_attempt", (U, "x", 1), {}, "is_success .* bool"),
    ("create_membership", (U, None, U, "otp_verified"), {}, "connection_id is required"),
    ("create_membership", (U, 1, None, "otp_verified"), {}, "otp_unique_id is required"),
    ("create_membership", (U, 1, U, "created"), {}, "creation_status must be one of"),
    ("update_membership_secure_key", (U, "key"), {}, "secure_key must be bytes"),
    ("update_membership_secure_key", (None, b"k"), {}, "membership_unique_id is required"),
    ("login_membership", ("+1" + "2" * 17,), {}, "phone_number .* at most 18"),
    ("login_membership", (15550100,), {}, "phone_number .* str"),
    ("issue_otp", (U,), {"lifetime": dt.timedelta(0)}, "lifetime must be a positive"),
    ("issue_otp", (U,), {"digits": 2}, "digits"),
    ("issue_otp", ("flow",), {}, "flow_unique_id"),
    ("check_otp", (U, 123456), {}, "submitted_code must be a str"),
    ("issue_otp", (U,), {"digits": 5}, "digits must be between 6"),
    ("verify_otp", (U, "123456"), {}, "code_digest must be the 64 lowercase hex"),
    ("verify_otp", (U, "A" * 64), {}, "code_digest must be the 64 lowercase hex"),
    ("verify_otp", (U, None), {}, "code_digest is required"),
    ("verify_otp", ("flow", "a" * 64), {}, "flow_unique_id"),
    ("login_membership", ("+15550100", "device"), {}, "app_device_id .* uuid.UUID"),
    ("log_login_attempt", ("+15550100", "x", False, 7), {}, "app_device_id .* uuid.UUID"),
    ("ecliptix_purge", (0,), {}, "batch_size must be at least 1"),
    ("ecliptix_purge", ("100",), {}, "batch_size .* int"),
]


class _Tripwire:
    """Stands in for a connection and fails the test on any use of it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the connection was used ({name}) before validation failed")


@pytest.mark.parametrize(("method", "args", "kwargs", "message"), BAD_CALLS)
def test_bad_arguments_raise_before_touching_the_connection(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    client = EcliptixClient(_Tripwire())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        getattr(client, method)(*args, **kwargs)


def _snapshot(db: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        row = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # names are ours
        assert row is not None
        counts[table] = int(row[0])
    return counts


@pytest.mark.postgres
def test_bad_arguments_change_nothing_in_the_database(db: psycopg.Connection[Any]) -> None:
    client = EcliptixClient(db)
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
    client.ensure_phone_number("+15550100", "US", device.unique_id)
    before = _snapshot(db)
    for method, args, kwargs, message in BAD_CALLS:
        with pytest.raises(ValueError, match=message):
            getattr(client, method)(*args, **kwargs)
    assert _snapshot(db) == before
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_constructor_rejects_bad_schema_and_keys() -> None:
    with pytest.raises(ValueError, match="schema"):
        EcliptixClient(_Tripwire(), schema="")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="otp_keys must be an OtpKeyring"):
        EcliptixClient(_Tripwire(), otp_keys="k1:" + "A" * 44)  # type: ignore[arg-type]


def test_enum_members_and_their_strings_are_both_accepted() -> None:
    # Reaching the tripwire proves validation passed for both spellings.
    from ecliptix import FlowPurpose

    client = EcliptixClient(_Tripwire())  # type: ignore[arg-type]
    for purpose in (FlowPurpose.LOGIN, "login"):
        with pytest.raises(AssertionError, match="connection was used"):
            client.initiate_verification_flow(U, U, purpose)
