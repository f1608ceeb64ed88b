"""E1 on version 1 and version 2 of the Ecliptix database, on one server, in one run.

Three sides, each measured on a fresh copy of its deployed (and ANALYZEd)
database, in rounds of v1, v2, v2-native and the reverse, so that the
machine's drift hits all of them alike; a ratio is the median of the
rounds' ratios:

- ``v1``: the version 1 database (tests/ecliptix/data/v1_migrations), the E1
  flow of bench/e1.py (insert_otp_record + update_otp_status, as a version 1
  application checks codes itself);
- ``v2``: the packaged (version 2) database, the same flow: what an
  application written for version 1 sees after the upgrade;
- ``v2_native``: version 2, the flow as version 2 intends it: the code
  checked by ``verify_otp`` with its keyed digest, the login from the device.

Used by bench/security_report.py (docs/SECURITY.md); runs with the project's
own virtualenv (psycopg, persistor, ecliptix importable).
"""

from __future__ import annotations

import datetime as dt
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import e1
import psycopg

ROOT = Path(__file__).resolve().parent.parent
V1_MIGRATIONS = ROOT / "tests" / "ecliptix" / "data" / "v1_migrations"
_KEY = (b"e1-versions-key-" * 2, "e1")  # fixed: the digest is made inside the worker
SIDES = ("v1", "v2", "v2_native")


def _client_v2(conn, deadline: float, otp_hash: str, otp_salt: str, lat, flows, errors) -> None:  # type: ignore[no-untyped-def]
    """The E1 flow as version 2 intends it; latencies under bench/e1.py's step names."""
    from ecliptix import EcliptixClient, OtpKeyring
    from ecliptix.models import CreationStatus, FlowPurpose, FlowStatus

    keyring = OtpKeyring([(_KEY[1], _KEY[0])])
    c = EcliptixClient(conn, otp_keys=keyring)
    pc, steps = time.perf_counter, e1.STEPS
    failed = 0
    while pc() < deadline:
        t0 = pc()
        try:
            t = pc()
            dev = c.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
            lat[steps[0]].append(pc() - t)
            phone = f"+1{secrets.randbelow(10**12):012d}"
            t = pc()
            ph = c.ensure_phone_number(phone, "US", dev).unique_id
            lat[steps[1]].append(pc() - t)
            conn_id = secrets.randbelow(2**31)
            t = pc()
            fl = c.initiate_verification_flow(dev, ph, FlowPurpose.REGISTRATION, conn_id)  # type: ignore[arg-type]
            lat[steps[2]].append(pc() - t)
            flow = fl.unique_identifier
            digest = keyring.digest(flow, "123456")  # type: ignore[arg-type]
            exp = min(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), fl.expires_at)  # type: ignore[type-var]
            t = pc()
            otp = c.insert_otp_record(flow, digest, keyring.current_id, exp)  # type: ignore[arg-type]
            lat[steps[3]].append(pc() - t)
            t = pc()
            c.get_full_flow_state(flow)  # type: ignore[arg-type]
            lat[steps[4]].append(pc() - t)
            t = pc()
            check = c.verify_otp(flow, digest)  # type: ignore[arg-type]
            lat[steps[5]].append(pc() - t)
            t = pc()
            c.update_verification_flow_status(flow, FlowStatus.VERIFIED)  # type: ignore[arg-type]
            lat[steps[6]].append(pc() - t)
            t = pc()
            m = c.create_membership(flow, conn_id, otp.otp_unique_id, CreationStatus.OTP_VERIFIED)  # type: ignore[arg-type]
            lat[steps[7]].append(pc() - t)
            key = secrets.token_bytes(32)
            t = pc()
            c.update_membership_secure_key(m.membership_unique_id, key)  # type: ignore[arg-type]
            lat[steps[8]].append(pc() - t)
            t = pc()
            lg = c.login_membership(phone, dev)
            lat[steps[9]].append(pc() - t)
            if not check.verified or lg.secure_key != key:
                failed += 1
                continue
            flows.append(pc() - t0)
        except Exception:
            failed += 1
    errors.append(failed)


def _template(make_db: Callable[[str | None], str], side: str) -> str:
    """A database with the side's schema deployed and ANALYZEd: the template of its rounds."""
    from persistor.api import migrate
    from persistor.settings import Settings

    url = make_db(None)
    if side == "v1":
        migrate(Settings(url=url, locations=(V1_MIGRATIONS,), locations_configured=True))
    else:
        migrate(Settings(url=url))
    # Planner statistics from the start, on both versions alike: a fresh
    # database has none, and autovacuum may be off (it is on this machine).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return url


