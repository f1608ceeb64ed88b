"""Typed rows of the Ecliptix database functions.

One frozen dataclass per result row, with fields named and ordered exactly as
the function's result columns. Text columns with a fixed set of values arrive
as ``str`` and become the enums of ``ecliptix.outcomes``; secrets (OTP
hashes, salts, keys, codes) are kept out of ``repr`` so that logging a result
never leaks them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from ecliptix._rows import Row, minutes, row_class, row_maker, to_bytes
from ecliptix.outcomes import (
    CreationStatus,
    DeviceRegistrationStatus,
    EnsurePhoneOutcome,
    FlowOutcome,
    FlowPurpose,
    FlowStatus,
    InsertOtpOutcome,
    LoginOutcome,
    MembershipOutcome,
    MembershipStatus,
    OtpStatus,
    RecoveryOutcome,
    ResendOutcome,
    VerifyOtpOutcome,
)

__all__ = [
    "CreationStatus",
    "DeviceRegistration",
    "DeviceRegistrationStatus",
    "EnsurePhoneOutcome",
    "EnsuredPhone",
    "FlowInitiation",
    "FlowOutcome",
    "FlowPurpose",
    "FlowState",
    "FlowStatus",
    "InsertOtpOutcome",
    "InsertedOtp",
    "IssuedOtp",
    "LoginOutcome",
    "LoginResult",
    "MembershipCreation",
    "MembershipOutcome",
    "MembershipStatus",
    "OtpStatus",
    "OtpVerification",
    "PhoneNumber",
    "PurgedRows",
    "RecoveryEligibility",
    "RecoveryOutcome",
    "ResendOutcome",
    "Row",
    "SecureKeyUpdate",
    "StatusUpdate",
    "VerifyOtpOutcome",
    "row_maker",
]


@row_class()
@dataclass(frozen=True)
class PhoneNumber(Row):
    """Row of get_phone_number."""

    phone_number: str
    region: str | None
    unique_id: uuid.UUID


@row_class({"status": DeviceRegistrationStatus})
@dataclass(frozen=True)
class DeviceRegistration(Row):
    """Row of register_app_device_if_not_exists."""

    unique_id: uuid.UUID
    status: DeviceRegistrationStatus


@row_class({"outcome": EnsurePhoneOutcome})
@dataclass(frozen=True)
class EnsuredPhone(Row):
    """Row of ensure_phone_number."""

    unique_id: uuid.UUID | None
    outcome: EnsurePhoneOutcome
    success: bool
    message: str | None


@row_class({"outcome": RecoveryOutcome})
@dataclass(frozen=True)
class RecoveryEligibility(Row):
    """Row of verify_phone_for_secret_key_recovery."""

    success: bool
    message: str | None
    outcome: RecoveryOutcome
    phone_number_id: uuid.UUID | None


@row_class()
@dataclass(frozen=True)
class FlowState(Row):
    """Row of get_full_flow_state: a flow and its active, unexpired OTP if any."""

    unique_identifier: uuid.UUID
    phone_number_identifier: uuid.UUID
    app_device_identifier: uuid.UUID
    connect_id: int | None
    expires_at: dt.datetime
    status: FlowStatus
    purpose: FlowPurpose
    otp_count: int
    otp_unique_identifier: uuid.UUID | None
    otp_flow_unique_id: uuid.UUID | None
    otp_hash: str | None = field(repr=False)
    otp_salt: str | None = field(repr=False)
    otp_expires_at: dt.datetime | None
    otp_status: OtpStatus | None
    otp_is_active: bool | None


@row_class({"outcome": FlowOutcome})
@dataclass(frozen=True)
class FlowInitiation(Row):
    """Row of initiate_verification_flow: the flow's state (NULLs when none) and the outcome."""

    unique_identifier: uuid.UUID | None
    phone_number_identifier: uuid.UUID | None
    app_device_identifier: uuid.UUID | None
    connect_id: int | None
    expires_at: dt.datetime | None
    status: FlowStatus | None
    purpose: FlowPurpose | None
    otp_count: int | None
    otp_unique_identifier: uuid.UUID | None
    otp_flow_unique_id: uuid.UUID | None
    otp_hash: str | None = field(repr=False)
    otp_salt: str | None = field(repr=False)
    otp_expires_at: dt.datetime | None
    otp_status: OtpStatus | None
    otp_is_active: bool | None
    outcome: FlowOutcome


