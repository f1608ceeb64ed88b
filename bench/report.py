"""Render a bench report (dict from run.py) as Markdown, and the main chart as PNG."""

from __future__ import annotations

from pathlib import Path


def _f(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _r(x: float | None, base: float | None) -> str:
    return "—" if x is None or not base else f"{x / base:.2f}×"


TARGETS = {"w1": 1.3, "w2": 1.3, "w4": 1.3, "w5_status": 1.0, "e1": 0.8}


def _against_ref(tools: dict) -> list[str]:
    """Compare persistor with itself at --against REF: the run-path rule is within 10 %."""
    new, old = tools.get("persistor"), tools.get("persistor_ref")
    if not new or not old:
        return []
    out = [
        "",
        f"## persistor against {old['label']} (same run, interleaved)",
        "",
        "| workload | this tree s | ref s | ratio | within 10 % |",
        "|---|---|---|---|---|",
    ]
    for w in ("w1", "w2", "w4"):
        a, b = new.get(f"{w}_median"), old.get(f"{w}_median")
        ratio = a / b if a and b else None
        verdict = "yes" if ratio is not None and ratio <= 1.10 else "NO"
        out.append(f"| {w.upper()} | {_f(a, 3)} | {_f(b, 3)} | {_f(ratio)} | {verdict} |")
    return out


def markdown(rep: dict) -> str:
    m = rep["machine"]
    out = [f"# persistor bench results ({'QUICK smoke run' if rep['quick'] else 'full run'})", ""]
    out += [
        f"Run {rep['started']}, {rep['elapsed_s']} s; median of up to {rep['repeats']} runs; "
        f"W1 N={rep['n']['w1']}, W4 N={rep['n']['w4']}, W5 N={rep['n']['w5']}.",
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['postgres'].split(' on ')[0]}; "
        f"load average at start {m['loadavg_start'].split()[:3]}, at end {rep.get('loadavg_end', '?').split()[:3]} "
        "(shared machine: compare ratios, not seconds).",
        "",
    ]
    tools = rep.get("tools", {})
    if tools:
        psql = tools.get("psql_1tx", {})
        pyf = tools.get("python_floor", {})
        b1, b2, b4 = psql.get("w1_median"), psql.get("w2_median"), psql.get("w4_median")
        p2 = pyf.get("w2_median")
        ftx = tools.get("python_floor_tx", {}).get("w1_median")
        out += [
            "## W1-W4: seconds (median) and ratio to the floor",
            "",
            f"W1 apply {rep['n']['w1']:,} tiny migrations; W2 no-op re-run; W3 status listing; W4 100 PL/pgSQL "
            "migrations incl. 6 raw-SQL traps (time only when every check passed). "
            "Ratios: W1 and W4 to `psql -1`; W1 also to the tx-floor (bare Python, one transaction per "
            "script with its history row, as persistor promises); W2 to `psql -1` (connect + SELECT 1) "
            "and to the bare-Python floor (interpreter + psycopg import + connect + SELECT 1).",
            "",
            "| tool | runs | W1 s | W1 / psql | W1 / tx-floor | W2 s | W2 / psql | W2 / Python floor | W3 s | W4 s | W4 / psql | W4 correct |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in tools.values():
            correct = r.get("w4_correct") or {}
            ok = sum(int(v.split("/")[0]) for v in correct.values())
            tot = sum(int(v.split("/")[1]) for v in correct.values())
            w4 = r.get("w4_median")
            out.append(
                f"| {r['label']} | {r.get('reps')} | {_f(r.get('w1_median'))} | {_r(r.get('w1_median'), b1)} | {_r(r.get('w1_median'), ftx)} | "
                f"{_f(r.get('w2_median'), 3)} | {_r(r.get('w2_median'), b2)} | {_r(r.get('w2_median'), p2)} | "
                f"{_f(r.get('w3_median'), 3)} | {_f(w4) if w4 else 'FAIL'} | {_r(w4, b4)} | {ok}/{tot} |"
            )
        out += _against_ref(tools)
        out += [
            "",
            "## W4 traps, each alone in a fresh database",
            "",
            "| tool | " + " | ".join(next(iter(tools.values()))["traps"].keys()) + " |",
            "|---|" + "---|" * len(next(iter(tools.values()))["traps"]),
        ]
        for r in tools.values():
            out.append(f"| {r['label']} | " + " | ".join(r["traps"].values()) + " |")
        fails = [(r["label"], f) for r in tools.values() for f in r["failures"]]
        if fails:
            out += ["", "Failures (logs under bench/work/logs/):", ""]
            out += [f"- {lab}: {f}" for lab, f in fails[:30]]
    w5 = rep.get("w5")
    if w5:
        out += [
            "",
            f"## W5: persistor at {w5['n']:,} applied scripts",
            "",
            "| command | median s | target |",
            "|---|---|---|",
            f"| apply all {w5['n']:,} (once) | {_f(w5['apply_s'])} | — |",
            f"| status | {_f(w5.get('status_median'))} | ≤ 1 s |",
            f"| validate | {_f(w5.get('validate_median'))} | — |",
            f"| migrate (no-op re-run) | {_f(w5.get('rerun_median'))} | — |",
        ]
    lint = rep.get("lint")
    if lint:
        share = lint.get("migrate_share")
        out += [
            "",
            f"## Lint: `persistor lint` on {lint['n']:,} files, and its cost inside migrate",
            "",
            "| what | median wall s | median CPU s | target |",
            "|---|---|---|---|",
            f"| lint {lint['n']:,} W1 files (one CREATE TABLE each) | {_f(lint.get('w1_median'))} "
            f"| {_f(lint.get('w1_cpu_median'))} | seconds |",
            f"| lint {lint['n']:,} PL/pgSQL files (~50-line functions) "
            f"| {_f(lint.get('plpgsql_median'))} | {_f(lint.get('plpgsql_cpu_median'))} | seconds |",
            f"| lint inside W1's migrate ({lint['n_w1']:,} pending scripts, parser import included) "
            f"| {_f(lint.get('migrate_cost_median'), 3)} | {_f(lint.get('migrate_cost_cpu_median'), 3)} "
            "| < 5 % of W1 |",
            f"| … as a share of persistor's W1 ({_f(lint.get('persistor_w1_median'))} s wall) | "
            + (f"{share * 100:.1f} %" if share is not None else "—")
            + " | | < 5 % |",
        ]
    st = rep.get("startup")
    if st:
        out += [
            "",
            f"## Start-up ({st['tool']})",
            "",
            "| command | median s | min s |",
            "|---|---|---|",
        ]
        out += [
            f"| `{k}` | {_f(v['median'], 3)} | {_f(v['min'], 3)} |"
            for k, v in st["results"].items()
        ]
    e1 = rep.get("e1")
    if e1 and e1.get("points"):
        threads = e1.get("pgbench_threads", 4)
        out += [
            "",
            "## E1: Ecliptix flow, persistor client vs pgbench (same 10 SQL calls per flow)",
            "",
            f"Each measurement on a fresh database. persistor's clients are threads spread over as many "
            f"processes as pgbench has threads (`-j`, at most {threads}). The bare-psycopg floor runs the "
            "same calls, values and layout through a plain psycopg cursor with prepared statements "
            "(what any Python client pays); the last column is persistor with one process per connection.",
            "",
            "| clients | persistor flows/s (processes) | pgbench flows/s | ratio (target ≥ 0.80) | bare psycopg flows/s (ratio to pgbench) | persistor / bare psycopg | persistor flow p50 / p99 ms | pgbench flow p50 / p99 ms | errors | one process per client: flows/s (ratio) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for p in e1["points"]:
            a, b = p["persistor"], p["pgbench"]
            pp = p.get("persistor_per_process")
            per_process = (
                f"{_f(pp['flows_per_s'], 1)} ({_f(p['ratio_per_process'])})"
                if pp
                else "same layout"
            )
            fl = p.get("psycopg_floor")
            floor = f"{_f(fl['flows_per_s'], 1)} ({_f(p['ratio_floor'])})" if fl else "—"
            vs_floor = _f(a["flows_per_s"] / fl["flows_per_s"]) if fl and fl["flows_per_s"] else "—"
            out.append(
                f"| {p['clients']} | {_f(a['flows_per_s'], 1)} ({a.get('processes', p['clients'])}) | "
                f"{_f(b.get('flows_per_s'), 1)} | "
                f"{_f(p['ratio'])} | {floor} | {vs_floor} | "
                f"{_f(a['flow_p50_ms'], 1)} / {_f(a['flow_p99_ms'], 1)} | "
                f"{_f(b['flow_p50_ms'], 1)} / {_f(b['flow_p99_ms'], 1)} | {a['errors']} / {b.get('failed')} | "
                f"{per_process} |"
            )
        out += [
            "",
            "Per function, ms: persistor p50 / p99 (mean) vs pgbench mean (`-r`), by client count",
            "",
            "| function | "
            + " | ".join(
                f"{p['clients']} cl: persistor p50/p99 (mean) · pgbench mean" for p in e1["points"]
            )
            + " |",
            "|---|" + "---|" * len(e1["points"]),
        ]
        for step in e1["points"][0]["persistor"]["per_function_ms"]:
            cells = []
            for p in e1["points"]:
                a = p["persistor"]["per_function_ms"][step]
                b = p["pgbench"]["per_function_ms"].get(step, {}).get("mean")
                cells.append(f"{a['p50']:.2f}/{a['p99']:.2f} ({a['mean']:.2f}) · {_f(b)}")
            out.append(f"| {step} | " + " | ".join(cells) + " |")
    out += ["", "## Versions", ""] + [f"- {k}: {v}" for k, v in rep["versions"].items()]
    if rep.get("not_installed"):
        out += [
            "",
            "Not installed: " + "; ".join(f"{k}: {v}" for k, v in rep["not_installed"].items()),
        ]
    return "\n".join(out) + "\n"


def chart(rep: dict, path: Path) -> None:
    tools = rep.get("tools")
    if not tools:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    psql = tools["psql_1tx"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.5), sharey=False)
    for ax, w, title in zip(
        axes,
        ("w1", "w2", "w4"),
        ("W1 apply 1,000 tiny", "W2 no-op re-run", "W4 100 PL/pgSQL + traps"),
        strict=True,
    ):
        base = psql.get(w + "_median")
        vals, colors, labels = [], [], []
        for name, r in tools.items():
            v = r.get(w + "_median")
            labels.append(r["label"])
            if v is None or not base:
                vals.append(0.0)
                colors.append("#bbbbbb")
            else:
                vals.append(v / base)
                colors.append(
                    "#d62728"
                    if name == "persistor"
                    else ("#2ca02c" if "floor" in r["label"] else "#1f77b4")
                )
        ys = range(len(vals))
        ax.barh(list(ys), vals, color=colors)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels if ax is axes[0] else [""] * len(labels))
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", lw=0.8)
        if w in ("w1", "w4"):
            ax.axvline(1.3, color="#d62728", lw=0.8, ls="--")
        ax.set_title(f"{title}\n(ratio to psql -1; grey bar = failed / n.a.)", fontsize=10)
        for y, v in zip(ys, vals, strict=True):
            ax.text(
                max(v, 0.01) if v else 1.0,
                y,
                f" {v:.2f}×" if v else " fail / n.a.",
                va="center",
                fontsize=8,
            )
    fig.suptitle(
        f"persistor vs peers, median of {rep['repeats']} (PostgreSQL 15, {rep['machine']['nproc']} cores)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
