"""OTP codes and the OTP keyring: pure Python, no database."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import pickle
import uuid

import pytest

from ecliptix.otp import ENV_VAR, OtpKeyError, OtpKeyring, generate_otp, require_keyring

FLOW = uuid.UUID("2f1c7a3e-8f00-4c1e-9b61-0d5e1f7a9c42")
KEY = b"k" * 32
OLD = b"o" * 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("digits", [6, 8, 12])
def test_generated_codes_are_digits_of_the_requested_length(digits: int) -> None:
    codes = {generate_otp(digits) for _ in range(200)}
    assert all(len(c) == digits and c.isdigit() and c.isascii() for c in codes)
    assert len(codes) > 150  # random, not a constant or a short cycle


def test_generated_codes_default_to_six_digits_and_keep_leading_zeros() -> None:
    codes = [generate_otp() for _ in range(2000)]
    assert all(len(c) == 6 for c in codes)
    assert any(c.startswith("0") for c in codes)


@pytest.mark.parametrize("digits", [0, 4, 5, 13, True, 6.0])
def test_codes_have_at_least_six_digits(digits: object) -> None:
    with pytest.raises(ValueError, match="digits"):
        generate_otp(digits)  # type: ignore[arg-type]


def test_digest_is_the_contracts_hmac_of_flow_and_code() -> None:
    ring = OtpKeyring([("k1", KEY)])
    expected = hmac.new(KEY, f"{FLOW}:123456".encode(), hashlib.sha256).hexdigest()
    assert ring.digest(FLOW, "123456") == expected
    assert expected == expected.lower() and len(expected) == 64
    assert ring.digest(FLOW, "123457") != expected
    assert ring.digest(uuid.uuid4(), "123456") != expected  # bound to the flow


def test_rotation_digests_with_the_key_named_by_the_stored_id() -> None:
    ring = OtpKeyring.parse(f"new:{b64(KEY)}, old:{b64(OLD)}")
    assert ring.current_id == "new" and ring.ids == ("new", "old")
    assert "old" in ring and "gone" not in ring
    old_only = OtpKeyring([("old", OLD)])
    assert ring.digest(FLOW, "123456", "old") == old_only.digest(FLOW, "123456")
    assert ring.digest(FLOW, "123456") != old_only.digest(FLOW, "123456")
    with pytest.raises(OtpKeyError, match=ENV_VAR):
        ring.digest(FLOW, "123456", "gone")


def test_keys_parse_from_the_environment_in_both_base64_alphabets() -> None:
    raw = bytes(range(250, 256)) * 6  # '+' and '/' in standard base64
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    ring = OtpKeyring.from_env({ENV_VAR: f"a:{b64(raw)},b.2:{urlsafe}"})
    assert ring is not None and ring.ids == ("a", "b.2")
    assert ring.digest(FLOW, "1", "a") == ring.digest(FLOW, "1", "b.2")
    assert OtpKeyring.from_env({}) is None
    assert OtpKeyring.from_env({ENV_VAR: "  "}) is None


def test_no_key_is_an_error_naming_the_variable_and_how_to_make_one() -> None:
    with pytest.raises(OtpKeyError) as info:
        require_keyring(None)
    message = str(info.value)
    assert ENV_VAR in message and "/dev/urandom" in message and "k1:" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("nocolon", "no ':'"),
        (":abc", "key id"),
        ("bad id:" + "A" * 44, "key id"),
        ("k1:not base64!!", "not valid base64"),
        ("k1:" + b64(b"short"), "5 bytes"),
        (f"k1:{b64(KEY)},k1:{b64(OLD)}", "already used"),
        (f"k1:{b64(KEY)},", "entry 2"),
    ],
)
def test_malformed_keys_are_refused_with_the_entry_not_the_value(text: str, problem: str) -> None:
    with pytest.raises(OtpKeyError, match=problem) as info:
        OtpKeyring.parse(text)
    message = str(info.value)
    assert ENV_VAR in message or "key" in message
    for secret in (b64(KEY), b64(OLD), "not base64!!", b64(b"short"), "nocolon"):
        assert secret not in message


def test_a_keyring_never_shows_its_keys() -> None:
    ring = OtpKeyring([("k1", KEY), ("k0", OLD)])
    shown = [repr(ring), str(ring), f"{ring}", f"{ring!r}"]
    assert shown[0] == "OtpKeyring(ids=('k1', 'k0'))"
    for form in (KEY, OLD):
        for text in (form.decode(), form.hex(), b64(form), repr(form)):
            assert all(text not in s for s in shown)
    assert not hasattr(ring, "__dict__")
    with pytest.raises(TypeError, match="secrets"):
        pickle.dumps(ring)
    with pytest.raises(TypeError):
        copy.copy(ring)


@pytest.mark.parametrize(
    "keys",
    [
        [],
        [("k1", b"short")],
        [("k1", "str key" * 5)],
        [("bad id", KEY)],
        [("k1", KEY), ("k1", OLD)],
    ],
)
def test_programmatic_keyrings_are_checked(keys: list[tuple[str, object]]) -> None:
    with pytest.raises(OtpKeyError):
        OtpKeyring(keys)  # type: ignore[arg-type]


def test_generated_keyrings_are_fresh_and_random() -> None:
    first, second = OtpKeyring.generate(), OtpKeyring.generate("demo")
    assert second.ids == ("demo",)
    assert first.digest(FLOW, "123456") != OtpKeyring.generate(first.current_id).digest(
        FLOW, "123456"
    )


def test_digest_checks_its_arguments() -> None:
    ring = OtpKeyring([("k1", KEY)])
    with pytest.raises(ValueError, match="flow_unique_id"):
        ring.digest(str(FLOW), "123456")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="code must be a str"):
        ring.digest(FLOW, 123456)  # type: ignore[arg-type]
