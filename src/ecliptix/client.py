"""A typed client over the Ecliptix database functions, and the OTP service on top of them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg

from ecliptix import _validate as v
from ecliptix._runner import EcliptixContractError, FunctionRunner
from ecliptix.models import (
    CreationStatus,
    DeviceRegistration,
    EnsuredPhone,
    FlowInitiation,
    FlowPurpose,
    FlowState,
    FlowStatus,
    InsertedOtp,
    InsertOtpOutcome,
    IssuedOtp,
    LoginResult,
    MembershipCreation,
    OtpStatus,
    OtpVerification,
    PhoneNumber,
    PurgedRows,
    RecoveryEligibility,
    ResendOutcome,
    SecureKeyUpdate,
    StatusUpdate,
)
from ecliptix.otp import OtpKeyring, generate_otp, require_keyring, resolve_keyring

__all__ = ["DEFAULT_OTP_LIFETIME", "EcliptixClient", "EcliptixContractError"]

DEFAULT_OTP_LIFETIME = dt.timedelta(minutes=5)


class EcliptixClient(FunctionRunner):
    """Call the Ecliptix database functions over a psycopg 3 connection, with typed results.

    Each method validates its arguments first (``ValueError`` naming the
    parameter), then runs in its own READ COMMITTED transaction, or in a
    savepoint of the caller's transaction when one is open. On an idle
    autocommit connection a call is one prepared statement of the client's own
    (``_ecliptix_…`` in pg_prepared_statements), unless the connection's
    ``prepare_threshold`` is None.

    Issuing and checking codes needs the OTP keys: ``otp_keys``, or else
    ``ECLIPTIX_OTP_KEYS`` read when the client is made; without either,
    ``issue_otp`` and ``check_otp`` raise ``OtpKeyError`` saying how to set one.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        schema: str | None = None,
        otp_keys: OtpKeyring | None = None,
    ) -> None:
        """Wrap conn; schema qualifies function names, otp_keys digests OTP codes."""
        super().__init__(conn, schema=schema)
        self._keyring = resolve_keyring(otp_keys)

    def __repr__(self) -> str:
        return f"EcliptixClient(schema={self._schema!r}, otp_keys={self._keyring!r})"

    # -- phones and devices ----------------------------------------------

    def get_phone_number(self, phone_unique_id: uuid.UUID) -> PhoneNumber | None:
        """Return the non-deleted phone with that unique id, or None."""
        params = (v.require_uuid("phone_unique_id", phone_unique_id),)
        return self._optional("get_phone_number", params, PhoneNumber)

    def register_app_device_if_not_exists(
        self, app_instance_id: uuid.UUID, device_id: uuid.UUID, device_type: int = 1
    ) -> DeviceRegistration:
        """Register the device unless it exists; return its id and whether it was created."""
        params = (
            v.require_uuid("app_instance_id", app_instance_id),
            v.require_uuid("device_id", device_id),
            v.integer("device_type", device_type),
        )
        return self._one("register_app_device_if_not_exists", params, DeviceRegistration)

    def ensure_phone_number(
        self, phone_number: str, region: str | None, app_device_id: uuid.UUID | None = None
    ) -> EnsuredPhone:
        """Find or create the phone (region None is no region), linking the device if given."""
        params = (
            v.phone_number("phone_number", phone_number),
            v.region("region", region),
            v.optional_uuid("app_device_id", app_device_id),
        )
        return self._one("ensure_phone_number", params, EnsuredPhone)

    def verify_phone_for_secret_key_recovery(
        self, phone_number: str, region: str | None = None
    ) -> RecoveryEligibility:
        """Return whether the phone's membership may recover its secure key."""
        params = (v.phone_number("phone_number", phone_number), v.region("region", region))
        return self._one("verify_phone_for_secret_key_recovery", params, RecoveryEligibility)

    # -- verification flows and OTPs -------------------------------------

    def get_full_flow_state(self, flow_unique_id: uuid.UUID) -> FlowState | None:
        """Return the non-deleted flow with its active OTP, or None."""
        params = (v.require_uuid("flow_unique_id", flow_unique_id),)
        return self._optional("get_full_flow_state", params, FlowState)

    def initiate_verification_flow(
        self,
        app_device_id: uuid.UUID,
        phone_unique_id: uuid.UUID,
        purpose: FlowPurpose | str,
        connection_id: int | None = None,
    ) -> FlowInitiation:
        """Start or resume a verification flow for (device, phone, purpose)."""
        params = (
            v.require_uuid("app_device_id", app_device_id),
            v.require_uuid("phone_unique_id", phone_unique_id),
            v.enum_value("purpose", purpose, FlowPurpose).value,
            v.optional_bigint("connection_id", connection_id),
        )
        return self._one("initiate_verification_flow", params, FlowInitiation)

    def request_resend_otp(self, flow_unique_id: uuid.UUID) -> ResendOutcome:
        """Return whether a new OTP may be sent for the flow now."""
        params = (v.require_uuid("flow_unique_id", flow_unique_id),)
        value = self._scalar("request_resend_otp", params)
        if not isinstance(value, str):
            raise EcliptixContractError(f"request_resend_otp returned {value!r}")
        return ResendOutcome(value)

    def insert_otp_record(
        self,
        flow_unique_id: uuid.UUID,
        otp_hash: str,
        otp_salt: str,
        expires_at: dt.datetime,
        status: OtpStatus | str = OtpStatus.PENDING,
    ) -> InsertedOtp:
        """Store a hashed OTP as the flow's active one, retiring the previous one."""
        if v.enum_value("status", status, OtpStatus) is not OtpStatus.PENDING:
            raise ValueError(f"status must be pending for a new OTP, got {status!r}")
        params = (
            v.require_uuid("flow_unique_id", flow_unique_id),
            v.text("otp_hash", otp_hash),
            v.text("otp_salt", otp_salt),
            v.aware_datetime("expires_at", expires_at),
            OtpStatus.PENDING.value,
        )
        return self._one("insert_otp_record", params, InsertedOtp)

    def update_otp_status(
        self, otp_unique_id: uuid.UUID, new_status: OtpStatus | str
    ) -> StatusUpdate:
        """Move an OTP to new_status if the transition is allowed."""
        params = (
            v.require_uuid("otp_unique_id", otp_unique_id),
            v.enum_value("new_status", new_status, OtpStatus).value,
        )
        return self._one("update_otp_status", params, StatusUpdate)

    def verify_otp(self, flow_unique_id: uuid.UUID, code_digest: str) -> OtpVerification:
        """Check a code's digest against the flow's active OTP, once, in the database."""
        params = (
            v.require_uuid("flow_unique_id", flow_unique_id),
            v.hex_digest("code_digest", code_digest),
        )
        return self._one("verify_otp", params, OtpVerification)

    def update_verification_flow_status(
        self, flow_unique_id: uuid.UUID, new_status: FlowStatus | str
    ) -> int:
        """Set the flow's status (verified extends it by 24 h); return rows affected."""
        params = (
            v.require_uuid("flow_unique_id", flow_unique_id),
            v.enum_value("new_status", new_status, FlowStatus).value,
        )
        return self._count("update_verification_flow_status", params)

    def expire_associated_otp(self, flow_unique_id: uuid.UUID) -> int:
        """Expire every pending OTP of the flow; return rows affected."""
        params = (v.require_uuid("flow_unique_id", flow_unique_id),)
        return self._count("expire_associated_otp", params)

    # -- attempts, memberships, login ------------------------------------

    def log_login_attempt(
        self,
        phone_number: str,
        outcome: str,
        is_success: bool,
        app_device_id: uuid.UUID | None = None,
    ) -> None:
        """Append a login attempt for the number, from the device when one is given."""
        params: tuple[object, ...] = (
            v.phone_number("phone_number", phone_number),
            v.text("outcome", outcome),
            v.boolean("is_success", is_success),
        )
        if app_device_id is not None:  # version 1 databases take three arguments
            params += (v.require_uuid("app_device_id", app_device_id),)
        self._void("log_login_attempt", params)

    def log_membership_attempt(
        self, phone_number_id: uuid.UUID, outcome: str, is_success: bool
    ) -> None:
        """Append a membership attempt for the phone."""
        params = (
            v.require_uuid("phone_number_id", phone_number_id),
            v.text("outcome", outcome),
            v.boolean("is_success", is_success),
        )
        self._void("log_membership_attempt", params)

    def create_membership(
        self,
        flow_unique_id: uuid.UUID,
        connection_id: int,
        otp_unique_id: uuid.UUID,
        creation_status: CreationStatus | str,
    ) -> MembershipCreation:
        """Create the membership of a verified registration flow's phone and device."""
        params = (
            v.require_uuid("flow_unique_id", flow_unique_id),
            v.integer("connection_id", connection_id, bits=64),
            v.require_uuid("otp_unique_id", otp_unique_id),
            v.enum_value("creation_status", creation_status, CreationStatus).value,
        )
        return self._one("create_membership", params, MembershipCreation)

    def update_membership_secure_key(
        self,
        membership_unique_id: uuid.UUID,
        secure_key: bytes | None,
        app_device_id: uuid.UUID | None = None,
    ) -> SecureKeyUpdate:
        """Store the membership's secure key (None or empty is refused by the database).

        Replacing a key that is set needs the membership's own device, after a
        verified password-recovery flow of it: pass `app_device_id`."""
        params: tuple[object, ...] = (
            v.require_uuid("membership_unique_id", membership_unique_id),
            v.optional_bytes("secure_key", secure_key),
        )
        if app_device_id is not None:  # version 1 databases take two arguments
            params += (v.require_uuid("app_device_id", app_device_id),)
        return self._one("update_membership_secure_key", params, SecureKeyUpdate)

    def login_membership(
        self, phone_number: str | None, app_device_id: uuid.UUID | None = None
    ) -> LoginResult:
        """Log in by phone number, failures kept per device when one is given.

        None or an empty number gives phone_number_cannot_be_empty."""
        # None and "" are defined outcomes (phone_number_cannot_be_empty): pass them through.
        if phone_number is not None and (not isinstance(phone_number, str) or phone_number):
            v.phone_number("phone_number", phone_number)
        params: tuple[object, ...] = (phone_number,)
        if app_device_id is not None:  # version 1 databases take one argument
            params += (v.require_uuid("app_device_id", app_device_id),)
        return self._one("login_membership", params, LoginResult)

    def ecliptix_purge(self, batch_size: int = 5000) -> tuple[PurgedRows, ...]:
        """Delete one batch of expired rows per table (maintenance role); return the counts."""
        if v.integer("batch_size", batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return tuple(self._rows("ecliptix_purge", (batch_size,), PurgedRows))

    # -- OTP service -----------------------------------------------------

    def issue_otp(
        self,
        flow_unique_id: uuid.UUID,
        *,
        lifetime: dt.timedelta = DEFAULT_OTP_LIFETIME,
        digits: int = 6,
    ) -> IssuedOtp:
        """Generate a code, store its digest as the flow's active OTP and return the code.

        The code expires after lifetime, or with the flow if that comes first."""
        flow_id = v.require_uuid("flow_unique_id", flow_unique_id)
        lifetime = v.positive_timedelta("lifetime", lifetime)
        code = generate_otp(digits)
        keyring = require_keyring(self._keyring)
        otp_hash = keyring.digest(flow_id, code)
        with self.transaction():
            # The database's clock, as for the flow's own expiry, not this host's.
            row = self._conn.execute("SELECT now()").fetchone()
            if row is None or not isinstance(row[0], dt.datetime):
                raise EcliptixContractError("SELECT now() returned no timestamp")
            expires_at = row[0] + lifetime
            state = self.get_full_flow_state(flow_id)
            if state is not None:  # an OTP may not outlive its flow
                expires_at = min(expires_at, state.expires_at)
            inserted = self.insert_otp_record(flow_id, otp_hash, keyring.current_id, expires_at)
        if inserted.outcome is not InsertOtpOutcome.CREATED:
            return IssuedOtp(code=None, otp_unique_id=None, outcome=inserted.outcome)
        return IssuedOtp(code=code, otp_unique_id=inserted.otp_unique_id, outcome=inserted.outcome)

    def check_otp(self, flow_unique_id: uuid.UUID, submitted_code: str) -> OtpVerification:
        """Check a submitted code with verify_otp, digested under the key its OTP names."""
        flow_id = v.require_uuid("flow_unique_id", flow_unique_id)
        if not isinstance(submitted_code, str):
            raise ValueError(f"submitted_code must be a str, got {type(submitted_code).__name__}")
        keyring = require_keyring(self._keyring)
        state = self.get_full_flow_state(flow_id)
        # otp_salt holds the id of the key the active code was issued under.
        key_id = state.otp_salt if state is not None else None
        return self.verify_otp(flow_id, keyring.digest(flow_id, submitted_code, key_id))
