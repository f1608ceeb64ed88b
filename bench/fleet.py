"""Many targets: wall time of `persistor migrate --targets` at --parallel 1, 2, 4, 8 against a
shell loop of single runs, memory (max RSS) of the persistor process, and one broken target
among 20 (every other one fully applied or untouched). Opt-in, not part of bench/run.sh.

    .venv/bin/python bench/fleet.py                      # 500 schemas + 20 databases (long)
    .venv/bin/python bench/fleet.py --schemas 100 --schema-ecliptix 0   # shorter

Every pass gets fresh databases (a rerun would have nothing to do); they are named
`targets_bench_*` and dropped at the end. Results: bench/results/fleet.json and the
markdown printed on stdout (also bench/results/fleet.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from persistor.ecliptix_app import PACKAGED_MIGRATIONS

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "targets_bench_"


def small_scripts(folder: Path, count: int = 20, broken: int | None = None) -> Path:
    """Write `count` small scripts versioned after Ecliptix's (5.01, 5.02, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        (folder / f"V5_{i:02d}__small_{i:02d}.sql").write_text(
            f"CREATE TABLE small_{i:02d} (id bigint PRIMARY KEY, note text NOT NULL);\n"
            f"INSERT INTO small_{i:02d} SELECT g, 'row ' || g FROM generate_series(1, 10) g;\n"
            f"CREATE INDEX small_{i:02d}_note ON small_{i:02d} (note);\n"
        )
    return folder


def _db_url(admin: str, name: str) -> str:
    return urlsplit(admin)._replace(path="/" + name).geturl()


def create_databases(admin: str, count: int, tag: str) -> list[str]:
    names = [f"{PREFIX}{tag}_{uuid.uuid4().hex[:6]}_{i}" for i in range(count)]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")  # our own names
    return [_db_url(admin, n) for n in names]


