"""Regenerate the measured part of docs/SECURITY.md: the one command.

    .venv/bin/python bench/security_report.py [--url postgresql://postgres@127.0.0.1:5432] [--quick]

On one PostgreSQL server (BENCH_PG or --url: a role that may create
databases and roles), each on fresh databases that are dropped afterwards:

1. the attack: 64 attacker sessions against one number (fresh devices, every
   region), as the least-privilege application role, while the owner uses
   the account from a known device; then time moved on 1 h, 23 h and 24 h to
   measure the guesses per day and how long a brand-new registration waits;
2. a simulated week of traffic (a population logging in daily and strangers
   guessing), stored times moved back a day at a time, without the purge,
   with it at the default retention, and with the retention periods divided
   by 60 (so that a week covers what 14 months do at the defaults);
3. E1 throughput of version 2 against version 1 (bench/e1_versions.py).

The figures go between the generated-section markers of docs/SECURITY.md
(the rest of the page is kept) and, in full, to bench/results/security.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "SECURITY.md"
JSON_OUT = ROOT / "bench" / "results" / "security.json"
BEGIN, END = "<!-- security-report:begin -->", "<!-- security-report:end -->"
sys.path.insert(0, str(ROOT / "src"))


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


class Server:
    """Fresh databases and roles on one server, all dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.made: list[str] = []
        self.roles: list[str] = []

    def url(self, db: str, user: str | None = None) -> str:
        scheme, rest = self.admin_url.split("://", 1)
        hostpart = rest.split("/", 1)[0]
        if user is not None:
            hostpart = f"{user}@{hostpart.rpartition('@')[2]}"
        return f"{scheme}://{hostpart}/{db}"

    def fresh_db(self, template: str | None = None) -> str:
        """Create a database (a copy of the database named template, if given); return its URL."""
        name = "psec_" + uuid.uuid4().hex[:12]
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(create)
        self.made.append(name)
        return self.url(name)

    def drop_db(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def app_role(self, url: str) -> str:
        """Create a login role, grant it the application's functions; return its URL."""
        role = "psec_app_" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        self.roles.append(role)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT * FROM ecliptix_grant_app_role(%s)", [role])
        return self.url(url.rsplit("/", 1)[1], user=role)

    def cleanup(self) -> None:
        for name in self.made:
            self.drop_db(self.url(name))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for role in self.roles:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def deploy(url: str) -> None:
    from persistor.api import migrate
    from persistor.settings import Settings

    migrate(Settings(url=url))


def measure_attack(server: Server, quick: bool) -> dict[str, Any]:
    """The attack of 64 sessions, then time moved on to see how the budgets reopen."""
    from ecliptix import EcliptixClient, OtpKeyring
    from ecliptix.attack_run import run_attack, set_up_target
    from ecliptix.attacks import new_device_registration
    from ecliptix.simulation import shift_time

    owner_url = server.fresh_db()
    deploy(owner_url)
    app_url = server.app_role(owner_url)
    keyring = OtpKeyring.generate()
    target = set_up_target(app_url, schema=None, keyring=keyring)
    long, short = (5.0, 2.0) if quick else (20.0, 5.0)
    runs, waits = [], {}
    with (
        psycopg.connect(owner_url, autocommit=True) as owner,
        psycopg.connect(app_url, autocommit=True) as app,
    ):
        client = EcliptixClient(app, otp_keys=keyring)

        def attack(label: str, seconds: float) -> None:
            report = run_attack(
                app_url, sessions=64, duration=seconds, otp_keys=keyring, target=target
            )
            runs.append({"when": label, **report.to_json()})
            log(f"attack at {label}: {report.figures.to_json()}")

        def newcomer(label: str) -> None:
            waits[label] = new_device_registration(client, target.number, "US")

        attack("0 h", long)
        newcomer("0 h")
        for label, hours in (("1 h", 1), ("23 h", 22)):
            shift_time(owner, dt.timedelta(hours=hours, minutes=1))
            newcomer(label)
        attack("23 h", short)
        shift_time(owner, dt.timedelta(hours=1, minutes=1))
        newcomer("24 h")
        attack("24 h", short)
    log(f"brand-new device on the attacked number: {waits}")
    return {"runs": runs, "newcomer": waits}


def measure_week(server: Server, quick: bool) -> dict[str, Any]:
    """A simulated week: without the purge, with it, with it and compressed retention."""
    from ecliptix import EcliptixClient, OtpKeyring
    from ecliptix.simulation import retention_limits, scale_retention, simulate_week

    members, strangers = (10, 20) if quick else (30, 60)
    out: dict[str, Any] = {"members": members, "strangers_per_day": strangers}
    for label, purge, divisor in (
        ("no_purge", False, 1),
        ("purge", True, 1),
        ("purge_compressed", True, 60),
    ):
        url = server.fresh_db()
        deploy(url)
        with psycopg.connect(url, autocommit=True) as conn:
            if divisor > 1:
                out["compressed_retention"] = scale_retention(conn, divisor)
            else:
                out["default_retention"] = retention_limits(conn)
            client = EcliptixClient(conn, otp_keys=OtpKeyring.generate())
            week = simulate_week(
                conn,
                client,
                members=members,
                strangers_per_day=strangers,
                purge=purge,
                progress=lambda m, lb=label: log(f"week {lb}: {m}"),
            )
        server.drop_db(url)
        out[label] = {"days": week.days, "deleted": week.deleted, "logins": week.logins}
    return out


def measure_e1(server: Server, quick: bool) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    import e1_versions

    clients = (4,) if quick else (4, 16)
    seconds, repeats = (3.0, 1) if quick else (4.0, 8)
    return e1_versions.run_versions(
        server.fresh_db, server.drop_db, clients=clients, seconds=seconds, repeats=repeats, log=log
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--quick", action="store_true", help="short runs, to try the command")
    parser.add_argument("--skip", default="", help="comma-separated: attack,week,e1")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    server = Server(args.url if args.url.count("/") > 2 else args.url + "/postgres")
    figures: dict[str, Any] = {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with psycopg.connect(server.admin_url) as conn:
        figures["server"] = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
    try:
        if "attack" not in skip:
            figures["attack"] = measure_attack(server, args.quick)
        if "week" not in skip:
            figures["week"] = measure_week(server, args.quick)
        if "e1" not in skip:
            figures["e1"] = measure_e1(server, args.quick)
    finally:
        server.cleanup()
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(figures, indent=2) + "\n")
    import security_markdown

    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    section = security_markdown.render(figures, quick=args.quick)
    DOC.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")
    log(f"wrote {DOC.relative_to(ROOT)} and {JSON_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
