"""The stress runner: 64 sessions of legitimate and attacker traffic on shared
numbers and devices for ~5 s, after which every invariant holds."""

from __future__ import annotations

import json

import pytest

from ecliptix.stress import StressReport, run_stress

pytestmark = pytest.mark.postgres

HAMMERED = (
    "initiate_verification_flow",
    "insert_otp_record",
    "update_otp_status",
    "create_membership",
    "login_membership",
    "register_app_device_if_not_exists",
    "ensure_phone_number",
    "request_resend_otp",
    "get_full_flow_state",
    "update_verification_flow_status",
    "update_membership_secure_key",
)


def test_stress_64_clients_keeps_every_invariant(ecliptix_url: str) -> None:
    report = run_stress(ecliptix_url, clients=64, duration=5.0)
    assert isinstance(report, StressReport)
    failed = [c for c in report.invariants if not c.holds]
    assert not failed, failed
    assert report.errors == {}, report.errors
    assert report.ok and report.invariants_hold
    assert len(report.invariants) == 10
    # Every check saw data, and the limits were really reached under contention.
    assert all(c.observed > 0 for c in report.invariants), report.invariants
    reached = {c.name: c.observed == c.limit for c in report.invariants}
    assert reached["flows_per_phone_per_rolling_window"]
    assert reached["otp_count_per_flow"]
    assert reached["failed_logins_per_number_per_window"]
    for fn in HAMMERED:
        assert sum(report.calls.get(fn, {}).values()) > 0, fn
    assert report.calls["login_membership"].get("locked_out", 0) > 0
    assert report.calls["create_membership"].get("rate_limited", 0) > 0
    assert report.calls["initiate_verification_flow"].get("global_rate_limit_exceeded", 0) > 0
    assert report.flows_started > 0 and report.flows_completed > 0
    assert report.total_calls > 1000
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["ok"] is True and doc["clients"] == 64


def test_stress_rejects_bad_arguments() -> None:
    for kwargs in ({"clients": 0}, {"duration": 0}, {"schema": ""}):
        with pytest.raises(ValueError):
            run_stress("postgresql://unused", **kwargs)  # type: ignore[arg-type]
