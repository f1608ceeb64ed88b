"""Secrets never reach output: no password in any CLI output (every command,
text and --json, -v and -vv, successes and failures, run in-process), and no OTP code, hash,
salt or secure key in the demo's output, in result reprs or in exception
messages.

The service server trusts loopback connections, so a login role created with
a password logs in with any password; the embedded server also trusts local
connections, so a dummy password in its URL is enough. Either way the
password travels in the URL exactly as a real one would.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from ecliptix import EcliptixClient, FlowPurpose, OtpKeyError, OtpKeyring, run_demo
from ecliptix import client as client_module
from tests.conftest import PgServer, url_as
from tests.security.conftest import RoleMaker

pytestmark = pytest.mark.postgres
Conn = psycopg.Connection[Any]

PASSWORD = "Pw-" + secrets.token_hex(8)  # distinctive: never a substring by chance


@dataclass(frozen=True)
class Run:
    """One in-process run of the command line: its arguments, exit code and output."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


Persistor = Callable[..., Run]


@pytest.fixture
def persistor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Persistor:
    """Run `persistor ARGS` in-process with a clean environment plus the given variables."""
    from persistor.cli.main import main

    def run(*args: str, **env: str) -> Run:
        with monkeypatch.context() as m:
            for name in list(os.environ):
                if name.startswith(("PERSISTOR_", "PG")) or name == "DATABASE_URL":
                    m.delenv(name)
            # An embedded server of our own (never started here): stop-embedded
            # must not touch anyone else's.
            env = {"PERSISTOR_EMBEDDED_DIR": str(tmp_path / "embedded"), "NO_COLOR": "1", **env}
            for name, value in env.items():
                m.setenv(name, value)
            m.chdir(tmp_path)
            capsys.readouterr()
            code = main(list(args))
            out = capsys.readouterr()
        return Run(args, code, out.out, out.err)

    return run


def assert_clean(result: Run, *secret: str) -> None:
    out = result.stdout + result.stderr
    for s in secret:
        assert s not in out, f"{result.args} leaked a secret:\n{out}"


@pytest.fixture
def secret_db(pg_server: PgServer, make_role: RoleMaker) -> Iterator[str]:
    """URL, carrying PASSWORD, of a fresh database owned by a password login role."""
    admin = pg_server.create_database()
    role = make_role(admin, password=PASSWORD)
    name = urlsplit(admin).path.lstrip("/")
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    yield url_as(admin, role, PASSWORD)
    pg_server.drop_database(admin)


RunSpec = tuple[tuple[str, ...], dict[str, str], "int | None"]


def run_all(persistor: Persistor, runs: Sequence[RunSpec]) -> None:
    """Run each (args, env, expected exit code); none may show PASSWORD."""
    for args, env, code in runs:
        result = persistor(*args, **env)
        assert_clean(result, PASSWORD)
        if code is not None:
            assert result.returncode == code, (args, env, result.stdout, result.stderr)


FLAGS = (("-v",), ("--json",), ("-vv", "--json"))


def test_no_password_in_any_command_output(
    secret_db: str, tmp_path: Path, persistor: Persistor
) -> None:
    url = secret_db
    assert PASSWORD in url
    new_dir = tmp_path / "new"
    new_dir.mkdir()

    def each(args: tuple[str, ...], code: int | None, **env: str) -> list[RunSpec]:
        return [((*args, "--url", url, *f), env, code) for f in FLAGS]

    # Before the schema exists, then the deployment, then everything else at
    # once, then clean.
    run_all(persistor, [*each(("test",), 0), *each(("validate",), 0)])
    run_all(persistor, each(("migrate", "--dry-run"), 0))
    run_all(persistor, [(("migrate", "--url", url, "-vv"), {}, 0)])
    run_all(
        persistor,
        [
            *each(("migrate",), 0),  # nothing to do
            *each(("status",), 0),
            *each(("info",), 0),
            *each(("demo",), 0),
            *each(("repair",), 0),
            *each(("baseline",), None),  # refused on a database with history
            *each(("undo",), None),  # the packaged migrations have no undo script
            *each(("new", "add_thing", "--location", str(new_dir)), 0),
            *each(("stop-embedded",), 0),
            *each(("clean",), None),  # refused: not enabled
        ],
    )
    run_all(persistor, each(("clean", "--yes"), 0, PERSISTOR_CLEAN_ENABLED="1"))
    with psycopg.connect(url) as conn:  # the clean really ran
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert row == (0,)


