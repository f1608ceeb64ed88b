"""Typed rows and enums for the Ecliptix database functions.

One frozen dataclass per result row, with fields named and ordered exactly as
the function's result columns. Text columns with a fixed set of values arrive
as ``str`` and are turned into enums in ``__post_init__`` (or by
``row_maker``, the client's cheaper path to the same object); secrets (OTP
hashes, salts, keys, codes) are kept out of ``repr`` so that logging a result
never leaks them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum, IntEnum, StrEnum
from typing import Any, ClassVar, TypeVar


class FlowStatus(StrEnum):
    """Status of a verification flow."""

    PENDING = "pending"
    VERIFIED = "verified"
    EXPIRED = "expired"
    FAILED = "failed"


class OtpStatus(StrEnum):
    """Status of a one-time passcode record."""

    PENDING = "pending"
    VERIFIED = "verified"
    EXPIRED = "expired"
    FAILED = "failed"


class FlowPurpose(StrEnum):
    """Purpose of a verification flow."""

    UNSPECIFIED = "unspecified"
    REGISTRATION = "registration"
    LOGIN = "login"
    PASSWORD_RECOVERY = "password_recovery"
    UPDATE_PHONE = "update_phone"


class MembershipStatus(StrEnum):
    """Status of a membership."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class CreationStatus(StrEnum):
    """How far a membership's creation has got."""

    OTP_VERIFIED = "otp_verified"
    SECURE_KEY_SET = "secure_key_set"
    PASSPHRASE_SET = "passphrase_set"


class DeviceRegistrationStatus(IntEnum):
    """Whether register_app_device_if_not_exists found or created the device."""

    EXISTS = 1
    CREATED = 2


class EnsurePhoneOutcome(StrEnum):
    """Outcome of ensure_phone_number."""

    EXISTS = "exists"
    EXISTING_BUT_INVALID_APP_DEVICE = "existing_but_invalid_app_device"
    ASSOCIATED = "associated"
    CREATED = "created"
    CREATED_AND_ASSOCIATED = "created_and_associated"
    CREATED_BUT_INVALID_APP_DEVICE = "created_but_invalid_app_device"


class RecoveryOutcome(StrEnum):
    """Outcome of verify_phone_for_secret_key_recovery."""

    PHONE_NOT_FOUND = "phone_not_found"
    MEMBERSHIP_NOT_FOUND = "membership_not_found"
    NO_SECURE_KEY = "no_secure_key"
    ELIGIBLE_FOR_RECOVERY = "eligible_for_recovery"


class FlowOutcome(StrEnum):
    """Outcome of initiate_verification_flow."""

    PHONE_NOT_FOUND = "phone_not_found"
    APP_DEVICE_NOT_FOUND = "app_device_not_found"
    VERIFIED = "verified"
    GLOBAL_RATE_LIMIT_EXCEEDED = "global_rate_limit_exceeded"
    RETRIEVED = "retrieved"
    CREATED = "created"


class ResendOutcome(StrEnum):
    """Outcome of request_resend_otp."""

    FLOW_NOT_FOUND_OR_INVALID = "flow_not_found_or_invalid"
    FLOW_EXPIRED = "flow_expired"
    MAX_OTP_ATTEMPTS_REACHED = "max_otp_attempts_reached"
    RESEND_COOLDOWN_ACTIVE = "resend_cooldown_active"
    RESEND_ALLOWED = "resend_allowed"


class InsertOtpOutcome(StrEnum):
    """Outcome of insert_otp_record."""

    CREATED = "created"
    FLOW_NOT_FOUND_OR_INVALID = "flow_not_found_or_invalid"
    MAX_OTP_ATTEMPTS_REACHED = "max_otp_attempts_reached"


