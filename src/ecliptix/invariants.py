"""Check the invariants of the Ecliptix contract in the database, and count its rows.

The queries live in ``queries/invariants.sql``; each gives one figure per key
(rows per device id, OTPs per flow, failed checks per number per day, …) and
names its limit. Reading the tables needs the owner's rights (or any role
that may SELECT them), not the application role's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ecliptix import _queries

_FILE = "invariants.sql"
_HELPERS = ("limit_value", "tables")


@dataclass(frozen=True)
class InvariantCheck:
    """One invariant of the contract as observed in the database after the run.

    ``observed`` is the largest figure found (rows per key, OTPs per flow,
    flows per number per window, …), ``limit`` the most the contract allows,
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


def limit_value(conn: psycopg.Connection[Any], name: str, default: int) -> int:
    """Return the ecliptix_limits value called name, or default when there is none."""
    row = conn.execute(_queries.query(_FILE, "limit_value").sql, {"name": name}).fetchone()
    return int(row[0]) if row and row[0] is not None else default


def _limit(conn: psycopg.Connection[Any], spec: str) -> int:
    # "5", or "otps_per_flow | 5": the limit row, with the contract's default.
    name, bar, default = spec.partition("|")
    if not bar:
        return int(name)
    return limit_value(conn, name.strip(), int(default))


def check_invariants(conn: psycopg.Connection[Any]) -> tuple[InvariantCheck, ...]:
    """Check every invariant of the Ecliptix contract on the connection's schema."""
    checks = []
    for q in _queries.load(_FILE):
        if q.name in _HELPERS:
            continue
        limit = _limit(conn, q.headers["limit"])
        wrapped = sql.SQL(
            "SELECT coalesce(max(n), 0), count(*) FILTER (WHERE n > {}) FROM ({}) s(n)"
        ).format(sql.Literal(limit), sql.SQL(q.text))
        result = conn.execute(wrapped).fetchone()
        observed, violations = (int(result[0]), int(result[1])) if result else (0, 0)
        checks.append(InvariantCheck(q.name, q.headers["description"], observed, limit, violations))
    return tuple(checks)


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Return the row count of every table of the connection's schema."""
    tables = [str(r[0]) for r in conn.execute(_queries.query(_FILE, "tables").sql)]
    counts = {}
    for table in tables:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        value = row.fetchone()
        counts[table] = int(value[0]) if value else 0
    return counts