def test_no_password_when_things_fail(secret_db: str, tmp_path: Path, persistor: Persistor) -> None:
    url = secret_db
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "V1__broken.sql").write_text("CREATE TABLE t (id int);\nSELECT 1 / 0;\n")
    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()
    (misnamed / "V1__ok.sql").write_text("SELECT 1;\n")
    (misnamed / "v2_not_a_name.sql").write_text("SELECT 1;\n")
    refused = urlsplit_port(url, 1)  # nothing listens on port 1
    user = urlsplit(url).username
    runs: list[RunSpec] = []
    for flags in (("-v",), ("-vv", "--json")):
        runs += [
            (("migrate", "--url", url, "--location", str(broken), *flags), {}, 4),
            (("validate", "--url", url, "--location", str(misnamed), *flags), {}, 5),
            (("migrate", "--url", url, "--location", str(misnamed), *flags), {}, 5),
            (("test", *flags), {"PERSISTOR_URL": refused}, 3),
            (("migrate", *flags), {"DATABASE_URL": refused}, 3),
            (("demo", *flags), {"PERSISTOR_URL": refused}, 3),
            (("status", *flags), {"PERSISTOR_URL": refused}, 3),
            (
                ("test", *flags),
                {"PERSISTOR_URL": urlsplit(url)._replace(path="/no_db").geturl()},
                3,
            ),
            (
                ("test", *flags),
                {"PERSISTOR_URL": f"postgresql://{user}:{PASSWORD}@nohost.invalid/d"},
                3,
            ),
        ]
    run_all(persistor, runs)


def test_no_password_from_libpq_environment(pg_server: PgServer, persistor: Persistor) -> None:
    """PGPASSWORD and a password=… query parameter are not shown either."""
    url = urlsplit_port(pg_server.admin_url, 1)
    for env in (
        {"PGPASSWORD": PASSWORD, "PERSISTOR_URL": url},
        {"PERSISTOR_URL": url + ("&" if "?" in url else "?") + f"password={PASSWORD}"},
    ):
        for flags in (("-v",), ("-vv", "--json")):
            result = persistor("test", *flags, **env)
            assert result.returncode == 3
            assert_clean(result, PASSWORD)


def test_no_password_in_a_malformed_url(persistor: Persistor) -> None:
    url = f"postgresql://someone:{PASSWORD}%zz@127.0.0.1:1/db"
    leaks = []
    for command in ("test", "demo"):
        result = persistor(command, "--url", url, "--json")
        if PASSWORD in result.stdout + result.stderr:
            leaks.append(command)
    assert leaks == []


