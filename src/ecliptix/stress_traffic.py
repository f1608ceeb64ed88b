"""The load of a stress run: legitimate registrations and untargeted attacker traffic.

Everybody works on one small shared set of phone numbers, and the attackers
on a small shared set of device ids, so the row and advisory locks the
functions rely on are really contended:

- legitimate: a device of the user's own (a random id, as the contract's
  attacker cannot guess it), the phone, a registration flow, a code issued
  and checked with ``verify_otp``, the membership, a secure key, a login from
  that device (a *completed flow*); half on the contested numbers, half on a
  number of the user's own;
- attackers: start flows over and over (any purpose, shared devices), have
  codes sent on them, submit wrong codes (through ``verify_otp``, and as a
  version 1 application would, ``update_otp_status(failed)``), ask for
  resends, create memberships with wrong connections or unverified flows, and
  log in with numbers that have no membership.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from ecliptix._session import Session
from ecliptix.models import CreationStatus, FlowOutcome, FlowPurpose, LoginOutcome, OtpStatus

SHARED_PHONES = 8
VICTIMS = 2  # of the shared numbers, the ones membership spam is aimed at
SHARED_DEVICES = 8
FAILING_NUMBERS = 6
REGION = "ZZ"  # user-assigned ISO code: never a real customer's region


@dataclass(frozen=True)
class World:
    """The numbers and device ids a run's sessions share."""

    phones: tuple[str, ...]
    devices: tuple[uuid.UUID, ...]  # device_id values (not unique ids)
    failing: tuple[str, ...]


def new_world() -> World:
    """Return fresh shared numbers (fictional +1 555, E.164) and device ids for a run."""
    base = secrets.randbelow(10**5)
    phones = tuple(f"+1555{(base + i) % 10**5:05d}{i:02d}" for i in range(SHARED_PHONES))
    failing = tuple(f"+1555{(base + i) % 10**5:05d}9{i}" for i in range(FAILING_NUMBERS))
    devices = tuple(uuid.uuid4() for _ in range(SHARED_DEVICES))
    return World(phones, devices, failing)


