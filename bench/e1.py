"""E1: the Ecliptix registration-and-login flow through persistor's Python client vs pgbench.

One flow = register device, ensure phone, initiate registration flow, insert OTP
(insert_otp_record with a digest computed ONCE up front, expiring with the flow
at the latest, so the database path is what is measured), verify it
(get_full_flow_state + update_otp_status verified, as a version 1 application
checks codes itself), confirm the flow verified, create membership, set secure
key, log in: 10 function calls. bench/e1_versions.py runs it on version 1 and
version 2, and the version 2 flow (verify_otp) beside it.

persistor side: N clients, each a thread with its own psycopg connection,
opened as `persistor demo` opens it (autocommit=True, server-default
isolation), each call through EcliptixClient, spread over as many worker
processes as pgbench has threads (-j min(N, 4)): the same number of OS
workers on both sides. At 16 and 64 clients it is also measured with one
process per client (the earlier layout), reported beside it.
pgbench side: the same 10 SQL function calls in a custom script, -M prepared,
N clients, values chained with \\gset: the limit for a client of this database.
Every measurement starts on a fresh database: the tables grow by ~2,000 flows
a second, and a tool measured later on a bigger database would be at a
disadvantage.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import re
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import tools as T

STEPS = [
    "register_app_device_if_not_exists",
    "ensure_phone_number",
    "initiate_verification_flow",
    "insert_otp_record",
    "get_full_flow_state",
    "update_otp_status",
    "update_verification_flow_status",
    "create_membership",
    "update_membership_secure_key",
    "login_membership",
]

PGBENCH_SCRIPT = """\
\\set r random(1, 999999999999)
\\set conn random(1, 2147483647)
SELECT unique_id AS dev FROM register_app_device_if_not_exists(gen_random_uuid(), gen_random_uuid(), 1) \\gset
SELECT unique_id AS phone FROM ensure_phone_number(('+1' || lpad(:r::text, 12, '0'))::varchar, 'US'::varchar, :dev::uuid) \\gset
SELECT unique_identifier AS flow, extract(epoch FROM expires_at) AS fexp FROM initiate_verification_flow(:dev::uuid, :phone::uuid, 'registration'::varchar, :conn::bigint) \\gset
SELECT otp_unique_id AS otp FROM insert_otp_record(:flow::uuid, '{hash}'::text, '{salt}'::text, least(now() + interval '5 minutes', to_timestamp(:fexp) - interval '1 second'), 'pending'::varchar) \\gset
SELECT * FROM get_full_flow_state(:flow::uuid);
SELECT * FROM update_otp_status(:otp::uuid, 'verified'::varchar);
SELECT * FROM update_verification_flow_status(:flow::uuid, 'verified'::varchar);
SELECT membership_unique_id AS mem FROM create_membership(:flow::uuid, :conn::bigint, :otp::uuid, 'otp_verified'::varchar) \\gset
SELECT * FROM update_membership_secure_key(:mem::uuid, decode(md5(:r::text) || md5(:conn::text), 'hex'));
SELECT * FROM login_membership(('+1' || lpad(:r::text, 12, '0'))::varchar);
"""


def _worker(
    client, dburl: str, threads: int, otp_hash: str, otp_salt: str, barrier, deadline_q, out_q
) -> None:  # type: ignore[no-untyped-def]
    # list.append is atomic: the client threads of one process share these lists.
    lat: dict[str, list[float]] = {s: [] for s in STEPS}
    flows: list[float] = []
    errors: list[int] = []
    conns = [
        psycopg.connect(dburl, autocommit=True) for _ in range(threads)
    ]  # as persistor.api.demo opens it
    barrier.wait()
    deadline = deadline_q.get()
    clients = [
        threading.Thread(
            target=client, args=(conn, deadline, otp_hash, otp_salt, lat, flows, errors)
        )
        for conn in conns
    ]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    for conn in conns:
        conn.close()
    out_q.put((flows, lat, sum(errors)))


def _client(conn, deadline: float, otp_hash: str, otp_salt: str, lat, flows, errors) -> None:  # type: ignore[no-untyped-def]
    from ecliptix import EcliptixClient
    from ecliptix.models import CreationStatus, FlowPurpose, FlowStatus, OtpStatus

    c = EcliptixClient(conn)
    pc = time.perf_counter
    failed = 0
    while time.perf_counter() < deadline:
        t0 = pc()
        try:
            t = pc()
            dev = c.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4())
            lat[STEPS[0]].append(pc() - t)
            phone = f"+1{secrets.randbelow(10**12):012d}"
            t = pc()
            ph = c.ensure_phone_number(phone, "US", dev.unique_id)
            lat[STEPS[1]].append(pc() - t)
            conn_id = secrets.randbelow(2**31)
            t = pc()
            fl = c.initiate_verification_flow(
                dev.unique_id, ph.unique_id, FlowPurpose.REGISTRATION, conn_id
            )
            lat[STEPS[2]].append(pc() - t)
            # A code never outlives its flow (version 2 refuses it).
            exp = min(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), fl.expires_at)
            t = pc()
            otp = c.insert_otp_record(fl.unique_identifier, otp_hash, otp_salt, exp)
            lat[STEPS[3]].append(pc() - t)
            t = pc()
            c.get_full_flow_state(fl.unique_identifier)
            lat[STEPS[4]].append(pc() - t)
            t = pc()
            up = c.update_otp_status(otp.otp_unique_id, OtpStatus.VERIFIED)
            lat[STEPS[5]].append(pc() - t)
            t = pc()
            c.update_verification_flow_status(fl.unique_identifier, FlowStatus.VERIFIED)
            lat[STEPS[6]].append(pc() - t)
            t = pc()
            m = c.create_membership(
                fl.unique_identifier, conn_id, otp.otp_unique_id, CreationStatus.OTP_VERIFIED
            )
            lat[STEPS[7]].append(pc() - t)
            key = secrets.token_bytes(32)
            t = pc()
            c.update_membership_secure_key(m.membership_unique_id, key)
            lat[STEPS[8]].append(pc() - t)
            t = pc()
            lg = c.login_membership(phone)
            lat[STEPS[9]].append(pc() - t)
            if not up.success or lg.secure_key != key:
                failed += 1
                continue
            flows.append(pc() - t0)
        except Exception:
            failed += 1
    errors.append(failed)


# The bare-psycopg floor: the same 10 calls with the same values and the same
# timing around each, straight through a psycopg cursor with server-side
# prepared statements (prepare=True, as pgbench -M prepared) and tuple rows:
# what any Python client of this database pays, without EcliptixClient's
# validation, typed rows and enums.
_FLOOR_SQL = [
    "SELECT * FROM register_app_device_if_not_exists(%s::uuid, %s::uuid, %s::integer)",
    "SELECT * FROM ensure_phone_number(%s::varchar, %s::varchar, %s::uuid)",
    "SELECT * FROM initiate_verification_flow(%s::uuid, %s::uuid, %s::varchar, %s::bigint)",
    "SELECT * FROM insert_otp_record(%s::uuid, %s::text, %s::text, %s::timestamptz, %s::varchar)",
    "SELECT * FROM get_full_flow_state(%s::uuid)",
    "SELECT * FROM update_otp_status(%s::uuid, %s::varchar)",
    "SELECT * FROM update_verification_flow_status(%s::uuid, %s::varchar)",
    "SELECT * FROM create_membership(%s::uuid, %s::bigint, %s::uuid, %s::varchar)",
    "SELECT * FROM update_membership_secure_key(%s::uuid, %s::bytea)",
    "SELECT * FROM login_membership(%s::varchar)",
]


def _floor_client(conn, deadline: float, otp_hash: str, otp_salt: str, lat, flows, errors) -> None:  # type: ignore[no-untyped-def]
    cur = conn.cursor()
    pc = time.perf_counter
    q = [x.encode() for x in _FLOOR_SQL]

    def call(i: int, args: tuple) -> list:  # type: ignore[type-arg]
        t = pc()
        rows = cur.execute(q[i], args, prepare=True).fetchall()
        lat[STEPS[i]].append(pc() - t)
        return rows

    failed = 0
    while time.perf_counter() < deadline:
        t0 = pc()
        try:
            dev = call(0, (uuid.uuid4(), uuid.uuid4(), 1))[0][0]
            phone = f"+1{secrets.randbelow(10**12):012d}"
            ph = call(1, (phone, "US", dev))[0][0]
            conn_id = secrets.randbelow(2**31)
            fl, *_, fl_exp = call(2, (dev, ph, "registration", conn_id))[0][:5]
            exp = min(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5), fl_exp)
            otp = call(3, (fl, otp_hash, otp_salt, exp, "pending"))[0][0]
            call(4, (fl,))
            up = call(5, (otp, "verified"))[0]
            call(6, (fl, "verified"))
            mem = call(7, (fl, conn_id, otp, "otp_verified"))[0][0]
            key = secrets.token_bytes(32)
            call(8, (mem, key))
            lg = call(9, (phone,))[0]
            if not up[0] or bytes(lg[3] or b"") != key:
                failed += 1
                continue
            flows.append(pc() - t0)
        except Exception:
            failed += 1
    errors.append(failed)


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def run_persistor(
    dburl: str,
    clients: int,
    seconds: float,
    otp_hash: str,
    otp_salt: str,
    processes: int,
    floor: bool = False,
    client: Callable[..., None] | None = None,
) -> dict:
    """clients connections, as threads spread evenly over processes worker processes."""
    client = client or (_floor_client if floor else _client)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    dq, oq = ctx.Queue(), ctx.Queue()
    share = [clients // processes + (i < clients % processes) for i in range(processes)]
    procs = [
        ctx.Process(target=_worker, args=(client, dburl, n, otp_hash, otp_salt, barrier, dq, oq))
        for n in share
    ]
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
        "clients": clients,
        "processes": processes,
        "seconds": elapsed,
        "flows": len(flows),
        "errors": sum(r[2] for r in results),
        "flows_per_s": len(flows) / elapsed,
        "flow_p50_ms": 1000 * (_pct(flows, 50) or 0),
        "flow_p99_ms": 1000 * (_pct(flows, 99) or 0),
        "per_function_ms": {
            s: {
                "p50": 1000 * (_pct(v, 50) or 0),
                "p99": 1000 * (_pct(v, 99) or 0),
                "mean": 1000 * (statistics.fmean(v) if v else 0),
            }
            for s, v in lat.items()
        },
    }


PGBENCH_THREADS = 4


def workers(clients: int) -> int:
    """Worker threads of pgbench, and worker processes of the persistor side, for a client count."""
    return min(clients, PGBENCH_THREADS)


def run_pgbench(dburl: str, clients: int, seconds: float, script: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(workers(clients)),
            "-T",
            str(int(seconds)),
            "-r",
            "-l",
            "--log-prefix",
            f"{tmp}/pgb",
            "-f",
            str(script),
            dburl,
        ]
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
        "clients": clients,
        "rc": r.returncode,
        "flows_per_s": float(tps.group(1)) if tps else None,
        "failed": int(failed.group(1)) if failed else None,
        "flow_p50_ms": 1000 * (_pct(lats, 50) or 0),
        "flow_p99_ms": 1000 * (_pct(lats, 99) or 0),
        "per_function_ms": per,
        "output_tail": out[-1500:] if r.returncode else "",
    }


def _fresh_deployed_db(R, name: str) -> str | None:  # type: ignore[no-untyped-def]
    """A new database with the Ecliptix schema deployed by persistor; None if that failed."""
    db = R.fresh_db(name)
    dburl = T.url(db)
    _, rc = R.run_cmd(
        T.Cmd([str(T.VENV / "persistor"), "migrate", "--url", dburl]), f"{name}_deploy"
    )
    if rc != 0:
        return None
    with psycopg.connect(dburl, autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{db}" SET search_path = public')
    return dburl


def run(quick: bool, log: Callable[[str], None]) -> dict:
    import run as R

    from ecliptix.otp import OtpKeyring

    counts = [1, 4, 16, 64] if not quick else [1, 4, 16]
    seconds = 3.0 if quick else 6.0
    # One stored digest for every flow: the database path is what is measured.
    keyring = OtpKeyring.generate("e1")
    otp_hash, otp_salt = keyring.digest(uuid.uuid4(), "123456"), keyring.current_id
    script = R.WORK / "e1_flow.sql"
    script.write_text(PGBENCH_SCRIPT.format(hash=otp_hash, salt=otp_salt))
    out: dict = {
        "seconds_per_point": seconds,
        "points": [],
        "pgbench_threads": PGBENCH_THREADS,
        "pgbench_script": "bench/work/e1_flow.sql (generated from bench/e1.py PGBENCH_SCRIPT)",
    }
    for n in counts:
        point: dict = {"clients": n}
        sides = [("persistor", workers(n)), ("pgbench", 0), ("psycopg_floor", workers(n))]
        if workers(n) != n:
            sides.append(("persistor_per_process", n))
        for side, processes in sides:
            dburl = _fresh_deployed_db(R, "e1")
            if dburl is None:
                out["deploy_rc"] = 1
                return out
            if side == "pgbench":
                point[side] = run_pgbench(dburl, n, seconds, script)
            else:
                point[side] = run_persistor(
                    dburl, n, seconds, otp_hash, otp_salt, processes, floor=side == "psycopg_floor"
                )
        g = point["pgbench"].get("flows_per_s")
        for side, key in (
            ("persistor", "ratio"),
            ("persistor_per_process", "ratio_per_process"),
            ("psycopg_floor", "ratio_floor"),
        ):
            if side in point:
                point[key] = point[side]["flows_per_s"] / g if g else None
        p = point["persistor"]
        extra = ""
        if "persistor_per_process" in point:
            pp = point["persistor_per_process"]
            extra = f"; one process per client {pp['flows_per_s']:.1f} flows/s, ratio {_round(point['ratio_per_process'])}"
        fl = point["psycopg_floor"]
        log(
            f"E1 {n:>2} clients: persistor {p['flows_per_s']:.1f} flows/s in {p['processes']} processes "
            f"({p['errors']} errors), pgbench {g} flows/s, ratio {_round(point['ratio'])}; bare psycopg "
            f"{fl['flows_per_s']:.1f} flows/s ({fl['errors']} errors), ratio {_round(point['ratio_floor'])}{extra}"
        )
        out["points"].append(point)
    return out  # run.py drops the bench databases


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)
