"""The client builds rows positionally (row_maker): the objects must equal cls(*row)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest

from ecliptix import EcliptixClient, EcliptixContractError, models
from ecliptix.models import row_maker

U = uuid.uuid4()
NOW = dt.datetime.now(dt.UTC)
FLOW = (U, U, U, 7, NOW, "pending", "login", 1, U, U, "h", "s", NOW, "verified", True)

ROWS: list[tuple[type[Any], tuple[Any, ...]]] = [
    (models.PhoneNumber, ("+15550100", "US", U)),
    (models.DeviceRegistration, (U, 2)),
    (models.EnsuredPhone, (U, "created_and_associated", True, "ok")),
    (models.RecoveryEligibility, (False, "m", "no_secure_key", None)),
    (models.FlowState, FLOW),
    (models.FlowInitiation, (*FLOW, "created")),
    (models.FlowInitiation, (None,) * 15 + ("phone_not_found",)),
    (models.InsertedOtp, (U, "created")),
    (models.StatusUpdate, (True, "done")),
    (models.MembershipCreation, (U, "active", "otp_verified", "created")),
    (models.MembershipCreation, (None, None, None, "5")),
    (models.SecureKeyUpdate, (True, "m", U, "inactive", "secure_key_set")),
    (models.LoginResult, (U, "active", "success", memoryview(b"key"))),
    (models.LoginResult, (None, None, "phone_number_not_found", None)),
    (models.OtpVerification, ("invalid_code", U, 2, "pending")),
    (models.OtpVerification, ("flow_not_found_or_invalid", None, None, None)),
    (models.PurgedRows, ("verification_flows", 5000)),
]


@pytest.mark.parametrize(("cls", "row"), ROWS, ids=lambda x: getattr(x, "__name__", ""))
def test_row_maker_builds_what_the_constructor_builds(cls: type[Any], row: tuple[Any, ...]) -> None:
    made, built = row_maker(cls)(row), cls(*row)
    assert made == built
    assert repr(made) == repr(built)
    assert hash(made) == hash(built)
    for f in dataclasses.fields(cls):
        assert type(getattr(made, f.name)) is type(getattr(built, f.name)), f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.outcome = "x"


def test_row_maker_refuses_bad_rows_as_the_constructor_does() -> None:
    with pytest.raises(TypeError):
        row_maker(models.InsertedOtp)((U,))
    with pytest.raises(ValueError, match="not_an_outcome"):
        row_maker(models.InsertedOtp)((U, "not_an_outcome"))
    with pytest.raises(ValueError, match="not_an_outcome"):
        models.InsertedOtp(U, "not_an_outcome")  # type: ignore[arg-type]


@pytest.mark.postgres
def test_misnamed_result_columns_break_the_contract(db: psycopg.Connection[Any]) -> None:
    # Same column count and types as get_phone_number, but renamed: building
    # by position must not silently accept it.
    db.execute("CREATE SCHEMA wrong")
    db.execute(
        "CREATE FUNCTION wrong.get_phone_number(p uuid)"
        " RETURNS TABLE (number varchar, region varchar, unique_id uuid)"
        " LANGUAGE sql AS $$ SELECT '+15550100'::varchar, NULL::varchar, p $$"
    )
    client = EcliptixClient(db, schema="wrong")
    with pytest.raises(EcliptixContractError, match="columns"):
        client.get_phone_number(U)
