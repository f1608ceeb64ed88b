"""Attack one phone number the way the security contract's attacker can, and measure the result.

The attacker talks to the application: it registers as many devices as it
likes (fresh random ids), creates the victim's number under any region,
starts flows, has codes sent (to the victim's phone, which it cannot read)
and submits guesses, and tries every route to the victim's account it knows
of. The owner meanwhile uses the account from their own, known device. The
figures are what docs/SECURITY.md reports:

- guesses per number: checks the database compared against the victim's
  codes (``verify_otp`` outcomes that count), whatever the region or device;
- takeover attempts tried and succeeded: a verified flow handed to another
  device, the secure key replaced, a membership made from an unverified flow;
- the owner's success rate: logins and code checks on the known device.

Everything goes through ``EcliptixClient``, so it runs as the application role.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field

from ecliptix._session import Session
from ecliptix.client import EcliptixClient
from ecliptix.models import (
    CreationStatus,
    FlowInitiation,
    FlowOutcome,
    FlowPurpose,
    LoginOutcome,
    MembershipOutcome,
    VerifyOtpOutcome,
)

# The contract's budget of failed checks per number per 24 h for unknown devices.
GUESS_BUDGET = 10
# Regions the attacker creates the victim's number under (None is "no region").
REGIONS = (None, "US", "GB", "DE", "FR", "IN", "BR", "NG", "JP", "CN", "RU", "ZZ", "XA")
_GUESS_PURPOSES = (FlowPurpose.REGISTRATION, FlowPurpose.LOGIN, FlowPurpose.PASSWORD_RECOVERY)
# How often the owner's session acts (seconds between logins).
_OWNER_PAUSE = 0.05


class AttackSetupError(RuntimeError):
    """Raised when the victim's own account could not be set up before an attack."""


@dataclass
class Target:
    """The attacked number and its owner's account on the owner's (known) device."""

    number: str
    region: str | None
    phone_id: uuid.UUID
    owner_device: uuid.UUID
    membership: uuid.UUID
    secure_key: bytes = field(repr=False)
    key_rotated: bool = False  # a recovery flow replaces the key once: rotate once per target


def random_victim_number() -> str:
    """Return a fictional +1 555 number in E.164 form, unique enough per run."""
    return f"+1555{secrets.randbelow(10**8):08d}"


def _expect(ok: bool, number: str, step: str, outcome: object) -> None:
    if not ok:
        raise AttackSetupError(f"could not set up the owner of {number}: {step} gave {outcome}")


def enrol_owner(client: EcliptixClient, number: str, region: str | None = "US") -> Target:
    """Register number on a new device of its owner: verified, member, secure key set."""
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    phone = client.ensure_phone_number(number, region, device)
    _expect(phone.unique_id is not None, number, "ensure_phone_number", phone.outcome)
    assert phone.unique_id is not None
    connection = secrets.randbelow(2**31)
    flow = client.initiate_verification_flow(
        device, phone.unique_id, FlowPurpose.REGISTRATION, connection
    )
    flow_id = flow.unique_identifier
    _expect(flow_id is not None, number, "initiate_verification_flow", flow.outcome)
    assert flow_id is not None
    issued = client.issue_otp(flow_id)
    _expect(issued.code is not None, number, "issue_otp", issued.outcome)
    assert issued.code is not None and issued.otp_unique_id is not None
    check = client.check_otp(flow_id, issued.code)
    _expect(check.verified, number, "check_otp", check.outcome)
    made = client.create_membership(
        flow_id, connection, issued.otp_unique_id, CreationStatus.OTP_VERIFIED
    )
    _expect(made.membership_unique_id is not None, number, "create_membership", made.outcome)
    assert made.membership_unique_id is not None
    key = secrets.token_bytes(32)
    updated = client.update_membership_secure_key(made.membership_unique_id, key)
    _expect(updated.success, number, "update_membership_secure_key", updated.message)
    return Target(number, region, phone.unique_id, device, made.membership_unique_id, key)


def new_device_registration(client: EcliptixClient, number: str, region: str | None) -> str:
    """Verify number from a brand-new device with the right code; return how far it got.

    "verified" when the code verified the flow, else the refusing outcome."""
    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
    phone = client.ensure_phone_number(number, region, device).unique_id
    if phone is None:
        return "phone_not_found"
    flow = client.initiate_verification_flow(device, phone, FlowPurpose.REGISTRATION, 1)
    if flow.unique_identifier is None or flow.outcome is not FlowOutcome.CREATED:
        return str(flow.outcome)
    issued = client.issue_otp(flow.unique_identifier)
    if issued.code is None:
        return str(issued.outcome)
    return str(client.check_otp(flow.unique_identifier, issued.code).outcome)


