"""A typed client over the Ecliptix database functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg import errors, sql
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import execute
from psycopg.pq import DiagnosticField, ExecStatus, PipelineStatus, TransactionStatus
from psycopg.pq.abc import PGresult
from psycopg.rows import tuple_row

from ecliptix import _validate as v
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
    OtpCheck,
    OtpCheckOutcome,
    OtpStatus,
    PhoneNumber,
    RecoveryEligibility,
    ResendOutcome,
    SecureKeyUpdate,
    StatusUpdate,
    _Row,
    row_maker,
)
from ecliptix.otp import generate_otp, hash_otp, verify_otp

R = TypeVar("R", bound=_Row)

DEFAULT_OTP_LIFETIME = dt.timedelta(minutes=5)

# PostgreSQL type of each function's arguments: every argument is cast so that
# overload resolution never depends on how psycopg happened to dump a Python
# value (int2 vs int8…).
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "get_phone_number": ("uuid",),
    "register_app_device_if_not_exists": ("uuid", "uuid", "integer"),
    "ensure_phone_number": ("varchar", "varchar", "uuid"),
    "verify_phone_for_secret_key_recovery": ("varchar", "varchar"),
    "get_full_flow_state": ("uuid",),
    "initiate_verification_flow": ("uuid", "uuid", "varchar", "bigint"),
    "request_resend_otp": ("uuid",),
    "insert_otp_record": ("uuid", "text", "text", "timestamptz", "varchar"),
    "update_otp_status": ("uuid", "varchar"),
    "update_verification_flow_status": ("uuid", "varchar"),
    "expire_associated_otp": ("uuid",),
    "log_login_attempt": ("varchar", "text", "boolean"),
    "log_membership_attempt": ("uuid", "text", "boolean"),
    "create_membership": ("uuid", "bigint", "uuid", "varchar"),
    "update_membership_secure_key": ("uuid", "bytea"),
    "login_membership": ("varchar",),
}

_IDLE = int(TransactionStatus.IDLE)
_PIPELINE_OFF = int(PipelineStatus.OFF)
_TUPLES_OK = int(ExecStatus.TUPLES_OK)
_COMMAND_OK = int(ExecStatus.COMMAND_OK)
_FATAL_ERROR = int(ExecStatus.FATAL_ERROR)
_SQLSTATE = DiagnosticField.SQLSTATE
# Isolation levels at which one autocommit statement is the transaction we want.
_OWN_LEVELS = (None, psycopg.IsolationLevel.READ_COMMITTED)
_MAKERS: dict[type[_Row], Callable[[Sequence[Any]], Any]] = {}


def _maker(row_type: type[R]) -> Callable[[Sequence[Any]], R]:
    make = _MAKERS.get(row_type)
    if make is None:
        make = _MAKERS[row_type] = row_maker(row_type)
    return make


class _Statement:
    """One function's query, prepared on the connection, and the Transformer for its values.

    Arguments go as text with unknown type: the server types each from its
    cast, so one prepared statement fits every value (psycopg would key its
    own on the dumped types: int2 vs int8…). The name derives from the text,
    so clients sharing a connection share the statement instead of piling up
    new ones.
    """

    __slots__ = ("checked", "formats", "loaders", "name", "prepared", "query", "tx")

    def __init__(self, conn: psycopg.Connection[Any], query: bytes, nargs: int) -> None:
        self.query = query
        self.name = b"_ecliptix_" + hashlib.blake2b(query, digest_size=12).hexdigest().encode()
        self.tx = Transformer(conn)
        self.formats = [PyFormat.TEXT] * nargs
        self.prepared = False  # known to exist on the connection
        self.loaders = -1  # column count tx has loaders for; -1 none
        self.checked = False  # column names matched the row class


class EcliptixContractError(RuntimeError):
    """Raised when a database function's answer does not have the documented shape."""


