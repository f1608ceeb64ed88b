"""E1: the Ecliptix registration-and-login flow through persistor's Python client vs pgbench.

One flow = register device, ensure phone, initiate registration flow, insert OTP
(insert_otp_record with a hash computed ONCE up front: scrypt is left out so the
database path is what is measured), verify it (get_full_flow_state +
update_otp_status verified, i.e. check_otp without scrypt), confirm the flow
verified, create membership, set secure key, log in: 10 function calls.

persistor side: N processes, one psycopg connection each, opened as
`persistor demo` opens it (autocommit=True, server-default isolation), each
call through EcliptixClient (its own READ COMMITTED transaction per call).
pgbench side: the same 10 SQL function calls in a custom script, -M prepared,
N clients, values chained with \\gset: the limit for a client of this database.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import re
import secrets
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

import tools as T

STEPS = [
    "register_app_device_if_not_exists", "ensure_phone_number", "initiate_verification_flow",
    "insert_otp_record", "get_full_flow_state", "update_otp_status",
    "update_verification_flow_status", "create_membership", "update_membership_secure_key",
    "login_membership",
]

PGBENCH_SCRIPT = """\
\\set r random(1, 999999999999)
\\set conn random(1, 2147483647)
SELECT unique_id AS dev FROM register_app_device_if_not_exists(gen_random_uuid(), gen_random_uuid(), 1) \\gset
SELECT unique_id AS phone FROM ensure_phone_number(('+1' || lpad(:r::text, 12, '0'))::varchar, 'US'::varchar, :dev::uuid) \\gset
SELECT unique_identifier AS flow FROM initiate_verification_flow(:dev::uuid, :phone::uuid, 'registration'::varchar, :conn::bigint) \\gset
SELECT otp_unique_id AS otp FROM insert_otp_record(:flow::uuid, '{hash}'::text, '{salt}'::text, now() + interval '5 minutes', 'pending'::varchar) \\gset
SELECT * FROM get_full_flow_state(:flow::uuid);
SELECT * FROM update_otp_status(:otp::uuid, 'verified'::varchar);
SELECT * FROM update_verification_flow_status(:flow::uuid, 'verified'::varchar);
SELECT membership_unique_id AS mem FROM create_membership(:flow::uuid, :conn::bigint, :otp::uuid, 'otp_verified'::varchar) \\gset
SELECT * FROM update_membership_secure_key(:mem::uuid, decode(md5(:r::text) || md5(:conn::text), 'hex'));
SELECT * FROM login_membership(('+1' || lpad(:r::text, 12, '0'))::varchar);
"""


def _worker(dburl: str, otp_hash: str, otp_salt: str, barrier, deadline_q, out_q) -> None:  # type: ignore[no-untyped-def]
    from persistor.ecliptix import EcliptixClient
    from persistor.ecliptix.models import CreationStatus, FlowPurpose, FlowStatus, OtpStatus

    lat: dict[str, list[float]] = {s: [] for s in STEPS}
    flows: list[float] = []
    errors = 0
    conn = psycopg.connect(dburl, autocommit=True)  # as persistor.api.demo opens it
    c = EcliptixClient(conn)
    pc = time.perf_counter
    barrier.wait()
    deadline = deadline_q.get()
    while time.perf_counter() < deadline:
        t0 = pc()
        try:
            t = pc(); dev = c.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()); lat[STEPS[0]].append(pc() - t)
            phone = f"+1{secrets.randbelow(10**12):012d}"
            t = pc(); ph = c.ensure_phone_number(phone, "US", dev.unique_id); lat[STEPS[1]].append(pc() - t)
            conn_id = secrets.randbelow(2**31)
            t = pc(); fl = c.initiate_verification_flow(dev.unique_id, ph.unique_id, FlowPurpose.REGISTRATION, conn_id); lat[STEPS[2]].append(pc() - t)
            exp = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
            t = pc(); otp = c.insert_otp_record(fl.unique_identifier, otp_hash, otp_salt, exp); lat[STEPS[3]].append(pc() - t)
            t = pc(); c.get_full_flow_state(fl.unique_identifier); lat[STEPS[4]].append(pc() - t)
            t = pc(); up = c.update_otp_status(otp.otp_unique_id, OtpStatus.VERIFIED); lat[STEPS[5]].append(pc() - t)
            t = pc(); c.update_verification_flow_status(fl.unique_identifier, FlowStatus.VERIFIED); lat[STEPS[6]].append(pc() - t)
            t = pc(); m = c.create_membership(fl.unique_identifier, conn_id, otp.otp_unique_id, CreationStatus.OTP_VERIFIED); lat[STEPS[7]].append(pc() - t)
            key = secrets.token_bytes(32)
            t = pc(); c.update_membership_secure_key(m.membership_unique_id, key); lat[STEPS[8]].append(pc() - t)
            t = pc(); lg = c.login_membership(phone); lat[STEPS[9]].append(pc() - t)
            if not up.success or lg.secure_key != key:
                errors += 1
                continue
            flows.append(pc() - t0)
        except Exception:  # noqa: BLE001
            errors += 1
    conn.close()
    out_q.put((flows, lat, errors))


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def run_persistor(dburl: str, clients: int, seconds: float, otp_hash: str, otp_salt: str) -> dict:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    dq, oq = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(dburl, otp_hash, otp_salt, barrier, dq, oq)) for _ in range(clients)]
    for p in procs:
        p.start()
    barrier.wait()  # every client connected
    deadline = time.perf_counter() + seconds
    for _ in procs:
        dq.put(deadline)
    results = [oq.get() for _ in procs]
    elapsed = max(seconds, time.perf_counter() - deadline + seconds)
    for p in procs:
        p.join()
    flows = [f for r in results for f in r[0]]
    lat = {s: [x for r in results for x in r[1][s]] for s in STEPS}
    return {
        "clients": clients, "seconds": elapsed, "flows": len(flows), "errors": sum(r[2] for r in results),
        "flows_per_s": len(flows) / elapsed,
        "flow_p50_ms": 1000 * (_pct(flows, 50) or 0), "flow_p99_ms": 1000 * (_pct(flows, 99) or 0),
        "per_function_ms": {s: {"p50": 1000 * (_pct(v, 50) or 0), "p99": 1000 * (_pct(v, 99) or 0),
                                "mean": 1000 * (statistics.fmean(v) if v else 0)} for s, v in lat.items()},
    }


def run_pgbench(dburl: str, clients: int, seconds: float, script: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 4)),
                "-T", str(int(seconds)), "-r", "-l", "--log-prefix", f"{tmp}/pgb", "-f", str(script), dburl]
        r = subprocess.run(argv, capture_output=True, text=True)
        lats: list[float] = []
        for f in Path(tmp).glob("pgb*"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    lats.append(int(parts[2]) / 1e6)
    out = r.stdout + r.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    per: dict[str, dict[str, float]] = {}
    sql_lines = [ln for ln in out.splitlines() if re.match(r"\s+[\d.]+\s+\d+\s+SELECT", ln)]
    for ln, step in zip(sql_lines, STEPS, strict=False):
        per[step] = {"mean": float(ln.split()[0])}
    return {
        "clients": clients, "rc": r.returncode, "flows_per_s": float(tps.group(1)) if tps else None,
        "failed": int(failed.group(1)) if failed else None,
        "flow_p50_ms": 1000 * (_pct(lats, 50) or 0), "flow_p99_ms": 1000 * (_pct(lats, 99) or 0),
        "per_function_ms": per, "output_tail": out[-1500:] if r.returncode else "",
    }


def run(quick: bool, log: Callable[[str], None]) -> dict:
    import run as R
    from persistor.ecliptix.otp import hash_otp

    counts = [1, 4, 16, 64] if not quick else [1, 4, 16]
    seconds = 3.0 if quick else 6.0
    db = R.fresh_db("e1")
    dburl = T.url(db)
    secs, rc = R.run_cmd(T.Cmd([str(T.VENV / "persistor"), "migrate", "--url", dburl]), "e1_deploy")
    out: dict = {"deploy_s": secs, "deploy_rc": rc, "seconds_per_point": seconds, "points": []}
    if rc != 0:
        return out
    with psycopg.connect(dburl, autocommit=True) as c:
        c.execute(f"ALTER DATABASE \"{db}\" SET search_path = public")
    otp_hash, otp_salt = hash_otp("123456")  # once: scrypt stays out of the measurement
    script = R.WORK / "e1_flow.sql"
    script.write_text(PGBENCH_SCRIPT.format(hash=otp_hash, salt=otp_salt))
    out["pgbench_script"] = "bench/work/e1_flow.sql (generated from bench/e1.py PGBENCH_SCRIPT)"
    for n in counts:
        p = run_persistor(dburl, n, seconds, otp_hash, otp_salt)
        g = run_pgbench(dburl, n, seconds, script)
        ratio = (p["flows_per_s"] / g["flows_per_s"]) if g.get("flows_per_s") else None
        log(f"E1 {n:>2} clients: persistor {p['flows_per_s']:.1f} flows/s ({p['errors']} errors), "
            f"pgbench {g['flows_per_s']} flows/s, ratio {ratio if ratio is None else round(ratio, 2)}")
        out["points"].append({"clients": n, "persistor": p, "pgbench": g, "ratio": ratio})
    R.drop_db(db)
    return out