class MembershipOutcome(StrEnum):
    """Kind of outcome of create_membership; RATE_LIMITED stands for a number of minutes."""

    RATE_LIMITED = "rate_limited"
    VERIFICATION_FLOW_NOT_FOUND = "verification_flow_not_found"
    VERIFICATION_FLOW_NOT_VERIFIED = "verification_flow_not_verified"
    MEMBERSHIP_ALREADY_EXISTS = "membership_already_exists"
    CREATED = "created"


class LoginOutcome(StrEnum):
    """Kind of outcome of login_membership; LOCKED_OUT stands for a number of minutes."""

    PHONE_NUMBER_CANNOT_BE_EMPTY = "phone_number_cannot_be_empty"
    LOCKED_OUT = "locked_out"
    PHONE_NUMBER_NOT_FOUND = "phone_number_not_found"
    MEMBERSHIP_NOT_FOUND = "membership_not_found"
    SECURE_KEY_NOT_SET = "secure_key_not_set"
    INACTIVE_MEMBERSHIP = "inactive_membership"
    SUCCESS = "success"


class OtpCheckOutcome(StrEnum):
    """Outcome of EcliptixClient.check_otp."""

    VERIFIED = "verified"
    INVALID_CODE = "invalid_code"
    NO_ACTIVE_OTP = "no_active_otp"
    FLOW_NOT_FOUND = "flow_not_found"
    FLOW_NOT_PENDING = "flow_not_pending"
    REJECTED = "rejected"


# Which enum each text column holds, by column name; other columns pass through.
_ENUM_COLUMNS: dict[str, type[Enum]] = {
    "status": FlowStatus,
    "purpose": FlowPurpose,
    "otp_status": OtpStatus,
    "creation_status": CreationStatus,
}

Convert = Callable[[Any], Any]
R = TypeVar("R", bound="_Row")


def _to_enum(enum: type[Enum]) -> Convert:
    """Return value -> member of enum, as enum(value) but without Enum.__call__'s overhead."""
    members: dict[Any, Enum] = dict(enum._value2member_map_)

    def convert(value: Any) -> Enum:
        try:
            return members[value]
        except (KeyError, TypeError):
            return enum(value)  # unknown value: Enum's own ValueError

    return convert


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value  # bytea may be a buffer


class _Row:
    """Base of the row classes: conversions worked out once per class, not per row."""

    _COLUMNS: ClassVar[tuple[str, ...]] = ()
    # (column, conversion) applied to non-NULL values.
    _CONVERSIONS: ClassVar[tuple[tuple[str, Convert], ...]] = ()

    def __post_init__(self) -> None:
        for name, convert in self._CONVERSIONS:
            value = getattr(self, name)
            if value is not None:
                # Frozen dataclass: this is construction time, the only moment we may set.
                object.__setattr__(self, name, convert(value))


def _row(
    enums: dict[str, type[Enum]] | None = None, extra: dict[str, Convert] | None = None
) -> Callable[[type[R]], type[R]]:
    """Record the class's columns and conversions (enums by column name, plus extra)."""

    def decorate(cls: type[R]) -> type[R]:
        columns = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        mapping = {**_ENUM_COLUMNS, **(enums or {})}
        conversions = [(c, _to_enum(mapping[c])) for c in columns if c in mapping]
        conversions += [(c, fn) for c, fn in (extra or {}).items()]
        cls._COLUMNS = columns
        cls._CONVERSIONS = tuple(conversions)
        return cls

    return decorate


def row_maker(cls: type[R]) -> Callable[[Sequence[Any]], R]:
    """Return row -> cls(*row), equal to it, but without the per-field setattr of __init__.

    The row must hold the columns in field order (the client checks the names
    once); a row of the wrong length raises TypeError, as cls(*row) would.
    """
    columns, conversions, n = cls._COLUMNS, cls._CONVERSIONS, len(cls._COLUMNS)
    new = object.__new__

    def make(row: Sequence[Any]) -> R:
        if len(row) != n:
            raise TypeError(f"{cls.__name__} takes {n} columns, got {len(row)}")
        obj = new(cls)
        values = obj.__dict__
        values.update(zip(columns, row, strict=True))
        for name, convert in conversions:
            value = values[name]
            if value is not None:
                values[name] = convert(value)
        return obj

    return make


