"""Least privilege: the contract functions run as their owner (SECURITY DEFINER)
with a pinned search_path ending in pg_temp, PUBLIC may execute nothing and
touch no table, and an application role granted with
``SELECT * FROM ecliptix_grant_app_role('app_user')`` may call exactly the
contract functions and nothing else."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ecliptix import (
    EcliptixClient,
    FlowPurpose,
    LoginOutcome,
    OtpKeyring,
    RecoveryOutcome,
    ResendOutcome,
    run_demo,
)
from tests.conftest import url_as
from tests.ecliptix.deploy import MIGRATIONS, script_text
from tests.ecliptix.sql_support import STATE_TABLES
from tests.security.conftest import RoleMaker

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]

CONTRACT = {
    "get_phone_number": "'00000000-0000-0000-0000-000000000000'::uuid",
    "register_app_device_if_not_exists": "gen_random_uuid(), gen_random_uuid(), 1",
    "ensure_phone_number": "'+15550000'::varchar, NULL::varchar, NULL::uuid",
    "verify_phone_for_secret_key_recovery": "'+15550000'::varchar, NULL::varchar",
    "get_full_flow_state": "gen_random_uuid()",
    "initiate_verification_flow": "gen_random_uuid(), gen_random_uuid(), 'login'::varchar, 1",
    "request_resend_otp": "gen_random_uuid()",
    "insert_otp_record": "gen_random_uuid(), 'h', 's', now(), 'pending'::varchar",
    "update_otp_status": "gen_random_uuid(), 'failed'::varchar",
    "update_verification_flow_status": "gen_random_uuid(), 'failed'::varchar",
    "expire_associated_otp": "gen_random_uuid()",
    "log_login_attempt": "'+15550000'::varchar, 'x', false",
    "log_membership_attempt": "gen_random_uuid(), 'x', false",
    "create_membership": "gen_random_uuid(), 1, gen_random_uuid(), 'otp_verified'::varchar",
    "update_membership_secure_key": "gen_random_uuid(), NULL::bytea",
    "login_membership": "'+15550000'::varchar",
    "verify_otp": "gen_random_uuid(), 'x'",
}
# v2: SECURITY DEFINER too, but granted to maintenance roles only.
MAINTENANCE = {"ecliptix_purge": "1"}
HELPERS = {
    **MAINTENANCE,
    "ecliptix_limit": "'otps_per_flow'",
    "ecliptix_lock": "1, 'x'",
    "ecliptix_require": "1, 'x'",
    "ecliptix_find_phone": "'+15550000', NULL",
    "ecliptix_grant_app_role": "current_user",
    "ecliptix_revoke_app_role": "current_user",
    "ecliptix_apply_privileges": "",
}
TABLES = (*STATE_TABLES, "ecliptix_app_roles")


def grant(db: Conn, role: str) -> list[tuple[str, str, str]]:
    rows = db.execute("SELECT * FROM ecliptix_grant_app_role(%s)", (role,)).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def executable(db: Conn, role: str) -> set[str]:
    """Names of the functions in the schema that role may execute."""
    rows = db.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace "
        "AND has_function_privilege(%s, p.oid, 'EXECUTE')",
        (role,),
    ).fetchall()
    return {r[0] for r in rows}


def test_every_function_pinned_with_pg_temp_last_and_public_revoked(db: Conn) -> None:
    rows = db.execute(
        """SELECT p.proname, p.prosecdef, p.proconfig,
                  EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
                          a WHERE a.grantee = 0) AS public_can
           FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"""
    ).fetchall()
    schema = db.execute("SELECT current_schema()").fetchone()
    assert schema is not None
    seen = set()
    for name, definer, config, public_can in rows:
        seen.add(name)
        assert config == [f"search_path={schema[0]}, pg_temp"], (name, config)
        assert not public_can, f"PUBLIC may execute {name}"
        assert definer == (name in CONTRACT or name in MAINTENANCE), name
    assert set(CONTRACT) <= seen and set(HELPERS) <= seen


def test_public_holds_nothing_on_tables_or_sequences(db: Conn) -> None:
    rows = db.execute(
        """SELECT c.relname FROM pg_class c
           CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
           WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'S')
             AND a.grantee = 0"""
    ).fetchall()
    assert rows == []


def test_app_role_runs_every_contract_function(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    role = make_role(ecliptix_url)
    granted = grant(db, role)
    assert ("USAGE", "schema", "public") in granted
    assert sorted(c.split("(")[0] for p, _, c in granted if p == "EXECUTE") == sorted(CONTRACT)
    assert executable(db, role) == set(CONTRACT)

    with psycopg.connect(url_as(ecliptix_url, role), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
        # A full registration and login: device, phone, flow, OTP issued and
        # checked, flow verified, membership, secure key, login.
        report = run_demo(conn, phone_number="+15550100", region="US")
        assert report.succeeded, report.steps
        client = EcliptixClient(conn, otp_keys=OtpKeyring.generate())
        phone = client.ensure_phone_number("+15550100", "US")
        assert phone.unique_id is not None
        found = client.get_phone_number(phone.unique_id)
        assert found is not None and found.phone_number == "+15550100"
        recovery = client.verify_phone_for_secret_key_recovery("+15550100", "US")
        assert recovery.outcome is RecoveryOutcome.ELIGIBLE_FOR_RECOVERY
        device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
        other = client.ensure_phone_number("+15550102", None, device).unique_id
        assert other is not None
        flow = client.initiate_verification_flow(device, other, FlowPurpose.LOGIN, 7)
        assert flow.unique_identifier is not None
        assert client.request_resend_otp(flow.unique_identifier) is ResendOutcome.RESEND_ALLOWED
        issued = client.issue_otp(flow.unique_identifier, lifetime=dt.timedelta(minutes=1))
        assert issued.otp_unique_id is not None
        assert client.expire_associated_otp(flow.unique_identifier) == 1
        client.log_login_attempt("+15550100", "audit", True)
        client.log_membership_attempt(phone.unique_id, "audit", True)
        assert client.login_membership("+15550100").kind is LoginOutcome.SUCCESS


def test_app_role_is_refused_every_table_and_helper(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    role = make_role(ecliptix_url)
    grant(db, role)
    columns = {
        str(r[0]): str(r[1])
        for r in db.execute(
            "SELECT table_name, min(column_name) FROM information_schema.columns "
            "WHERE table_schema = current_schema() GROUP BY table_name"
        ).fetchall()
    }
    with psycopg.connect(url_as(ecliptix_url, role), autocommit=True) as conn:
        for table in TABLES:
            t = sql.Identifier(table)
            for stmt in (
                sql.SQL("SELECT * FROM {}").format(t),
                sql.SQL("INSERT INTO {} DEFAULT VALUES").format(t),
                sql.SQL("UPDATE {} SET {} = NULL").format(t, sql.Identifier(columns[table])),
                sql.SQL("DELETE FROM {}").format(t),
                sql.SQL("TRUNCATE {}").format(t),
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                    conn.execute(stmt)
                assert info.value.sqlstate == "42501", (table, stmt)
        for fn, args in HELPERS.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT {fn}({args})")
        # Nor can it create objects next to the functions (PostgreSQL 15+ default).
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.sneaky (x int)")


def test_role_without_the_grant_may_execute_nothing(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    role = make_role(ecliptix_url)
    assert executable(db, role) == set()
    with psycopg.connect(url_as(ecliptix_url, role), autocommit=True) as conn:
        for fn, args in CONTRACT.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                conn.execute(f"SELECT * FROM {fn}({args})")
            assert "permission denied for function" in str(info.value), fn
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            EcliptixClient(conn).login_membership("+15550100")


def test_grant_is_idempotent_survives_reruns_and_is_revocable(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    role, other = make_role(ecliptix_url), make_role(ecliptix_url)
    first = grant(db, role)
    assert grant(db, role) == first
    assert db.execute("SELECT role_name FROM ecliptix_app_roles").fetchall() == [(role,)]
    # A DBA's own grant to another role for one function is left alone.
    db.execute(
        sql.SQL("GRANT EXECUTE ON FUNCTION get_phone_number(uuid) TO {}").format(
            sql.Identifier(other)
        )
    )

    # Re-running the repeatable scripts (as migrate does after an edit) revokes
    # PUBLIC again but keeps the app role's grants ...
    for path in sorted(MIGRATIONS.glob("R__*.sql")):
        db.execute(script_text(path))
    assert executable(db, role) == set(CONTRACT)
    assert executable(db, other) == {"get_phone_number"}
    # ... and a function a script re-creates (dropped, or a new signature) is
    # granted to the registered roles, not to PUBLIC.
    db.execute("DROP FUNCTION login_membership(varchar, uuid)")
    db.execute(script_text(MIGRATIONS / "R__04_membership_functions.sql"))
    assert executable(db, role) == set(CONTRACT)
    assert executable(db, other) == {"get_phone_number"}
    test_every_function_pinned_with_pg_temp_last_and_public_revoked(db)

    revoked = db.execute("SELECT * FROM ecliptix_revoke_app_role(%s)", (role,)).fetchall()
    assert len(revoked) == len(CONTRACT) + 1
    assert executable(db, role) == set()
    assert db.execute("SELECT count(*) FROM ecliptix_app_roles").fetchone() == (0,)
    with (
        psycopg.connect(url_as(ecliptix_url, role), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM login_membership('+15550100')")


def test_grant_refuses_unsafe_or_unknown_roles(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    def refused(role: object) -> psycopg.Error:
        with pytest.raises(psycopg.Error) as info:
            db.execute("SELECT * FROM ecliptix_grant_app_role(%s)", (role,))
        return info.value

    assert refused(None).sqlstate == "22004"
    assert refused("public").sqlstate == "22023"
    assert refused("no_such_role_" + uuid.uuid4().hex[:8]).sqlstate == "42704"
    owner = db.execute("SELECT current_user").fetchone()
    assert owner is not None
    err = refused(owner[0])  # the owner (here a superuser) keeps every table anyway
    assert err.sqlstate == "22023" and "owner" in str(err)

    # A role that may create objects in the schema could shadow a helper the
    # SECURITY DEFINER functions call: refused until CREATE is revoked.
    role = make_role(ecliptix_url)
    db.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    err = refused(role)
    assert err.sqlstate == "42501" and "REVOKE CREATE ON SCHEMA" in (err.diag.message_hint or "")
    db.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(sql.Identifier(role)))
    assert grant(db, role)
    assert db.execute("SELECT count(*) FROM ecliptix_app_roles").fetchone() == (1,)


def test_temporary_objects_cannot_shadow_the_schema(
    db: Conn, ecliptix_url: str, make_role: RoleMaker
) -> None:
    """pg_temp is last in the pinned path: a caller's temporary table of the same
    name is never what a SECURITY DEFINER function reads or writes."""
    role = make_role(ecliptix_url)
    grant(db, role)
    with psycopg.connect(url_as(ecliptix_url, role), autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE ecliptix_limits (name text, value int)")
        conn.execute("INSERT INTO ecliptix_limits VALUES ('login_failures_per_window', 1000)")
        conn.execute("CREATE TEMP TABLE login_lockouts (phone_number text, locked_until int)")
        conn.execute("CREATE TEMP TABLE login_attempts (phone_number text)")
        outcomes = [
            conn.execute("SELECT outcome FROM login_membership('+15550199')").fetchone()
            for _ in range(6)
        ]
        assert outcomes[:5] == [("phone_number_not_found",)] * 5
        assert outcomes[5] == ("5",)  # locked by the real limit of 5, not the temp 1000
        assert conn.execute("SELECT count(*) FROM pg_temp.login_attempts").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM login_attempts").fetchone() == (5,)
    assert db.execute("SELECT count(*) FROM login_lockouts").fetchone() == (1,)


def test_migrator_pins_its_schema_and_the_grant_works_there(
    pg_url: str, make_role: RoleMaker
) -> None:
    """Deployed by persistor into another schema: search_path is pinned to
    exactly '<schema>, pg_temp', and the app role works through the client."""
    from persistor import load_settings, migrate

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA ecl")
    migrate(load_settings({"url": pg_url, "schema": "ecl"}))
    role = make_role(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET search_path TO ecl")
        configs = conn.execute(
            "SELECT DISTINCT p.proconfig FROM pg_proc p WHERE p.pronamespace = 'ecl'::regnamespace"
        ).fetchall()
        assert configs == [(["search_path=ecl, pg_temp"],)]
        granted = grant(conn, role)
        assert ("USAGE", "schema", "ecl") in granted
    with psycopg.connect(url_as(pg_url, role), autocommit=True) as conn:
        report = run_demo(conn, phone_number="+15550101", schema="ecl")
        assert report.succeeded, report.steps
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM ecl.memberships")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM ecl.schema_history")
