"""Run every reliability scenario and write docs/RELIABILITY.md.

    bash reliability/run.sh            # full: about 13 minutes on 2 cores
    bash reliability/run.sh --quick    # smoke: about 2 minutes

Results also go to reliability/results/<mode>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from reliability import harness as h
from reliability import pgbouncer as pb
from reliability.scripts import write_migrations

ROOT = Path(__file__).resolve().parent.parent
CHECK_INTERVAL = "-c client_connection_check_interval=50"

FULL = {
    "kills": 50,
    "kills_check_interval": 15,
    "kills_table": 2,
    "rounds": 20,
    "cic_rounds": 3,
    "pgb_session_rounds": 3,
    "pgb_table_rounds": 5,
    "lease_test": True,
}
QUICK = {
    "kills": 5,
    "kills_check_interval": 2,
    "kills_table": 0,
    "rounds": 2,
    "cic_rounds": 1,
    "pgb_session_rounds": 1,
    "pgb_table_rounds": 1,
    "lease_test": False,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine(admin: str) -> dict[str, str]:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(
                cmd, shell=True, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2") or sh(
        "lscpu | grep 'Model name' | cut -d: -f2"
    )
    return {
        "nproc": sh("nproc"),
        "memory": sh('free -h | awk \'/^Mem:/ {print $2" total, "$7" available"}\''),
        "cpu": " ".join(cpu.split()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": h.server_version(admin),
        "persistor_commit": (
            f"commit {os.environ.get('PERSISTOR_SRC_REV', '?')}, a clean snapshot in "
            f"{os.environ['PERSISTOR_SRC']} (PERSISTOR_SRC)"
            if os.environ.get("PERSISTOR_SRC")
            else sh(f"git -C {ROOT} rev-parse --short HEAD")
            + (
                " (+ uncommitted changes in src/)"
                if sh(f"git -C {ROOT} status --porcelain src")
                else ""
            )
        ),
    }


def summarize_rounds(rounds: list[h.RoundResult]) -> dict[str, Any]:
    codes: Counter[int] = Counter()
    for r in rounds:
        codes.update(r.codes)
    return {
        "rounds": len(rounds),
        "exit_codes": dict(sorted(codes.items())),
        "duplicates_per_round": [r.duplicates for r in rounds],
        "missing_per_round": [r.missing for r in rounds],
        "leftover_locks_per_round": [r.leftover_locks for r in rounds],
        "violations": [v for r in rounds for v in r.violations],
        "waited": sum(r.waited for r in rounds),
        "seconds_per_round": [r.seconds for r in rounds],
        "errors": sorted({e for r in rounds for e in r.errors}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: few kills and rounds")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/RELIABILITY.md")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    admin = h.admin_url()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="persistor-rel-"))
    ms = write_migrations(work / "main")
    cic_ms = write_migrations(work / "cic", cic_sleep=45, cic_waiters=9)
    res: dict[str, Any] = {"mode": mode, "config": cfg, "machine": machine(admin)}
    res["command"] = (
        "bash reliability/run.sh"
        + (" --committed" if os.environ.get("PERSISTOR_SRC") else "")
        + (" --quick" if args.quick else "")
    )
    log(f"{mode} run on {res['machine']['postgresql'][:40]}; migrations in {work}")

    log(f"1a. {cfg['kills']} SIGKILLs, default server settings")
    res["kills"] = h.kill_campaign(
        admin, ms, cfg["kills"], seed=args.seed, budget_s=480, log=log
    ).as_dict()
    log(f"1b. {cfg['kills_check_interval']} SIGKILLs with PGOPTIONS='{CHECK_INTERVAL}'")
    res["kills_check_interval"] = h.kill_campaign(
        admin,
        ms,
        cfg["kills_check_interval"],
        seed=args.seed + 1,
        pgoptions=CHECK_INTERVAL,
        budget_s=180,
        log=log,
    ).as_dict()
    table_mode = h.lock_mode_supported()
    res["lock_mode_supported"] = table_mode
    if table_mode and cfg["kills_table"]:
        log(f"1c. {cfg['kills_table']} SIGKILLs with --lock-mode table")
        res["kills_table"] = h.kill_campaign(
            admin,
            ms,
            cfg["kills_table"],
            seed=args.seed + 2,
            lock_mode="table",
            budget_s=150,
            log=log,
        ).as_dict()

    log(f"2a. {cfg['rounds']} rounds of 10 concurrent migrators")
    rounds = []
    for i in range(cfg["rounds"]):
        rounds.append(h.concurrent_round(admin, ms))
        log(
            f"  round {i + 1}: {rounds[-1].codes} dup {rounds[-1].duplicates} miss {rounds[-1].missing}"
        )
    res["concurrency"] = summarize_rounds(rounds)

    log(f"2b. CREATE INDEX CONCURRENTLY with 9 waiters, {cfg['cic_rounds']} rounds")
    cic = [h.cic_with_waiters(admin, cic_ms).as_dict() for _ in range(cfg["cic_rounds"])]
    res["cic"] = cic
    log(f"  {cic}")
    log("2c. control: a waiter that waits inside a transaction")
    res["cic_control"] = h.naive_waiter_control(admin, cic_ms)
    log(f"  {res['cic_control']}")

    binary, how = pb.ensure_installed()
    res["pgbouncer"] = {"installed": how}
    if binary:
        res["pgbouncer"]["version"] = pb.version(binary)
        bouncer = pb.start(binary, admin)
        try:
            log(
                f"3a. PgBouncer transaction pooling, session lock, {cfg['pgb_session_rounds']} rounds"
            )
            rs = [
                h.concurrent_round(admin, ms, via_url=bouncer.url_for, lock_timeout=15, timeout=60)
                for _ in range(cfg["pgb_session_rounds"])
            ]
            res["pgbouncer"]["session"] = summarize_rounds(rs)
            log(f"  {res['pgbouncer']['session']['exit_codes']}")
            if table_mode:
                log(f"3b. PgBouncer, --lock-mode table, {cfg['pgb_table_rounds']} rounds")
                rt = [
                    h.concurrent_round(
                        admin,
                        ms,
                        via_url=bouncer.url_for,
                        lock_mode="table",
                        lock_timeout=90,
                        timeout=150,
                    )
                    for _ in range(cfg["pgb_table_rounds"])
                ]
                res["pgbouncer"]["table"] = summarize_rounds(rt)
                log(f"  {res['pgbouncer']['table']['exit_codes']}")
        finally:
            bouncer.stop()
    if table_mode and cfg["lease_test"]:
        log("4. table lock: holder frozen past its 30 s lease")
        res["lease"] = h.paused_holder(admin, ms, pause=40)
        log(f"  {res['lease']}")

    res["seconds"] = round(time.monotonic() - started, 1)
    log(f"done in {res['seconds']} s")
    out = ROOT / "reliability" / "results" / f"{mode}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    if not args.no_doc and not args.quick:
        from reliability.report import write_doc

        write_doc(res, ROOT / "docs" / "RELIABILITY.md")
        log("wrote docs/RELIABILITY.md")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