def urlsplit_port(url: str, port: int) -> str:
    """Return url pointing at a port of 127.0.0.1 instead of its own host."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc, query="").geturl()


# -- the demo and the client: OTP codes, hashes, salts, secure keys -------------

CODE = "482913"
KEY = b"K3y!" + secrets.token_bytes(28)
OTP_KEY = b"OtpK" + secrets.token_bytes(28)


def _forms(data: bytes) -> list[str]:
    return [
        data.hex(),
        data.hex().upper(),
        repr(data),
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
    ]


def _stored_secrets(db: Conn) -> list[str]:
    found: list[str] = []
    for otp_hash, otp_salt in db.execute("SELECT otp_hash, otp_salt FROM otp_records"):
        found += [otp_hash, otp_salt]
    for (key,) in db.execute("SELECT secure_key FROM memberships WHERE secure_key IS NOT NULL"):
        found += _forms(bytes(key))
    assert found
    return found


def test_demo_cli_output_carries_no_otp_or_key(
    db: Conn, ecliptix_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from persistor.cli.main import main

    monkeypatch.setattr(client_module, "generate_otp", lambda digits=6: CODE)
    monkeypatch.setattr(secrets, "token_bytes", lambda n=32: KEY[:n])
    outputs = []
    for flags in (["-v"], ["--json"], ["-vv"]):
        assert main(["demo", "--url", ecliptix_url, *flags]) == 0
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    text = "\n".join(outputs)
    assert "log in" in text or "log_in" in text or "success" in text
    for secret in [CODE, *_forms(KEY), *_stored_secrets(db)]:
        assert secret not in text


def test_client_results_and_errors_carry_no_otp_or_key(
    db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "generate_otp", lambda digits=6: CODE)
    client = EcliptixClient(db, otp_keys=OtpKeyring([("sec-k", OTP_KEY)]))
    report = run_demo(db, phone_number="+15550300")
    assert report.succeeded
    seen = [repr(report), *(repr(s) for s in report.steps), str(report)]

    device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
    phone = client.ensure_phone_number("+15550301", None, device.unique_id)
    assert phone.unique_id is not None
    flow = client.initiate_verification_flow(
        device.unique_id, phone.unique_id, FlowPurpose.REGISTRATION, 9
    )
    assert flow.unique_identifier is not None
    issued = client.issue_otp(flow.unique_identifier)
    assert issued.code == CODE
    state = client.get_full_flow_state(flow.unique_identifier)
    assert state is not None and state.otp_salt == "sec-k"
    again = client.initiate_verification_flow(
        device.unique_id, phone.unique_id, FlowPurpose.REGISTRATION, 9
    )
    assert again.otp_salt == state.otp_salt
    stored = db.execute("SELECT otp_hash FROM otp_records WHERE otp_salt = 'sec-k'").fetchone()
    assert stored is not None
    wrong = client.check_otp(flow.unique_identifier, "000000")
    seen += [repr(issued), str(issued), repr(state), str(state), repr(again), repr(wrong)]
    login = client.login_membership("+15550300")
    assert login.secure_key
    seen += [repr(login), str(login)]
    secrets_ = [CODE, stored[0], *_forms(OTP_KEY), *_forms(login.secure_key)]

    # Errors about secret-carrying arguments name the argument, not its value.
    long_hash = "H" * 300
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    for call in (
        lambda: client.insert_otp_record(flow.unique_identifier, long_hash, "salt-x", expires),
        lambda: client.insert_otp_record(flow.unique_identifier, "hash-x", long_hash, expires),
        lambda: client.update_membership_secure_key(uuid.uuid4(), "a str key"),  # type: ignore[arg-type]
        lambda: client.check_otp(flow.unique_identifier, 482913),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError) as info:
            call()
        seen.append(str(info.value))
    secrets_ += [long_hash, "a str key", "482913"]
    for fn, args in (
        ("insert_otp_record", (flow.unique_identifier, long_hash, "s", expires)),
        ("insert_otp_record", (flow.unique_identifier, "h", long_hash, expires)),
    ):
        with pytest.raises(psycopg.Error) as db_info:
            db.execute(f"SELECT * FROM {fn}(%s, %s, %s, %s)", args)
        assert db_info.value.sqlstate == "22001"
        seen.append(str(db_info.value))
    # A stored hash that is not ours: the error says so without quoting it.
    bogus_hash, bogus_salt = "not-a-hash-" + secrets.token_hex(8), "salt-" + secrets.token_hex(8)
    db.execute("UPDATE otp_records SET created_at = created_at - interval '1 minute'")
    assert client.insert_otp_record(
        flow.unique_identifier, bogus_hash, bogus_salt, expires
    ).otp_unique_id
    with pytest.raises(ValueError) as info:
        client.check_otp(flow.unique_identifier, CODE)
    seen += [str(info.value), str(info.value.__cause__)]
    secrets_ += [bogus_hash, bogus_salt]

    text = "\n".join(seen)
    for secret in secrets_:
        assert secret not in text, secret


# -- the OTP key (ECLIPTIX_OTP_KEYS) ---------------------------------------------


def test_otp_key_never_appears_in_output_reprs_or_errors(
    db: Conn, ecliptix_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecliptix.attack_run import run_attack
    from ecliptix.otp import ENV_VAR
    from persistor.cli.main import main

    encoded = base64.b64encode(OTP_KEY).decode()
    monkeypatch.setenv(ENV_VAR, f"live:{encoded}")
    seen = []
    for flags in (["-vv"], ["--json"], ["-vv", "--json"]):
        assert main(["demo", "--url", ecliptix_url, *flags]) == 0
        captured = capsys.readouterr()
        seen.append(captured.out + captured.err)
    assert db.execute("SELECT count(*) FROM otp_records WHERE otp_salt = 'live'").fetchone() != (0,)
    client = EcliptixClient(db)
    ring = OtpKeyring.from_env()
    seen += [repr(client), str(client), repr(ring), str(ring)]
    report = run_attack(ecliptix_url, sessions=2, duration=0.5)
    seen += [repr(report), json.dumps(report.to_json()), *(line for line, _ in report.lines())]
    # Malformed or refused keys: the errors name the entry and the problem, not the value.
    for text in (
        encoded,  # no id
        f"live:{encoded[:8]}",  # too short
        f"live:{encoded}!",  # not base64
        f"{encoded}:{encoded}",  # the key where the id goes
        f"live:{encoded},live:{encoded}",  # the same id twice
    ):
        monkeypatch.setenv(ENV_VAR, text)
        with pytest.raises(OtpKeyError) as info:
            EcliptixClient(db)
        seen += [str(info.value), repr(info.value)]
    with pytest.raises(OtpKeyError) as info:
        OtpKeyring([("other", b"x" * 32)]).digest(uuid.uuid4(), CODE, "live")
    seen.append(str(info.value))
    text = "\n".join(seen)
    for secret in [*_forms(OTP_KEY), encoded[:8], OTP_KEY.decode("latin-1")]:
        assert secret not in text, secret
