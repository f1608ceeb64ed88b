"""Builders for the version 2 verification tests (verify_otp and its budgets).

Codes are stored as the application stores them in version 2: a lowercase
hex digest, compared by verify_otp in the database. Time passes by moving
stored timestamps back, never by sleeping.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.ecliptix.sql_support import (
    Conn,
    Row,
    make_device,
    make_phone,
    move_back,
    new_number,
    one,
    scalar,
)

RIGHT = "1f" * 32  # the digest the application stored
WRONG = "2e" * 32  # any other digest


def start_flow(
    db: Conn,
    *,
    number: str | None = None,
    region: str | None = None,
    device: uuid.UUID | None = None,
    purpose: str = "registration",
) -> dict[str, Any]:
    """A device, a phone row (number, region) and a new flow of that device."""
    device = device or make_device(db)
    number = number or new_number()
    phone = make_phone(db, number, region, device)
    row = one(db, "initiate_verification_flow", device, phone, purpose, 42)
    assert row["outcome"] == "created", row
    flow: uuid.UUID = row["unique_identifier"]
    return {"device": device, "phone": phone, "number": number, "flow": flow}


def issue(db: Conn, flow: uuid.UUID, digest: str = RIGHT) -> uuid.UUID:
    """Store a new OTP for the flow, past the resend cooldown of any earlier one."""
    move_back(db, "otp_records", "created_at", "31 s", "flow_unique_id = %s", flow)
    expires = scalar(db, "SELECT expires_at FROM verification_flows WHERE unique_id = %s", (flow,))
    row = one(db, "insert_otp_record", flow, digest, "key-1", expires)
    assert row["outcome"] == "created", row
    otp: uuid.UUID = row["otp_unique_id"]
    return otp


def check(db: Conn, flow: uuid.UUID, digest: str = WRONG) -> Row:
    """verify_otp's one row."""
    return one(db, "verify_otp", flow, digest)


def guess_wrong(db: Conn, flow: uuid.UUID) -> Row:
    """One wrong check, issuing a new OTP first when the flow has no active one."""
    if not scalar(
        db,
        "SELECT count(*) FROM otp_records WHERE flow_unique_id = %s AND is_active",
        (flow,),
    ):
        issue(db, flow)
    return check(db, flow)


def known_device(db: Conn, number: str, region: str | None = None) -> uuid.UUID:
    """A device with a membership on (number, region): a known device of the number."""
    reg = start_flow(db, number=number, region=region)
    otp = issue(db, reg["flow"])
    assert check(db, reg["flow"], RIGHT)["outcome"] == "verified"
    made = one(db, "create_membership", reg["flow"], 42, otp, "otp_verified")
    assert made["outcome"] == "created", made
    # The verified registration flow would otherwise be handed back to this
    # device for any purpose for 24 h (version 1's rule, kept): let it lapse.
    move_back(db, "verification_flows", "expires_at", "25 hours", "unique_id = %s", reg["flow"])
    device: uuid.UUID = reg["device"]
    return device


def failures(db: Conn, number: str) -> int:
    """Failed checks recorded for a number."""
    return int(
        scalar(db, "SELECT count(*) FROM failed_otp_attempts WHERE phone_number = %s", (number,))
    )


def events(db: Conn, event_type: str) -> list[str]:
    """Messages of the event_log rows of one type, oldest first."""
    rows = db.execute(
        "SELECT message FROM event_log WHERE event_type = %s ORDER BY id", (event_type,)
    ).fetchall()
    return [r[0] for r in rows]


def fresh_flow_for(db: Conn, number: str, region: str | None = None) -> uuid.UUID:
    """A new flow for the number from a new device (not a known device)."""
    flow: uuid.UUID = start_flow(db, number=number, region=region)["flow"]
    return flow


__all__ = [
    "RIGHT",
    "WRONG",
    "check",
    "events",
    "failures",
    "fresh_flow_for",
    "guess_wrong",
    "issue",
    "known_device",
    "make_device",
    "start_flow",
]
