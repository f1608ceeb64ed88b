"""Walk a full registration and login against a deployed Ecliptix database.

The report is meant to be shown to people: it carries ids and outcomes, never
the OTP code, its digest, the OTP key, or the secure key.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from ecliptix import _validate
from ecliptix.client import EcliptixClient
from ecliptix.models import (
    CreationStatus,
    DeviceRegistrationStatus,
    EnsurePhoneOutcome,
    FlowOutcome,
    FlowPurpose,
    LoginOutcome,
    MembershipOutcome,
)
from ecliptix.otp import OtpKeyring, resolve_keyring

DEMO_REGION = "US"
SECURE_KEY_BYTES = 32


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: what was called, its outcome, and safe details."""

    name: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class DemoReport:
    """Steps the demo took, in order, and whether it ended with a successful login."""

    phone_number: str
    region: str | None
    steps: tuple[DemoStep, ...]
    succeeded: bool
    membership_unique_id: uuid.UUID | None

    def to_json(self) -> dict[str, Any]:
        """Return the report as the JSON document `persistor demo --json` prints."""
        return {
            "phone_number": self.phone_number,
            "succeeded": self.succeeded,
            "steps": [
                {"name": s.name, "outcome": s.outcome, "detail": s.detail} for s in self.steps
            ],
        }

    def lines(self) -> list[tuple[str, str | None]]:
        """Return the report as lines of text, each with a rich style or None."""
        lines: list[tuple[str, str | None]] = [
            (f"{n:>2}. {s.name:<34} {s.outcome:<28} {s.detail}", None)
            for n, s in enumerate(self.steps, start=1)
        ]
        if self.succeeded:
            lines.append(("Login succeeded.", "green"))
        else:
            lines.append(("The demo stopped before a successful login.", "bold red"))
        return lines


def random_phone_number() -> str:
    """Return a random, fictional +1 555 number, so repeated runs never collide."""
    # Area code 555 is not assigned to subscribers; 10 million numbers keep
    # repeated demos on one database from meeting an earlier run's phone.
    return f"+1555{secrets.randbelow(10**7):07d}"


class _Stop(Exception):
    """A step had an unexpected outcome; the demo ends there."""


class _Run:
    """Collect steps, stopping at the first unexpected outcome."""

    def __init__(self) -> None:
        self.steps: list[DemoStep] = []

    def expect(self, ok: bool, name: str, outcome: object, detail: str) -> None:
        self.steps.append(DemoStep(name=name, outcome=str(outcome), detail=detail))
        if not ok:
            raise _Stop(name)


@dataclass(frozen=True)
class _Verified:
    device_id: uuid.UUID
    flow_id: uuid.UUID
    otp_id: uuid.UUID
    connection_id: int


def run_demo(
    conn: psycopg.Connection[Any],
    *,
    phone_number: str | None = None,
    region: str | None = DEMO_REGION,
    schema: str | None = None,
    otp_keys: OtpKeyring | None = None,
) -> DemoReport:
    """Register a device, verify a phone by OTP, create a membership and log in.

    Codes are digested under otp_keys, else ECLIPTIX_OTP_KEYS, else a fresh
    random key of the demo's own (the demo checks only the codes it issues)."""
    phone = phone_number if phone_number is not None else random_phone_number()
    # Check up front so that a bad number fails before the demo registers anything.
    _validate.phone_number("phone_number", phone)
    _validate.region("region", region)
    keyring = resolve_keyring(otp_keys) or OtpKeyring.generate()
    client = EcliptixClient(conn, schema=schema, otp_keys=keyring)
    run = _Run()
    membership_id: uuid.UUID | None = None
    try:
        verified = _verify_phone(client, run, phone, region)
        membership_id = _join_and_log_in(client, run, phone, verified)
    except _Stop:
        membership_id = None
    return DemoReport(
        phone_number=phone,
        region=region,
        steps=tuple(run.steps),
        succeeded=membership_id is not None,
        membership_unique_id=membership_id,
    )


def _verify_phone(client: EcliptixClient, run: _Run, phone: str, region: str | None) -> _Verified:
    """Register a device and phone, then verify the phone with an OTP."""
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
    run.expect(
        device.status is DeviceRegistrationStatus.CREATED,
        "register device",
        device.status.name.lower(),
        f"device {device.unique_id}",
    )
    ensured = client.ensure_phone_number(phone, region, device.unique_id)
    phone_id = ensured.unique_id
    run.expect(
        ensured.outcome is EnsurePhoneOutcome.CREATED_AND_ASSOCIATED and phone_id is not None,
        "ensure phone number",
        ensured.outcome,
        f"{phone} ({region or 'no region'}): phone {phone_id}",
    )
    assert phone_id is not None  # checked by expect
    connection_id = secrets.randbelow(2**31)
    flow = client.initiate_verification_flow(
        device.unique_id, phone_id, FlowPurpose.REGISTRATION, connection_id
    )
    flow_id = flow.unique_identifier
    run.expect(
        flow.outcome is FlowOutcome.CREATED and flow_id is not None,
        "initiate registration flow",
        flow.outcome,
        f"flow {flow_id}, connection {connection_id}, expires {flow.expires_at}",
    )
    assert flow_id is not None
    otp_id = _verify_code(client, run, flow_id)
    return _Verified(device.unique_id, flow_id, otp_id, connection_id)


def _verify_code(client: EcliptixClient, run: _Run, flow_id: uuid.UUID) -> uuid.UUID:
    """Issue an OTP for the flow and verify it with verify_otp (the flow becomes verified)."""
    issued = client.issue_otp(flow_id)
    otp_id = issued.otp_unique_id
    run.expect(
        issued.code is not None and otp_id is not None,
        "issue OTP",
        issued.outcome,
        f"otp {otp_id}; code goes to the phone, not to this report",
    )
    assert issued.code is not None and otp_id is not None
    check = client.check_otp(flow_id, issued.code)
    run.expect(
        check.verified and check.otp_unique_id == otp_id,
        "verify OTP",
        check.outcome,
        f"otp {check.otp_unique_id}: flow {check.flow_status}, valid for 24 h",
    )
    return otp_id


def _join_and_log_in(
    client: EcliptixClient, run: _Run, phone: str, verified: _Verified
) -> uuid.UUID:
    """Create the membership, give it a random secure key and log in from its device."""
    made = client.create_membership(
        verified.flow_id, verified.connection_id, verified.otp_id, CreationStatus.OTP_VERIFIED
    )
    member_id = made.membership_unique_id
    run.expect(
        made.kind is MembershipOutcome.CREATED and member_id is not None,
        "create membership",
        made.outcome,
        f"membership {member_id}: {made.status}, {made.creation_status}",
    )
    assert member_id is not None

    key = secrets.token_bytes(SECURE_KEY_BYTES)
    updated = client.update_membership_secure_key(member_id, key)
    run.expect(
        updated.success,
        "set secure key",
        "success" if updated.success else "failure",
        f"{updated.message}: {len(key)} random bytes, {updated.creation_status}",
    )

    login = client.login_membership(phone, verified.device_id)
    key_matches = login.secure_key is not None and secrets.compare_digest(login.secure_key, key)
    run.expect(
        login.kind is LoginOutcome.SUCCESS
        and key_matches
        and login.membership_unique_id == member_id,
        "log in",
        login.outcome,
        f"membership {login.membership_unique_id}, {login.status}, "
        f"secure key {'matches' if key_matches else 'does not match'} the one set",
    )
    return member_id
