"""Typed Python API over the Ecliptix memberships database functions."""

from __future__ import annotations

from types import ModuleType as _ModuleType

from ecliptix.client import DEFAULT_OTP_LIFETIME as DEFAULT_OTP_LIFETIME
from ecliptix.client import EcliptixClient as EcliptixClient
from ecliptix.client import EcliptixContractError as EcliptixContractError
from ecliptix.demo import DemoReport as DemoReport
from ecliptix.demo import DemoStep as DemoStep
from ecliptix.demo import random_phone_number as random_phone_number
from ecliptix.demo import run_demo as run_demo
from ecliptix.models import CreationStatus as CreationStatus
from ecliptix.models import DeviceRegistration as DeviceRegistration
from ecliptix.models import DeviceRegistrationStatus as DeviceRegistrationStatus
from ecliptix.models import EnsuredPhone as EnsuredPhone
from ecliptix.models import EnsurePhoneOutcome as EnsurePhoneOutcome
from ecliptix.models import FlowInitiation as FlowInitiation
from ecliptix.models import FlowOutcome as FlowOutcome
from ecliptix.models import FlowPurpose as FlowPurpose
from ecliptix.models import FlowState as FlowState
from ecliptix.models import FlowStatus as FlowStatus
from ecliptix.models import InsertedOtp as InsertedOtp
from ecliptix.models import InsertOtpOutcome as InsertOtpOutcome
from ecliptix.models import IssuedOtp as IssuedOtp
from ecliptix.models import LoginOutcome as LoginOutcome
from ecliptix.models import LoginResult as LoginResult
from ecliptix.models import MembershipCreation as MembershipCreation
from ecliptix.models import MembershipOutcome as MembershipOutcome
from ecliptix.models import MembershipStatus as MembershipStatus
from ecliptix.models import OtpStatus as OtpStatus
from ecliptix.models import OtpVerification as OtpVerification
from ecliptix.models import PhoneNumber as PhoneNumber
from ecliptix.models import PurgedRows as PurgedRows
from ecliptix.models import RecoveryEligibility as RecoveryEligibility
from ecliptix.models import RecoveryOutcome as RecoveryOutcome
from ecliptix.models import ResendOutcome as ResendOutcome
from ecliptix.models import SecureKeyUpdate as SecureKeyUpdate
from ecliptix.models import StatusUpdate as StatusUpdate
from ecliptix.models import VerifyOtpOutcome as VerifyOtpOutcome
from ecliptix.otp import OtpKeyError as OtpKeyError
from ecliptix.otp import OtpKeyring as OtpKeyring
from ecliptix.otp import generate_otp as generate_otp

# Every public name above, for `from ecliptix import *`; not the submodules
# that importing them bound, nor the __future__ feature.
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and not isinstance(value, _ModuleType) and name != "annotations"
]
