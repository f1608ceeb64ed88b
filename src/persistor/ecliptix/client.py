"""A typed client over the Ecliptix database functions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row

from persistor.ecliptix import _validate as v
from persistor.ecliptix.models import (
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
    OtpCheck,
    OtpCheckOutcome,
    OtpStatus,
    PhoneNumber,
    RecoveryEligibility,
    ResendOutcome,
    SecureKeyUpdate,
    StatusUpdate,
)
from persistor.ecliptix.otp import generate_otp, hash_otp, verify_otp

T = TypeVar("T")
# (value, PostgreSQL type): every argument is cast so that overload resolution
# never depends on how psycopg happened to dump a Python value (int2 vs int8…).
Arg = tuple[object, str]

DEFAULT_OTP_LIFETIME = dt.timedelta(minutes=5)


class EcliptixContractError(RuntimeError):
    """Raised when a database function's answer does not have the documented shape."""


class EcliptixClient:
    """Call the Ecliptix database functions over a psycopg 3 connection, with typed results.

    Each method validates its arguments first (``ValueError`` naming the
    parameter), then runs in its own READ COMMITTED transaction, or in a
    savepoint of the caller's transaction when one is open.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        schema: str | None = None,
        otp_pepper: bytes | None = None,
    ) -> None:
        """Wrap conn; schema qualifies function names, otp_pepper keys OTP hashes."""
        if schema is not None and (not isinstance(schema, str) or not schema):
            raise ValueError("schema must be a non-empty str or None")
        if otp_pepper is not None and (not isinstance(otp_pepper, bytes) or not otp_pepper):
            raise ValueError("otp_pepper must be non-empty bytes or None")
        self._conn = conn
        self._queries: dict[tuple[str, ...], bytes] = {}
        self._schema = schema
        self._pepper = otp_pepper

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """Return the wrapped connection."""
        return self._conn

    # -- plumbing --------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Open a READ COMMITTED transaction, or a savepoint inside the caller's one."""
        conn = self._conn
        starting = conn.info.transaction_status == TransactionStatus.IDLE
        with conn.transaction():
            # The functions refuse other isolation levels (SQLSTATE 25000); a
            # transaction we start must not inherit a stricter session default.
            if starting and conn.isolation_level is not psycopg.IsolationLevel.READ_COMMITTED:
                conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            yield

    def _query(self, fn: str, args: Sequence[Arg]) -> bytes:
        key = (fn, *(pg_type for _, pg_type in args))
        query = self._queries.get(key)
        if query is None:
            # Composed once per function: the calls are hot, the text never changes.
            name = sql.Identifier(self._schema, fn) if self._schema else sql.Identifier(fn)
            params = sql.SQL(", ").join(
                sql.Composed([sql.Placeholder(), sql.SQL("::"), sql.SQL(pg_type)])
                for _, pg_type in args
            )
            query = sql.SQL("SELECT * FROM {}({})").format(name, params).as_bytes(self._conn)
            self._queries[key] = query
        return query

    def _own_transaction(self) -> AbstractContextManager[None]:
        """Return the transaction a single call runs in.

        On an idle autocommit connection at READ COMMITTED (or the server
        default), one statement is already its own transaction: skipping
        BEGIN/COMMIT saves two round trips per call.
        """
        conn = self._conn
        if (
            conn.autocommit
            and conn.info.transaction_status == TransactionStatus.IDLE
            and conn.isolation_level in (None, psycopg.IsolationLevel.READ_COMMITTED)
        ):
            return nullcontext()
        return self.transaction()

    def _rows(self, fn: str, args: Sequence[Arg], row_type: type[T]) -> list[T]:
        with (
            self._own_transaction(),
            self._conn.cursor(row_factory=class_row(row_type)) as cur,
        ):
            cur.execute(self._query(fn, args), [value for value, _ in args])
            return cur.fetchall()

    def _one(self, fn: str, args: Sequence[Arg], row_type: type[T]) -> T:
        rows = self._rows(fn, args, row_type)
        if len(rows) != 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 1")
        return rows[0]

    def _optional(self, fn: str, args: Sequence[Arg], row_type: type[T]) -> T | None:
        rows = self._rows(fn, args, row_type)
        if len(rows) > 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 0 or 1")
        return rows[0] if rows else None

    def _scalar(self, fn: str, args: Sequence[Arg]) -> object:
        with self._own_transaction(), self._conn.cursor() as cur:
            cur.execute(self._query(fn, args), [value for value, _ in args])
            rows = cur.fetchall()
        if len(rows) != 1 or len(rows[0]) != 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 1 value")
        return rows[0][0]

    def _count(self, fn: str, args: Sequence[Arg]) -> int:
        value = self._scalar(fn, args)
        if not isinstance(value, int):
            raise EcliptixContractError(f"{fn} returned {value!r}, expected an integer")
        return value

    def _void(self, fn: str, args: Sequence[Arg]) -> None:
        with self._own_transaction():
            self._conn.execute(self._query(fn, args), [value for value, _ in args])

    # -- phones and devices ----------------------------------------------

    def get_phone_number(self, phone_unique_id: uuid.UUID) -> PhoneNumber | None:
        """Return the non-deleted phone with that unique id, or None."""
        args = [(v.require_uuid("phone_unique_id", phone_unique_id), "uuid")]
        return self._optional("get_phone_number", args, PhoneNumber)

    def register_app_device_if_not_exists(
        self, app_instance_id: uuid.UUID, device_id: uuid.UUID, device_type: int = 1
    ) -> DeviceRegistration:
        """Register the device unless it exists; return its id and whether it was created."""
        args = [
            (v.require_uuid("app_instance_id", app_instance_id), "uuid"),
            (v.require_uuid("device_id", device_id), "uuid"),
            (v.integer("device_type", device_type), "integer"),
        ]
        return self._one("register_app_device_if_not_exists", args, DeviceRegistration)

    def ensure_phone_number(
        self, phone_number: str, region: str | None, app_device_id: uuid.UUID | None = None
    ) -> EnsuredPhone:
        """Find or create the phone (region None is no region), linking the device if given."""
        args = [
            (v.phone_number("phone_number", phone_number), "varchar"),
            (v.region("region", region), "varchar"),
            (v.optional_uuid("app_device_id", app_device_id), "uuid"),
        ]
        return self._one("ensure_phone_number", args, EnsuredPhone)

    def verify_phone_for_secret_key_recovery(
        self, phone_number: str, region: str | None = None
    ) -> RecoveryEligibility:
        """Return whether the phone's membership may recover its secure key."""
        args = [
            (v.phone_number("phone_number", phone_number), "varchar"),
            (v.region("region", region), "varchar"),
        ]
        return self._one("verify_phone_for_secret_key_recovery", args, RecoveryEligibility)

    # -- verification flows and OTPs -------------------------------------

    def get_full_flow_state(self, flow_unique_id: uuid.UUID) -> FlowState | None:
        """Return the non-deleted flow with its active OTP, or None."""
        args = [(v.require_uuid("flow_unique_id", flow_unique_id), "uuid")]
        return self._optional("get_full_flow_state", args, FlowState)

    def initiate_verification_flow(
        self,
        app_device_id: uuid.UUID,
        phone_unique_id: uuid.UUID,
        purpose: FlowPurpose | str,
        connection_id: int | None = None,
    ) -> FlowInitiation:
        """Start or resume a verification flow for (device, phone, purpose)."""
        args = [
            (v.require_uuid("app_device_id", app_device_id), "uuid"),
            (v.require_uuid("phone_unique_id", phone_unique_id), "uuid"),
            (v.enum_value("purpose", purpose, FlowPurpose).value, "varchar"),
            (v.optional_bigint("connection_id", connection_id), "bigint"),
        ]
        return self._one("initiate_verification_flow", args, FlowInitiation)

    def request_resend_otp(self, flow_unique_id: uuid.UUID) -> ResendOutcome:
        """Return whether a new OTP may be sent for the flow now."""
        args = [(v.require_uuid("flow_unique_id", flow_unique_id), "uuid")]
        value = self._scalar("request_resend_otp", args)
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
        args = [
            (v.require_uuid("flow_unique_id", flow_unique_id), "uuid"),
            (v.text("otp_hash", otp_hash), "text"),
            (v.text("otp_salt", otp_salt), "text"),
            (v.aware_datetime("expires_at", expires_at), "timestamptz"),
            (OtpStatus.PENDING.value, "varchar"),
        ]
        return self._one("insert_otp_record", args, InsertedOtp)

    def update_otp_status(
        self, otp_unique_id: uuid.UUID, new_status: OtpStatus | str
    ) -> StatusUpdate:
        """Move an OTP to new_status if the transition is allowed."""
        args = [
            (v.require_uuid("otp_unique_id", otp_unique_id), "uuid"),
            (v.enum_value("new_status", new_status, OtpStatus).value, "varchar"),
        ]
        return self._one("update_otp_status", args, StatusUpdate)

    def update_verification_flow_status(
        self, flow_unique_id: uuid.UUID, new_status: FlowStatus | str
    ) -> int:
        """Set the flow's status (verified extends it by 24 h); return rows affected."""
        args = [
            (v.require_uuid("flow_unique_id", flow_unique_id), "uuid"),
            (v.enum_value("new_status", new_status, FlowStatus).value, "varchar"),
        ]
        return self._count("update_verification_flow_status", args)

    def expire_associated_otp(self, flow_unique_id: uuid.UUID) -> int:
        """Expire every pending OTP of the flow; return rows affected."""
        args = [(v.require_uuid("flow_unique_id", flow_unique_id), "uuid")]
        return self._count("expire_associated_otp", args)

    # -- attempts, memberships, login ------------------------------------

    def log_login_attempt(self, phone_number: str, outcome: str, is_success: bool) -> None:
        """Append a login attempt for the number."""
        args = [
            (v.phone_number("phone_number", phone_number), "varchar"),
            (v.text("outcome", outcome), "text"),
            (v.boolean("is_success", is_success), "boolean"),
        ]
        self._void("log_login_attempt", args)

    def log_membership_attempt(
        self, phone_number_id: uuid.UUID, outcome: str, is_success: bool
    ) -> None:
        """Append a membership attempt for the phone."""
        args = [
            (v.require_uuid("phone_number_id", phone_number_id), "uuid"),
            (v.text("outcome", outcome), "text"),
            (v.boolean("is_success", is_success), "boolean"),
        ]
        self._void("log_membership_attempt", args)

    def create_membership(
        self,
        flow_unique_id: uuid.UUID,
        connection_id: int,
        otp_unique_id: uuid.UUID,
        creation_status: CreationStatus | str,
    ) -> MembershipCreation:
        """Create the membership of a verified registration flow's phone and device."""
        args = [
            (v.require_uuid("flow_unique_id", flow_unique_id), "uuid"),
            (v.integer("connection_id", connection_id, bits=64), "bigint"),
            (v.require_uuid("otp_unique_id", otp_unique_id), "uuid"),
            (v.enum_value("creation_status", creation_status, CreationStatus).value, "varchar"),
        ]
        return self._one("create_membership", args, MembershipCreation)

    def update_membership_secure_key(
        self, membership_unique_id: uuid.UUID, secure_key: bytes | None
    ) -> SecureKeyUpdate:
        """Store the membership's secure key (None or empty is refused by the database)."""
        args = [
            (v.require_uuid("membership_unique_id", membership_unique_id), "uuid"),
            (v.optional_bytes("secure_key", secure_key), "bytea"),
        ]
        return self._one("update_membership_secure_key", args, SecureKeyUpdate)

    def login_membership(self, phone_number: str | None) -> LoginResult:
        """Log in by phone number; None or empty gives phone_number_cannot_be_empty."""
        # None and "" are defined outcomes (phone_number_cannot_be_empty): pass them through.
        if phone_number is not None and (not isinstance(phone_number, str) or phone_number):
            v.phone_number("phone_number", phone_number)
        return self._one("login_membership", [(phone_number, "varchar")], LoginResult)

    # -- OTP service -----------------------------------------------------

    def issue_otp(
        self,
        flow_unique_id: uuid.UUID,
        *,
        lifetime: dt.timedelta = DEFAULT_OTP_LIFETIME,
        digits: int = 6,
    ) -> IssuedOtp:
        """Generate a code, store its hash as the flow's active OTP and return the code."""
        flow_id = v.require_uuid("flow_unique_id", flow_unique_id)
        lifetime = v.positive_timedelta("lifetime", lifetime)
        code = generate_otp(digits)
        # Hash outside the transaction: scrypt is slow on purpose; no lock is held meanwhile.
        otp_hash, otp_salt = hash_otp(code, pepper=self._pepper)
        with self.transaction():
            # The database's clock, as for the flow's own expiry, not this host's.
            row = self._conn.execute("SELECT now()").fetchone()
            if row is None or not isinstance(row[0], dt.datetime):
                raise EcliptixContractError("SELECT now() returned no timestamp")
            inserted = self.insert_otp_record(flow_id, otp_hash, otp_salt, row[0] + lifetime)
        if inserted.outcome is not InsertOtpOutcome.CREATED:
            return IssuedOtp(code=None, otp_unique_id=None, outcome=inserted.outcome)
        return IssuedOtp(code=code, otp_unique_id=inserted.otp_unique_id, outcome=inserted.outcome)

    def check_otp(self, flow_unique_id: uuid.UUID, submitted_code: str) -> OtpCheck:
        """Compare a submitted code with the flow's active OTP and record verified or failed."""
        flow_id = v.require_uuid("flow_unique_id", flow_unique_id)
        if not isinstance(submitted_code, str):
            raise ValueError(f"submitted_code must be a str, got {type(submitted_code).__name__}")
        state = self.get_full_flow_state(flow_id)
        if state is None:
            return OtpCheck(OtpCheckOutcome.FLOW_NOT_FOUND, None, "Verification flow not found")
        if state.status is not FlowStatus.PENDING:
            return OtpCheck(OtpCheckOutcome.FLOW_NOT_PENDING, None, f"Flow is {state.status}")
        otp_id = state.otp_unique_identifier
        if otp_id is None or state.otp_hash is None or state.otp_salt is None:
            return OtpCheck(OtpCheckOutcome.NO_ACTIVE_OTP, None, "No active, unexpired OTP")
        matches = verify_otp(submitted_code, state.otp_hash, state.otp_salt, pepper=self._pepper)
        # The database re-checks the OTP under a row lock, so a code retired or
        # failed since we read it is refused there, not verified here.
        update = self.update_otp_status(otp_id, OtpStatus.VERIFIED if matches else OtpStatus.FAILED)
        if not matches:
            return OtpCheck(OtpCheckOutcome.INVALID_CODE, otp_id, update.message)
        if not update.success:
            return OtpCheck(OtpCheckOutcome.REJECTED, otp_id, update.message)
        return OtpCheck(OtpCheckOutcome.VERIFIED, otp_id, update.message)
