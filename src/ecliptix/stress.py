"""Hammer the Ecliptix functions from many sessions at once, then check every invariant.

``run_stress`` starts ``clients`` threads, each with its own psycopg
connection and :class:`EcliptixClient`, for ``duration`` seconds. A quarter of
them run legitimate registrations and logins; the rest behave like attackers.
Everybody works on one small shared set of phone numbers and devices, so the
row and advisory locks the functions rely on are really contended:

- legitimate: register a device, ensure the phone, initiate a registration
  flow, issue an OTP and check the right code, confirm the flow, create the
  membership, set a secure key, log in (a *completed flow*);
- attackers: initiate flows over and over (any purpose, any shared device),
  insert OTP records on shared flows, mark OTPs failed as a wrong code would,
  ask for resends, create memberships with wrong connections or unverified
  flows, and log in with numbers that have no membership.

Afterwards every invariant of the Ecliptix contract is checked in the
database and reported with the figure observed. The library never prints;
``python -m ecliptix.stress --url URL --duration 30`` prints the
report as JSON.

The URL's role must be able to read the tables for the checks (the owner
that deployed the schema, typically); the workload itself only calls the
functions.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from ecliptix.client import EcliptixClient
from ecliptix.models import (
    CreationStatus,
    FlowOutcome,
    FlowPurpose,
    FlowStatus,
    LoginOutcome,
    OtpStatus,
)
from ecliptix.otp import hash_otp

T = TypeVar("T")

SHARED_PHONES = 8
VICTIMS = 2  # of the shared numbers, the ones membership spam is aimed at
SHARED_DEVICES = 8
FAILING_NUMBERS = 6
REGION = "ZZ"  # user-assigned ISO code: never a real customer's region
CONNECT_TIMEOUT = 10
# scrypt (the OTP hash) takes 32 MiB and ~0.1 s per call; cap how many run at once.
_HASHING_SLOTS = 4
# A well-formed hash of a code the legitimate user never receives (cheap
# parameters): when it lands on a legitimate flow, the right code no longer
# matches, as when an attacker replaces the OTP.
_ATTACKER_HASH = hash_otp("000000", log2_n=1)


@dataclass(frozen=True)
class InvariantCheck:
    """One invariant of the contract as observed in the database after the run.

    ``observed`` is the largest figure found (rows per key, OTPs per flow,
    flows per phone per window, …), ``limit`` the most the contract allows,
    ``violations`` how many keys exceed it.
    """

    name: str
    description: str
    observed: int
    limit: int
    violations: int

    @property
    def holds(self) -> bool:
        """Return whether no key exceeds the limit."""
        return self.violations == 0 and self.observed <= self.limit


@dataclass(frozen=True)
class StressReport:
    """What a stress run did and whether every invariant held afterwards."""

    clients: int
    duration: float
    elapsed: float
    calls: Mapping[str, Mapping[str, int]]
    errors: Mapping[str, int]
    flows_started: int
    flows_completed: int
    invariants: tuple[InvariantCheck, ...]
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
        """Return whether every invariant held (the stress command's exit status)."""
        return self.invariants_hold

    @property
    def ok(self) -> bool:
        """Return whether every invariant held and no call raised an error."""
        return self.invariants_hold and not self.errors

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
        return lines


# -- the shared world -------------------------------------------------------


@dataclass(frozen=True)
class _World:
    run_id: str
    phones: tuple[str, ...]
    devices: tuple[uuid.UUID, ...]  # device_id values (not unique ids)
    failing: tuple[str, ...]


def _new_world() -> _World:
    run = secrets.token_hex(3)
    base = secrets.randbelow(10**5)
    # +1 555 numbers (fictional), 12 digits after the +, unique per run.
    phones = tuple(f"+1555{(base + i) % 10**5:05d}{i:02d}" for i in range(SHARED_PHONES))
    failing = tuple(f"+1555{(base + i) % 10**5:05d}9{i}" for i in range(FAILING_NUMBERS))
    devices = tuple(uuid.uuid4() for _ in range(SHARED_DEVICES))
    return _World(run, phones, devices, failing)


class _Tally:
    """Per-thread counts, merged at the end (no lock on the hot path)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[str] = Counter()
        self.started = 0
        self.completed = 0


class _Session:
    """One client session: a connection, a client, and the calls it counts."""

    def __init__(
        self,
        url: str,
        schema: str | None,
        world: _World,
        tally: _Tally,
        rng: random.Random,
        hashing: threading.Semaphore,
    ) -> None:
        self.url = url
        self.schema = schema
        self.world = world
        self.tally = tally
        self.rng = rng
        self.hashing = hashing
        self.conn = self._connect()
        self.client = EcliptixClient(self.conn, schema=schema)
        self.connection_id = rng.randrange(1, 2**31)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    def close(self) -> None:
        self.conn.close()

    def call(self, fn: str, thunk: Callable[[], T], outcome: Callable[[T], object]) -> T | None:
        """Run one client call, count its outcome (or its SQLSTATE) and return its result."""
        try:
            result = thunk()
        except ValueError as exc:  # e.g. a stored OTP hash the client cannot parse
            self.tally.errors[f"{fn}: ValueError: {exc}"] += 1
            return None
        except psycopg.Error as exc:
            self.tally.errors[f"{fn}: {exc.sqlstate or type(exc).__name__}"] += 1
            if self.conn.closed or self.conn.broken:
                self.conn = self._connect()
                self.client = EcliptixClient(self.conn, schema=self.schema)
            return None
        self.tally.calls[(fn, str(outcome(result)))] += 1
        return result

    # -- building blocks ---------------------------------------------------

    def device(self) -> uuid.UUID | None:
        device_id = self.rng.choice(self.world.devices)
        reg = self.call(
            "register_app_device_if_not_exists",
            lambda: self.client.register_app_device_if_not_exists(uuid.uuid4(), device_id),
            lambda r: r.status.name.lower(),
        )
        return reg.unique_id if reg else None

    def phone(self, number: str, device: uuid.UUID | None) -> uuid.UUID | None:
        ensured = self.call(
            "ensure_phone_number",
            lambda: self.client.ensure_phone_number(number, REGION, device),
            lambda r: r.outcome,
        )
        return ensured.unique_id if ensured else None

    def flow(self, device: uuid.UUID, phone: uuid.UUID, purpose: FlowPurpose) -> Any:
        return self.call(
            "initiate_verification_flow",
            lambda: self.client.initiate_verification_flow(
                device, phone, purpose, self.connection_id
            ),
            lambda r: r.outcome,
        )

    # -- legitimate traffic --------------------------------------------------

    def legitimate(self) -> None:
        # Half on the contested numbers (which attackers flood with flows, OTPs,
        # wrong codes and logins), half on a number of the user's own.
        if self.rng.randrange(2):
            number = self.rng.choice(self.world.phones[VICTIMS:])
        else:
            number = f"+1556{self.rng.randrange(10**9):09d}"
        device = self.device()
        if device is None:
            return
        phone = self.phone(number, device)
        if phone is None:
            return
        self.tally.started += 1
        flow = self.flow(device, phone, FlowPurpose.REGISTRATION)
        if flow is None or flow.unique_identifier is None:
            return
        flow_id: uuid.UUID = flow.unique_identifier
        connection = flow.connect_id if flow.connect_id is not None else self.connection_id
        otp_id: uuid.UUID = uuid.uuid4()
        if flow.outcome in (FlowOutcome.CREATED, FlowOutcome.RETRIEVED):
            with self.hashing:
                issued = self.call(
                    "insert_otp_record",
                    lambda: self.client.issue_otp(flow_id, lifetime=dt.timedelta(minutes=2)),
                    lambda r: r.outcome,
                )
                if issued is None or issued.code is None or issued.otp_unique_id is None:
                    return
                otp_id = issued.otp_unique_id
                code = issued.code
                check = self.call(
                    "update_otp_status",
                    lambda: self.client.check_otp(flow_id, code),
                    lambda r: r.outcome,
                )
            if check is None or not check.verified:
                return
            confirmed = self.call(
                "update_verification_flow_status",
                lambda: self.client.update_verification_flow_status(flow_id, FlowStatus.VERIFIED),
                lambda r: f"{r}_row" if r == 1 else f"{r}_rows",
            )
            if confirmed != 1:
                return
        elif flow.outcome is not FlowOutcome.VERIFIED:
            return
        made = self.call(
            "create_membership",
            lambda: self.client.create_membership(
                flow_id, connection, otp_id, CreationStatus.OTP_VERIFIED
            ),
            lambda r: r.kind,
        )
        if made is None or made.membership_unique_id is None:
            return
        member = made.membership_unique_id
        updated = self.call(
            "update_membership_secure_key",
            lambda: self.client.update_membership_secure_key(member, secrets.token_bytes(32)),
            lambda r: "success" if r.success else r.message,
        )
        if updated is None or not updated.success:
            return
        login = self.call(
            "login_membership", lambda: self.client.login_membership(number), lambda r: r.kind
        )
        if login is not None and login.kind is LoginOutcome.SUCCESS:
            self.tally.completed += 1

    # -- attacker traffic ------------------------------------------------------

    def attack(self) -> None:
        move = self.rng.randrange(7)
        if move == 0:  # log in with numbers that have no membership
            number = self.rng.choice(self.world.failing)
            self.call(
                "login_membership", lambda: self.client.login_membership(number), lambda r: r.kind
            )
            return
        if move == 1:  # log in on the shared numbers (some are registered, some not yet)
            number = self.rng.choice(self.world.phones)
            self.call(
                "login_membership", lambda: self.client.login_membership(number), lambda r: r.kind
            )
            return
        device = self.device()
        if device is None:
            return
        # Membership spam goes to the victim numbers, whose membership creation
        # it rate limits; every other attack to any contested number.
        pool = self.world.phones[:VICTIMS] if move >= 5 else self.world.phones
        phone = self.phone(self.rng.choice(pool), None)
        if phone is None:
            return
        flow = self.flow(device, phone, self.rng.choice(list(FlowPurpose)))
        if flow is None or flow.unique_identifier is None:
            return
        flow_id: uuid.UUID = flow.unique_identifier
        if move == 2:  # flood the flow with OTP records (a code of the attacker's own)
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
            for _ in range(self.rng.randrange(1, 4)):
                self.call(
                    "insert_otp_record",
                    lambda: self.client.insert_otp_record(flow_id, *_ATTACKER_HASH, expires),
                    lambda r: r.outcome,
                )
        elif move == 3:  # a wrong code: the active OTP is marked failed
            state = self.call(
                "get_full_flow_state",
                lambda: self.client.get_full_flow_state(flow_id),
                lambda r: "found" if r is not None else "not_found",
            )
            if state is not None and state.otp_unique_identifier is not None:
                otp = state.otp_unique_identifier
                self.call(
                    "update_otp_status",
                    lambda: self.client.update_otp_status(otp, OtpStatus.FAILED),
                    lambda r: "success" if r.success else r.message,
                )
        elif move == 4:
            self.call(
                "request_resend_otp",
                lambda: self.client.request_resend_otp(flow_id),
                lambda r: r,
            )
        elif move == 5:  # a membership from someone else's connection (victim numbers)
            self.call(
                "create_membership",
                lambda: self.client.create_membership(
                    flow_id, self.rng.randrange(1, 2**31), uuid.uuid4(), CreationStatus.OTP_VERIFIED
                ),
                lambda r: r.kind,
            )
        else:  # a membership from a flow nobody verified
            self.call(
                "create_membership",
                lambda: self.client.create_membership(
                    flow_id, self.connection_id, uuid.uuid4(), CreationStatus.OTP_VERIFIED
                ),
                lambda r: r.kind,
            )

    def expire(self) -> None:
        """Now and then expire the OTPs of a shared flow (cleanup traffic)."""
        device = self.device()
        phone = self.phone(self.rng.choice(self.world.phones), None)
        if device is None or phone is None:
            return
        flow = self.flow(device, phone, FlowPurpose.LOGIN)
        if flow is not None and flow.unique_identifier is not None:
            flow_id: uuid.UUID = flow.unique_identifier
            self.call(
                "expire_associated_otp",
                lambda: self.client.expire_associated_otp(flow_id),
                lambda r: "expired" if r else "none",
            )


# -- the run -----------------------------------------------------------------


def run_stress(
    url: str, *, clients: int = 64, duration: float = 30.0, schema: str | None = None
) -> StressReport:
    """Run ``clients`` concurrent sessions against the Ecliptix functions for
    ``duration`` seconds, then check every invariant in the database."""
    if not isinstance(clients, int) or clients < 1:
        raise ValueError(f"clients must be a positive int, got {clients!r}")
    if not isinstance(duration, int | float) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if schema is not None and (not isinstance(schema, str) or not schema):
        raise ValueError("schema must be a non-empty str or None")

    world = _new_world()
    hashing = threading.Semaphore(_HASHING_SLOTS)
    tallies = [_Tally() for _ in range(clients)]
    seed = secrets.randbits(64)
    sessions: list[_Session] = []
    try:
        for i in range(clients):
            sessions.append(
                _Session(url, schema, world, tallies[i], random.Random(seed + i), hashing)
            )
    except BaseException:
        for session in sessions:
            session.close()
        raise
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()
    crashes: list[BaseException] = []

    def work(i: int) -> None:
        session = sessions[i]
        try:
            barrier.wait(timeout=60)
            legit = i % 4 == 0
            while not stop.is_set():
                if legit:
                    session.legitimate()
                elif session.rng.randrange(20) == 0:
                    session.expire()
                else:
                    session.attack()
        except BaseException as exc:  # reported through crashes; never lost in a thread
            crashes.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    started = time.monotonic()
    stop.wait(duration)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - started
    if crashes:
        raise crashes[0]

    calls: Counter[tuple[str, str]] = Counter()
    errors: Counter[str] = Counter()
    for tally in tallies:
        calls.update(tally.calls)
        errors.update(tally.errors)
    by_function: dict[str, dict[str, int]] = {}
    for (fn, outcome), count in calls.items():
        by_function.setdefault(fn, {})[outcome] = count

    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        if schema is not None:
            conn.execute(sql.SQL("SET search_path TO {}, pg_temp").format(sql.Identifier(schema)))
        invariants = check_invariants(conn)
        rows = _row_counts(conn)

    return StressReport(
        clients=clients,
        duration=float(duration),
        elapsed=elapsed,
        calls=MappingProxyType({k: MappingProxyType(v) for k, v in by_function.items()}),
        errors=MappingProxyType(dict(errors)),
        flows_started=sum(t.started for t in tallies),
        flows_completed=sum(t.completed for t in tallies),
        invariants=invariants,
        rows=MappingProxyType(rows),
    )


# -- invariants ----------------------------------------------------------------

# (name, description, SQL giving one figure per key, limit: SQL or int)
_INVARIANTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "one_device_per_device_id",
        "app_devices rows per device_id",
        "SELECT count(*) FROM app_devices GROUP BY device_id",
        "SELECT 1",
    ),
    (
        "one_live_phone_per_number_region",
        "non-deleted phone_numbers rows per (phone_number, region)",
        "SELECT count(*) FROM phone_numbers WHERE NOT is_deleted GROUP BY phone_number, region",
        "SELECT 1",
    ),
    (
        "one_pending_flow_per_device_phone_purpose",
        "pending, non-deleted verification_flows per (device, phone, purpose)",
        "SELECT count(*) FROM verification_flows WHERE status = 'pending' AND NOT is_deleted "
        "GROUP BY app_device_id, phone_number_id, purpose",
        "SELECT 1",
    ),
    (
        "flows_per_phone_per_rolling_window",
        "verification_flows created for one phone within any flow_rate_window_seconds",
        "SELECT (SELECT count(*) FROM verification_flows g "
        "        WHERE g.phone_number_id = f.phone_number_id AND g.created_at <= f.created_at "
        "          AND g.created_at > f.created_at - make_interval(secs => (SELECT value "
        "              FROM ecliptix_limits WHERE name = 'flow_rate_window_seconds'))) "
        "FROM verification_flows f",
        "SELECT value FROM ecliptix_limits WHERE name = 'flows_per_phone_per_window'",
    ),
    (
        "otp_count_per_flow",
        "verification_flows.otp_count",
        "SELECT otp_count FROM verification_flows",
        "SELECT value FROM ecliptix_limits WHERE name = 'otps_per_flow'",
    ),
    (
        "otp_records_per_flow",
        "otp_records stored per flow (matches otp_count's limit)",
        "SELECT count(*) FROM otp_records GROUP BY flow_unique_id",
        "SELECT value FROM ecliptix_limits WHERE name = 'otps_per_flow'",
    ),
    (
        "one_active_otp_per_flow",
        "active, non-deleted otp_records per flow",
        "SELECT count(*) FROM otp_records WHERE is_active AND NOT is_deleted "
        "GROUP BY flow_unique_id",
        "SELECT 1",
    ),
    (
        "one_live_membership_per_phone_device",
        "non-deleted memberships per (phone, device)",
        "SELECT count(*) FROM memberships WHERE NOT is_deleted "
        "GROUP BY phone_number_id, app_device_id",
        "SELECT 1",
    ),
    (
        "failed_logins_per_number_per_window",
        "failed login_attempts evaluated for one number within any login_failure_window_seconds",
        "SELECT (SELECT count(*) FROM login_attempts g "
        "        WHERE g.phone_number = a.phone_number AND NOT g.is_success "
        "          AND g.attempted_at <= a.attempted_at "
        "          AND g.attempted_at > a.attempted_at - make_interval(secs => (SELECT value "
        "              FROM ecliptix_limits WHERE name = 'login_failure_window_seconds'))) "
        "FROM login_attempts a WHERE NOT a.is_success",
        "SELECT value FROM ecliptix_limits WHERE name = 'login_failures_per_window'",
    ),
    (
        "counted_membership_failures_per_phone_per_window",
        "create_membership failures (rate-limit refusals excluded) for one phone within any "
        "membership_failure_window_seconds",
        "SELECT (SELECT count(*) FROM membership_attempts g "
        "        WHERE g.phone_number_id = a.phone_number_id AND NOT g.is_success "
        "          AND NOT g.is_deleted AND g.outcome <> 'rate_limited' "
        "          AND g.attempted_at <= a.attempted_at "
        "          AND g.attempted_at > a.attempted_at - make_interval(secs => (SELECT value "
        "              FROM ecliptix_limits WHERE name = 'membership_failure_window_seconds'))) "
        "FROM membership_attempts a "
        "WHERE NOT a.is_success AND NOT a.is_deleted AND a.outcome <> 'rate_limited'",
        "SELECT value FROM ecliptix_limits WHERE name = 'membership_failures_per_window'",
    ),
)

_COUNTED_TABLES = (
    "app_devices",
    "phone_numbers",
    "phone_number_devices",
    "verification_flows",
    "otp_records",
    "failed_otp_attempts",
    "memberships",
    "login_attempts",
    "membership_attempts",
    "login_lockouts",
)


def check_invariants(conn: psycopg.Connection[Any]) -> tuple[InvariantCheck, ...]:
    """Check every invariant of the Ecliptix contract on the connection's schema."""
    checks = []
    for name, description, figures, limit_sql in _INVARIANTS:
        row = conn.execute(limit_sql.encode()).fetchone()
        limit = int(row[0]) if row else 0
        query = f"SELECT coalesce(max(n), 0), count(*) FILTER (WHERE n > %s) FROM ({figures}) s(n)"
        result = conn.execute(query.encode(), (limit,)).fetchone()
        observed, violations = (int(result[0]), int(result[1])) if result else (0, 0)
        checks.append(InvariantCheck(name, description, observed, limit, violations))
    return tuple(checks)


def _row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in _COUNTED_TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        value = row.fetchone()
        counts[table] = int(value[0]) if value else 0
    return counts
