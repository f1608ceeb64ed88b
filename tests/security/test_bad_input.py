"""Bad input the existing suites did not cover: malformed UUIDs and numbers
passed as text through SQL, SQL-carrying strings (stored and compared as plain
data, never executed), NUL characters, and injection through the client's
schema and the grant function's role name. Each case checks the exact error
and that the database is unchanged (a digest of every table)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from ecliptix import EcliptixClient, LoginOutcome
from tests.ecliptix.sql_support import (
    call,
    expect_bad_input,
    fingerprint,
    one,
    verified_registration,
)

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]

DROP = "'); DROP TABLE memberships; --"
OR_TRUE = "' OR '1'='1"
BAD_UUIDS = ("not-a-uuid", "", DROP, OR_TRUE, "00000000-0000-0000-0000-00000000000g")

# Every contract function's uuid parameters, with valid values for the others.
UUID_PARAMS: list[tuple[str, tuple[object, ...], int]] = [
    ("get_phone_number", ("?",), 0),
    ("register_app_device_if_not_exists", ("?", uuid.UUID(int=1), 1), 0),
    ("register_app_device_if_not_exists", (uuid.UUID(int=1), "?", 1), 1),
    ("ensure_phone_number", ("+15550400", None, "?"), 2),
    ("get_full_flow_state", ("?",), 0),
    ("initiate_verification_flow", ("?", uuid.UUID(int=1), "login"), 0),
    ("initiate_verification_flow", (uuid.UUID(int=1), "?", "login"), 1),
    ("request_resend_otp", ("?",), 0),
    ("insert_otp_record", ("?", "h", "s", "2030-01-01Z"), 0),
    ("update_otp_status", ("?", "failed"), 0),
    ("update_verification_flow_status", ("?", "failed"), 0),
    ("expire_associated_otp", ("?",), 0),
    ("log_membership_attempt", ("?", "x", False), 0),
    ("create_membership", ("?", 1, uuid.UUID(int=1), "otp_verified"), 0),
    ("create_membership", (uuid.UUID(int=1), 1, "?", "otp_verified"), 2),
    ("update_membership_secure_key", ("?", b"k"), 0),
]


def raises_unchanged(db: Conn, sqlstate: str, fn: str, *args: object) -> str:
    before = fingerprint(db)
    with pytest.raises(psycopg.Error) as info:
        call(db, fn, *args)
    assert info.value.sqlstate == sqlstate, (fn, args, info.value.sqlstate, str(info.value))
    assert fingerprint(db) == before
    assert db.execute("SELECT to_regclass('memberships') IS NOT NULL").fetchone() == (True,)
    return info.value.diag.message_primary or ""


def test_malformed_uuid_text_is_22p02_and_changes_nothing(db: Conn) -> None:
    verified_registration(db)
    before = fingerprint(db)
    for fn, template, index in UUID_PARAMS:
        for bad in BAD_UUIDS:
            args = tuple(bad if i == index else a for i, a in enumerate(template))
            with pytest.raises(psycopg.errors.InvalidTextRepresentation) as info:
                call(db, fn, *args)
            message = info.value.diag.message_primary or ""
            assert message.startswith("invalid input syntax for type uuid"), message
    assert fingerprint(db) == before


def test_malformed_numbers_and_booleans_as_text(db: Conn) -> None:
    u = uuid.uuid4()
    for fn, args, sqlstate in (
        ("register_app_device_if_not_exists", (u, u, "1; DROP TABLE memberships"), "22P02"),
        ("register_app_device_if_not_exists", (u, u, str(2**31)), "22003"),
        ("initiate_verification_flow", (u, u, "login", OR_TRUE), "22P02"),
        ("initiate_verification_flow", (u, u, "login", str(2**63)), "22003"),
        ("create_membership", (u, DROP, u, "otp_verified"), "22P02"),
        ("log_login_attempt", ("+1555", "x", OR_TRUE), "22P02"),
        ("insert_otp_record", (u, "h", "s", DROP), "22007"),
    ):
        raises_unchanged(db, sqlstate, fn, *args)


def test_sql_in_enum_and_region_parameters_is_22023_quoted(db: Conn) -> None:
    reg = verified_registration(db)
    u = reg["flow"]
    for fn, args, param in (
        ("initiate_verification_flow", (reg["device"], reg["phone"], DROP), "p_purpose"),
        ("update_otp_status", (reg["otp"], OR_TRUE), "p_new_status"),
        ("update_verification_flow_status", (u, DROP), "p_new_status"),
        ("create_membership", (u, 42, reg["otp"], OR_TRUE), "p_creation_status"),
        ("insert_otp_record", (u, "h", "s", "2030-01-01Z", DROP), "p_status"),
        ("ensure_phone_number", ("+15550401", OR_TRUE), "p_region"),
        ("verify_phone_for_secret_key_recovery", ("+15550401", DROP), "p_region"),
    ):
        message = raises_unchanged(db, "22023", fn, *args)
        assert message.startswith(param), message
        # The value is quoted as a literal in the message, never interpreted.
        quoted = "'" + str(args[-1]).replace("'", "''") + "'"
        assert message.endswith(quoted), message


def test_sql_in_too_long_strings_is_22001(db: Conn) -> None:
    reg = verified_registration(db)
    for fn, args, param in (
        ("ensure_phone_number", (DROP, None), "p_phone_number"),
        ("login_membership", (DROP,), "p_phone_number"),
        ("log_login_attempt", (DROP, "x", False), "p_phone_number"),
        ("verify_phone_for_secret_key_recovery", (DROP + DROP,), "p_phone_number"),
        ("log_login_attempt", ("+1555", DROP * 9, False), "p_outcome"),
        ("insert_otp_record", (reg["flow"], DROP * 9, "s", "2030-01-01Z"), "p_otp_hash"),
    ):
        assert raises_unchanged(db, "22001", fn, *args).startswith(param)


def test_sql_carrying_strings_are_plain_data(db: Conn) -> None:
    """Stored verbatim, compared with =, and no other row ever matches them."""
    reg = verified_registration(db)
    one(db, "update_membership_secure_key", one(db, "create_membership", reg["flow"], 42,
        reg["otp"], "otp_verified")["membership_unique_id"], b"key")  # fmt: skip
    assert one(db, "login_membership", reg["number"])["outcome"] == "success"

    # A phone number that is an injection attempt is refused as a new number
    # (version 2: not E.164) and, stored as version 1 allowed, is just data.
    expect_bad_input(db, "ensure_phone_number", OR_TRUE, None, param="p_phone_number")
    db.execute("INSERT INTO phone_numbers (phone_number) VALUES (%s)", (OR_TRUE,))
    made = one(db, "ensure_phone_number", OR_TRUE, None)
    assert made["outcome"] == "exists"
    assert one(db, "get_phone_number", made["unique_id"])["phone_number"] == OR_TRUE
    login = one(db, "login_membership", OR_TRUE)
    assert login["outcome"] == "membership_not_found" and login["secure_key"] is None
    assert one(db, "login_membership", "' OR 1=1 --")["outcome"] == "phone_number_not_found"
    recovery = one(db, "verify_phone_for_secret_key_recovery", OR_TRUE)
    assert recovery["outcome"] == "membership_not_found"

    # Free text and OTP hash/salt keep the SQL as data.
    call(db, "log_login_attempt", "+15550402", DROP, False)
    call(db, "log_membership_attempt", reg["phone"], DROP, False)
    flow = one(db, "initiate_verification_flow", reg["device"],
               one(db, "ensure_phone_number", "+15550403", None, reg["device"])["unique_id"],
               "login", 5)["unique_identifier"]  # fmt: skip
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert one(db, "insert_otp_record", flow, DROP, OR_TRUE, expires)["outcome"] == "created"
    state = one(db, "get_full_flow_state", flow)
    assert (state["otp_hash"], state["otp_salt"]) == (None, OR_TRUE)  # v2: hash never read back
    assert db.execute(
        "SELECT otp_hash FROM otp_records WHERE flow_unique_id = %s", (flow,)
    ).fetchone() == (DROP,)
    rows = db.execute(
        "SELECT (SELECT outcome FROM login_attempts WHERE phone_number = '+15550402'), "
        "(SELECT count(*) FROM membership_attempts WHERE outcome = %s), "
        "(SELECT count(*) FROM memberships), to_regclass('memberships') IS NOT NULL",
        (DROP,),
    ).fetchone()
    assert rows == (DROP, 1, 1, True)
    assert one(db, "login_membership", reg["number"])["outcome"] == "success"


def test_grant_function_role_name_is_an_identifier(db: Conn) -> None:
    before = fingerprint(db)
    for role in ('x"; DROP TABLE memberships; --', DROP, OR_TRUE):
        with pytest.raises(psycopg.errors.UndefinedObject) as info:
            db.execute("SELECT * FROM ecliptix_grant_app_role(%s)", (role,))
        assert "does not exist" in str(info.value)
    assert fingerprint(db) == before


# -- the Python client ------------------------------------------------------


def test_client_refuses_nul_naming_the_parameter(db: Conn) -> None:
    client = EcliptixClient(db)
    before = fingerprint(db)
    u = uuid.uuid4()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    for call_, param in (
        (lambda: client.ensure_phone_number("+1\x00555", None), "phone_number"),
        (lambda: client.login_membership("+1\x00555"), "phone_number"),
        (lambda: client.verify_phone_for_secret_key_recovery("+1\x00"), "phone_number"),
        (lambda: client.log_login_attempt("+1555", "a\x00b", False), "outcome"),
        (lambda: client.log_membership_attempt(u, "a\x00", True), "outcome"),
        (lambda: client.insert_otp_record(u, "h\x00", "s", expires), "otp_hash"),
        (lambda: client.insert_otp_record(u, "h", "\x00", expires), "otp_salt"),
    ):
        with pytest.raises(ValueError, match=f"^{param} must not contain NUL"):
            call_()
    assert fingerprint(db) == before


def test_client_sql_strings_are_value_errors_or_plain_data(db: Conn) -> None:
    client = EcliptixClient(db)
    before = fingerprint(db)
    u = uuid.uuid4()
    for call_, param in (
        (lambda: client.get_phone_number(DROP), "phone_unique_id"),  # type: ignore[arg-type]
        (lambda: client.initiate_verification_flow(u, u, DROP), "purpose"),
        (lambda: client.update_otp_status(u, OR_TRUE), "new_status"),
        (lambda: client.update_verification_flow_status(u, DROP), "new_status"),
        (lambda: client.create_membership(u, 1, u, OR_TRUE), "creation_status"),
        (lambda: client.ensure_phone_number("+15550404", OR_TRUE), "region"),
        (lambda: client.ensure_phone_number(DROP, None), "phone_number"),
        (lambda: client.login_membership(DROP), "phone_number"),
        (lambda: client.create_membership(u, DROP, u, "otp_verified"), "connection_id"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=f"^{param} "):
            call_()
    assert fingerprint(db) == before
    # Within the client's limits the same strings reach the database as data:
    # version 2 refuses such a number for a new phone row (not E.164), and
    # finds no phone of that number; nothing runs as SQL.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_phone_number"):
        client.ensure_phone_number(OR_TRUE, None)
    assert fingerprint(db) == before
    assert client.login_membership(OR_TRUE).kind is LoginOutcome.PHONE_NUMBER_NOT_FOUND


def test_client_schema_is_an_identifier(db: Conn) -> None:
    before = fingerprint(db)
    client = EcliptixClient(db, schema='public"; DROP TABLE memberships; --')
    with pytest.raises(psycopg.errors.InvalidSchemaName):
        client.login_membership("+15550405")
    assert fingerprint(db) == before
