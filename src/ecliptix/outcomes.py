"""Statuses and outcome strings of the Ecliptix database functions, as enums.

Each enum's values are the exact strings the functions store or return.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


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
    RATE_LIMITED = "rate_limited"


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
    RESEND_COOLDOWN_ACTIVE = "resend_cooldown_active"


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


class VerifyOtpOutcome(StrEnum):
    """Outcome of verify_otp, in the order the database checks."""

    FLOW_NOT_FOUND_OR_INVALID = "flow_not_found_or_invalid"
    FLOW_EXPIRED = "flow_expired"
    NUMBER_LOCKED = "number_locked"
    NO_ACTIVE_OTP = "no_active_otp"
    VERIFIED = "verified"
    INVALID_CODE = "invalid_code"
    OTP_RETIRED = "otp_retired"
    FLOW_FAILED = "flow_failed"

    @property
    def compared(self) -> bool:
        """Return whether the database compared the digest (the check was counted)."""
        return self in _COMPARED


_COMPARED = frozenset(
    {
        VerifyOtpOutcome.VERIFIED,
        VerifyOtpOutcome.INVALID_CODE,
        VerifyOtpOutcome.OTP_RETIRED,
        VerifyOtpOutcome.FLOW_FAILED,
    }
)
