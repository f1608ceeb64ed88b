"""V002 on a version 1 database that holds data: `persistor migrate` brings it
to version 2 with nothing lost, the failures of the last day backfilled into
the per-number budgets, and version 1 rows (a code stored by a version 1
application, a number that is not E.164) still usable."""

from __future__ import annotations

import uuid

import psycopg

from persistor.api import migrate
from persistor.settings import Settings
from tests.ecliptix.deploy import V1_MIGRATIONS
from tests.ecliptix.sql_support import (
    V1_STATE_TABLES,
    Conn,
    make_device,
    make_flow,
    one,
    scalar,
)
from tests.ecliptix.verification_support import RIGHT, WRONG, failures

LEGACY_NUMBER = "5550100"  # accepted by version 1, not E.164
V2_LIMITS = {
    "failed_checks_per_otp",
    "failed_checks_per_flow",
    "failed_checks_per_number",
    "failed_checks_per_known_device",
    "failed_check_window_seconds",
    "flows_per_device_per_window",
}


def v1_otp(db: Conn, flow: uuid.UUID, digest: str) -> uuid.UUID:
    """An OTP stored the version 1 way (any expiry, no cooldown)."""
    row = one(db, "insert_otp_record", flow, digest, "key-1", "2099-01-01Z")
    assert row["outcome"] == "created", row
    otp: uuid.UUID = row["otp_unique_id"]
    return otp


def fill_v1(db: Conn) -> dict[str, uuid.UUID]:
    """Devices, phones, flows, OTPs, failures (recent and old) and a
    membership, made through the version 1 functions."""
    owner, stranger = make_device(db), make_device(db)
    phone = one(db, "ensure_phone_number", LEGACY_NUMBER, "US", owner)["unique_id"]
    reg = make_flow(db, owner, phone, "registration", 42)["unique_identifier"]
    reg_otp = v1_otp(db, reg, RIGHT)
    assert one(db, "update_otp_status", reg_otp, "verified")["success"]
    assert one(db, "create_membership", reg, 42, reg_otp, "otp_verified")["outcome"] == "created"
    db.execute("UPDATE verification_flows SET expires_at = now() - interval '1 s'")
    # a known device's failure and two strangers' failures, one of them old
    login = make_flow(db, owner, phone, "login", 1)["unique_identifier"]
    assert one(db, "update_otp_status", v1_otp(db, login, RIGHT), "failed")["success"]
    attack = make_flow(db, stranger, phone, "login", 1)["unique_identifier"]
    for _ in range(2):
        assert one(db, "update_otp_status", v1_otp(db, attack, RIGHT), "failed")["success"]
    db.execute(
        "UPDATE failed_otp_attempts SET attempt_time = now() - interval '2 days' "
        "WHERE id = (SELECT max(id) FROM failed_otp_attempts)"
    )
    pending = make_flow(db, stranger, phone, "registration", 5)["unique_identifier"]
    v1_otp(db, pending, RIGHT)
    return {"owner": owner, "stranger": stranger, "phone": phone, "pending": pending}


def row_counts(db: Conn) -> dict[str, int]:
    return {t: int(scalar(db, f"SELECT count(*) FROM {t}")) for t in V1_STATE_TABLES}


def test_v002_on_a_v1_database_with_data(pg_url: str) -> None:
    migrate(Settings(url=pg_url, locations=(V1_MIGRATIONS,), locations_configured=True))
    with psycopg.connect(pg_url, autocommit=True) as db:
        ids = fill_v1(db)
        before = row_counts(db)
        assert one(db, "get_full_flow_state", ids["pending"])["otp_hash"] == RIGHT  # v1 shows it

        result = migrate(Settings(url=pg_url))
        assert {a.script for a in result.applied} >= {
            "V002__verification_security.sql",
            "V002_1__verification_security_index.sql",
            "V002_2__verification_security_backfill.sql",
        }

        # nothing lost (later versions may add limits of their own)
        after = row_counts(db)
        assert {t: n for t, n in after.items() if t != "ecliptix_limits"} == {
            t: n for t, n in before.items() if t != "ecliptix_limits"
        }
        limits = {r[0] for r in db.execute("SELECT name FROM ecliptix_limits")}
        assert limits >= V2_LIMITS and len(limits) >= before["ecliptix_limits"] + len(V2_LIMITS)
        # failures inside the window are backfilled, older ones stay out of every budget
        rows = db.execute(
            "SELECT phone_number, app_device_id, known_device FROM failed_otp_attempts ORDER BY id"
        ).fetchall()
        assert rows == [
            (LEGACY_NUMBER, ids["owner"], True),
            (LEGACY_NUMBER, ids["stranger"], False),
            (None, None, False),
        ]
        assert failures(db, LEGACY_NUMBER) == 2
        assert scalar(
            db,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = "
            "'ix_failed_otp_attempts_phone_number_time'::regclass",
        )
        # the version 1 rows keep working with the version 2 functions
        assert one(db, "get_full_flow_state", ids["pending"])["otp_hash"] is None
        assert one(db, "verify_otp", ids["pending"], WRONG)["outcome"] == "invalid_code"
        assert one(db, "verify_otp", ids["pending"], RIGHT)["outcome"] == "verified"
        assert one(db, "ensure_phone_number", LEGACY_NUMBER, "US")["outcome"] == "exists"
        login = one(db, "login_membership", LEGACY_NUMBER)
        assert login["outcome"] == "secure_key_not_set"
