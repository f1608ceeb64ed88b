"""Load and attack the Ecliptix functions from many sessions at once, then check every invariant.

``run_stress`` starts ``clients`` threads, each with its own psycopg
connection and :class:`EcliptixClient`, for ``duration`` seconds:

- a quarter run legitimate registrations and logins (``stress_traffic``);
- a quarter attack one victim number, whose owner set up an account on their
  own device before the run (``attacks``): guesses from fresh devices under
  every region, and every takeover route; the first session is the owner,
  using the account from that device throughout;
- the rest are untargeted attackers on shared numbers and devices.

Afterwards every invariant of the contract is checked in the database, and
the report gives the attack's figures: guesses the database compared on the
victim's number against its budget, takeover attempts tried and succeeded,
and the owner's success rate. The library never prints; ``persistor stress``
renders the report.

The URL's role must be able to read the tables for the checks (the owner
that deployed the schema, typically); the workload itself only calls the
functions.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import psycopg
from psycopg import sql

from ecliptix._session import CONNECT_TIMEOUT, Session, calls_by_function, merge, open_sessions
from ecliptix._session import run_sessions as _run_sessions
from ecliptix.attack_run import AttackFigures, figures_from, set_up_target
from ecliptix.attacks import AttackerSession, OwnerSession, Target
from ecliptix.invariants import InvariantCheck, check_invariants, row_counts
from ecliptix.otp import OtpKeyring, resolve_keyring
from ecliptix.stress_traffic import LoadSession, World, new_world

__all__ = ["InvariantCheck", "StressReport", "check_invariants", "run_stress"]


@dataclass(frozen=True)
class StressReport:
    """What a stress run did, what the attack achieved, and whether every invariant held."""

    clients: int
    duration: float
    elapsed: float
    calls: Mapping[str, Mapping[str, int]]
    errors: Mapping[str, int]
    flows_started: int
    flows_completed: int
    invariants: tuple[InvariantCheck, ...]
    attack: AttackFigures
    rows: Mapping[str, int] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        """Return how many function calls were made."""
        return sum(sum(outcomes.values()) for outcomes in self.calls.values())

    @property
    def invariants_hold(self) -> bool:
        """Return whether every invariant held."""
        return all(check.holds for check in self.invariants)

    @property
    def succeeded(self) -> bool:
        """Return whether every invariant held and the attack got nowhere (the exit status)."""
        return self.invariants_hold and self.attack.holds

    @property
    def ok(self) -> bool:
        """Return whether the run succeeded and no call raised an error."""
        return self.succeeded and not self.errors

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "clients": self.clients,
            "duration": self.duration,
            "elapsed": round(self.elapsed, 3),
            "total_calls": self.total_calls,
            "calls_per_second": round(self.total_calls / self.elapsed, 1) if self.elapsed else 0,
            "flows_started": self.flows_started,
            "flows_completed": self.flows_completed,
            "calls": {fn: dict(sorted(o.items())) for fn, o in sorted(self.calls.items())},
            "errors": dict(sorted(self.errors.items())),
            "rows": dict(self.rows),
            "invariants": [
                {
                    "name": c.name,
                    "description": c.description,
                    "observed": c.observed,
                    "limit": c.limit,
                    "violations": c.violations,
                    "holds": c.holds,
                }
                for c in self.invariants
            ],
            "invariants_hold": self.invariants_hold,
            "attack": self.attack.to_json(),
            "ok": self.ok,
        }

    def lines(self) -> list[tuple[str, str | None]]:
        """Return the report as lines of text, each with a rich style or None."""
        data = self.to_json()
        lines: list[tuple[str, str | None]] = [
            (
                f"{self.clients} clients for {data['elapsed']} s: {data['total_calls']} calls "
                f"({data['calls_per_second']}/s), {self.flows_completed} of "
                f"{self.flows_started} flows completed",
                None,
            )
        ]
        for fn, outcomes in data["calls"].items():
            lines.append((f"  {fn}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()), None))
        for name, count in data["errors"].items():
            lines.append((f"  error {name}: {count}", "red"))
        for check in self.invariants:
            mark = "holds   " if check.holds else "VIOLATED"
            lines.append(
                (
                    f"  {mark}  {check.description} (observed {check.observed}, "
                    f"limit {check.limit})",
                    "green" if check.holds else "bold red",
                )
            )
        return lines + self.attack.lines()


def _check_arguments(clients: object, duration: object, schema: object) -> None:
    if not isinstance(clients, int) or isinstance(clients, bool) or clients < 2:
        raise ValueError(f"clients must be an int of at least 2, got {clients!r}")
    if not isinstance(duration, int | float) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if schema is not None and (not isinstance(schema, str) or not schema):
        raise ValueError("schema must be a non-empty str or None")


def _session_maker(
    url: str, schema: str | None, keyring: OtpKeyring, world: World, target: Target
) -> Any:
    seed = secrets.randbits(64)

    def make(i: int) -> Session:
        rng = random.Random(seed + i)
        if i == 0:
            owner = OwnerSession(url, schema, keyring, rng)
            owner.target = target
            return owner
        if i % 4 == 1:
            attacker = AttackerSession(url, schema, keyring, rng)
            attacker.target = target
            return attacker
        load = LoadSession(url, schema, keyring, rng)
        load.world = world
        load.legit = i % 4 == 0
        return load

    return make


def _work(session: Session, stop: threading.Event) -> None:
    while not stop.is_set():
        if isinstance(session, OwnerSession):
            session.act(stop)
        elif isinstance(session, AttackerSession):
            session.act()
        elif isinstance(session, LoadSession):
            if session.legit:
                session.legitimate()
            elif session.rng.randrange(20) == 0:
                session.expire()
            else:
                session.attack()


def run_stress(
    url: str, *, clients: int = 64, duration: float = 30.0, schema: str | None = None
) -> StressReport:
    """Run ``clients`` concurrent sessions (load and a targeted attack) for ``duration``
    seconds, then check every invariant in the database."""
    _check_arguments(clients, duration, schema)
    keyring = resolve_keyring(None) or OtpKeyring.generate()
    target = set_up_target(url, schema=schema, keyring=keyring)
    sessions = open_sessions(clients, _session_maker(url, schema, keyring, new_world(), target))
    elapsed = _run_sessions(sessions, _work, duration)
    total = merge([s.tally for s in sessions])
    loads = [s for s in sessions if isinstance(s, LoadSession)]
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        if schema is not None:
            conn.execute(sql.SQL("SET search_path TO {}, pg_temp").format(sql.Identifier(schema)))
        invariants = check_invariants(conn)
        rows = row_counts(conn)
    return StressReport(
        clients=clients,
        duration=float(duration),
        elapsed=elapsed,
        calls=MappingProxyType(
            {k: MappingProxyType(v) for k, v in calls_by_function(total).items()}
        ),
        errors=MappingProxyType(dict(total.errors)),
        flows_started=sum(s.started for s in loads),
        flows_completed=sum(s.completed for s in loads),
        invariants=invariants,
        attack=figures_from(total),
        rows=MappingProxyType(rows),
    )