def _minutes(outcome: str) -> int | None:
    """Return the outcome as a number of minutes when it is one."""
    return int(outcome) if outcome.isdecimal() else None


@_row()
@dataclass(frozen=True)
class PhoneNumber(_Row):
    """Row of get_phone_number."""

    phone_number: str
    region: str | None
    unique_id: uuid.UUID


@_row({"status": DeviceRegistrationStatus})
@dataclass(frozen=True)
class DeviceRegistration(_Row):
    """Row of register_app_device_if_not_exists."""

    unique_id: uuid.UUID
    status: DeviceRegistrationStatus


@_row({"outcome": EnsurePhoneOutcome})
@dataclass(frozen=True)
class EnsuredPhone(_Row):
    """Row of ensure_phone_number."""

    unique_id: uuid.UUID | None
    outcome: EnsurePhoneOutcome
    success: bool
    message: str | None


@_row({"outcome": RecoveryOutcome})
@dataclass(frozen=True)
class RecoveryEligibility(_Row):
    """Row of verify_phone_for_secret_key_recovery."""

    success: bool
    message: str | None
    outcome: RecoveryOutcome
    phone_number_id: uuid.UUID | None


@_row()
@dataclass(frozen=True)
class FlowState(_Row):
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


@_row({"outcome": FlowOutcome})
@dataclass(frozen=True)
class FlowInitiation(_Row):
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


@_row({"outcome": InsertOtpOutcome})
@dataclass(frozen=True)
class InsertedOtp(_Row):
    """Row of insert_otp_record."""

    otp_unique_id: uuid.UUID | None
    outcome: InsertOtpOutcome


@_row()
@dataclass(frozen=True)
class StatusUpdate(_Row):
    """Row of update_otp_status."""

    success: bool
    message: str


@_row({"status": MembershipStatus})
@dataclass(frozen=True)
class MembershipCreation(_Row):
    """Row of create_membership; ``outcome`` is the raw text, minutes when rate limited."""

    membership_unique_id: uuid.UUID | None
    status: MembershipStatus | None
    creation_status: CreationStatus | None
    outcome: str

    @property
    def rate_limited_minutes(self) -> int | None:
        """Return the minutes to wait when creation was rate limited, else None."""
        return _minutes(self.outcome)

    @property
    def kind(self) -> MembershipOutcome:
        """Return the outcome as an enum, RATE_LIMITED for a number of minutes."""
        if self.rate_limited_minutes is not None:
            return MembershipOutcome.RATE_LIMITED
        return MembershipOutcome(self.outcome)


@_row({"status": MembershipStatus})
@dataclass(frozen=True)
class SecureKeyUpdate(_Row):
    """Row of update_membership_secure_key."""

    success: bool
    message: str
    membership_unique_id: uuid.UUID | None
    status: MembershipStatus | None
    creation_status: CreationStatus | None


@_row({"status": MembershipStatus}, {"secure_key": _bytes})
@dataclass(frozen=True)
class LoginResult(_Row):
    """Row of login_membership; ``outcome`` is the raw text, minutes when locked out."""

    membership_unique_id: uuid.UUID | None
    status: MembershipStatus | None
    outcome: str
    secure_key: bytes | None = field(repr=False)

    @property
    def locked_minutes(self) -> int | None:
        """Return the minutes left on the lockout when the number is locked, else None."""
        return _minutes(self.outcome)

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


@dataclass(frozen=True)
class OtpCheck:
    """Result of EcliptixClient.check_otp."""

    outcome: OtpCheckOutcome
    otp_unique_id: uuid.UUID | None
    message: str

    @property
    def verified(self) -> bool:
        """Return whether the submitted code verified the flow."""
        return self.outcome is OtpCheckOutcome.VERIFIED