class EcliptixClient:
    """Call the Ecliptix database functions over a psycopg 3 connection, with typed results.

    Each method validates its arguments first (``ValueError`` naming the
    parameter), then runs in its own READ COMMITTED transaction, or in a
    savepoint of the caller's transaction when one is open. On an idle
    autocommit connection a call is one prepared statement of the client's own
    (``_ecliptix_…`` in pg_prepared_statements), unless the connection's
    ``prepare_threshold`` is None.
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
        self._schema = schema
        self._pepper = otp_pepper
        # Per function: the prepared statement of the fast path, and the query
        # text (psycopg placeholders) of the path through a transaction.
        self._statements: dict[str, _Statement] = {}
        self._queries: dict[str, bytes] = {}

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

    def _name(self, fn: str) -> sql.Composable:
        return sql.Identifier(self._schema, fn) if self._schema else sql.Identifier(fn)

    def _statement(self, fn: str) -> _Statement:
        # Composed once per function: the calls are hot, the text never changes.
        types = _SIGNATURES[fn]
        params = ", ".join(f"${i}::{t}" for i, t in enumerate(types, 1))
        name = self._name(fn).as_string(self._conn)
        st = _Statement(self._conn, f"SELECT * FROM {name}({params})".encode(), len(types))
        self._statements[fn] = st
        return st

    def _check_columns(self, fn: str, names: Sequence[str], row_type: type[_Row]) -> None:
        # Rows are built by position: the names must be the row class's fields.
        if tuple(names) != row_type._COLUMNS:
            raise EcliptixContractError(
                f"{fn} returned columns {tuple(names)}, expected {row_type._COLUMNS}"
            )

    def _call(
        self,
        fn: str,
        params: tuple[object, ...],
        row_type: type[_Row] | None,
        make: Callable[[Sequence[Any]], Any],
    ) -> list[Any]:
        """Run fn(params) in its transaction; return its rows, each made by make."""
        conn = self._conn
        pgconn = conn.pgconn
        # On an idle autocommit connection at READ COMMITTED (or the server
        # default), one statement is already its own transaction: skipping
        # BEGIN/COMMIT saves two round trips per call.
        if (
            conn.autocommit
            and pgconn.transaction_status == _IDLE
            and pgconn.pipeline_status == _PIPELINE_OFF
            and conn.isolation_level in _OWN_LEVELS
        ):
            if conn.prepare_threshold is not None:
                return self._prepared(fn, params, row_type, make)
            # Prepared statements turned off (e.g. behind PgBouncer): no statement of ours.
            return self._with_cursor(fn, params, row_type, make, own_transaction=False)
        return self._with_cursor(fn, params, row_type, make, own_transaction=True)

    def _prepared(
        self,
        fn: str,
        params: tuple[object, ...],
        row_type: type[_Row] | None,
        make: Callable[[Sequence[Any]], Any],
    ) -> list[Any]:
        # psycopg's cursor machinery, cut to what one prepared call needs: the
        # same dumpers, loaders, wait loop (interruptible) and error classes.
        st = self._statements.get(fn) or self._statement(fn)
        conn = self._conn
        pgconn = conn.pgconn
        tx = st.tx
        with conn.lock:
            values = tx.dump_sequence(params, st.formats)
            for attempt in (1, 2):
                if not st.prepared:
                    self._prepare(st)
                pgconn.send_query_prepared(st.name, values)
                results = conn.wait(execute(pgconn))
                if len(results) == 1 and (res := results[0]).status == _TUPLES_OK:
                    break
                if attempt == 1 and results and results[0].error_field(_SQLSTATE) == b"26000":
                    # Deallocated behind our back (DISCARD ALL, DEALLOCATE ALL):
                    # nothing ran, so prepare again and retry once.
                    st.prepared = st.checked = False
                    st.loaders = -1
                    continue
                self._raise(results)
            # Same prepared statement, same columns: keep the loaders. (The
            # count is checked as well: psycopg's C loader trusts it.)
            nfields = res.nfields
            if st.loaders == nfields:
                tx.set_pgresult(res, set_loaders=False)
            else:
                tx.set_pgresult(res)
                st.loaders = nfields
            if row_type is not None and not st.checked:
                names = [(res.fname(i) or b"").decode() for i in range(res.nfields)]
                self._check_columns(fn, names, row_type)
                st.checked = True
            rows = tx.load_rows(0, res.ntuples, make)
            tx.set_pgresult(None, set_loaders=False)  # drop the result (it may hold secrets)
        return rows

    def _prepare(self, st: _Statement) -> None:
        conn = self._conn
        conn.pgconn.send_prepare(st.name, st.query)
        results = conn.wait(execute(conn.pgconn))
        # 42P05: another client on this connection prepared the same text.
        if len(results) != 1 or (
            results[0].status != _COMMAND_OK and results[0].error_field(_SQLSTATE) != b"42P05"
        ):
            self._raise(results)
        st.prepared = True
        st.checked = False  # a new statement may have new columns
        st.loaders = -1

    def _raise(self, results: Sequence[PGresult]) -> NoReturn:
        for res in results:
            if res.status == _FATAL_ERROR:
                raise errors.error_from_result(res, encoding=self._conn.info.encoding)
        status = [ExecStatus(r.status).name for r in results]
        raise errors.InternalError(f"unexpected results from the server: {status}")

    def _with_cursor(
        self,
        fn: str,
        params: tuple[object, ...],
        row_type: type[_Row] | None,
        make: Callable[[Sequence[Any]], Any],
        *,
        own_transaction: bool,
    ) -> list[Any]:
        # The general path, through a psycopg cursor: in the caller's
        # transaction (a savepoint), in our own, or as one autocommit statement.
        query = self._queries.get(fn)
        if query is None:
            args = sql.SQL(", ").join(
                sql.Composed([sql.Placeholder(), sql.SQL("::"), sql.SQL(pg_type)])
                for pg_type in _SIGNATURES[fn]
            )
            composed = sql.SQL("SELECT * FROM {}({})").format(self._name(fn), args)
            query = self._queries[fn] = composed.as_bytes(self._conn)
        with (
            self.transaction() if own_transaction else nullcontext(),
            self._conn.cursor(row_factory=tuple_row) as cur,
        ):
            cur.execute(query, params)
            rows = cur.fetchall()
            if row_type is not None:
                self._check_columns(fn, [c.name for c in cur.description or ()], row_type)
        return [make(row) for row in rows]

    def _one(self, fn: str, params: tuple[object, ...], row_type: type[R]) -> R:
        rows = self._call(fn, params, row_type, _maker(row_type))
        if len(rows) != 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 1")
        one: R = rows[0]
        return one

    def _optional(self, fn: str, params: tuple[object, ...], row_type: type[R]) -> R | None:
        rows = self._call(fn, params, row_type, _maker(row_type))
        if len(rows) > 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 0 or 1")
        one: R | None = rows[0] if rows else None
        return one

    def _scalar(self, fn: str, params: tuple[object, ...]) -> object:
        rows = self._call(fn, params, None, tuple)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 1 value")
        return rows[0][0]

    def _count(self, fn: str, params: tuple[object, ...]) -> int:
        value = self._scalar(fn, params)
        if not isinstance(value, int):
            raise EcliptixContractError(f"{fn} returned {value!r}, expected an integer")
        return value

    def _void(self, fn: str, params: tuple[object, ...]) -> None:
        self._call(fn, params, None, tuple)

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

    def log_login_attempt(self, phone_number: str, outcome: str, is_success: bool) -> None:
        """Append a login attempt for the number."""
        params = (
            v.phone_number("phone_number", phone_number),
            v.text("outcome", outcome),
            v.boolean("is_success", is_success),
        )
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
        self, membership_unique_id: uuid.UUID, secure_key: bytes | None
    ) -> SecureKeyUpdate:
        """Store the membership's secure key (None or empty is refused by the database)."""
        params = (
            v.require_uuid("membership_unique_id", membership_unique_id),
            v.optional_bytes("secure_key", secure_key),
        )
        return self._one("update_membership_secure_key", params, SecureKeyUpdate)

    def login_membership(self, phone_number: str | None) -> LoginResult:
        """Log in by phone number; None or empty gives phone_number_cannot_be_empty."""
        # None and "" are defined outcomes (phone_number_cannot_be_empty): pass them through.
        if phone_number is not None and (not isinstance(phone_number, str) or phone_number):
            v.phone_number("phone_number", phone_number)
        return self._one("login_membership", (phone_number,), LoginResult)

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
