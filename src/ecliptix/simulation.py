"""Simulate days of Ecliptix traffic on a scratch database, by moving its stored times back.

For measurements only (docs/SECURITY.md): ``shift_time`` rewrites every
timestamp of every table of the schema, which is the same as time passing
for the database, and must never be pointed at a database anyone uses. It
needs the owner's rights; the traffic itself goes through the application's
functions.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ecliptix import _queries
from ecliptix.attacks import Target, enrol_owner, random_victim_number
from ecliptix.client import EcliptixClient
from ecliptix.invariants import row_counts
from ecliptix.models import FlowOutcome, FlowPurpose, LoginOutcome

_FILE = "simulation.sql"


def shift_time(conn: psycopg.Connection[Any], by: dt.timedelta) -> None:
    """Move every stored time of the connection's schema back by ``by`` (time passes)."""
    if by <= dt.timedelta(0):
        raise ValueError(f"by must be a positive timedelta, got {by!r}")
    conn.execute(_queries.query(_FILE, "set_shift").sql, {"by": f"{by.total_seconds()} seconds"})
    conn.execute(_queries.query(_FILE, "shift_time").sql)


def retention_limits(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Return the retention periods of ecliptix_limits, in seconds, by name."""
    rows = conn.execute(_queries.query(_FILE, "retention_limits").sql).fetchall()
    return {str(name): int(value) for name, value in rows}


def scale_retention(conn: psycopg.Connection[Any], divisor: int) -> dict[str, int]:
    """Divide every retention period by divisor (for a compressed simulation); return them."""
    scaled = {name: max(1, value // divisor) for name, value in retention_limits(conn).items()}
    for name, value in scaled.items():
        conn.execute(_queries.query(_FILE, "set_limit").sql, {"name": name, "value": value})
    return scaled


def purge_until_done(client: EcliptixClient, batch_size: int = 5000) -> dict[str, int]:
    """Run ecliptix_purge until a call deletes nothing (a per-minute job catching up)."""
    total: dict[str, int] = {}
    while True:
        rows = client.ecliptix_purge(batch_size)
        deleted = [r for r in rows if r.rows_deleted]
        for r in deleted:
            total[r.table_name] = total.get(r.table_name, 0) + r.rows_deleted
        if not deleted:
            return total


def population(client: EcliptixClient, size: int) -> list[Target]:
    """Enrol size members, each on a device of their own."""
    return [enrol_owner(client, random_victim_number()) for _ in range(size)]


def daily_use(client: EcliptixClient, members: Sequence[Target]) -> int:
    """Have every member verify a login code and log in from their device; return successes."""
    done = 0
    for member in members:
        flow = client.initiate_verification_flow(
            member.owner_device, member.phone_id, FlowPurpose.LOGIN, 1
        )
        if flow.unique_identifier is not None and flow.outcome is FlowOutcome.CREATED:
            issued = client.issue_otp(flow.unique_identifier)
            if issued.code is not None:
                client.check_otp(flow.unique_identifier, issued.code)
        login = client.login_membership(member.number, member.owner_device)
        done += login.kind is LoginOutcome.SUCCESS
    return done


def strangers(client: EcliptixClient, numbers: Sequence[str], tries: int) -> None:
    """Have fresh devices start flows and submit wrong codes on numbers (attack noise)."""
    for n in range(tries):
        number = numbers[n % len(numbers)]
        device = client.register_app_device_if_not_exists(uuid.uuid4(), uuid.uuid4()).unique_id
        phone = client.ensure_phone_number(number, None, device).unique_id
        if phone is None:
            continue
        flow = client.initiate_verification_flow(device, phone, FlowPurpose.REGISTRATION, 1)
        if flow.unique_identifier is None or flow.outcome is not FlowOutcome.CREATED:
            continue
        if client.issue_otp(flow.unique_identifier).code is not None:
            client.check_otp(flow.unique_identifier, f"{secrets.randbelow(10**6):06d}")
        client.login_membership(f"+1557{secrets.randbelow(10**8):08d}", device)


@dataclass
class WeekResult:
    """Row counts after each simulated day, and what the purge deleted."""

    purged: bool
    days: list[dict[str, int]] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)
    logins: int = 0


def simulate_week(
    conn: psycopg.Connection[Any],
    client: EcliptixClient,
    *,
    members: int,
    strangers_per_day: int,
    purge: bool,
    days: int = 7,
    progress: Callable[[str], None] = lambda _: None,
) -> WeekResult:
    """Run days of traffic, moving time back a day after each and purging if asked."""
    result = WeekResult(purged=purge)
    people = population(client, members)
    numbers = [p.number for p in people]
    for day in range(1, days + 1):
        result.logins += daily_use(client, people)
        strangers(client, numbers, strangers_per_day)
        shift_time(conn, dt.timedelta(days=1))
        if purge:
            for table, count in purge_until_done(client).items():
                result.deleted[table] = result.deleted.get(table, 0) + count
        result.days.append(row_counts(conn))
        progress(f"day {day}: {sum(result.days[-1].values())} rows")
    return result
