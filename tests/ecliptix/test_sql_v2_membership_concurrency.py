"""Version 2 membership budgets under real concurrency: 32 sessions or more,
each with its own connection, released together by a barrier, at READ
COMMITTED. An attacker's sessions never lock the owner out on the owner's
device, and every budget holds exactly."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.ecliptix.sql_support import (
    THREADS,
    Conn,
    make_device,
    make_flow,
    make_otp,
    make_phone,
    new_number,
    one,
    run_concurrently,
    scalar,
)
from tests.ecliptix.test_sql_v2_membership import (
    end_verified_flows,
    events,
    member_with_key,
    verified_recovery,
)

OWNER_LOGINS = 48


def test_attackers_failing_logins_never_lock_the_owners_device(db: Conn, ecliptix_url: str) -> None:
    owner = member_with_key(db)
    number = owner["number"]
    attackers = [make_device(db) for _ in range(THREADS)]

    def work(c: Conn, i: int) -> Any:
        if i == THREADS:  # the owner logs in again and again meanwhile
            return [
                one(c, "login_membership", number, owner["device"]) for _ in range(OWNER_LOGINS)
            ]
        # the application logs each wrong password the attacker's device sends
        for _ in range(6):
            one(c, "log_login_attempt", number, "wrong_password", False, attackers[i])
        return [one(c, "login_membership", number, attackers[i])["outcome"] for _ in range(2)]

    results = run_concurrently(ecliptix_url, work, n=THREADS + 1)
    owner_logins = results[THREADS]
    assert [r["outcome"] for r in owner_logins] == ["success"] * OWNER_LOGINS
    assert {bytes(r["secure_key"]) for r in owner_logins} == {b"owner-key"}
    # every attacker device locked itself, and only itself
    assert results[:THREADS] == [["5", "5"]] * THREADS
    assert scalar(db, "SELECT count(*) FROM login_device_lockouts") == THREADS
    assert (
        scalar(
            db,
            "SELECT count(*) FROM login_device_lockouts WHERE app_device_id = %s",
            (owner["device"],),
        )
        == 0
    )
    assert len(events(db, "login_locked_out")) == THREADS


def test_one_device_gets_at_most_the_limit_of_failures_per_window(
    db: Conn, ecliptix_url: str
) -> None:
    number = new_number()
    device = make_device(db)
    results = run_concurrently(
        ecliptix_url, lambda c, i: one(c, "login_membership", number, device)["outcome"]
    )
    assert Counter(results) == {"phone_number_not_found": 5, "5": THREADS - 5}
    assert (
        scalar(db, "SELECT count(*) FROM login_attempts WHERE app_device_id = %s", (device,)) == 5
    )
    assert scalar(db, "SELECT count(*) FROM login_device_lockouts") == 1
    assert len(events(db, "login_locked_out")) == 1


def test_membership_budget_per_number_and_device_holds(db: Conn, ecliptix_url: str) -> None:
    # the owner's registration is pending verification while 32 attacker
    # sessions (8 devices, 4 sessions each) spam create_membership
    device = make_device(db)
    number = new_number()
    phone = make_phone(db, number, None, device)
    flow = make_flow(db, device, phone, "registration", 42)["unique_identifier"]
    otp = make_otp(db, flow)
    bad = []
    for _ in range(8):
        d = make_device(db)
        f = make_flow(db, d, make_phone(db, number, None, d), "registration", 13)
        bad.append((d, f["unique_identifier"], make_otp(db, f["unique_identifier"])))
    one(db, "update_otp_status", otp, "verified")

    def work(c: Conn, i: int) -> Any:
        if i == THREADS:
            return one(c, "create_membership", flow, 42, otp, "otp_verified", device)["outcome"]
        _, f, o = bad[i % 8]
        return [one(c, "create_membership", f, 13, o, "otp_verified")["outcome"] for _ in range(3)]

    results = run_concurrently(ecliptix_url, work, n=THREADS + 1)
    assert results[THREADS] == "created"
    spam = Counter(o for outcomes in results[:THREADS] for o in outcomes)
    assert spam == {"verification_flow_not_verified": 8 * 5, "60": THREADS * 3 - 8 * 5}
    counted = dict(
        db.execute(
            "SELECT app_device_id, count(*) FROM membership_attempts "
            "WHERE NOT is_success AND outcome <> 'rate_limited' GROUP BY 1"
        ).fetchall()
    )
    assert counted == {d: 5 for d, _, _ in bad}
    assert len(events(db, "membership_creation_budget_exhausted")) == 8


def test_one_recovery_replaces_the_key_once(db: Conn, ecliptix_url: str) -> None:
    owner = member_with_key(db)
    end_verified_flows(db)
    verified_recovery(db, owner["device"], owner["phone"])
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(
            c,
            "update_membership_secure_key",
            owner["membership"],
            f"k{i}".encode(),
            owner["device"],
        ),
    )
    winners = [i for i, r in enumerate(results) if r["success"]]
    assert len(winners) == 1
    assert {r["message"] for r in results if not r["success"]} == {
        "Secure key change requires a verified recovery flow"
    }
    key = scalar(db, "SELECT secure_key FROM memberships")
    assert bytes(key) == f"k{winners[0]}".encode()
    assert len(events(db, "secure_key_replaced")) == 1
    assert len(events(db, "secure_key_change_refused")) == THREADS - 1


def test_recovery_checks_budget_holds(db: Conn, ecliptix_url: str) -> None:
    owner = member_with_key(db)
    regions = [None, "FR", "DE", "US"]
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(
            c, "verify_phone_for_secret_key_recovery", owner["number"], regions[i % 4]
        )["outcome"],
    )
    assert Counter(results)["rate_limited"] == THREADS - 10
    assert scalar(db, "SELECT count(*) FROM recovery_eligibility_checks") == 10
    assert len(events(db, "recovery_eligibility_check")) == THREADS
    assert len(events(db, "recovery_check_budget_exhausted")) == 1


def test_stranger_cannot_take_over_with_a_leaked_flow(db: Conn, ecliptix_url: str) -> None:
    """32 stranger sessions holding the owner's flow id, connection and OTP id
    (and the membership id): no membership is handed out, no key replaced."""
    owner = member_with_key(db)
    strangers = [make_device(db) for _ in range(THREADS)]

    def work(c: Conn, i: int) -> Any:
        made = one(
            c, "create_membership", owner["flow"], 42, owner["otp"], "otp_verified", strangers[i]
        )
        key = one(c, "update_membership_secure_key", owner["membership"], b"stolen", strangers[i])
        return made["membership_unique_id"], key["success"]

    results = run_concurrently(ecliptix_url, work)
    assert results == [(None, False)] * THREADS
    assert bytes(scalar(db, "SELECT secure_key FROM memberships")) == b"owner-key"
    assert scalar(db, "SELECT count(*) FROM memberships") == 1
    login = one(db, "login_membership", owner["number"], owner["device"])
    assert (login["outcome"], login["membership_unique_id"]) == ("success", owner["membership"])