def _order(round_no: int) -> tuple[str, ...]:
    """v1, v2, v2 native, then the reverse: a steady drift of the machine hits every side alike."""
    return SIDES if round_no % 2 == 0 else SIDES[::-1]


def _measure(url: str, side: str, clients: int, seconds: float) -> dict:  # type: ignore[type-arg]
    return e1.run_persistor(
        url,
        clients,
        seconds,
        "0" * 64,  # the version 1 flow stores any hash; nothing compares it
        "e1",
        e1.workers(clients),
        client=_client_v2 if side == "v2_native" else None,
    )


def run_versions(
    make_db: Callable[[str | None], str],
    drop_db: Callable[[str], None],
    *,
    clients: tuple[int, ...] = (4, 16),
    seconds: float = 5.0,
    repeats: int = 5,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure E1 flows/s of each side at each client count; medians and ratios to v1.

    make_db(template) makes a fresh database (a copy of template when given)
    and returns its URL. Each side is deployed once into a template; every
    measurement runs on a fresh copy of it. A round measures v1, v2 and v2
    native back to back (in alternating order); a side's ratio is the median
    over rounds of its flows/s divided by v1's in the same round, so that the
    machine's load, which moves from round to round, cancels out.
    """
    deployed = {version: _template(make_db, version) for version in ("v1", "v2")}
    templates = {side: deployed["v1" if side == "v1" else "v2"] for side in SIDES}
    out: dict = {"seconds_per_point": seconds, "repeats": repeats, "points": []}
    try:
        for n in clients:
            out["points"].append(_point(make_db, drop_db, templates, n, seconds, repeats, log))
    finally:
        for url in deployed.values():
            drop_db(url)
    return out


def _point(make_db, drop_db, templates, n, seconds, repeats, log) -> dict:  # type: ignore[no-untyped-def]
    runs: dict[str, list[float]] = {side: [] for side in SIDES}
    p50s: dict[str, dict[str, list[float]]] = {side: {} for side in SIDES}
    errors: dict[str, int] = dict.fromkeys(SIDES, 0)
    for side in SIDES:  # warm-up, not counted: caches, the first fork, the first connections
        url = make_db(_db_name(templates[side]))
        try:
            _measure(url, side, n, 1.0)
        finally:
            drop_db(url)
    for round_no in range(repeats):
        for side in _order(round_no):
            url = make_db(_db_name(templates[side]))
            try:
                r = _measure(url, side, n, seconds)
            finally:
                drop_db(url)
            runs[side].append(r["flows_per_s"])
            errors[side] += r["errors"]
            for step, ms in r["per_function_ms"].items():
                p50s[side].setdefault(step, []).append(ms["p50"])
    point: dict = {"clients": n, "errors": errors}
    for side in SIDES:
        point[side] = round(statistics.median(runs[side]), 1)
        point[f"{side}_runs"] = [round(x, 1) for x in runs[side]]
    # Which calls got slower: the median over repeats of each call's p50, in ms.
    point["call_p50_ms"] = {
        side: {step: round(statistics.median(v), 2) for step, v in p50s[side].items()}
        for side in SIDES
    }
    for side in ("v2", "v2_native"):
        paired = [x / y for x, y in zip(runs[side], runs["v1"], strict=True) if y]
        point[f"{side}_round_ratios"] = [round(x, 3) for x in paired]
        point[f"{side}_ratio"] = round(statistics.median(paired), 3) if paired else None
    add_total_ratios(point)
    log(
        f"E1 {n} clients: v1 {point['v1']} flows/s, v2 {point['v2']} ({point['v2_ratio']}), "
        f"v2 native {point['v2_native']} ({point['v2_native_ratio']}); errors {errors}; "
        f"rounds v2/v1 {point['v2_round_ratios']}, v2 native/v1 {point['v2_native_round_ratios']}"
    )
    return point


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def add_total_ratios(point: dict) -> None:  # type: ignore[type-arg]
    """Add each side's flows over all rounds divided by v1's: a second estimate beside the median."""
    total = sum(point["v1_runs"])
    for side in ("v2", "v2_native"):
        point[f"{side}_total_ratio"] = (
            round(sum(point[f"{side}_runs"]) / total, 3) if total else None
        )