def _fresh_flow(
    session: Session, target: Target, purpose: FlowPurpose
) -> tuple[uuid.UUID | None, FlowInitiation | None]:
    """Register a fresh device, create the number under a random region, start a flow."""
    client = session.client
    device = session.call(
        "register_app_device_if_not_exists",
        lambda: client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()),
        lambda r: r.status.name.lower(),
    )
    if device is None:
        return None, None
    region = session.rng.choice(REGIONS)
    phone = session.call(
        "ensure_phone_number",
        lambda: client.ensure_phone_number(target.number, region, device.unique_id),
        lambda r: r.outcome,
    )
    if phone is None or phone.unique_id is None:
        return device.unique_id, None
    phone_id = phone.unique_id
    flow = session.call(
        "initiate_verification_flow",
        lambda: client.initiate_verification_flow(
            device.unique_id, phone_id, purpose, session.rng.randrange(1, 2**31)
        ),
        lambda r: r.outcome,
    )
    return device.unique_id, flow


class AttackerSession(Session):
    """An attacker's session against one target: guesses codes and tries to take over."""

    target: Target
    unverified: tuple[uuid.UUID, int] | None = None  # a registration flow of its own (flow, connection)

    def act(self) -> None:
        """Make one attack move: mostly guessing, sometimes a takeover attempt."""
        move = self.rng.randrange(8)
        if move < 4:
            self.guess()
        elif move == 4:
            self.steal_verified_flow()
        elif move == 5:
            self.replace_secure_key(recovery=False)
        elif move == 6:
            self.replace_secure_key(recovery=True)
        else:
            self.membership_from_unverified_flow()

    def _issue_and_guess(self, flow_id: uuid.UUID, guesses: int) -> bool:
        """Have a code sent to the victim, then guess; return whether a guess verified."""
        issued = self.call("issue_otp", lambda: self.client.issue_otp(flow_id), lambda r: r.outcome)
        if issued is None or issued.code is None:
            return False
        for _ in range(guesses):
            check = self.call(
                "verify_otp",
                lambda: self.client.check_otp(flow_id, f"{self.rng.randrange(10**6):06d}"),
                lambda r: r.outcome,
            )
            if check is None:
                return False
            if check.outcome.compared:
                self.tally.events["guesses"] += 1
            if check.verified:
                self.tally.events["codes_guessed_right"] += 1
                return True
            if check.outcome is not VerifyOtpOutcome.INVALID_CODE:
                return False
        return False

    def guess(self) -> None:
        """Start a flow on the victim's number from a fresh device and guess its code."""
        purpose = self.rng.choice(_GUESS_PURPOSES)
        _, flow = _fresh_flow(self, self.target, purpose)
        if flow is not None and flow.unique_identifier is not None:
            if purpose is FlowPurpose.REGISTRATION:
                self.unverified = (flow.unique_identifier, flow.connect_id or 1)
            self._issue_and_guess(flow.unique_identifier, 3)

    def _takeover(self, kind: str, succeeded: bool) -> None:
        self.tally.events["takeover_tried"] += 1
        self.tally.events[f"takeover_tried:{kind}"] += 1
        if succeeded:
            self.tally.events["takeover_succeeded"] += 1
            self.tally.events[f"takeover_succeeded:{kind}"] += 1

    def steal_verified_flow(self) -> None:
        """Ask for a flow on the owner's phone row: the owner's verified one must not come back."""
        device, flow = _fresh_flow(self, self.target, self.rng.choice(_GUESS_PURPOSES))
        if flow is None or flow.unique_identifier is None:
            return
        foreign = flow.app_device_identifier not in (None, device)
        handed = flow.outcome is FlowOutcome.VERIFIED
        self._takeover("verified_flow_of_another_device", foreign or handed)

    def replace_secure_key(self, *, recovery: bool) -> None:
        """Try to set the owner's secure key, with or without a recovery flow of one's own."""
        device: uuid.UUID | None = None  # an attacker without a flow names no device
        if recovery:
            device, flow = _fresh_flow(self, self.target, FlowPurpose.PASSWORD_RECOVERY)
            if flow is None or flow.unique_identifier is None:
                return
            self._issue_and_guess(flow.unique_identifier, 1)
        key = b"attacker:" + secrets.token_bytes(16)
        updated = self.call(
            "update_membership_secure_key",
            lambda: self.client.update_membership_secure_key(self.target.membership, key, device),
            lambda r: "success" if r.success else r.message,
        )
        kind = "secure_key_after_recovery_guess" if recovery else "secure_key_replaced"
        self._takeover(kind, updated is not None and updated.success)

    def membership_from_unverified_flow(self) -> None:
        """Try to become a member of the victim's number from a flow nobody verified."""
        _, flow = _fresh_flow(self, self.target, FlowPurpose.REGISTRATION)
        if flow is not None and flow.unique_identifier is not None:
            self.unverified = (flow.unique_identifier, flow.connect_id or 1)
        # Refused a new flow (the number's budgets), an attacker reuses one it
        # already holds: its guesses failed, so nobody verified it.
        if self.unverified is None:
            return
        flow_id, connection = self.unverified
        made = self.call(
            "create_membership",
            lambda: self.client.create_membership(
                flow_id, connection, uuid.uuid4(), "otp_verified"
            ),
            lambda r: r.kind,
        )
        self._takeover(
            "membership_from_unverified_flow",
            made is not None and made.kind is MembershipOutcome.CREATED,
        )


