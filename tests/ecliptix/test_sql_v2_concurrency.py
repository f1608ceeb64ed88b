"""Version 2 verification budgets under real concurrency: 32 to 64 sessions,
each with its own connection, released together by a barrier, at READ
COMMITTED. Many sessions never get more than one session would."""

from __future__ import annotations

from collections import Counter

from tests.ecliptix.sql_support import (
    THREADS,
    Conn,
    make_device,
    make_phone,
    one,
    run_concurrently,
    scalar,
)
from tests.ecliptix.verification_support import (
    RIGHT,
    WRONG,
    failures,
    fresh_flow_for,
    issue,
    known_device,
    start_flow,
)

REGIONS = [None, "US", "GB", "DE", "FR", "CH"]
COUNTED = {"invalid_code", "otp_retired", "flow_failed"}


def test_64_sessions_guessing_one_otp_get_three_checks(db: Conn, ecliptix_url: str) -> None:
    reg = start_flow(db)
    otp = issue(db, reg["flow"])
    results = run_concurrently(
        ecliptix_url, lambda c, i: one(c, "verify_otp", reg["flow"], WRONG), n=64
    )
    assert Counter(r["outcome"] for r in results) == {
        "invalid_code": 2,
        "otp_retired": 1,
        "no_active_otp": 61,
    }
    assert sorted(r["attempts_left"] for r in results if r["otp_unique_id"] == otp) == [0, 1, 2]
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 3


def test_64_sessions_guessing_one_flow_get_five_checks(db: Conn, ecliptix_url: str) -> None:
    # between rounds the flow gets new OTPs, as one session re-sending would
    reg = start_flow(db)
    outcomes: Counter[str] = Counter()
    while scalar(db, "SELECT status FROM verification_flows") == "pending":
        issue(db, reg["flow"])
        results = run_concurrently(
            ecliptix_url, lambda c, i: one(c, "verify_otp", reg["flow"], WRONG), n=64
        )
        outcomes.update(r["outcome"] for r in results)
    assert sum(outcomes[o] for o in COUNTED) == 5
    assert outcomes["flow_failed"] == 1
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts") == 5


def test_64_sessions_on_one_number_across_regions_get_ten_checks(
    db: Conn, ecliptix_url: str
) -> None:
    number = "+41790000001"
    flows = [fresh_flow_for(db, number, REGIONS[i % len(REGIONS)]) for i in range(12)]
    for flow in flows:
        issue(db, flow)
    results = run_concurrently(
        ecliptix_url, lambda c, i: one(c, "verify_otp", flows[i % len(flows)], WRONG), n=64
    )
    outcomes = Counter(r["outcome"] for r in results)
    assert sum(outcomes[o] for o in COUNTED) == 10, outcomes
    assert set(outcomes) <= COUNTED | {"number_locked", "no_active_otp"}
    assert outcomes["number_locked"] >= 1
    assert failures(db, number) == 10
    assert (
        scalar(
            db,
            "SELECT count(*) FROM event_log WHERE event_type = %s",
            ("number_check_budget_exhausted",),
        )
        == 1
    )


def test_owner_verifies_while_strangers_guess(db: Conn, ecliptix_url: str) -> None:
    number = "+41790000002"
    owner = known_device(db, number)
    phone = make_phone(db, number, "CH", owner)
    mine = one(db, "initiate_verification_flow", owner, phone, "login", 1)["unique_identifier"]
    issue(db, mine)
    flows = [fresh_flow_for(db, number, REGIONS[i % len(REGIONS)]) for i in range(12)]
    for flow in flows:
        issue(db, flow)

    def work(c: Conn, i: int) -> str:
        if i == THREADS // 2:
            return str(one(c, "verify_otp", mine, RIGHT)["outcome"])
        return str(one(c, "verify_otp", flows[i % len(flows)], WRONG)["outcome"])

    results = run_concurrently(ecliptix_url, work)
    assert results[THREADS // 2] == "verified"
    assert failures(db, number) == 10


def test_known_device_budget_holds_under_concurrency(db: Conn, ecliptix_url: str) -> None:
    number = "+41790000003"
    owner = known_device(db, number)
    phone = make_phone(db, number, None, owner)
    flows = []
    for purpose in ("login", "password_recovery", "update_phone", "unspecified"):
        flow = one(db, "initiate_verification_flow", owner, phone, purpose, 1)["unique_identifier"]
        issue(db, flow)
        flows.append(flow)
    results = run_concurrently(
        ecliptix_url, lambda c, i: one(c, "verify_otp", flows[i % 4], WRONG)["outcome"]
    )
    assert sum(1 for r in results if r in COUNTED) == 10
    assert scalar(db, "SELECT count(*) FROM failed_otp_attempts WHERE known_device") == 10


def test_one_right_code_verifies_once(db: Conn, ecliptix_url: str) -> None:
    reg = start_flow(db)
    issue(db, reg["flow"])
    results = run_concurrently(
        ecliptix_url, lambda c, i: one(c, "verify_otp", reg["flow"], RIGHT)["outcome"]
    )
    assert Counter(results) == {"verified": 1, "flow_not_found_or_invalid": THREADS - 1}


def test_never_more_than_30_flows_per_number_across_regions(db: Conn, ecliptix_url: str) -> None:
    number = "+41790000004"
    n = THREADS + 8
    devices = [make_device(db) for _ in range(n)]
    phones = [make_phone(db, number, REGIONS[i % len(REGIONS)], devices[i]) for i in range(n)]
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(c, "initiate_verification_flow", devices[i], phones[i], "login", 1),
        n=n,
    )
    assert Counter(r["outcome"] for r in results) == {
        "created": 30,
        "global_rate_limit_exceeded": n - 30,
    }
    assert scalar(db, "SELECT count(*) FROM verification_flows") == 30


def test_never_more_than_5_flows_per_number_and_device(db: Conn, ecliptix_url: str) -> None:
    number = "+41790000005"
    device = make_device(db)
    phones = [make_phone(db, number, region, device) for region in REGIONS]
    purposes = ["unspecified", "registration", "login", "password_recovery", "update_phone"]
    results = run_concurrently(
        ecliptix_url,
        lambda c, i: one(
            c,
            "initiate_verification_flow",
            device,
            phones[i % len(phones)],
            purposes[(i // len(phones)) % len(purposes)],
            1,
        )["outcome"],
    )
    outcomes = Counter(results)
    assert outcomes["created"] == 5
    assert set(outcomes) <= {"created", "retrieved", "global_rate_limit_exceeded"}
    assert scalar(db, "SELECT count(*) FROM verification_flows") == 5
