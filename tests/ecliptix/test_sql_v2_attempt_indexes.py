"""V005: the attempt tables keep one index per lookup, and every lookup uses one.

V005 drops version 1's (number, time) indexes of login_attempts and
membership_attempts; V004's (number, device, time) indexes serve every query
the functions make by number. Checked on a filled database with the plans the
functions really run (auto_explain logs their nested statements to the
client), after enough calls that PL/pgSQL has settled on its cached plans.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from tests.ecliptix.sql_support import (
    Conn,
    make_device,
    make_flow,
    make_phone,
    new_number,
    one,
    verified_registration,
)

DROPPED = (
    "ix_login_attempts_phone_number_attempted_at",
    "ix_membership_attempts_phone_number_id_attempted_at",
)


def fill(db: Conn) -> None:
    """Many numbers, devices and attempts, as a database in service holds them."""
    db.execute(
        "INSERT INTO phone_numbers (phone_number, region) "
        "SELECT '+1555' || lpad(i::text, 7, '0'), 'US' FROM generate_series(1, 2000) i"
    )
    db.execute(
        "INSERT INTO login_attempts (phone_number, outcome, is_success, app_device_id, "
        "attempted_at) SELECT p.phone_number, 'membership_not_found', false, "
        "CASE WHEN g % 3 = 0 THEN NULL ELSE gen_random_uuid() END, "
        "now() - g * interval '1 min' FROM phone_numbers p, generate_series(1, 6) g"
    )
    db.execute(
        "INSERT INTO membership_attempts (phone_number_id, outcome, is_success, app_device_id, "
        "attempted_at) SELECT p.unique_id, 'verification_flow_not_verified', false, "
        "CASE WHEN g % 3 = 0 THEN NULL ELSE gen_random_uuid() END, "
        "now() - g * interval '1 min' FROM phone_numbers p, generate_series(1, 6) g"
    )
    db.execute("ANALYZE")


def plans_of(db: Conn, work: Callable[[], None]) -> list[str]:
    """The plans of every statement work ran, the last round's (cached plans by then)."""
    db.execute("LOAD 'auto_explain'")
    db.execute("SET auto_explain.log_min_duration = 0")
    db.execute("SET auto_explain.log_nested_statements = on")
    db.execute("SET auto_explain.log_level = notice")
    seen: list[str] = []
    db.add_notice_handler(lambda diag: seen.append(diag.message_primary or ""))
    for _ in range(7):  # PL/pgSQL may plan afresh for the first five calls
        seen.clear()
        work()
    db.execute("SET auto_explain.log_min_duration = -1")
    return list(seen)


def test_v005_dropped_the_superseded_indexes(db: Conn) -> None:
    names = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes").fetchall()}
    assert not names & set(DROPPED)
    assert {
        "ix_login_attempts_phone_number_device_attempted_at",
        "ix_membership_attempts_phone_device_attempted_at",
    } <= names


def test_every_attempt_lookup_uses_an_index(db: Conn) -> None:
    fill(db)
    device = make_device(db)
    number = new_number()
    phone = make_phone(db, number, "US", device)
    unverified = make_flow(db, device, phone, "registration", 42)["unique_identifier"]
    owner = verified_registration(db)
    made = one(db, "create_membership", owner["flow"], 42, owner["otp"], "otp_verified")
    one(db, "update_membership_secure_key", made["membership_unique_id"], b"key")

    def work() -> None:
        for args in (
            ("+15550000007",),
            ("+15550000008", uuid.uuid4()),
            (owner["number"],),
            (owner["number"], owner["device"]),
        ):
            one(db, "login_membership", *args)
        one(db, "create_membership", unverified, 42, uuid.uuid4(), "otp_verified")
        reg = verified_registration(db)  # a success resets its (number, device) budget
        assert (
            one(db, "create_membership", reg["flow"], 42, reg["otp"], "otp_verified")["outcome"]
            == "created"
        )

    plans = plans_of(db, work)
    on_attempts = [p for p in plans if re.search(r"\b(login|membership)_attempts\b", p)]
    # both failure counts, the login clear, the membership reset, the inserts
    assert sum("DELETE FROM membership_attempts" in p for p in on_attempts) >= 2, plans
    assert len(on_attempts) >= 10, plans
    for plan in on_attempts:
        assert not re.search(r"Seq Scan on (login|membership)_attempts", plan), plan
