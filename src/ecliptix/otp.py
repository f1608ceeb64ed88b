"""Generate, hash and verify one-time passcodes.

Stored hash format (``otp_records.otp_hash``)::

    scrypt$ln=15,r=8,p=1,k=0$<base64url derived key, 32 bytes>

``ln`` is log2 of scrypt's cost N, ``r`` and ``p`` its block size and
parallelism, ``k`` 1 when the code was keyed with a server pepper (HMAC-SHA256)
before scrypt. Keeping the parameters in the string lets them be raised later
while old hashes still verify. The salt (16 random bytes, base64url) is stored
on its own in ``otp_records.otp_salt``. Both strings stay far below the
table's 255 characters.

A 6-digit code has only a million values, so the KDF alone only slows an
offline attacker down; the pepper, kept outside the database, is what stops
one who has a dump. Use one in production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCHEME = "scrypt"
DEFAULT_LOG2_N = 15
DEFAULT_R = 8
DEFAULT_P = 1
KEY_BYTES = 32
SALT_BYTES = 16
MIN_DIGITS = 4
MAX_DIGITS = 12
# Refuse parameters that would let a tampered row make us burn memory or CPU.
_MAX_LOG2_N = 20
_MAX_R = 16
_MAX_P = 4


@dataclass(frozen=True)
class _Params:
    log2_n: int
    r: int
    p: int
    keyed: bool

    def encode(self, key: bytes) -> str:
        params = f"ln={self.log2_n},r={self.r},p={self.p},k={int(self.keyed)}"
        return f"{SCHEME}${params}${_b64(key)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_otp(digits: int = 6) -> str:
    """Return a uniformly random numeric code of the given number of digits."""
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise ValueError(f"digits must be an int, got {type(digits).__name__}")
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be between {MIN_DIGITS} and {MAX_DIGITS}, got {digits}")
    return str(secrets.randbelow(10**digits)).zfill(digits)


def _derive(code: str, salt: str, params: _Params, pepper: bytes | None) -> bytes:
    secret = code.encode("utf-8")
    if params.keyed:
        if not pepper:
            raise ValueError("this OTP hash was made with a pepper; pass the same pepper")
        secret = hmac.new(pepper, secret, hashlib.sha256).digest()
    n = 1 << params.log2_n
    # scrypt needs 128 * r * N bytes; OpenSSL's default cap (32 MiB) is just too small.
    maxmem = 128 * params.r * (n + params.p + 2) + (1 << 20)
    return hashlib.scrypt(
        secret,
        salt=salt.encode("ascii"),
        n=n,
        r=params.r,
        p=params.p,
        maxmem=maxmem,
        dklen=KEY_BYTES,
    )


def hash_otp(
    code: str,
    *,
    salt: str | None = None,
    pepper: bytes | None = None,
    log2_n: int = DEFAULT_LOG2_N,
) -> tuple[str, str]:
    """Return (hash, salt) for storing code; a fresh random salt unless one is given."""
    if not isinstance(code, str) or not code:
        raise ValueError("code must be a non-empty str")
    if salt is None:
        salt = _b64(secrets.token_bytes(SALT_BYTES))
    elif not isinstance(salt, str) or not salt or len(salt) > 255 or not salt.isascii():
        raise ValueError("salt must be a non-empty ASCII str of at most 255 characters")
    if pepper is not None and (not isinstance(pepper, bytes) or not pepper):
        raise ValueError("pepper must be non-empty bytes or None")
    if not 1 <= log2_n <= _MAX_LOG2_N:
        raise ValueError(f"log2_n must be between 1 and {_MAX_LOG2_N}, got {log2_n}")
    params = _Params(log2_n=log2_n, r=DEFAULT_R, p=DEFAULT_P, keyed=pepper is not None)
    return params.encode(_derive(code, salt, params, pepper)), salt


def _parse(stored: str) -> tuple[_Params, bytes]:
    try:
        scheme, raw_params, raw_key = stored.split("$")
        values = dict(item.split("=", 1) for item in raw_params.split(","))
        params = _Params(
            log2_n=int(values["ln"]),
            r=int(values["r"]),
            p=int(values["p"]),
            keyed=values["k"] == "1",
        )
        key = _unb64(raw_key)
    except (ValueError, KeyError, binascii.Error) as exc:
        raise ValueError("otp_hash is not a persistor OTP hash") from exc
    if scheme != SCHEME:
        raise ValueError(f"otp_hash uses unknown scheme {scheme!r}")
    if not (
        1 <= params.log2_n <= _MAX_LOG2_N and 1 <= params.r <= _MAX_R and 1 <= params.p <= _MAX_P
    ):
        raise ValueError("otp_hash has out-of-range scrypt parameters")
    return params, key


def verify_otp(code: str, otp_hash: str, otp_salt: str, *, pepper: bytes | None = None) -> bool:
    """Return whether code matches the stored hash and salt, comparing in constant time."""
    params, expected = _parse(otp_hash)
    if not isinstance(code, str):
        return False
    # Derive even for an empty code so that timing does not tell codes apart.
    actual = _derive(code, otp_salt, params, pepper)
    return hmac.compare_digest(actual, expected) and bool(code)
