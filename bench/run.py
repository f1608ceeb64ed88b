"""persistor benchmark: W1-W5 against peers and floors, E1 against pgbench, start-up.

Run through bench/run.sh (installs the tools first). Writes
bench/results/raw/<stamp>.json, bench/results/latest.json, bench/results/results.md
and bench/results/main.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tools as T
import workloads as W

BENCH = T.BENCH
WORK = BENCH / "work"
RESULTS = BENCH / "results"
LOGS = WORK / "logs"
# Another worktree's bench on the same server drops every database with its
# prefix when it starts: BENCH_DB_PREFIX keeps concurrent runs apart.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "pbench_")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- databases ---------------------------------------------------------------


def admin() -> psycopg.Connection:
    return psycopg.connect(T.url("postgres"), autocommit=True)


def fresh_db(name: str) -> str:
    db = DB_PREFIX + name
    with admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{db}"')
    return db


def drop_db(db: str) -> None:
    with admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def drop_all_bench_dbs() -> None:
    with admin() as c:
        for (name,) in c.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [DB_PREFIX + "%"]
        ):
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- running -----------------------------------------------------------------


def run_cmd(cmd: T.Cmd, tag: str) -> tuple[float, int]:
    """Run a command, return (wall seconds, exit code); output goes to a log file."""
    LOGS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NO_COLOR": "1", **cmd.env}
    with open(LOGS / f"{tag}.log", "w") as out:
        out.write(f"$ {cmd.text()}\n")
        out.flush()
        t0 = time.perf_counter()
        rc = subprocess.run(
            cmd.argv,
            cwd=cmd.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ).returncode
        elapsed = time.perf_counter() - t0
        out.write(f"\n# exit {rc}, {elapsed:.3f} s\n")
    return elapsed, rc


def check_w4(db: str, checks: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    """Run every check query; per label, how many passed out of how many."""
    out: dict[str, dict[str, int]] = {}
    with psycopg.connect(T.url(db), autocommit=True) as c:
        for label, query, expected in checks:
            r = out.setdefault(label, {"pass": 0, "total": 0})
            r["total"] += 1
            try:
                row = c.execute(query).fetchone()
                if row is not None and str(row[0]) == expected:
                    r["pass"] += 1
            except psycopg.Error:
                pass
    return out


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# -- workloads W1-W4 ---------------------------------------------------------


def bench_tools(tools: list[T.Tool], repeats: int, n1: int, n4: int, slow: float) -> dict:
    w1 = W.w1(n1)
    w4, checks = W.w4(n4)
    for t in tools:
        t.layout(WORK / "w1" / t.name, w1)
        t.layout(WORK / "w4" / t.name, w4)
        for name, body, _, _ in W.TRAPS:
            t.layout(WORK / "trap" / name / t.name, [(f"trap_{name}", body)])
    res: dict[str, dict] = {
        t.name: {
            "label": t.label,
            "w1": [],
            "w2": [],
            "w3": [],
            "w4": [],
            "failures": [],
            "w4_correct": None,
            "traps": {},
        }
        for t in tools
    }
    reps = {t.name: repeats for t in tools}
    for rep in range(repeats):
        for t in tools:
            if rep >= reps[t.name]:
                continue
            r = res[t.name]
            d1 = WORK / "w1" / t.name
            db = fresh_db(f"{t.name}_w1")
            secs, rc = run_cmd(t.apply(d1, db), f"{t.name}_w1_{rep}")
            if rc == 0:
                r["w1"].append(secs)
            else:
                r["failures"].append(
                    f"W1 run {rep}: exit {rc} (see work/logs/{t.name}_w1_{rep}.log)"
                )
            if rep == 0 and secs > slow and repeats > 3:
                reps[t.name] = 3
            if rc == 0:
                rr = t.rerun(d1, db)
                if rr is not None:
                    secs, rc = run_cmd(rr, f"{t.name}_w2_{rep}")
                    (
                        r["w2"].append(secs)
                        if rc == 0
                        else r["failures"].append(f"W2 run {rep}: exit {rc}")
                    )
                st = t.status(d1, db)
                if st is not None:
                    secs, rc = run_cmd(st, f"{t.name}_w3_{rep}")
                    (
                        r["w3"].append(secs)
                        if rc == 0
                        else r["failures"].append(f"W3 run {rep}: exit {rc}")
                    )
            drop_db(db)
            db = fresh_db(f"{t.name}_w4")
            secs, rc = run_cmd(t.apply(WORK / "w4" / t.name, db), f"{t.name}_w4_{rep}")
            correct = check_w4(db, checks)
            ok = rc == 0 and all(v["pass"] == v["total"] for v in correct.values())
            if ok:
                r["w4"].append(secs)
            else:
                r["failures"].append(
                    f"W4 run {rep}: exit {rc}, {sum(v['pass'] for v in correct.values())}/{len(checks)} checks"
                )
            if r["w4_correct"] is None:
                r["w4_correct"] = {k: f"{v['pass']}/{v['total']}" for k, v in correct.items()}
            drop_db(db)
        log(
            f"repeat {rep + 1}/{repeats}: "
            + ", ".join(
                f"{t.name} {res[t.name]['w1'][-1]:.2f}" if res[t.name]["w1"] else f"{t.name} FAIL"
                for t in tools
            )
        )
    # Each trap alone, once per tool: pass/fail independent of the other traps.
    for t in tools:
        for name, _body, check, expected in W.TRAPS:
            db = fresh_db(f"{t.name}_trap")
            _, rc = run_cmd(t.apply(WORK / "trap" / name / t.name, db), f"{t.name}_trap_{name}")
            c = check_w4(db, [(name, check, expected)])[name]
            res[t.name]["traps"][name] = "pass" if rc == 0 and c["pass"] == 1 else "FAIL"
            drop_db(db)
    for t in tools:
        r = res[t.name]
        r["reps"] = reps[t.name]
        for w in ("w1", "w2", "w3", "w4"):
            r[w + "_median"] = med(r[w])
    return res


# -- W5 ----------------------------------------------------------------------


def bench_w5(repeats: int, n5: int) -> dict:
    p = T.Persistor()
    d = WORK / "w5" / "persistor"
    p.layout(d, W.w1(n5))
    db = fresh_db("w5")
    log(f"W5: applying {n5} scripts with persistor migrate (timed once)")
    apply_s, rc = run_cmd(p.apply(d, db), "persistor_w5_apply")
    out: dict = {
        "n": n5,
        "apply_s": apply_s,
        "apply_rc": rc,
        "status": [],
        "validate": [],
        "rerun": [],
    }
    if rc == 0:
        for i in range(repeats):
            for what, cmd in (
                ("status", p.status(d, db)),
                ("validate", p.validate(d, db)),
                ("rerun", p.apply(d, db)),
            ):
                s, rc2 = run_cmd(cmd, f"persistor_w5_{what}_{i}")
                if rc2 == 0:
                    out[what].append(s)
    for k in ("status", "validate", "rerun"):
        out[k + "_median"] = med(out[k])
    out["db"] = db  # kept for profiling; dropped at the end
    return out


# -- lint --------------------------------------------------------------------


def bench_lint(repeats: int, n: int, n1: int, w1_median: float | None) -> dict:
    """`persistor lint` on n W1 files and n PL/pgSQL files; lint's share of W1's migrate."""
    p = T.Persistor()
    out: dict = {"n": n, "n_w1": n1, "persistor_w1_median": w1_median}
    for name, migrations in (("w1", W.w1(n)), ("plpgsql", W.lint_plpgsql(n))):
        d = WORK / "lint" / name
        p.layout(d, migrations)  # afresh: a quick run leaves fewer files behind
        times, cpu = [], []
        for i in range(repeats):
            before = os.times()
            secs, rc = run_cmd(
                T.Cmd([str(T.VENV / "persistor"), "lint", str(d), "-q"]), f"lint_{name}_{i}"
            )
            after = os.times()
            if rc == 0:
                times.append(secs)
                # CPU seconds too: on a shared machine the wall clock is mostly waiting.
                cpu.append(
                    after.children_user
                    + after.children_system
                    - before.children_user
                    - before.children_system
                )
            else:
                out.setdefault("failures", []).append(f"lint {name} run {i}: exit {rc}")
        out[name + "_median"] = med(times)
        out[name + "_cpu_median"] = med(cpu)
    # Inside migrate: the parser import plus lint of every pending W1 script.
    d1 = WORK / "w1" / "persistor"
    p.layout(d1, W.w1(n1))
    costs, cpu_costs = [], []
    for _ in range(repeats):
        proc = subprocess.run(
            [str(T.VENV / "python"), str(BENCH / "lint_cost.py"), str(d1)],
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            doc = json.loads(proc.stdout)
            costs.append(doc["seconds"])
            cpu_costs.append(doc["cpu_seconds"])
    out["migrate_cost_median"] = med(costs)
    out["migrate_cost_cpu_median"] = med(cpu_costs)
    if w1_median and out["migrate_cost_median"] is not None:
        out["migrate_share"] = out["migrate_cost_median"] / w1_median
    return out


# -- start-up ----------------------------------------------------------------


def bench_startup(w1db: str | None, runs: int) -> dict:
    import shutil as sh

    p = T.Persistor()
    py = str(T.VENV / "python")
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import psycopg'": [py, "-c", "import psycopg"],
        "persistor --version": [str(T.VENV / "persistor"), "--version"],
    }
    if w1db:
        cmds["persistor status (1,000 applied)"] = p.status(WORK / "w1" / "persistor", w1db).argv
    out: dict = {"tool": "hyperfine" if sh.which("hyperfine") else "python timer", "results": {}}
    for label, argv in cmds.items():
        if sh.which("hyperfine"):
            jf = WORK / "hyperfine.json"
            import shlex

            subprocess.run(
                [
                    "hyperfine",
                    "-N",
                    "--warmup",
                    "2",
                    "--runs",
                    str(runs),
                    "--export-json",
                    str(jf),
                    "--style",
                    "none",
                    shlex.join(argv),
                ],
                capture_output=True,
                text=True,
            )
            try:
                h = json.loads(jf.read_text())["results"][0]
                out["results"][label] = {"median": h["median"], "mean": h["mean"], "min": h["min"]}
                continue
            except Exception:
                pass
        xs = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(argv, capture_output=True)
            xs.append(time.perf_counter() - t0)
        out["results"][label] = {
            "median": statistics.median(xs),
            "mean": statistics.mean(xs),
            "min": min(xs),
        }
    return out


# -- profiles ----------------------------------------------------------------


def profile(name: str, cmd: T.Cmd) -> dict:
    """py-spy record (raw collapsed stacks) of one persistor command, summarised."""
    import profsum

    pyspy = T.VENV / "py-spy"
    out = WORK / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{name}.txt"
    argv = [
        str(pyspy),
        "record",
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(raw),
        "--nonblocking",
        "--idle",
        "--",
        *cmd.argv,
    ]
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **cmd.env})
    wall = time.perf_counter() - t0
    if r.returncode != 0 or not raw.exists():
        return {"error": (r.stderr or r.stdout)[-800:], "wall": wall}
    summary = profsum.summarise(raw.read_text())
    summary["categories"] = profsum.categories(raw.read_text())
    summary["wall"] = wall
    summary["speedscope_hint"] = f"bench/work/profiles/{name}.txt (collapsed stacks)"
    return summary


# -- main --------------------------------------------------------------------


def machine() -> dict:
    def sh(c: str) -> str:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()

    with admin() as c:
        pgv = c.execute("SELECT version()").fetchone()[0]
        settings = {
            k: c.execute(f"SHOW {k}").fetchone()[0]
            for k in (
                "shared_buffers",
                "synchronous_commit",
                "fsync",
                "wal_level",
                "max_connections",
            )
        }
    return {
        "nproc": sh("nproc"),
        "free_h": sh("free -h"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "loadavg_start": sh("cat /proc/loadavg"),
        "kernel": platform.release(),
        "postgres": pgv,
        "postgres_settings": settings,
        "python": sys.version.split()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, small N")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--only", help="comma-separated tool names")
    ap.add_argument(
        "--skip", default="", help="comma-separated parts to skip: tools,w5,lint,e1,startup,profile"
    )
    ap.add_argument(
        "--against", metavar="REF", help="also run persistor at commit REF (run.sh installs it)"
    )
    args = ap.parse_args()
    quick = args.quick
    repeats = args.repeats or (1 if quick else 5)
    n1, n4, n5 = (100, 100, 1000) if quick else (1000, 100, 10000)
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "raw").mkdir(exist_ok=True)
    started = time.time()
    drop_all_bench_dbs()

    tools: list[T.Tool] = []
    skipped: dict[str, str] = {}
    only = set(args.only.split(",")) if args.only else None
    if only is not None and args.against:
        only.add("persistor_ref")
    for t in T.ALL:
        if only is not None and t.name not in only:
            continue
        why = t.missing()
        (skipped.__setitem__(t.name, why) if why else tools.append(t))
    report: dict = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "repeats": repeats,
        "n": {"w1": n1, "w4": n4, "w5": n5},
        "machine": machine(),
        "versions": {t.name: t.version() for t in tools}
        | {"pgbench": T._out(["pgbench", "--version"])},
        "not_installed": skipped,
        "install_log": (T.TOOLS / "install.log").read_text()
        if (T.TOOLS / "install.log").exists()
        else "",
    }
    log(f"tools: {[t.name for t in tools]}; not available: {skipped}")

    if "tools" not in skip:
        log(f"W1-W4: {repeats} repeats, W1 N={n1}, W4 N={n4}")
        report["tools"] = bench_tools(tools, repeats, n1, n4, slow=8.0)
    w1db = None
    if "startup" not in skip or "profile" not in skip:
        # One persistor-migrated W1 database kept for start-up and profiles.
        p = T.Persistor()
        p.layout(WORK / "w1" / "persistor", W.w1(n1))
        w1db = fresh_db("persistor_keep")
        run_cmd(p.apply(WORK / "w1" / "persistor", w1db), "persistor_keep")
    if "w5" not in skip:
        report["w5"] = bench_w5(repeats, n5)
    if "lint" not in skip:
        log(f"lint: {n5} files (W1 and PL/pgSQL), and its cost inside W1's migrate")
        w1_median = report.get("tools", {}).get("persistor", {}).get("w1_median")
        report["lint"] = bench_lint(repeats, n5, n1, w1_median)
    if "startup" not in skip:
        log("start-up")
        report["startup"] = bench_startup(w1db, 5 if quick else 10)
    if "profile" not in skip:
        log("profiles (py-spy)")
        p = T.Persistor()
        prof = {}
        db = fresh_db("persistor_prof")
        prof["W1 migrate"] = profile("w1_migrate", p.apply(WORK / "w1" / "persistor", db))
        prof["W2 re-run"] = profile("w2_rerun", p.apply(WORK / "w1" / "persistor", db))
        drop_db(db)
        if "w5" in report and report["w5"].get("apply_rc") == 0:
            d5, db5 = WORK / "w5" / "persistor", report["w5"]["db"]
            prof["W5 status"] = profile("w5_status", p.status(d5, db5))
            prof["W5 validate"] = profile("w5_validate", p.validate(d5, db5))
            prof["W5 re-run"] = profile("w5_rerun", p.apply(d5, db5))
        report["profiles"] = prof
    if "e1" not in skip:
        import e1

        log("E1: Ecliptix flow vs pgbench")
        report["e1"] = e1.run(quick=quick, log=log)
    drop_all_bench_dbs()
    report["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
    report["elapsed_s"] = round(time.time() - started, 1)

    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "")
    text = json.dumps(report, indent=2, default=str)
    (RESULTS / "raw" / f"{stamp}.json").write_text(text)
    (RESULTS / ("latest-quick.json" if quick else "latest.json")).write_text(text)
    import report as R

    md = R.markdown(report)
    (RESULTS / ("results-quick.md" if quick else "results.md")).write_text(md)
    R.chart(report, RESULTS / ("main-quick.png" if quick else "main.png"))
    print(md)
    log(f"done in {report['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