class LoadSession(Session):
    """A session of the load: legitimate users or untargeted attackers."""

    world: World
    legit = False  # a legitimate user, not an untargeted attacker
    started = 0
    completed = 0

    def device(self, device_id: uuid.UUID | None = None) -> uuid.UUID | None:
        """Register a device (a shared id when none is given); return its unique id."""
        chosen = device_id or self.rng.choice(self.world.devices)
        reg = self.call(
            "register_app_device_if_not_exists",
            lambda: self.client.register_app_device_if_not_exists(uuid.uuid4(), chosen),
            lambda r: r.status.name.lower(),
        )
        return reg.unique_id if reg else None

    def phone(self, number: str, device: uuid.UUID | None) -> uuid.UUID | None:
        """Find or create the number, linking the device when given."""
        ensured = self.call(
            "ensure_phone_number",
            lambda: self.client.ensure_phone_number(number, REGION, device),
            lambda r: r.outcome,
        )
        return ensured.unique_id if ensured else None

    def flow(self, device: uuid.UUID, phone: uuid.UUID, purpose: FlowPurpose) -> Any:
        """Start (or resume) a flow."""
        connection = self.rng.randrange(1, 2**31)
        return self.call(
            "initiate_verification_flow",
            lambda: self.client.initiate_verification_flow(device, phone, purpose, connection),
            lambda r: r.outcome,
        )

    def legitimate(self) -> None:
        """Register a number from a device of one's own, verify it, join and log in."""
        if self.rng.randrange(2):
            number = self.rng.choice(self.world.phones[VICTIMS:])
        else:
            number = f"+1556{self.rng.randrange(10**9):09d}"
        device = self.device(uuid.uuid4())
        phone = self.phone(number, device) if device else None
        if device is None or phone is None:
            return
        self.started += 1
        flow = self.flow(device, phone, FlowPurpose.REGISTRATION)
        if flow is None or flow.unique_identifier is None:
            return
        if flow.outcome is not FlowOutcome.CREATED:
            return
        otp = self.verify(flow.unique_identifier)
        if otp is not None and self.join(flow, otp, number, device):
            self.completed += 1

    def verify(self, flow_id: uuid.UUID) -> uuid.UUID | None:
        """Issue a code and check it; return the OTP's id when it verified the flow."""
        issued = self.call("issue_otp", lambda: self.client.issue_otp(flow_id), lambda r: r.outcome)
        if issued is None or issued.code is None:
            return None
        code = issued.code
        check = self.call(
            "verify_otp", lambda: self.client.check_otp(flow_id, code), lambda r: r.outcome
        )
        if check is None or not check.verified:
            return None
        # What a version 1 application does next; on version 2 it only extends the flow.
        self.call(
            "update_verification_flow_status",
            lambda: self.client.update_verification_flow_status(flow_id, "verified"),
            lambda r: f"{r}_row" if r == 1 else f"{r}_rows",
        )
        return check.otp_unique_id

    def join(self, flow: Any, otp: uuid.UUID, number: str, device: uuid.UUID) -> bool:
        """Create the membership, set a key and log in from the device; return whether it did."""
        made = self.call(
            "create_membership",
            lambda: self.client.create_membership(
                flow.unique_identifier, flow.connect_id, otp, CreationStatus.OTP_VERIFIED
            ),
            lambda r: r.kind,
        )
        if made is None or made.membership_unique_id is None:
            return False
        member = made.membership_unique_id
        updated = self.call(
            "update_membership_secure_key",
            lambda: self.client.update_membership_secure_key(member, secrets.token_bytes(32)),
            lambda r: "success" if r.success else r.message,
        )
        if updated is None or not updated.success:
            return False
        login = self.call(
            "login_membership",
            lambda: self.client.login_membership(number, device),
            lambda r: r.kind,
        )
        return login is not None and login.kind is LoginOutcome.SUCCESS

    def attack(self) -> None:
        """Make one untargeted attacker move."""
        move = self.rng.randrange(7)
        if move < 2:  # log in with numbers that have no membership, or contested ones
            pool = self.world.failing if move == 0 else self.world.phones
            number = self.rng.choice(pool)
            device = self.device() if self.rng.randrange(2) else None
            self.call(
                "login_membership",
                lambda: self.client.login_membership(number, device),
                lambda r: r.kind,
            )
            return
        device = self.device()
        # Membership spam goes to the victim numbers; every other move to any contested number.
        pool = self.world.phones[:VICTIMS] if move >= 5 else self.world.phones
        phone = self.phone(self.rng.choice(pool), None) if device else None
        if device is None or phone is None:
            return
        flow = self.flow(device, phone, self.rng.choice(list(FlowPurpose)))
        if flow is not None and flow.unique_identifier is not None:
            self.on_flow(move, flow.unique_identifier)

    def on_flow(self, move: int, flow_id: uuid.UUID) -> None:
        """Do attacker move number move on a flow of a shared device."""
        client = self.client
        if move == 2:  # have codes sent over and over (the cooldown refuses most)
            for _ in range(self.rng.randrange(1, 4)):
                self.call("issue_otp", lambda: client.issue_otp(flow_id), lambda r: r.outcome)
        elif move == 3:
            self.wrong_code(flow_id)
        elif move == 4:
            self.call("request_resend_otp", lambda: client.request_resend_otp(flow_id), str)
        else:  # a membership from someone else's connection, or from an unverified flow
            connection = self.rng.randrange(1, 2**31)
            self.call(
                "create_membership",
                lambda: client.create_membership(
                    flow_id, connection, uuid.uuid4(), CreationStatus.OTP_VERIFIED
                ),
                lambda r: r.kind,
            )

    def wrong_code(self, flow_id: uuid.UUID) -> None:
        """Submit a wrong code: through verify_otp, or marked failed as version 1 apps do."""
        if self.rng.randrange(2):
            self.call(
                "verify_otp",
                lambda: self.client.check_otp(flow_id, f"{self.rng.randrange(10**6):06d}"),
                lambda r: r.outcome,
            )
            return
        state = self.call(
            "get_full_flow_state",
            lambda: self.client.get_full_flow_state(flow_id),
            lambda r: "found" if r is not None else "not_found",
        )
        otp = state.otp_unique_identifier if state is not None else None
        if otp is None:  # no active code yet: have one sent first
            issued = self.call(
                "issue_otp", lambda: self.client.issue_otp(flow_id), lambda r: r.outcome
            )
            otp = issued.otp_unique_id if issued is not None else None
        if otp is not None:
            failed = otp
            self.call(
                "update_otp_status",
                lambda: self.client.update_otp_status(failed, OtpStatus.FAILED),
                lambda r: "success" if r.success else r.message,
            )

    def expire(self) -> None:
        """Expire the OTPs of a shared flow (cleanup traffic)."""
        device = self.device()
        phone = self.phone(self.rng.choice(self.world.phones), None)
        if device is None or phone is None:
            return
        flow = self.flow(device, phone, FlowPurpose.LOGIN)
        if flow is not None and flow.unique_identifier is not None:
            flow_id: uuid.UUID = flow.unique_identifier
            self.call(
                "expire_associated_otp",
                lambda: self.client.expire_associated_otp(flow_id),
                lambda r: "expired" if r else "none",
            )
