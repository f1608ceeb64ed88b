"""Run the attack of ``ecliptix.attacks`` on one number and report its figures.

``run_attack`` sets up the victim's account on the owner's device, then runs
``sessions`` attacker sessions and one owner session at once for
``duration`` seconds. It needs only the application role. The library never
prints; the report has ``to_json()`` and ``lines()`` like the stress report.
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

from ecliptix._session import Session, Tally, calls_by_function, merge, open_sessions, run_sessions
from ecliptix.attacks import (
    GUESS_BUDGET,
    AttackerSession,
    OwnerSession,
    Target,
    enrol_owner,
    random_victim_number,
)
from ecliptix.client import EcliptixClient
from ecliptix.otp import OtpKeyring, resolve_keyring

CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class AttackFigures:
    """What the attackers achieved on the victim's number, and how the owner fared."""

    guesses: int
    guess_budget: int
    codes_guessed_right: int
    takeover_tried: int
    takeover_succeeded: int
    owner_tried: int
    owner_succeeded: int
    detail: Mapping[str, int] = field(default_factory=dict)

    @property
    def owner_success_rate(self) -> float:
        """Return the owner's successes over attempts (1.0 when the owner made none)."""
        return self.owner_succeeded / self.owner_tried if self.owner_tried else 1.0

    @property
    def holds(self) -> bool:
        """Return whether guesses stayed in budget, nothing was taken over, the owner never failed."""
        return (
            self.guesses <= self.guess_budget
            and self.takeover_succeeded == 0
            and self.owner_succeeded == self.owner_tried
        )

    def to_json(self) -> dict[str, Any]:
        """Return the figures as plain JSON-ready data."""
        return {
            "guesses": self.guesses,
            "guess_budget": self.guess_budget,
            "codes_guessed_right": self.codes_guessed_right,
            "takeover_tried": self.takeover_tried,
            "takeover_succeeded": self.takeover_succeeded,
            "owner_tried": self.owner_tried,
            "owner_succeeded": self.owner_succeeded,
            "owner_success_rate": round(self.owner_success_rate, 4),
            "detail": dict(sorted(self.detail.items())),
            "holds": self.holds,
        }

    def lines(self) -> list[tuple[str, str | None]]:
        """Return the figures as lines of text, each with a rich style or None."""
        style = "green" if self.holds else "bold red"
        return [
            (
                f"  attack: {self.guesses} guesses compared on the attacked number "
                f"(budget {self.guess_budget}), {self.codes_guessed_right} right",
                style if self.guesses <= self.guess_budget else "bold red",
            ),
            (
                f"  attack: {self.takeover_succeeded} of {self.takeover_tried} takeover "
                "attempts succeeded",
                "green" if self.takeover_succeeded == 0 else "bold red",
            ),
            (
                f"  attack: the owner succeeded {self.owner_succeeded} of {self.owner_tried} "
                f"times on the known device ({100 * self.owner_success_rate:.1f} %)",
                "green" if self.owner_succeeded == self.owner_tried else "bold red",
            ),
        ]


def figures_from(tally: Tally, guess_budget: int = GUESS_BUDGET) -> AttackFigures:
    """Return the attack figures counted in a (merged) tally."""
    events = tally.events
    return AttackFigures(
        guesses=events["guesses"],
        guess_budget=guess_budget,
        codes_guessed_right=events["codes_guessed_right"],
        takeover_tried=events["takeover_tried"],
        takeover_succeeded=events["takeover_succeeded"],
        owner_tried=events["owner_tried"],
        owner_succeeded=events["owner_succeeded"],
        detail=MappingProxyType({k: v for k, v in events.items() if ":" in k}),
    )


@dataclass(frozen=True)
class AttackReport:
    """An attack run: the target, the figures, every call's outcome and any errors."""

    number: str
    sessions: int
    duration: float
    elapsed: float
    figures: AttackFigures
    calls: Mapping[str, Mapping[str, int]]
    errors: Mapping[str, int]

    @property
    def succeeded(self) -> bool:
        """Return whether the contract held against the attack."""
        return self.figures.holds

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "number": self.number,
            "sessions": self.sessions,
            "duration": self.duration,
            "elapsed": round(self.elapsed, 3),
            "figures": self.figures.to_json(),
            "calls": {fn: dict(o) for fn, o in sorted(self.calls.items())},
            "errors": dict(sorted(self.errors.items())),
        }

    def lines(self) -> list[tuple[str, str | None]]:
        """Return the report as lines of text, each with a rich style or None."""
        head = f"{self.sessions} attacker sessions on {self.number} for {self.elapsed:.1f} s"
        return [(head, None), *self.figures.lines()]


def set_up_target(
    url: str, *, schema: str | None, keyring: OtpKeyring, number: str | None = None
) -> Target:
    """Create the victim's account (owner's device, membership, key) on a number."""
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        client = EcliptixClient(conn, schema=schema, otp_keys=keyring)
        return enrol_owner(client, number or random_victim_number())


def run_attack(
    url: str,
    *,
    sessions: int = 64,
    duration: float = 10.0,
    schema: str | None = None,
    otp_keys: OtpKeyring | None = None,
    target: Target | None = None,
) -> AttackReport:
    """Attack one number from ``sessions`` sessions while its owner uses it; report the figures."""
    if not isinstance(sessions, int) or sessions < 1:
        raise ValueError(f"sessions must be a positive int, got {sessions!r}")
    if not isinstance(duration, int | float) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    keyring = resolve_keyring(otp_keys) or OtpKeyring.generate()
    victim = target or set_up_target(url, schema=schema, keyring=keyring)
    seed = secrets.randbits(64)

    def make(i: int) -> Session:
        rng = random.Random(seed + i)
        session: OwnerSession | AttackerSession
        if i == 0:
            session = OwnerSession(url, schema, keyring, rng)
        else:
            session = AttackerSession(url, schema, keyring, rng)
        session.target = victim
        return session

    opened = open_sessions(sessions + 1, make)
    elapsed = run_sessions(opened, _work, duration)
    total = merge([s.tally for s in opened])
    return AttackReport(
        number=victim.number,
        sessions=sessions,
        duration=float(duration),
        elapsed=elapsed,
        figures=figures_from(total),
        calls=MappingProxyType(calls_by_function(total)),
        errors=MappingProxyType(dict(total.errors)),
    )


def _work(session: Session, stop: threading.Event) -> None:
    while not stop.is_set():
        if isinstance(session, OwnerSession):
            session.act(stop)
        elif isinstance(session, AttackerSession):
            session.act()
