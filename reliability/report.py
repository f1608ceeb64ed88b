"""Render docs/RELIABILITY.md from a results dictionary (reliability/results/full.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2] if xs else 0.0


def _summary(res: dict[str, Any]) -> list[str]:
    runs = [res[k] for k in ("kills", "kills_check_interval", "kills_table") if k in res]
    conc = res["concurrency"]
    pgb = res["pgbouncer"]
    rows = [
        "| question | answer |",
        "|---|---|",
        f"| SIGKILLs at random moments | **{sum(k['kills'] for k in runs)}** "
        f"({' + '.join(str(k['kills']) for k in runs)}: default server, "
        "client_connection_check_interval, table lock) |",
        f"| half-applied scripts / effects without a row / duplicate rows after a kill | "
        f"**{sum(len(k['violations']) for k in runs)}** |",
        f"| advisory locks left by a killed migrator | **{sum(k['leftover_locks'] for k in runs)}** |",
        f"| follow-up runs that waited for the lock (session lock) | "
        f"{sum(res[k]['follow_up_waited'] for k in ('kills', 'kills_check_interval'))} |",
        f"| failed-row cases (no-transaction CIC script killed half way, follow-up exit 4) | "
        f"**{sum(k['failed_row_cases'] for k in runs)}**; recovered by dropping the index and "
        f"running migrate again: {sum(k.get('resumed', 0) for k in runs)}, needed repair too: "
        f"{sum(k['repaired'] for k in runs)} |",
        f"| INVALID indexes left by a killed CIC | **{sum(k['invalid_indexes'] for k in runs)}** "
        "(only with client_connection_check_interval) |",
        f"| 10 concurrent migrators x {conc['rounds']} rounds: duplicates / missing per round | "
        f"**{max(conc['duplicates_per_round'])} / {max(conc['missing_per_round'])}** (max), "
        f"{_codes(conc['exit_codes'])} |",
        f"| CIC with 9 waiters | {sum(c['codes'] == [0] * 10 and c['index'] == 'valid' for c in res['cic'])} of "
        f"{len(res['cic'])} rounds all exit 0, index valid |",
    ]
    if "session" in pgb:
        s = pgb["session"]
        rows.append(
            f"| PgBouncer (transaction pooling), default session lock | {_codes(s['exit_codes'])}; "
            f"lock left held on a pooled server connection in {sum(1 for x in s['leftover_locks_per_round'] if x)} of {s['rounds']} rounds |"
        )
    if "table" in pgb:
        t = pgb["table"]
        rows.append(
            f"| PgBouncer, `--lock-mode table` | {_codes(t['exit_codes'])}; duplicates "
            f"{max(t['duplicates_per_round'])}, missing {max(t['missing_per_round'])} |"
        )
    return ["## Summary", "", *rows, ""]


def _codes(d: dict[str, Any]) -> str:
    return ", ".join(f"exit {k}: {v}" for k, v in d.items()) or "none"


def _kills(k: dict[str, Any], title: str) -> list[str]:
    return [
        f"### {title}",
        "",
        "| figure | value |",
        "|---|---|",
        f"| SIGKILLs that landed (process still running) | **{k['kills']}** in {k['iterations']} fresh databases ({k['finished_before_kill']} runs finished before their kill time) |",
        f"| invariant violations (half-applied script, effects without a row, row without effects, duplicate or out-of-order rows) | **{len(k['violations'])}** |",
        f"| advisory locks left once the killed session had gone | **{k['leftover_locks']}** |",
        f"| lock-table rows left after the follow-up run (table mode) | {k.get('lock_rows_left', 0)} |",
        f"| killed sessions still on the server after 60 s | {k['sessions_stuck']} |",
        f"| how long the killed client's server session (and its lock) lived on | median {k['linger_median']:.3f} s, max {k['linger_max']:.3f} s |",
        f"| follow-up runs that had to wait for the lock | {k['follow_up_waited']} |",
        f"| follow-up exit codes | {_codes(k['follow_up_codes'])} |",
        f"| follow-up run time | median {_median(k['follow_up_seconds'])} s, max {max(k['follow_up_seconds'], default=0)} s |",
        f"| no-transaction script left half done by a kill (state right after the kill) | {k['cic_partial_after_kill'] or 'none'} |",
        f"| INVALID index left by a killed CREATE INDEX CONCURRENTLY | **{k['invalid_indexes']}** |",
        f"| failed-row cases (follow-up re-ran the CIC script onto its leftover index, exit 4) | **{k['failed_row_cases']}** (leftover index was {k.get('failed_row_index') or '-'}) |",
        f"| ...recovered by dropping the index and re-running migrate (resume) | {k.get('resumed', 0)} |",
        f"| ...recovered only with `persistor repair` | {k['repaired']} |",
        f"| final exit codes (after recovery) | {_codes(k['final_codes'])} |",
        f"| what the killed session was doing | {k['in_flight']} |",
        f"| scripts applied at the moment of the kill | {k['applied_at_kill']} |",
        "",
        *(f"- violation: `{v}`" for v in k["violations"][:20]),
        *(f"- {n}" for n in k.get("notes", [])),
        "",
    ]


def _rounds(r: dict[str, Any], title: str) -> list[str]:
    # A round whose migrators all stopped early leaves scripts unapplied: that is
    # no broken invariant (nothing half applied or doubled), so it is counted apart.
    incomplete = [v for v in r["violations"] if v.startswith("not complete")]
    broken = [v for v in r["violations"] if not v.startswith("not complete")]
    return [
        f"### {title}",
        "",
        "| figure | value |",
        "|---|---|",
        f"| rounds (fresh database each, 10 migrators started together) | {r['rounds']} |",
        f"| exit codes over all migrators | {_codes(r['exit_codes'])} |",
        f"| duplicate history rows per round | {r['duplicates_per_round']} |",
        f"| missing history rows per round | {r['missing_per_round']} |",
        f"| advisory locks left per round | {r['leftover_locks_per_round']} |",
        f"| invariant violations | {len(broken)} |",
        f"| rounds left incomplete (every migrator stopped early) | {len(incomplete)} |",
        f"| migrators that reported waiting | {r['waited']} |",
        f"| seconds per round | {r['seconds_per_round']} |",
        "",
        *(f"- error seen: `{e}`" for e in r["errors"][:8]),
        *(f"- violation: `{v}`" for v in broken[:8]),
        "",
    ]


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [
        "# Reliability of `persistor migrate`",
        "",
        "Operators run `persistor migrate` at the start-up of every replica, through",
        "connection poolers, and kill it when a deploy times out. This page shows what",
        "happens then, with numbers from one command:",
        "",
        "```bash",
        "bash reliability/run.sh            # full run, writes this page (about 11 min here)",
        "bash reliability/run.sh --committed  # the same, on persistor as committed (git archive HEAD src)",
        "bash reliability/run.sh --quick    # smoke run, reliability/results/quick.json only",
        "PERSISTOR_TEST_URL=postgresql://postgres@127.0.0.1:5432/postgres \\",
        "  python -m pytest tests/reliability -q             # the fast part, in the normal suite",
        "python -m pytest tests/reliability -q --run-slow    # plus the long modes",
        "```",
        "",
        f"Figures below: `{res['command']}`, run took **{res['seconds']:.0f} s** "
        f"({res['seconds'] / 60:.1f} min). Raw results: `reliability/results/{res['mode']}.json`.",
        "",
        *_summary(res),
        "## Machine",
        "",
        f"- nproc: {m['nproc']}; memory: {m['memory']}; CPU: {m['cpu']}",
        f"- kernel {m['kernel']}, Python {m['python']}",
        f"- {m['postgresql']} (the machine's service, 127.0.0.1:5432)",
        f"- PgBouncer: {res['pgbouncer'].get('version', res['pgbouncer']['installed'])}",
        f"- persistor at {m['persistor_commit']}",
        "- other people's test suites were running on the same 2 cores",
        "",
        "## The migrations",
        "",
        "`reliability/scripts.py` writes 30 scripts. Script N creates table `t_N` and",
        "inserts N into `markers`, in one transaction; every third one also inserts",
        "1000 rows, adds a column, creates an index and runs a `DO` block (several",
        "statements); each takes at least `pg_sleep(0.05)`. V010 loads 300,000 rows;",
        "V020 is `-- persistor:no-transaction` with `SELECT pg_sleep(0.05)` then",
        "`CREATE INDEX CONCURRENTLY ix_cic ON t_10 (v, id)`. After any kill, a",
        "successful history row for N must exist exactly when all of N's effects do,",
        "the applied versions must be 1..k in rank order, and the CIC index must be",
        "valid exactly when V020 has a successful row.",
        "",
        "## 1. Crash safety: SIGKILL at random moments",
        "",
        "Each iteration: fresh database, `python -m persistor migrate` as a subprocess,",
        "SIGKILL at a uniformly random time between the session's appearance and the",
        "end of a full run (sometimes 2-3 kills in a row on the same database), wait",
        "until the killed session has left the server, check every invariant and",
        "`pg_locks`, then a normal `migrate` (lock timeout 20 s) must complete with",
        "exit 0 without waiting, and everything is checked again.",
        "",
        *_kills(res["kills"], "1a. Default server settings"),
        "With default settings a SIGKILLed client's server session keeps running its",
        "current statement to the end, then rolls back its open transaction and exits:",
        "that is the 'lived on' time above, and why a killed CREATE INDEX",
        "CONCURRENTLY finishes on the server: the index is there and valid but V020",
        "has no history row. The next migrate then runs V020 again, fails on the",
        "existing index and records a failed row (exit 4); dropping the index and",
        "running migrate again resumes V020 at the failed statement.",
        "",
        *_kills(
            res["kills_check_interval"],
            "1b. With `client_connection_check_interval = 50ms` (PGOPTIONS)",
        ),
        "With the check interval the server notices the dead client during a",
        "statement and cancels it, so a killed CREATE INDEX CONCURRENTLY leaves an",
        "**INVALID** index (counted above). It does not block the next migrate's",
        "other scripts but V020's re-run fails on the name until the index is dropped",
        "(`DROP INDEX CONCURRENTLY ix_cic`), exactly as in 1a.",
        "",
    ]
    if "kills_table" in res:
        out += [
            *_kills(res["kills_table"], "1c. `--lock-mode table`"),
            "In table mode a killed migrator's lock row stays until its 30 s lease",
            "runs out, so the follow-up run waits up to 30 s (by design; see follow-up",
            "waits above).",
            "",
        ]
    cic = res["cic"]
    out += [
        "## 2. Concurrency",
        "",
        *_rounds(res["concurrency"], "2a. Ten migrators at once, session advisory lock (default)"),
        "### 2b. CREATE INDEX CONCURRENTLY while 9 migrators wait for the lock",
        "",
        "V001..V019 applied first; one migrator starts on V020 (`pg_sleep(1.5)` then",
        "the CIC), and once it holds the lock 9 more start and poll for it.",
        "",
        "| round | exit codes | waited | index | seconds | CIC waited on |",
        "|---|---|---|---|---|---|",
        *(
            f"| {i + 1} | {c['codes']} | {c['waited']} | {c['index']} | {c['seconds']} | "
            f"{', '.join(c['cic_waited_on']) or '-'} |"
            for i, c in enumerate(cic)
        ),
        "",
        "Control (what the test is there to catch): a waiter that instead blocks on",
        "`pg_advisory_xact_lock` inside a transaction while the CIC runs:",
        f"`{res['cic_control']}`.",
        "",
        "## 3. Through PgBouncer (transaction pooling)",
        "",
        "Debian's `pgbouncer`, installed by the harness with apt-get when missing,",
        "run as `postgres` on a free loopback port, `pool_mode = transaction`,",
        "`default_pool_size = 5`, `auth_type = trust`, in front of 127.0.0.1:5432.",
        "",
    ]
    pgb = res["pgbouncer"]
    if "session" in pgb:
        out += [
            *_rounds(pgb["session"], "3a. Default session advisory lock (lock timeout 15 s)"),
            "Session advisory locks do not work through transaction pooling: the",
            "`pg_try_advisory_lock` lands on one server connection, the unlock on",
            "another, so the lock stays on a pooled server connection. A client",
            "that lands on that connection would 'get' it again (advisory locks are",
            "re-entrant per session); persistor sees that the session held the lock",
            "before it asked and stops with exit 6 and the advice to use",
            "`--lock-mode table`, and a holder whose later transactions land on",
            "another server session stops at its next commit (exit 6). The others",
            "wait until the lock timeout (exit 6).",
            "Nothing was half applied or applied twice, but the migrators stop.",
            "**Do not use the default lock mode behind transaction pooling.**",
            "",
        ]
    else:
        out += [f"PgBouncer not available: {pgb['installed']}", ""]
    if "table" in pgb:
        out += [*_rounds(pgb["table"], "3b. `--lock-mode table`"), ""]
    elif not res.get("lock_mode_supported"):
        out += ["`--lock-mode` does not exist in this persistor yet.", ""]
    if "lease" in res:
        ls = res["lease"]
        out += [
            "## 4. Table lock: holder frozen past its lease",
            "",
            f"A table-mode migrator was frozen (SIGSTOP) after {ls['applied_when_frozen']}",
            f"scripts for {ls['pause_s']} s (lease 30 s); a second migrator then ran",
            f"(exit {ls['second_exit']}, waited: {ls['second_waited']}, {ls['second_seconds']} s);",
            f"then the first was resumed: exit {ls['first_exit']}, `{ls['first_error']}`.",
            f"Duplicates {ls['duplicates']}, missing {ls['missing']}, violations {len(ls['violations'])}.",
            "",
            "The first migrator does not notice that it lost the lock: it goes on with",
            "the next script. What stops a duplicate is only the history table's",
            "primary key on `installed_rank` (its rank was taken by the second",
            "migrator), and only for transactional scripts; the error it reports is",
            "misleading (see Findings).",
            "",
        ]
    out += [
        "## Findings",
        "",
        "FINDINGS_PLACEHOLDER",
        "",
    ]
    return "\n".join(out)


def write_doc(res: dict[str, Any], path: Path) -> None:
    text = render(res)
    findings = Path(__file__).with_name("FINDINGS.md")
    body = findings.read_text() if findings.exists() else "(none)"
    text = text.replace("FINDINGS_PLACEHOLDER", body.strip())
    # The live-traffic figures come from their own script (reliability/live_traffic.py).
    live = Path(__file__).with_name("LIVE_TRAFFIC.md")
    if live.exists():
        from reliability.live_traffic import insert_section

        text = insert_section(text, live.read_text())
    # Written by their own scripts (reliability/failover.py, bench/fleet.py): kept as is.
    for part in ("FAILOVER.md", "FLEET.md"):
        if Path(__file__).with_name(part).exists():
            text += "\n" + Path(__file__).with_name(part).read_text().strip() + "\n"
    # The bad-input catalogue is written by hand, not measured: appended as is.
    catalogue = Path(__file__).with_name("BAD_INPUT.md")
    if catalogue.exists():
        text += "\n" + catalogue.read_text().strip()
    path.write_text(text + "\n")


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "reliability/results/full.json"
    write_doc(json.loads(src.read_text()), root / "docs" / "RELIABILITY.md")
