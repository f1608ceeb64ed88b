"""The stress runner loads and attacks: 64 sessions of legitimate, attacker and targeted
traffic for ~5 s, after which every invariant holds, the attacked number got no more
guesses than its budget, nothing was taken over and the owner never failed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from ecliptix import EcliptixClient, FlowOutcome, FlowPurpose, OtpKeyring
from ecliptix.attack_run import run_attack, set_up_target
from ecliptix.attacks import GUESS_BUDGET
from ecliptix.stress import StressReport, run_stress
from tests.conftest import url_as
from tests.security.conftest import RoleMaker

pytestmark = pytest.mark.postgres

HAMMERED = (
    "initiate_verification_flow",
    "issue_otp",
    "verify_otp",
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
TAKEOVER_ROUTES = (
    "verified_flow_of_another_device",
    "secure_key_replaced",
    "secure_key_after_recovery_guess",
    "membership_from_unverified_flow",
)


def test_stress_64_clients_keeps_every_invariant(ecliptix_url: str) -> None:
    report = run_stress(ecliptix_url, clients=64, duration=5.0)
    assert isinstance(report, StressReport)
    failed = [c for c in report.invariants if not c.holds]
    assert not failed, failed
    assert report.errors == {}, report.errors
    assert report.attack.holds, report.attack
    assert report.ok and report.invariants_hold and report.succeeded
    # Every check saw data, and the limits were really reached under contention.
    assert all(c.observed > 0 for c in report.invariants), report.invariants
    reached = {c.name: c.observed == c.limit for c in report.invariants}
    assert reached["flows_per_number_per_hour"]
    assert reached["failed_checks_per_number_per_day"]
    assert reached["failed_logins_per_number_device_per_window"]
    for fn in HAMMERED:
        assert sum(report.calls.get(fn, {}).values()) > 0, fn
    assert report.calls["login_membership"].get("locked_out", 0) > 0
    assert report.calls["verify_otp"].get("number_locked", 0) > 0
    assert report.calls["initiate_verification_flow"].get("global_rate_limit_exceeded", 0) > 0
    assert report.flows_started > 0 and report.flows_completed > 0
    attack = report.attack
    assert attack.guesses == GUESS_BUDGET, attack  # reached, never exceeded
    assert attack.takeover_tried > 0 and attack.takeover_succeeded == 0
    assert attack.owner_tried > 0 and attack.owner_succeeded == attack.owner_tried
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["ok"] is True and doc["clients"] == 64
    assert doc["attack"]["holds"] is True and doc["attack"]["owner_success_rate"] == 1.0
    text = "\n".join(line for line, _ in report.lines())
    assert f"{GUESS_BUDGET} guesses compared" in text and "0 of " in text


def test_attack_as_the_application_role(
    db: psycopg.Connection[Any], ecliptix_url: str, make_role: RoleMaker
) -> None:
    role = make_role(ecliptix_url)
    db.execute("SELECT * FROM ecliptix_grant_app_role(%s)", [role])
    report = run_attack(url_as(ecliptix_url, role), sessions=32, duration=4.0)
    figures = report.figures
    assert report.errors == {}, report.errors
    assert figures.guesses == GUESS_BUDGET and figures.codes_guessed_right == 0
    assert figures.takeover_succeeded == 0
    for route in TAKEOVER_ROUTES:
        assert figures.detail.get(f"takeover_tried:{route}", 0) > 0, route
    for action in ("login", "otp_check"):
        tried = figures.detail.get(f"owner_tried:{action}", 0)
        assert tried > 0 and figures.detail.get(f"owner_succeeded:{action}") == tried, action
    assert report.succeeded and figures.owner_success_rate == 1.0


def test_only_the_owner_uses_the_owners_recovery_flow(
    db: psycopg.Connection[Any], ecliptix_url: str
) -> None:
    keys = OtpKeyring.generate()
    target = set_up_target(ecliptix_url, schema=None, keyring=keys)
    owner = EcliptixClient(db, otp_keys=keys)
    flow = owner.initiate_verification_flow(
        target.owner_device, target.phone_id, FlowPurpose.PASSWORD_RECOVERY, 1
    )
    assert flow.outcome is FlowOutcome.CREATED and flow.unique_identifier is not None
    issued = owner.issue_otp(flow.unique_identifier)
    assert issued.code is not None
    assert owner.check_otp(flow.unique_identifier, issued.code).verified
    # Before the owner sends the new key, a stranger who knows the membership id tries.
    stranger = EcliptixClient(db)
    for device in (None, uuid.uuid4()):
        attempt = stranger.update_membership_secure_key(target.membership, b"attacker-key", device)
        assert not attempt.success
    changed = owner.update_membership_secure_key(
        target.membership, b"owner-key", target.owner_device
    )
    assert changed.success


def test_stress_rejects_bad_arguments() -> None:
    for kwargs in ({"clients": 1}, {"clients": True}, {"duration": 0}, {"schema": ""}):
        with pytest.raises(ValueError):
            run_stress("postgresql://unused", **kwargs)
    for kwargs in ({"sessions": 0}, {"duration": -1}):
        with pytest.raises(ValueError):
            run_attack("postgresql://unused", **kwargs)  # type: ignore[arg-type]