class OwnerSession(Session):
    """The owner using the account from the known device while the number is attacked."""

    target: Target
    did_flows = False

    def act(self, stop: threading.Event) -> None:
        """Log in from the known device; once per run also verify a code and rotate the key."""
        if not self.did_flows:
            self.did_flows = True
            if not self.target.key_rotated:
                rotated = self.rotate_secure_key()
                if rotated is not None:
                    self._owner("key_rotation", rotated)
            self._owner("otp_check", self.verify_login_code())
        login = self.call(
            "login_membership",
            lambda: self.client.login_membership(self.target.number, self.target.owner_device),
            lambda r: r.kind,
        )
        ok = (
            login is not None
            and login.kind is LoginOutcome.SUCCESS
            and login.secure_key == self.target.secure_key
        )
        self._owner("login", ok)
        stop.wait(_OWNER_PAUSE)

    def _owner(self, kind: str, succeeded: bool) -> None:
        self.tally.events["owner_tried"] += 1
        self.tally.events[f"owner_tried:{kind}"] += 1
        if succeeded:
            self.tally.events["owner_succeeded"] += 1
            self.tally.events[f"owner_succeeded:{kind}"] += 1

    def _verified_flow(self, purpose: FlowPurpose) -> bool | None:
        """Verify a flow of purpose with the code sent to the owner; None when another
        purpose's verified flow of this device comes back instead (the contract hands a
        device its verified flow, whatever the purpose, for 24 h)."""
        t, client = self.target, self.client
        flow = self.call(
            "initiate_verification_flow",
            lambda: client.initiate_verification_flow(t.owner_device, t.phone_id, purpose, 1),
            lambda r: r.outcome,
        )
        if flow is None or flow.unique_identifier is None:
            return False
        if flow.outcome is FlowOutcome.VERIFIED:
            return True if flow.purpose is purpose else None
        flow_id = flow.unique_identifier
        issued = self.call("issue_otp", lambda: client.issue_otp(flow_id), lambda r: r.outcome)
        if issued is None or issued.code is None:
            return False
        code = issued.code
        check = self.call(
            "verify_otp", lambda: client.check_otp(flow_id, code), lambda r: r.outcome
        )
        return check is not None and check.verified

    def verify_login_code(self) -> bool:
        """Verify a login flow with the code sent to the owner's phone (or hold a verified one)."""
        return self._verified_flow(FlowPurpose.LOGIN) is not False

    def rotate_secure_key(self) -> bool | None:
        """Replace the secure key after verifying a password_recovery flow.

        None when the device still holds a verified flow of another purpose, which
        initiate_verification_flow returns instead of a recovery flow."""
        verified = self._verified_flow(FlowPurpose.PASSWORD_RECOVERY)
        if not verified:
            if verified is None:
                self.tally.events["owner_skipped:key_rotation"] += 1
            return verified
        key = secrets.token_bytes(32)
        updated = self.call(
            "update_membership_secure_key",
            lambda: self.client.update_membership_secure_key(
                self.target.membership, key, self.target.owner_device
            ),
            lambda r: "success" if r.success else r.message,
        )
        if updated is None or not updated.success:
            return False
        self.target.secure_key = key
        self.target.key_rotated = True
        return True
