"""Helpers shared by the Ecliptix SQL tests (no tests of its own beyond a self-check).

Everything runs against real PostgreSQL through the ``db`` / ``ecliptix_url``
fixtures; time passing is simulated by moving stored timestamps back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

Conn = psycopg.Connection[Any]
Row = dict[str, Any]

TABLES = (
    "app_devices",
    "phone_numbers",
    "phone_number_devices",
    "verification_flows",
    "otp_records",
    "failed_otp_attempts",
    "memberships",
    "login_attempts",
    "membership_attempts",
    "event_log",
)
# Everything the functions keep state in: v1's tables, then v2's (the purge
# deletes from all but the limits).
PURGED_TABLES = (
    *TABLES,
    "login_lockouts",
    "login_device_lockouts",
    "recovery_eligibility_checks",
)
STATE_TABLES = (*PURGED_TABLES, "ecliptix_limits")
# The same as version 1 had them (for tests that fill a version 1 database).
V1_STATE_TABLES = (*TABLES, "login_lockouts", "ecliptix_limits")


def call(db: Conn, fn: str, *args: object) -> list[Row]:
    """``SELECT * FROM fn(args…)`` and return every row as a dict."""
    marks = ", ".join(["%s"] * len(args))
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM {fn}({marks})", args)
        return cur.fetchall() if cur.description else []


def one(db: Conn, fn: str, *args: object) -> Row:
    """Call a function that must return exactly one row."""
    rows = call(db, fn, *args)
    assert len(rows) == 1, f"{fn} returned {len(rows)} rows: {rows}"
    return rows[0]


def scalar(db: Conn, sql: str, params: Sequence[object] = ()) -> Any:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def fingerprint(db: Conn) -> dict[str, str]:
    """A digest of every row of every table, to prove a call changed nothing."""
    out = {}
    for table in STATE_TABLES:
        out[table] = scalar(
            db,
            f"SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' "
            f"ORDER BY t::text)), '') FROM {table} t",
        )
    return out


def expect_bad_input(
    db: Conn, fn: str, *args: object, param: str, classes: tuple[str, ...] = ("22", "23")
) -> str:
    """The call raises SQLSTATE class 22/23 naming ``param`` and changes nothing."""
    before = fingerprint(db)
    with pytest.raises(psycopg.Error) as info:
        call(db, fn, *args)
    state = info.value.sqlstate or ""
    assert state[:2] in classes, f"{fn}: SQLSTATE {state}: {info.value}"
    message = info.value.diag.message_primary or ""
    assert param in message, f"{fn}: message does not name {param}: {message}"
    assert fingerprint(db) == before
    return message


# --- builders ------------------------------------------------------------


def make_device(db: Conn, device_id: uuid.UUID | None = None) -> uuid.UUID:
    row = one(db, "register_app_device_if_not_exists", uuid.uuid4(), device_id or uuid.uuid4(), 1)
    return uuid.UUID(str(row["unique_id"]))


_counter = iter(range(10**9))


def new_number() -> str:
    return f"+1555{next(_counter):07d}"


def make_phone(
    db: Conn, number: str | None = None, region: str | None = None, device: uuid.UUID | None = None
) -> uuid.UUID:
    row = one(db, "ensure_phone_number", number or new_number(), region, device)
    assert row["success"], row
    return uuid.UUID(str(row["unique_id"]))


def make_flow(
    db: Conn,
    device: uuid.UUID,
    phone: uuid.UUID,
    purpose: str = "registration",
    connection_id: int | None = 42,
) -> Row:
    row = one(db, "initiate_verification_flow", device, phone, purpose, connection_id)
    assert row["outcome"] in ("created", "retrieved"), row
    return row


def make_otp(db: Conn, flow: uuid.UUID, minutes: int = 5) -> uuid.UUID:
    # Version 2 refuses a code that outlives its flow: the earlier of the two.
    expires = scalar(
        db,
        "SELECT least(now() + make_interval(mins => %s), "
        "(SELECT expires_at FROM verification_flows WHERE unique_id = %s))",
        (minutes, flow),
    )
    row = one(db, "insert_otp_record", flow, "hash", "salt", expires)
    assert row["outcome"] == "created", row
    return uuid.UUID(str(row["otp_unique_id"]))


def verified_registration(db: Conn, connection_id: int = 42) -> dict[str, Any]:
    """A device, a phone and a registration flow verified through its OTP."""
    device = make_device(db)
    number = new_number()
    phone = make_phone(db, number, None, device)
    flow = make_flow(db, device, phone, "registration", connection_id)["unique_identifier"]
    otp = make_otp(db, flow)
    assert one(db, "update_otp_status", otp, "verified")["success"]
    return {"device": device, "phone": phone, "number": number, "flow": flow, "otp": otp}


def move_back(
    db: Conn, table: str, column: str, interval: str, where: str, *params: object
) -> None:
    """Pretend time passed: move ``column`` of the matching rows back by ``interval``."""
    db.execute(
        f"UPDATE {table} SET {column} = {column} - %s::interval WHERE {where}",
        (interval, *params),
    )


# --- concurrency ---------------------------------------------------------

THREADS = 32


def run_concurrently(url: str, work: Callable[[Conn, int], Any], n: int = THREADS) -> list[Any]:
    """Run ``work(conn, i)`` in ``n`` threads, each with its own autocommit
    connection, released together by a barrier. Returns results by index;
    re-raises the first exception."""
    conns = [psycopg.connect(url, autocommit=True) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(conns[i], i)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for c in conns:
            c.close()
    if errors:
        raise errors[0]
    return results
