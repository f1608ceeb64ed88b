"""run_demo walks registration and login, and its report carries no secret."""

from __future__ import annotations

import base64
import re
from dataclasses import FrozenInstanceError
from typing import Any

import psycopg
import pytest

from ecliptix import DemoReport, random_phone_number, run_demo
from ecliptix.otp import ENV_VAR

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]

STEPS = [
    "register device",
    "ensure phone number",
    "initiate registration flow",
    "issue OTP",
    "verify OTP",
    "create membership",
    "set secure key",
    "log in",
]


def report_text(report: DemoReport) -> str:
    return "\n".join(f"{s.name}\t{s.outcome}\t{s.detail}" for s in report.steps) + repr(report)


def test_demo_ends_with_a_successful_login(db: Conn) -> None:
    report = run_demo(db)
    assert report.succeeded, report_text(report)
    assert [s.name for s in report.steps] == STEPS
    assert report.steps[-1].outcome == "success"
    assert report.membership_unique_id is not None
    with pytest.raises(FrozenInstanceError):
        report.succeeded = False  # type: ignore[misc]


def test_demo_report_contains_no_secret(db: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    key = b"demo-key-" + bytes(range(40))
    monkeypatch.setenv(ENV_VAR, "demo-k:" + base64.b64encode(key).decode())
    report = run_demo(db, phone_number="+15550301", region=None)
    assert report.succeeded and report.region is None
    text = report_text(report)
    row = db.execute(
        "SELECT o.otp_hash, o.otp_salt, m.secure_key FROM memberships m"
        " JOIN otp_records o ON o.flow_unique_id = m.verification_flow_id"
        " WHERE m.unique_id = %s",
        [report.membership_unique_id],
    ).fetchone()
    assert row is not None
    otp_hash, otp_salt, secure_key = row
    assert otp_salt == "demo-k"  # the key from the environment was used
    assert otp_hash not in text and "demo-k" not in text
    for form in (key.hex(), base64.b64encode(key).decode(), repr(key)):
        assert form not in text
    key = bytes(secure_key)
    assert key.hex() not in text and key.hex().upper() not in text and repr(key) not in text
    # No 6-digit run in the text, apart from inside ids, times and the phone number,
    # so the OTP code cannot be there either.
    scrubbed = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\+15550301|\d{4}-\d\d-\d\d [\d:.+]+", "", text)
    scrubbed = re.sub(r"connection \d+", "", scrubbed)
    assert not re.search(r"\d{6}", scrubbed), scrubbed


def test_demo_runs_repeatedly_on_one_database(db: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)  # each run makes a key of its own
    reports = [run_demo(db) for _ in range(3)]
    assert all(r.succeeded for r in reports)
    assert len({r.phone_number for r in reports}) == 3


def test_demo_stops_at_the_first_unexpected_outcome(db: Conn) -> None:
    first = run_demo(db, phone_number="+15550302")
    again = run_demo(db, phone_number="+15550302")  # the phone already exists now
    assert first.succeeded and not again.succeeded
    assert [s.name for s in again.steps] == STEPS[:2]
    assert again.steps[-1].outcome == "associated"
    assert again.membership_unique_id is None


def test_random_phone_numbers_fit_the_table() -> None:
    numbers = {random_phone_number() for _ in range(100)}
    assert len(numbers) == 100
    assert all(len(n) <= 18 and re.fullmatch(r"\+1555\d{7}", n) for n in numbers)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"phone_number": "+1" + "5" * 17}, "phone_number"), ({"region": "usa"}, "region")],
)
def test_demo_rejects_bad_input_before_registering_anything(
    db: Conn, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_demo(db, **kwargs)
    assert db.execute("SELECT count(*) FROM app_devices").fetchone() == (0,)
