"""OTP generation, hashing and verification: pure Python, no database."""

from __future__ import annotations

import pytest

from ecliptix.otp import generate_otp, hash_otp, verify_otp

# Cheaper scrypt for the tests that are not about the default cost.
FAST = 10


@pytest.mark.parametrize("digits", [4, 6, 8, 12])
def test_generated_codes_are_digits_of_the_requested_length(digits: int) -> None:
    codes = {generate_otp(digits) for _ in range(200)}
    assert all(len(c) == digits and c.isdigit() and c.isascii() for c in codes)
    assert len(codes) > 150  # random, not a constant or a short cycle


def test_generated_codes_default_to_six_digits_and_keep_leading_zeros() -> None:
    codes = [generate_otp() for _ in range(2000)]
    assert all(len(c) == 6 for c in codes)
    assert any(c.startswith("0") for c in codes)


@pytest.mark.parametrize("digits", [0, 3, 13, True, 6.0])
def test_generate_rejects_bad_lengths(digits: object) -> None:
    with pytest.raises(ValueError, match="digits"):
        generate_otp(digits)  # type: ignore[arg-type]


def test_hash_then_verify_round_trip_with_default_parameters() -> None:
    stored, salt = hash_otp("123456")
    assert stored.startswith("scrypt$ln=15,r=8,p=1,k=0$")
    assert verify_otp("123456", stored, salt)


@pytest.mark.parametrize("wrong", ["123457", "12345", "1234560", "", " 123456"])
def test_wrong_code_does_not_verify(wrong: str) -> None:
    stored, salt = hash_otp("123456", log2_n=FAST)
    assert not verify_otp(wrong, stored, salt)


def test_wrong_salt_does_not_verify() -> None:
    stored, _ = hash_otp("123456", log2_n=FAST)
    _, other_salt = hash_otp("123456", log2_n=FAST)
    assert not verify_otp("123456", stored, other_salt)


def test_different_salts_give_different_hashes() -> None:
    first = hash_otp("123456", log2_n=FAST)
    second = hash_otp("123456", log2_n=FAST)
    assert first[1] != second[1]
    assert first[0] != second[0]


def test_given_salt_is_used_and_deterministic() -> None:
    assert hash_otp("123456", salt="fixed-salt", log2_n=FAST) == hash_otp(
        "123456", salt="fixed-salt", log2_n=FAST
    )


def test_stored_values_fit_the_table() -> None:
    stored, salt = hash_otp(generate_otp(12), pepper=b"p" * 64)
    assert len(stored) <= 255 and len(salt) <= 255
    assert stored.isascii() and salt.isascii()
    assert "123456" not in stored + salt


def test_pepper_is_required_to_verify_a_peppered_hash() -> None:
    stored, salt = hash_otp("123456", pepper=b"server-secret", log2_n=FAST)
    assert ",k=1$" in stored
    assert verify_otp("123456", stored, salt, pepper=b"server-secret")
    assert not verify_otp("123456", stored, salt, pepper=b"other-secret")
    with pytest.raises(ValueError, match="pepper"):
        verify_otp("123456", stored, salt)


def test_parameters_in_the_stored_hash_are_honoured_when_verifying() -> None:
    # A hash made with older, cheaper parameters must still verify after the
    # default moves on: that is why the parameters are stored.
    stored, salt = hash_otp("654321", log2_n=12)
    assert stored.startswith("scrypt$ln=12,")
    assert verify_otp("654321", stored, salt)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$ln=15,r=8,p=1,k=0$AAAA",
        "scrypt$ln=15,r=8$AAAA",
        "scrypt$ln=40,r=8,p=1,k=0$AAAA",
        "scrypt$ln=15,r=8,p=1,k=0$not base64!",
    ],
)
def test_malformed_or_hostile_hashes_are_refused(stored: str) -> None:
    with pytest.raises(ValueError, match="otp_hash"):
        verify_otp("123456", stored, "salt")


@pytest.mark.parametrize(
    ("code", "kwargs"),
    [
        ("", {}),
        (123456, {}),
        ("1", {"salt": ""}),
        ("1", {"salt": "x" * 256}),
        ("1", {"pepper": b""}),
    ],
)
def test_hash_rejects_bad_input(code: object, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        hash_otp(code, **kwargs)  # type: ignore[arg-type]
