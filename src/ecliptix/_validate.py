"""Check arguments in Python before they reach the database.

The database rejects the same inputs, but only after a round trip and with a
SQLSTATE to decode; checking here gives a ``ValueError`` naming the parameter
and changes nothing, which is what callers want from a typed API.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from enum import StrEnum
from typing import TypeVar

MAX_PHONE = 18
MAX_TEXT = 255
_REGION = re.compile(r"[A-Z]{2}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_INT4 = (-(2**31), 2**31 - 1)
_INT8 = (-(2**63), 2**63 - 1)

E = TypeVar("E", bound=StrEnum)


def _kind(value: object) -> str:
    return type(value).__name__


def _no_nul(name: str, value: str) -> None:
    # PostgreSQL text cannot hold NUL; psycopg would refuse it with a DataError
    # that does not name the parameter.
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL (\\x00) characters")


def require_uuid(name: str, value: object) -> uuid.UUID:
    """Return value if it is a uuid.UUID, else raise ValueError."""
    if not isinstance(value, uuid.UUID):
        raise ValueError(f"{name} is required and must be a uuid.UUID, got {_kind(value)}")
    return value


def optional_uuid(name: str, value: object) -> uuid.UUID | None:
    """Return value if it is None or a uuid.UUID, else raise ValueError."""
    return None if value is None else require_uuid(name, value)


def phone_number(name: str, value: object) -> str:
    """Return value if it is a non-empty phone number of at most 18 characters."""
    if not isinstance(value, str):
        raise ValueError(f"{name} is required and must be a str, got {_kind(value)}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > MAX_PHONE:
        raise ValueError(f"{name} must be at most {MAX_PHONE} characters, got {len(value)}")
    _no_nul(name, value)
    return value


def region(name: str, value: object) -> str | None:
    """Return value if it is None (no region) or two capital letters."""
    if value is None:
        return None
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise ValueError(f"{name} must be None or two capital letters (ISO 3166-1), got {value!r}")
    return value


def text(name: str, value: object, *, max_len: int = MAX_TEXT) -> str:
    """Return value if it is a non-empty str of at most max_len characters."""
    if not isinstance(value, str):
        raise ValueError(f"{name} is required and must be a str, got {_kind(value)}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_len:
        raise ValueError(f"{name} must be at most {max_len} characters, got {len(value)}")
    _no_nul(name, value)
    return value


def enum_value(name: str, value: object, enum: type[E]) -> E:
    """Return value as a member of enum, raising ValueError for unknown values."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(m.value for m in enum)
    raise ValueError(f"{name} must be one of {allowed}; got {value!r}")


def integer(name: str, value: object, *, bits: int = 32) -> int:
    """Return value if it is an int (not a bool) that fits a PostgreSQL int4 or int8."""
    low, high = _INT4 if bits == 32 else _INT8
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is required and must be an int, got {_kind(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must fit a {bits}-bit integer, got {value}")
    return value


def optional_bigint(name: str, value: object) -> int | None:
    """Return value if it is None or an int that fits a PostgreSQL bigint."""
    return None if value is None else integer(name, value, bits=64)


def boolean(name: str, value: object) -> bool:
    """Return value if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} is required and must be a bool, got {_kind(value)}")
    return value


def aware_datetime(name: str, value: object) -> dt.datetime:
    """Return value if it is a timezone-aware datetime."""
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{name} is required and must be a datetime, got {_kind(value)}")
    # A naive time would be read in the session's TimeZone: a silent offset bug.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def optional_bytes(name: str, value: object) -> bytes | None:
    """Return value as bytes if it is None or bytes-like."""
    if value is None:
        return None
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{name} must be bytes or None, got {_kind(value)}")
    return bytes(value)


def positive_timedelta(name: str, value: object) -> dt.timedelta:
    """Return value if it is a positive timedelta."""
    if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
        raise ValueError(f"{name} must be a positive datetime.timedelta, got {value!r}")
    return value


def hex_digest(name: str, value: object) -> str:
    """Return value if it is a lowercase hex SHA-256 digest (64 characters)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} is required and must be a str, got {_kind(value)}")
    # The value is a secret's digest: say what is wrong with it, never quote it.
    if not _HEX_DIGEST.fullmatch(value):
        raise ValueError(
            f"{name} must be the 64 lowercase hex characters of an HMAC-SHA-256 digest "
            f"(OtpKeyring.digest), got {len(value)} characters"
        )
    return value
