"""Schema contract: tables, triggers, function signatures, uniqueness rules."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.ecliptix.deploy import MIGRATIONS, script_text
from tests.ecliptix.sql_support import TABLES, Conn, call, make_device, make_phone, scalar

FLOW_STATE = [
    ("unique_identifier", "uuid"),
    ("phone_number_identifier", "uuid"),
    ("app_device_identifier", "uuid"),
    ("connect_id", "bigint"),
    ("expires_at", "timestamp with time zone"),
    ("status", "text"),
    ("purpose", "text"),
    ("otp_count", "smallint"),
    ("otp_unique_identifier", "uuid"),
    ("otp_flow_unique_id", "uuid"),
    ("otp_hash", "text"),
    ("otp_salt", "text"),
    ("otp_expires_at", "timestamp with time zone"),
    ("otp_status", "text"),
    ("otp_is_active", "boolean"),
]

# function -> (input args "name type", result columns "name type" or None for void)
FUNCTIONS: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]] | None]] = {
    "get_phone_number": (
        [("p_phone_unique_id", "uuid")],
        [
            ("phone_number", "character varying"),
            ("region", "character varying"),
            ("unique_id", "uuid"),
        ],
    ),
    "register_app_device_if_not_exists": (
        [("p_app_instance_id", "uuid"), ("p_device_id", "uuid"), ("p_device_type", "integer")],
        [("unique_id", "uuid"), ("status", "integer")],
    ),
    "ensure_phone_number": (
        [
            ("p_phone_number", "character varying"),
            ("p_region", "character varying"),
            ("p_app_device_id", "uuid"),
        ],
        [("unique_id", "uuid"), ("outcome", "text"), ("success", "boolean"), ("message", "text")],
    ),
    "verify_phone_for_secret_key_recovery": (
        [("p_phone_number", "character varying"), ("p_region", "character varying")],
        [
            ("success", "boolean"),
            ("message", "text"),
            ("outcome", "text"),
            ("phone_number_id", "uuid"),
        ],
    ),
    "get_full_flow_state": ([("p_flow_unique_id", "uuid")], FLOW_STATE),
    "initiate_verification_flow": (
        [
            ("p_app_device_id", "uuid"),
            ("p_phone_unique_id", "uuid"),
            ("p_purpose", "character varying"),
            ("p_connection_id", "bigint"),
        ],
        [*FLOW_STATE, ("outcome", "text")],
    ),
    "request_resend_otp": ([("p_flow_unique_id", "uuid")], [("outcome", "text")]),
    "insert_otp_record": (
        [
            ("p_flow_unique_id", "uuid"),
            ("p_otp_hash", "text"),
            ("p_otp_salt", "text"),
            ("p_expires_at", "timestamp with time zone"),
            ("p_status", "character varying"),
        ],
        [("otp_unique_id", "uuid"), ("outcome", "text")],
    ),
    "update_otp_status": (
        [("p_otp_unique_id", "uuid"), ("p_new_status", "character varying")],
        [("success", "boolean"), ("message", "text")],
    ),
    "update_verification_flow_status": (
        [("p_flow_unique_id", "uuid"), ("p_new_status", "character varying")],
        [("rows_affected", "integer")],
    ),
    "expire_associated_otp": ([("p_flow_unique_id", "uuid")], [("rows_affected", "integer")]),
    "log_login_attempt": (
        [
            ("p_phone_number", "character varying"),
            ("p_outcome", "text"),
            ("p_is_success", "boolean"),
            ("p_app_device_id", "uuid"),  # v2, optional
        ],
        None,
    ),
    "log_membership_attempt": (
        [("p_phone_number_id", "uuid"), ("p_outcome", "text"), ("p_is_success", "boolean")],
        None,
    ),
    "create_membership": (
        [
            ("p_flow_unique_id", "uuid"),
            ("p_connection_id", "bigint"),
            ("p_otp_unique_id", "uuid"),
            ("p_creation_status", "character varying"),
            ("p_app_device_id", "uuid"),  # v2, optional
        ],
        [
            ("membership_unique_id", "uuid"),
            ("status", "text"),
            ("creation_status", "text"),
            ("outcome", "text"),
        ],
    ),
    "update_membership_secure_key": (
        [
            ("p_membership_unique_id", "uuid"),
            ("p_secure_key", "bytea"),
            ("p_app_device_id", "uuid"),  # v2, optional
        ],
        [
            ("success", "boolean"),
            ("message", "text"),
            ("membership_unique_id", "uuid"),
            ("status", "text"),
            ("creation_status", "text"),
        ],
    ),
    "login_membership": (
        [("p_phone_number", "character varying"), ("p_app_device_id", "uuid")],  # v2: device
        [
            ("membership_unique_id", "uuid"),
            ("status", "text"),
            ("outcome", "text"),
            ("secure_key", "bytea"),
        ],
    ),
}

DEFAULTS = {
    "ensure_phone_number": 1,
    "verify_phone_for_secret_key_recovery": 1,
    "initiate_verification_flow": 1,
    "insert_otp_record": 1,
    # v2: a device parameter added at the end, with a default
    "log_login_attempt": 1,
    "create_membership": 1,
    "login_membership": 1,
    "update_membership_secure_key": 1,
}


def test_all_ten_tables_exist(db: Conn) -> None:
    rows = db.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    ).fetchall()
    assert set(TABLES) <= {r[0] for r in rows}


def test_conventional_columns(db: Conn) -> None:
    def cols(table: str) -> dict[str, tuple[str, str]]:
        rows = db.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    for table in TABLES:
        c = cols(table)
        assert c["created_at"][0] == "timestamp with time zone", table
        if table == "event_log":
            assert "updated_at" not in c
        else:
            assert c["updated_at"][0] == "timestamp with time zone", table
    for table in ("login_attempts", "failed_otp_attempts", "membership_attempts"):
        assert "unique_id" not in cols(table)
    assert "is_deleted" not in cols("login_attempts")
    assert "id" not in cols("phone_number_devices")
    assert cols("phone_numbers")["region"] == ("character varying", "YES")
    identity = db.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND column_name = 'id' AND is_identity = 'YES' "
        "AND identity_generation = 'ALWAYS'"
    ).fetchall()
    assert {r[0] for r in identity} >= set(TABLES) - {"phone_number_devices"}


def test_nine_updated_at_triggers_one_function(db: Conn) -> None:
    rows = db.execute(
        """SELECT c.relname, p.proname
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"""
    ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(set(TABLES) - {"event_log"})
    assert len({r[1] for r in rows}) == 1


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_signature(db: Conn, name: str) -> None:
    args, result = FUNCTIONS[name]
    rows = db.execute(
        """SELECT p.proargnames, p.proargmodes, p.pronargdefaults,
                  array(SELECT format_type(t, NULL) FROM unnest(p.proallargtypes) t),
                  array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t),
                  format_type(p.prorettype, NULL), p.proretset, p.proconfig
           FROM pg_proc p
           WHERE p.proname = %s AND p.pronamespace = current_schema()::regnamespace""",
        (name,),
    ).fetchall()
    assert len(rows) == 1, f"{name}: {len(rows)} overloads"
    names, modes, ndefaults, alltypes, intypes, rettype, _retset, config = rows[0]
    assert any(c.startswith("search_path=") for c in config or []), "search_path not pinned"
    assert ndefaults == DEFAULTS.get(name, 0)
    if result is None:
        assert rettype == "void"
        assert list(zip(names, intypes, strict=True)) == args
        return
    ins = [(n, t) for n, t, m in zip(names, alltypes, modes, strict=True) if m == "i"]
    outs = [(n, t) for n, t, m in zip(names, alltypes, modes, strict=True) if m in ("t", "o")]
    assert ins == args
    assert outs == result


def test_all_functions_plpgsql_and_pinned(db: Conn) -> None:
    rows = db.execute(
        """SELECT p.proname, l.lanname, p.proconfig FROM pg_proc p
           JOIN pg_language l ON l.oid = p.prolang
           WHERE p.pronamespace = current_schema()::regnamespace"""
    ).fetchall()
    assert {r[0] for r in rows} >= set(FUNCTIONS)
    for name, lang, config in rows:
        assert lang == "plpgsql", name
        assert any(c.startswith("search_path=") for c in config or []), name


def test_repeatable_scripts_rerun(db: Conn) -> None:
    for path in sorted(MIGRATIONS.glob("R__*.sql")):
        db.execute(script_text(path))
    assert call(db, "get_phone_number", uuid.uuid4()) == []


# --- uniqueness ----------------------------------------------------------


def test_phone_unique_among_non_deleted_null_region_is_a_value(db: Conn) -> None:
    ins = "INSERT INTO phone_numbers (phone_number, region) VALUES (%s, %s)"
    db.execute(ins, ("+100", None))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(ins, ("+100", None))
    db.execute(ins, ("+100", "US"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(ins, ("+100", "US"))
    # deleted rows do not block, and deleting twice works
    for _ in range(3):
        db.execute("UPDATE phone_numbers SET is_deleted = true WHERE phone_number = '+100'")
        db.execute(ins, ("+100", None))
    assert scalar(db, "SELECT count(*) FROM phone_numbers WHERE region IS NULL") == 4


def test_phone_checks(db: Conn) -> None:
    ins = "INSERT INTO phone_numbers (phone_number, region) VALUES (%s, %s)"
    for number, region in [("+1", "usa"), ("+1", "u1"), ("", None), ("1" * 19, None)]:
        with pytest.raises(psycopg.Error) as info:
            db.execute(ins, (number, region))
        assert (info.value.sqlstate or "")[:2] in ("22", "23")


def test_membership_unique_among_non_deleted(db: Conn) -> None:
    device = make_device(db)
    phone = make_phone(db)
    ins = "INSERT INTO memberships (phone_number_id, app_device_id) VALUES (%s, %s)"
    db.execute(ins, (phone, device))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(ins, (phone, device))
    for _ in range(2):
        db.execute("UPDATE memberships SET is_deleted = true")
        db.execute(ins, (phone, device))


def test_one_pending_flow_and_one_active_otp(db: Conn) -> None:
    device = make_device(db)
    phone_uid = make_phone(db)
    phone = scalar(db, "SELECT id FROM phone_numbers WHERE unique_id = %s", (phone_uid,))
    ins = (
        "INSERT INTO verification_flows (phone_number_id, app_device_id, purpose, expires_at) "
        "VALUES (%s, %s, 'login', now() + interval '5 min') RETURNING unique_id"
    )
    flow = scalar(db, ins, (phone, device))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(ins, (phone, device))
    db.execute("UPDATE verification_flows SET status = 'expired'")
    scalar(db, ins, (phone, device))  # a non-pending one does not block
    otp = (
        "INSERT INTO otp_records (flow_unique_id, phone_number_id, otp_hash, otp_salt, "
        "expires_at) VALUES (%s, %s, 'h', 's', now())"
    )
    db.execute(otp, (flow, phone))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(otp, (flow, phone))
    db.execute("UPDATE otp_records SET is_active = false")
    db.execute(otp, (flow, phone))


def test_device_id_unique_and_status_checks(db: Conn) -> None:
    device_id = uuid.uuid4()
    make_device(db, device_id)
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO app_devices (app_instance_id, device_id) VALUES (%s, %s)",
            (uuid.uuid4(), device_id),
        )
    phone = make_phone(db)
    bad_rows = [
        "INSERT INTO memberships (phone_number_id, app_device_id, status) "
        "SELECT p.unique_id, d.unique_id, 'bogus' FROM phone_numbers p, app_devices d",
        "INSERT INTO memberships (phone_number_id, app_device_id, creation_status) "
        "SELECT p.unique_id, d.unique_id, 'bogus' FROM phone_numbers p, app_devices d",
        "INSERT INTO verification_flows (phone_number_id, app_device_id, expires_at, status) "
        "SELECT p.id, d.unique_id, now(), 'bogus' FROM phone_numbers p, app_devices d",
        "INSERT INTO verification_flows (phone_number_id, app_device_id, expires_at, purpose) "
        "SELECT p.id, d.unique_id, now(), 'bogus' FROM phone_numbers p, app_devices d",
        "INSERT INTO verification_flows (phone_number_id, app_device_id, expires_at, otp_count) "
        "SELECT p.id, d.unique_id, now(), -1 FROM phone_numbers p, app_devices d",
    ]
    for sql in bad_rows:
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(sql)
    assert phone is not None


# --- trigger -------------------------------------------------------------


def test_updated_at_trigger(db: Conn) -> None:
    device = make_device(db)
    db.execute("UPDATE app_devices SET updated_at = now() - interval '1 day'")
    # an UPDATE that does not assign updated_at sets it to now
    db.execute("UPDATE app_devices SET device_type = 2 WHERE unique_id = %s", (device,))
    assert scalar(db, "SELECT now() - updated_at < interval '1 min' FROM app_devices")
    # an UPDATE that assigns a new value keeps it
    db.execute("UPDATE app_devices SET device_type = 3, updated_at = '2001-01-01Z'")
    assert str(scalar(db, "SELECT updated_at::date FROM app_devices")) == "2001-01-01"
    # and inside one transaction the value is the transaction time
    with db.transaction():
        db.execute("UPDATE app_devices SET device_type = 4")
        assert scalar(db, "SELECT updated_at = now() FROM app_devices")
