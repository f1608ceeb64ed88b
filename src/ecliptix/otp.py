"""One-time passcodes: generate them, and digest them under the application's OTP key.

The database stores, as ``otp_records.otp_hash``, the lowercase hex
HMAC-SHA-256 of ``<flow unique id>:<code>`` under a key the application holds
outside the database, and as ``otp_salt`` the id of that key. A dump of the
database alone therefore cannot be brute-forced, and keys can rotate: a code
is checked with the key whose id its row carries.

Keys come from ``ECLIPTIX_OTP_KEYS`` (or an :class:`OtpKeyring` given to the
client): comma-separated ``id:base64key`` entries, the first being the key new
codes are issued under, the others older keys kept until their codes have
expired. No repr, str or error of this module ever shows a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence

ENV_VAR = "ECLIPTIX_OTP_KEYS"
MIN_DIGITS = 6
MAX_DIGITS = 12
MIN_KEY_BYTES = 16
NEW_KEY_BYTES = 32
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOW_TO = (
    f"set {ENV_VAR} to 'id:base64key' entries separated by commas, the current key "
    f"first, each key at least {MIN_KEY_BYTES} random bytes; make one with: "
    f'export {ENV_VAR}="k1:$(head -c {NEW_KEY_BYTES} /dev/urandom | base64)"'
)


class OtpKeyError(ValueError):
    """Raised when no OTP key is configured or the configuration is malformed."""


def generate_otp(digits: int = MIN_DIGITS) -> str:
    """Return a uniformly random numeric code of the given number of digits."""
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise ValueError(f"digits must be an int, got {type(digits).__name__}")
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be between {MIN_DIGITS} and {MAX_DIGITS}, got {digits}")
    return str(secrets.randbelow(10**digits)).zfill(digits)


def _decode_key(text: str, where: str) -> bytes:
    # Standard or URL-safe alphabet, padding optional; the value is never quoted back.
    cleaned = text.strip()
    try:
        padded = cleaned + "=" * (-len(cleaned) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise OtpKeyError(f"{where}: the key is not valid base64; {_HOW_TO}") from None
    if len(raw) < MIN_KEY_BYTES:
        raise OtpKeyError(
            f"{where}: the key is {len(raw)} bytes, it must be at least {MIN_KEY_BYTES}; {_HOW_TO}"
        )
    return raw


class OtpKeyring:
    """Hold the OTP keys by id, the first being current; digest codes with them.

    The key bytes live only inside the object: repr and str show the ids.
    """

    __slots__ = ("_current", "_keys")

    def __init__(self, keys: Sequence[tuple[str, bytes]] | Mapping[str, bytes]) -> None:
        """Hold keys, given as (id, key bytes) pairs or a mapping, the current one first."""
        pairs = list(keys.items()) if isinstance(keys, Mapping) else list(keys)
        if not pairs:
            raise OtpKeyError(f"an OTP keyring needs at least one key; {_HOW_TO}")
        held: dict[str, bytes] = {}
        for n, pair in enumerate(pairs, 1):
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise OtpKeyError(f"key {n} must be an (id, bytes) pair")
            key_id, key = pair
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise OtpKeyError(
                    f"key {n}: the id must be 1 to 64 letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit"
                )
            if key_id in held:
                raise OtpKeyError(f"key {n}: its id is already used by an earlier key")
            if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
                raise OtpKeyError(f"key {n}: the key must be at least {MIN_KEY_BYTES} bytes")
            held[key_id] = key
        self._keys = held
        self._current = pairs[0][0]

    @classmethod
    def parse(cls, text: str, *, source: str = ENV_VAR) -> OtpKeyring:
        """Return the keyring written as 'id:base64key,id:base64key' (current first)."""
        if not isinstance(text, str) or not text.strip():
            raise OtpKeyError(f"{source} is empty; {_HOW_TO}")
        pairs = []
        for n, entry in enumerate(text.split(","), 1):
            where = f"{source} entry {n}"
            key_id, colon, encoded = entry.strip().partition(":")
            if not colon:
                raise OtpKeyError(f"{where} has no ':' between the key id and the key; {_HOW_TO}")
            if not _KEY_ID.fullmatch(key_id):
                raise OtpKeyError(
                    f"{where}: the key id must be 1 to 64 letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit"
                )
            pairs.append((key_id, _decode_key(encoded, where)))
        return cls(pairs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OtpKeyring | None:
        """Return the keyring of ECLIPTIX_OTP_KEYS, or None when it is unset or blank."""
        text = (os.environ if environ is None else environ).get(ENV_VAR, "")
        return cls.parse(text) if text.strip() else None

    @classmethod
    def generate(cls, key_id: str | None = None) -> OtpKeyring:
        """Return a keyring of one fresh random key (for a demo or a test run)."""
        return cls([(key_id or f"ephemeral-{secrets.token_hex(4)}", os.urandom(NEW_KEY_BYTES))])

    @property
    def current_id(self) -> str:
        """Return the id of the key new codes are issued under."""
        return self._current

    @property
    def ids(self) -> tuple[str, ...]:
        """Return every key id held, the current one first."""
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __repr__(self) -> str:
        return f"OtpKeyring(ids={self.ids!r})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("an OtpKeyring holds secrets and cannot be pickled")

    def digest(self, flow_unique_id: uuid.UUID, code: str, key_id: str | None = None) -> str:
        """Return the lowercase hex HMAC-SHA-256 of '<flow id>:<code>' under key_id (current)."""
        if not isinstance(flow_unique_id, uuid.UUID):
            raise ValueError(
                f"flow_unique_id must be a uuid.UUID, got {type(flow_unique_id).__name__}"
            )
        if not isinstance(code, str):
            raise ValueError(f"code must be a str, got {type(code).__name__}")
        chosen = self._current if key_id is None else key_id
        key = self._keys.get(chosen)
        if key is None:
            # The id comes from the database (otp_salt); old rows hold a salt there.
            raise OtpKeyError(
                f"the code was issued under an OTP key this keyring does not hold; keep "
                f"retired keys in {ENV_VAR}, after the current one, until their codes expire"
            )
        return hmac.new(key, f"{flow_unique_id}:{code}".encode(), hashlib.sha256).hexdigest()


def resolve_keyring(otp_keys: OtpKeyring | None) -> OtpKeyring | None:
    """Return otp_keys if given, else the keyring of ECLIPTIX_OTP_KEYS (None when unset)."""
    if otp_keys is not None:
        if not isinstance(otp_keys, OtpKeyring):
            raise ValueError(f"otp_keys must be an OtpKeyring, got {type(otp_keys).__name__}")
        return otp_keys
    return OtpKeyring.from_env()


def require_keyring(keyring: OtpKeyring | None) -> OtpKeyring:
    """Return keyring, or raise OtpKeyError saying how to configure one."""
    if keyring is None:
        raise OtpKeyError(f"no OTP key is configured: {ENV_VAR} is not set; {_HOW_TO}")
    return keyring
