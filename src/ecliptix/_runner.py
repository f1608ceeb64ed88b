"""Run an Ecliptix database function by name, in the right transaction, into typed rows.

This is the plumbing under ``EcliptixClient``: every argument cast to the
function's declared type, the fast path (``_fastpath``) on an idle autocommit
connection, the plain psycopg cursor otherwise, and a check that the result
columns are the ones the row class expects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import PipelineStatus, TransactionStatus
from psycopg.rows import tuple_row

from ecliptix import _fastpath
from ecliptix._rows import Row, row_maker

R = TypeVar("R", bound=Row)

# PostgreSQL type of each function's arguments, in order: every argument is
# cast so that overload resolution never depends on how psycopg happened to
# dump a Python value (int2 vs int8…). A call may pass fewer arguments than
# listed (trailing parameters with a default), which is how the client stays
# usable against a version 1 database for calls that do not need version 2.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "get_phone_number": ("uuid",),
    "register_app_device_if_not_exists": ("uuid", "uuid", "integer"),
    "ensure_phone_number": ("varchar", "varchar", "uuid"),
    "verify_phone_for_secret_key_recovery": ("varchar", "varchar"),
    "get_full_flow_state": ("uuid",),
    "initiate_verification_flow": ("uuid", "uuid", "varchar", "bigint"),
    "request_resend_otp": ("uuid",),
    "insert_otp_record": ("uuid", "text", "text", "timestamptz", "varchar"),
    "update_otp_status": ("uuid", "varchar"),
    "verify_otp": ("uuid", "text"),
    "update_verification_flow_status": ("uuid", "varchar"),
    "expire_associated_otp": ("uuid",),
    "log_login_attempt": ("varchar", "text", "boolean", "uuid"),
    "log_membership_attempt": ("uuid", "text", "boolean"),
    "create_membership": ("uuid", "bigint", "uuid", "varchar"),
    "update_membership_secure_key": ("uuid", "bytea", "uuid"),
    "login_membership": ("varchar", "uuid"),
    "ecliptix_purge": ("integer",),
}

_IDLE = int(TransactionStatus.IDLE)
_PIPELINE_OFF = int(PipelineStatus.OFF)
# Isolation levels at which one autocommit statement is the transaction we want.
_OWN_LEVELS = (None, psycopg.IsolationLevel.READ_COMMITTED)
_MAKERS: dict[type[Row], Callable[[Sequence[Any]], Any]] = {}


def _maker(row_type: type[R]) -> Callable[[Sequence[Any]], R]:
    make = _MAKERS.get(row_type)
    if make is None:
        make = _MAKERS[row_type] = row_maker(row_type)
    return make


class EcliptixContractError(RuntimeError):
    """Raised when a database function's answer does not have the documented shape."""


class FunctionRunner:
    """Call Ecliptix functions over one psycopg connection and build their rows."""

    def __init__(self, conn: psycopg.Connection[Any], *, schema: str | None = None) -> None:
        """Wrap conn; schema qualifies function names."""
        if schema is not None and (not isinstance(schema, str) or not schema):
            raise ValueError("schema must be a non-empty str or None")
        self._conn = conn
        self._schema = schema
        # Per (function, argument count): the prepared statement of the fast
        # path, and the query text (psycopg placeholders) of the plain path.
        self._statements: dict[tuple[str, int], _fastpath.Statement] = {}
        self._queries: dict[tuple[str, int], bytes] = {}

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """Return the wrapped connection."""
        return self._conn

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

    def _statement(self, fn: str, nargs: int) -> _fastpath.Statement:
        # Composed once per function: the calls are hot, the text never changes.
        types = SIGNATURES[fn][:nargs]
        params = ", ".join(f"${i}::{t}" for i, t in enumerate(types, 1))
        name = self._name(fn).as_string(self._conn)
        st = _fastpath.Statement(self._conn, f"SELECT * FROM {name}({params})".encode(), nargs)
        self._statements[(fn, nargs)] = st
        return st

    def _query(self, fn: str, nargs: int) -> bytes:
        args = sql.SQL(", ").join(
            sql.Composed([sql.Placeholder(), sql.SQL("::"), sql.SQL(pg_type)])
            for pg_type in SIGNATURES[fn][:nargs]
        )
        composed = sql.SQL("SELECT * FROM {}({})").format(self._name(fn), args)
        query = self._queries[(fn, nargs)] = composed.as_bytes(self._conn)
        return query

    @staticmethod
    def _check_columns(fn: str, names: Sequence[str], row_type: type[Row]) -> None:
        # Rows are built by position: the names must be the row class's fields.
        if tuple(names) != row_type._COLUMNS:
            raise EcliptixContractError(
                f"{fn} returned columns {tuple(names)}, expected {row_type._COLUMNS}"
            )

    def _call(
        self,
        fn: str,
        params: tuple[object, ...],
        row_type: type[Row] | None,
        make: Callable[[Sequence[Any]], Any],
    ) -> list[Any]:
        """Run fn(params) in its transaction; return its rows, each made by make."""
        conn = self._conn
        pgconn = conn.pgconn
        # On an idle autocommit connection at READ COMMITTED (or the server
        # default), one statement is already its own transaction: skipping
        # BEGIN/COMMIT saves two round trips per call.
        if not (
            conn.autocommit
            and pgconn.transaction_status == _IDLE
            and pgconn.pipeline_status == _PIPELINE_OFF
            and conn.isolation_level in _OWN_LEVELS
        ):
            return self._with_cursor(fn, params, row_type, make, own_transaction=True)
        # Prepared statements turned off (e.g. behind PgBouncer), or a psycopg
        # the fast path was not tested with: the plain path, no statement of ours.
        if conn.prepare_threshold is None or not _fastpath.AVAILABLE:
            return self._with_cursor(fn, params, row_type, make, own_transaction=False)
        st = self._statements.get((fn, len(params))) or self._statement(fn, len(params))
        check = None
        if row_type is not None and not st.checked:
            check = partial(self._check_columns, fn, row_type=row_type)
        return _fastpath.run_prepared(conn, st, params, check, make)

    def _with_cursor(
        self,
        fn: str,
        params: tuple[object, ...],
        row_type: type[Row] | None,
        make: Callable[[Sequence[Any]], Any],
        *,
        own_transaction: bool,
    ) -> list[Any]:
        # The general path, through a psycopg cursor: in the caller's
        # transaction (a savepoint), in our own, or as one autocommit statement.
        query = self._queries.get((fn, len(params))) or self._query(fn, len(params))
        with (
            self.transaction() if own_transaction else nullcontext(),
            self._conn.cursor(row_factory=tuple_row) as cur,
        ):
            cur.execute(query, params)
            rows = cur.fetchall()
            if row_type is not None:
                self._check_columns(fn, [c.name for c in cur.description or ()], row_type)
        return [make(row) for row in rows]

    def _rows(self, fn: str, params: tuple[object, ...], row_type: type[R]) -> list[R]:
        rows: list[R] = self._call(fn, params, row_type, _maker(row_type))
        return rows

    def _one(self, fn: str, params: tuple[object, ...], row_type: type[R]) -> R:
        rows = self._rows(fn, params, row_type)
        if len(rows) != 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 1")
        return rows[0]

    def _optional(self, fn: str, params: tuple[object, ...], row_type: type[R]) -> R | None:
        rows = self._rows(fn, params, row_type)
        if len(rows) > 1:
            raise EcliptixContractError(f"{fn} returned {len(rows)} rows, expected 0 or 1")
        return rows[0] if rows else None

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
