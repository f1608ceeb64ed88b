"""Invariants under real concurrency: 32 sessions, each with its own
connection, released together by a barrier, at READ COMMITTED. Also the
isolation-level guard (SQLSTATE 25000)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.ecliptix.sql_support import (
    THREADS,
    Conn,
    call,
    make_device,
    make_flow,
    make_otp,
    make_phone,
    move_back,
    new_number,
    one,
    run_concurrently,
    scalar,
    verified_registration,
)


def test_one_device_row_exactly_one_created(db: Conn, ecliptix_url: str) -> None:
    device_id = uuid.uuid4()
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "register_app_device_if_not_exists", uuid.uuid4(), device_id, 1),
    )
    assert Counter(r["status"] for r in results) == {2: 1, 1: THREADS - 1}
    assert len({r["unique_id"] for r in results}) == 1
    assert scalar(db, "SELECT count(*) FROM app_devices") == 1
    # restoring a soft-deleted device: again exactly one caller sees 2
    db.execute("UPDATE app_devices SET is_deleted = true")
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "register_app_device_if_not_exists", uuid.uuid4(), device_id, 1),
    )
    assert Counter(r["status"] for r in results) == {2: 1, 1: THREADS - 1}
    assert db.execute("SELECT count(*), bool_or(is_deleted) FROM app_devices").fetchone() == (
        1,
        False,
    )


@pytest.mark.parametrize("region", [None, "US"])
def test_one_phone_row(db: Conn, ecliptix_url: str, region: str | None) -> None:
    devices = [make_device(db) for _ in range(THREADS)]
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "ensure_phone_number", "+447700900001", region, devices[i]),
    )
    assert Counter(r["outcome"] for r in results) == {
        "created_and_associated": 1,
        "associated": THREADS - 1,
    }
    assert scalar(db, "SELECT count(*) FROM phone_numbers") == 1
    # every device linked, exactly one primary
    assert db.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_primary) FROM phone_number_devices"
    ).fetchone() == (THREADS, 1)


def test_one_pending_flow_per_device_phone_purpose(db: Conn, ecliptix_url: str) -> None:
    device = make_device(db)
    phone = make_phone(db, None, None, device)
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "initiate_verification_flow", device, phone, "login", i),
    )
    assert Counter(r["outcome"] for r in results) == {"created": 1, "retrieved": THREADS - 1}
    assert len({r["unique_identifier"] for r in results}) == 1
    assert scalar(db, "SELECT count(*) FROM verification_flows") == 1


def test_never_more_than_30_flows_per_phone_per_hour(db: Conn, ecliptix_url: str) -> None:
    devices = [make_device(db) for _ in range(THREADS + 8)]
    phone = make_phone(db)
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "initiate_verification_flow", devices[i], phone, "registration"),
        n=THREADS + 8,
    )
    assert Counter(r["outcome"] for r in results) == {
        "created": 30,
        "global_rate_limit_exceeded": THREADS + 8 - 30,
    }
    assert scalar(db, "SELECT count(*) FROM verification_flows") == 30


def test_otp_count_never_above_5(db: Conn, ecliptix_url: str) -> None:
    device = make_device(db)
    flow = make_flow(db, device, make_phone(db))["unique_identifier"]

    def insert(c: Conn, i: int) -> dict[str, object]:
        return one(c, "insert_otp_record", flow, f"h{i}", "s", expires)

    expires = scalar(db, "SELECT expires_at FROM verification_flows")
    for _ in range(3):
        make_otp(db, flow)
        move_back(db, "otp_records", "created_at", "31 s", "true")
    # version 2: the resend cooldown holds in insert_otp_record too, so of
    # concurrent inserts exactly one is created
    outcomes = Counter(r["outcome"] for r in run_concurrently(ecliptix_url, insert))
    assert outcomes == {"created": 1, "resend_cooldown_active": THREADS - 1}
    move_back(db, "otp_records", "created_at", "31 s", "true")
    # the fifth is created, the next caller finds the limit and fails the flow
    outcomes = Counter(r["outcome"] for r in run_concurrently(ecliptix_url, insert))
    assert outcomes == {
        "created": 1,
        "max_otp_attempts_reached": 1,
        "flow_not_found_or_invalid": THREADS - 2,
    }
    assert scalar(db, "SELECT otp_count FROM verification_flows") == 5
    assert scalar(db, "SELECT count(*) FROM otp_records") == 5
    assert scalar(db, "SELECT count(*) FROM otp_records WHERE is_active") == 1
    assert scalar(db, "SELECT status FROM verification_flows") == "failed"


def test_one_membership_per_phone_device(db: Conn, ecliptix_url: str) -> None:
    reg = verified_registration(db)
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified"),
    )
    assert Counter(r["outcome"] for r in results) == {
        "created": 1,
        "membership_already_exists": THREADS - 1,
    }
    assert len({r["membership_unique_id"] for r in results}) == 1
    assert scalar(db, "SELECT count(*) FROM memberships") == 1


def test_membership_failure_limit_holds(db: Conn, ecliptix_url: str) -> None:
    reg = verified_registration(db)
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "create_membership", reg["flow"], 7, reg["otp"], "otp_verified"),
    )
    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes == {"verification_flow_not_found": 5, "60": THREADS - 5}
    assert (
        scalar(db, "SELECT count(*) FROM membership_attempts WHERE outcome <> 'rate_limited'") == 5
    )


def test_at_most_5_failed_logins_evaluated_per_window(db: Conn, ecliptix_url: str) -> None:
    number = new_number()
    results = run_concurrently(ecliptix_url, lambda c, i: one(c, "login_membership", number))
    assert Counter(r["outcome"] for r in results) == {
        "phone_number_not_found": 5,
        "5": THREADS - 5,
    }
    assert scalar(db, "SELECT count(*) FROM login_attempts") == 5
    assert scalar(db, "SELECT count(*) FROM login_lockouts") == 1


# --- isolation guard -------------------------------------------------------

LOCKING_CALLS = [
    ("register_app_device_if_not_exists", lambda r: (uuid.uuid4(), uuid.uuid4(), 1)),
    ("ensure_phone_number", lambda r: ("+19995550100", None, None)),
    ("initiate_verification_flow", lambda r: (r["device"], r["phone"], "login", None)),
    ("request_resend_otp", lambda r: (r["flow"],)),
    ("insert_otp_record", lambda r: (r["flow"], "h", "s", "2099-01-01Z")),
    ("update_otp_status", lambda r: (r["otp"], "expired")),
    ("create_membership", lambda r: (r["flow"], 42, r["otp"], "otp_verified")),
    ("login_membership", lambda r: (r["number"],)),
    # v2: these now rely on locks too (recovery flow used up once; budget per number)
    ("update_membership_secure_key", lambda r: (uuid.uuid4(), b"k")),
    ("verify_phone_for_secret_key_recovery", lambda r: (r["number"], None)),
]


@pytest.mark.parametrize(("fn", "args"), LOCKING_CALLS, ids=[c[0] for c in LOCKING_CALLS])
def test_locking_functions_refuse_other_isolation_levels(
    db: Conn, ecliptix_url: str, fn: str, args: Callable[[dict[str, Any]], tuple[object, ...]]
) -> None:
    reg = verified_registration(db)
    with psycopg.connect(ecliptix_url) as conn:
        for level in ("REPEATABLE READ", "SERIALIZABLE"):
            conn.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
            with pytest.raises(psycopg.Error) as info:
                call(conn, fn, *args(reg))
            message = info.value.diag.message_primary or ""
            assert info.value.sqlstate == "25000", message
            assert "READ COMMITTED" in message and fn in message
            conn.rollback()
        # at READ COMMITTED inside an explicit transaction it works
        conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        call(conn, fn, *args(reg))
        conn.rollback()