def drop_all(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PERSISTOR_", "DATABASE_"))}
    return keep | {"NO_COLOR": "1"}


def timed(cmd: list[str]) -> dict[str, Any]:
    """Run a command; return wall seconds, exit code and the max RSS of its process tree."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=_env(), cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return {
        "seconds": round(time.monotonic() - started, 2),
        "exit_code": os.waitstatus_to_exitcode(status),
        "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def targets_file(lines: list[str]) -> Path:
    path = Path(tempfile.mkstemp(prefix="targets-", suffix=".txt")[1])
    path.write_text("\n".join(lines) + "\n")
    return path


def fleet_cmd(path: Path, locations: list[Path], parallel: int, *extra: str) -> list[str]:
    locs = [a for p in locations for a in ("--location", str(p))]
    cmd = [sys.executable, "-m", "persistor", "migrate", "--targets", str(path), *locs]
    return [*cmd, "--parallel", str(parallel), "-q", *extra]


def loop_cmd(path: Path, locations: list[Path]) -> list[str]:
    """A shell loop of single runs, one per line of a targets file (URL [schema=S])."""
    locs = " ".join(f"--location {p}" for p in locations)
    script = (
        'while read -r url schema; do s="${schema#schema=}"; '
        f'{sys.executable} -m persistor migrate --url "$url" ${{s:+--schema "$s"}} {locs} -q '
        '|| exit $?; done < "$1"'
    )
    return ["bash", "-c", script, "loop", str(path)]


def scenario(
    admin: str, kind: str, count: int, locations: list[Path], parallels: list[int], loop: bool
) -> list[dict[str, Any]]:
    """Time one pass per parallelism (and the loop) over `count` fresh schemas or databases."""
    rows = []
    for parallel in [*parallels, *([0] if loop else [])]:
        if kind == "schemas":
            (url,) = create_databases(admin, 1, "s")
            lines = [f"{url} schema=tenant_{i:03d}" for i in range(count)]
        else:
            lines = create_databases(admin, count, "d")
        path = targets_file(lines)
        cmd = fleet_cmd(path, locations, parallel) if parallel else loop_cmd(path, locations)
        row = {"kind": kind, "targets": count, "parallel": parallel or "shell loop", **timed(cmd)}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
        drop_all(admin)
    return rows


def broken_among(admin: str, count: int, folder: Path) -> dict[str, Any]:
    """One target of `count` fails at script 10: every other is fully applied or untouched."""
    out: dict[str, Any] = {}
    for mode, extra in (("stop at first failure", ()), ("--keep-going", ("--keep-going",))):
        urls = create_databases(admin, count, "b")
        with psycopg.connect(urls[count // 2]) as conn:  # its V5_10 finds its table there
            conn.execute("CREATE TABLE small_10 (x int)")
        path = targets_file(urls)
        run = timed([*fleet_cmd(path, [folder], 4, *extra)])
        states = [_state(u, 20) for u in urls]
        out[mode] = {
            "exit_code": run["exit_code"],
            "broken_target": states[count // 2],
            "others": {s: sum(1 for x in states[: count // 2] + states[count // 2 + 1 :] if x == s)
                       for s in ("fully applied", "untouched", "half")},
        }  # fmt: skip
        drop_all(admin)
    return out


def _state(url: str, count: int) -> str:
    """Return 'fully applied', 'untouched', 'half', or 'N of count applied, none half'."""
    with psycopg.connect(url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        rows: set[str] = set()
        if "schema_history" in tables:
            q = "SELECT script FROM schema_history WHERE success"
            rows = {str(r[0]) for r in conn.execute(q)}
    made = {
        f"V5_{i:02d}__small_{i:02d}.sql" for i in range(1, count + 1) if f"small_{i:02d}" in tables
    }
    if len(rows) == count and made == rows:
        return "fully applied"
    if not rows and not made:
        return "untouched"
    return (
        "half"
        if not made <= rows | {"V5_10__small_10.sql"}
        else f"{len(rows)} of {count} applied, none half"
    )


def markdown(res: dict[str, Any]) -> str:
    """Return the PERFORMANCE.md table: each pass, and its speed-up over the shell loop."""
    loops = {r["kind"]: r["seconds"] for r in res["runs"] if r["parallel"] == "shell loop"}
    out = [
        "| targets | scripts each | run | wall (s) | vs shell loop | exit | max RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        run = r["parallel"] if r["parallel"] == "shell loop" else f"--parallel {r['parallel']}"
        loop = loops.get(r["kind"])
        ratio = f"{loop / r['seconds']:.1f}x faster" if loop and run != "shell loop" else ""
        out.append(
            f"| {r['targets']} {r['kind']} | {r['scripts']} | {run} | {r['seconds']} | "
            f"{ratio} | {r['exit_code']} | {r['max_rss_mb']} |"
        )
    return "\n".join(out)


def broken_markdown(res: dict[str, Any]) -> str:
    """Return the RELIABILITY.md section for one broken target among 20."""
    out = [
        "## 6. One broken target among 20",
        "",
        "`python bench/fleet.py` (last part): 20 databases, 20 small scripts each, "
        "`persistor migrate --targets FILE --parallel 4`; in the 11th database a table "
        "already exists that its script 10 creates, so that script fails there.",
        "",
        "| run | exit | broken target | others fully applied | others untouched "
        "| others half-applied |",
        "|---|---|---|---|---|---|",
    ]
    for mode, r in res["broken_among_20"].items():
        o = r["others"]
        out.append(
            f"| {mode} | {r['exit_code']} | {r['broken_target']} | {o['fully applied']} | "
            f"{o['untouched']} | {o['half']} |"
        )
    out += [
        "",
        "Without `--keep-going` the targets already running when the failure came finish; "
        "no new one starts; the rest stay untouched and are reported `skipped`. A rerun "
        "after the fix does only what each target lacks.",
    ]
    return "\n".join(out)


def write_outputs(res: dict[str, Any], name: str) -> str:
    (ROOT / f"bench/results/{name}.json").write_text(json.dumps(res, indent=2) + "\n")
    text = markdown(res)
    (ROOT / f"bench/results/{name}.md").write_text(text + "\n")
    if res.get("broken_among_20"):
        (ROOT / "reliability/FLEET.md").write_text(broken_markdown(res) + "\n")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--schemas", type=int, default=500)
    parser.add_argument(
        "--schema-ecliptix", type=int, default=1, help="1: the schemas get Ecliptix too"
    )
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--parallel", default="1,2,4,8")
    parser.add_argument("--no-loop", action="store_true")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown")
    parser.add_argument("--name", default="fleet", help="results: bench/results/NAME.json, .md")
    args = parser.parse_args()
    if args.render:
        res = json.loads((ROOT / f"bench/results/{args.name}.json").read_text())
        print(write_outputs(res, args.name))
        return 0
    parallels = [int(p) for p in args.parallel.split(",")]
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    small = small_scripts(work / "small")
    both = [PACKAGED_MIGRATIONS, small]
    runs: list[dict[str, Any]] = []
    try:
        if args.schemas:
            locs = both if args.schema_ecliptix else [small]
            for r in scenario(args.pg, "schemas", args.schemas, locs, parallels, not args.no_loop):
                runs.append(
                    r | {"scripts": "Ecliptix + 20 small" if args.schema_ecliptix else "20 small"}
                )
        if args.databases:
            for r in scenario(
                args.pg, "databases", args.databases, both, parallels, not args.no_loop
            ):
                runs.append(r | {"scripts": "Ecliptix + 20 small"})
        broken = broken_among(args.pg, 20, small) if args.databases else {}
    finally:
        drop_all(args.pg)
    res = {"runs": runs, "broken_among_20": broken, "command": " ".join(sys.argv[1:])}
    print(write_outputs(res, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