@row_class({"outcome": InsertOtpOutcome})
@dataclass(frozen=True)
class InsertedOtp(Row):
    """Row of insert_otp_record."""

    otp_unique_id: uuid.UUID | None
    outcome: InsertOtpOutcome


@row_class()
@dataclass(frozen=True)
class StatusUpdate(Row):
    """Row of update_otp_status."""

    success: bool
    message: str


@row_class({"status": MembershipStatus})
@dataclass(frozen=True)
class MembershipCreation(Row):
    """Row of create_membership; ``outcome`` is the raw text, minutes when rate limited."""

    membership_unique_id: uuid.UUID | None
    status: MembershipStatus | None
    creation_status: CreationStatus | None
    outcome: str

    @property
    def rate_limited_minutes(self) -> int | None:
        """Return the minutes to wait when creation was rate limited, else None."""
        return minutes(self.outcome)

    @property
    def kind(self) -> MembershipOutcome:
        """Return the outcome as an enum, RATE_LIMITED for a number of minutes."""
        if self.rate_limited_minutes is not None:
            return MembershipOutcome.RATE_LIMITED
        return MembershipOutcome(self.outcome)


@row_class({"status": MembershipStatus})
@dataclass(frozen=True)
class SecureKeyUpdate(Row):
    """Row of update_membership_secure_key."""

    success: bool
    message: str
    membership_unique_id: uuid.UUID | None
    status: MembershipStatus | None
    creation_status: CreationStatus | None


@row_class({"status": MembershipStatus}, {"secure_key": to_bytes})
@dataclass(frozen=True)
class LoginResult(Row):
    """Row of login_membership; ``outcome`` is the raw text, minutes when locked out."""

    membership_unique_id: uuid.UUID | None
    status: MembershipStatus | None
    outcome: str
    secure_key: bytes | None = field(repr=False)

    @property
    def locked_minutes(self) -> int | None:
        """Return the minutes left on the lockout when the number is locked, else None."""
        return minutes(self.outcome)

    @property
    def kind(self) -> LoginOutcome:
        """Return the outcome as an enum, LOCKED_OUT for a number of minutes."""
        if self.locked_minutes is not None:
            return LoginOutcome.LOCKED_OUT
        return LoginOutcome(self.outcome)

    @property
    def succeeded(self) -> bool:
        """Return whether the login succeeded."""
        return self.outcome == LoginOutcome.SUCCESS


@dataclass(frozen=True)
class IssuedOtp:
    """Result of EcliptixClient.issue_otp; ``code`` is the plain code to send, None if refused."""

    code: str | None = field(repr=False)
    otp_unique_id: uuid.UUID | None
    outcome: InsertOtpOutcome

    @property
    def created(self) -> bool:
        """Return whether the OTP was stored."""
        return self.outcome is InsertOtpOutcome.CREATED


@row_class({"outcome": VerifyOtpOutcome, "flow_status": FlowStatus})
@dataclass(frozen=True)
class OtpVerification(Row):
    """Row of verify_otp; ``attempts_left`` is how many more checks the OTP allows."""

    outcome: VerifyOtpOutcome
    otp_unique_id: uuid.UUID | None
    attempts_left: int | None
    flow_status: FlowStatus | None

    @property
    def verified(self) -> bool:
        """Return whether the code verified the flow."""
        return self.outcome is VerifyOtpOutcome.VERIFIED


@row_class()
@dataclass(frozen=True)
class PurgedRows(Row):
    """Row of ecliptix_purge: how many rows one call deleted from one table."""

    table_name: str
    rows_deleted: int
