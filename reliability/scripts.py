"""The migrations the harness applies, designed so that every effect is checkable.

Each transactional script N creates table t_N and inserts N into `markers` in
the same script; every third one also has several statements (rows, a column,
an index, a DO block). Script BULK loads enough rows that the no-transaction
script CIC (a `CREATE INDEX CONCURRENTLY` on t_BULK) takes a noticeable time.
After any kill, a successful history row for N must exist exactly when all of
N's effects exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CIC_INDEX = "ix_cic"


@dataclass(frozen=True)
class MigrationSet:
    """A written migrations folder and what each script must leave behind."""

    path: Path
    count: int
    bulk: int  # the script that loads bulk_rows rows
    bulk_rows: int
    cic: int  # the no-transaction CREATE INDEX CONCURRENTLY script

    def is_multi(self, n: int) -> bool:
        """Whether script n has the multi-statement body."""
        return n % 3 == 0 and n not in (self.bulk, self.cic)

    def expected_rows(self, n: int) -> int | None:
        """The row count t_n must hold once applied (None: not checked)."""
        if n == self.bulk:
            return self.bulk_rows
        if self.is_multi(n):
            return 1000
        return 0

    @property
    def transactional(self) -> list[int]:
        return [n for n in range(1, self.count + 1) if n != self.cic]


def name(n: int, what: str) -> str:
    return f"V{n:03d}__{what}.sql"


def _pause_for_waiters(waiters: int, limit: float) -> str:
    if not waiters:
        return f"SELECT pg_sleep({limit});"
    # A waiter has tried the lock once its session has queried pg_locks; it
    # then says it is waiting. Within one statement pg_stat_activity is a
    # snapshot, so each look clears it first.
    return (
        "DO $$\nBEGIN\n"
        f"  FOR i IN 1..{max(1, int(limit / 0.05))} LOOP\n"
        "    PERFORM pg_stat_clear_snapshot();\n"
        "    EXIT WHEN (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()\n"
        "               AND application_name = 'persistor' AND pid <> pg_backend_pid()\n"
        f"               AND query ILIKE '%pg_locks%') >= {waiters};\n"
        "    PERFORM pg_sleep(0.05);\n"
        "  END LOOP;\n"
        "END\n$$;"
    )


def write_migrations(
    dest: Path,
    count: int = 30,
    bulk: int = 10,
    bulk_rows: int = 300_000,
    cic: int = 20,
    sleep: float = 0.05,
    cic_sleep: float = 0.05,
    cic_waiters: int = 0,
) -> MigrationSet:
    """Write `count` scripts into dest (created) and return their description.

    With cic_waiters, the CIC script first waits (up to cic_sleep seconds)
    until that many other persistor sessions are waiting for the lock, so
    the waiters are certainly polling while the index is built, however slow
    the machine is to start them; without, it sleeps cic_sleep seconds.
    """
    assert 1 < bulk < cic <= count
    dest.mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        head = ""
        if n == 1:
            head = (
                "CREATE TABLE markers (script int PRIMARY KEY,"
                " at timestamptz NOT NULL DEFAULT clock_timestamp());\n"
            )
        if n == cic:
            text = (
                "-- persistor:no-transaction\n"
                "-- runs statement by statement, outside a transaction\n"
                f"{_pause_for_waiters(cic_waiters, cic_sleep)}\n"
                f"CREATE INDEX CONCURRENTLY {CIC_INDEX} ON t_{bulk} (v, id);\n"
            )
            (dest / name(n, "cic_index")).write_text(text, encoding="utf-8")
            continue
        if n == bulk:
            text = (
                f"{head}CREATE TABLE t_{n} (id int PRIMARY KEY, v int NOT NULL);\n"
                f"INSERT INTO t_{n} SELECT g, g % 1009 FROM generate_series(1, {bulk_rows}) g;\n"
                f"SELECT pg_sleep({sleep});\n"
                f"INSERT INTO markers (script) VALUES ({n});\n"
            )
            (dest / name(n, "bulk_load")).write_text(text, encoding="utf-8")
            continue
        if n % 3 == 0:
            text = (
                f"{head}-- several statements, one transaction\n"
                f"CREATE TABLE t_{n} (id int PRIMARY KEY, v int);\n"
                f"SELECT pg_sleep({sleep / 2});\n"
                f"INSERT INTO t_{n} SELECT g, g % 97 FROM generate_series(1, 1000) g;\n"
                f"ALTER TABLE t_{n} ADD COLUMN extra text NOT NULL DEFAULT 'x';\n"
                f"CREATE INDEX t_{n}_v ON t_{n} (v);\n"
                "DO $$\nBEGIN\n"
                f"  PERFORM pg_sleep({sleep / 2}); -- a semicolon; inside a body\n"
                "END\n$$;\n"
                f"INSERT INTO markers (script) VALUES ({n});\n"
            )
            (dest / name(n, "multi")).write_text(text, encoding="utf-8")
            continue
        text = (
            f"{head}SELECT pg_sleep({sleep});\n"
            f"CREATE TABLE t_{n} (id int PRIMARY KEY, v int);\n"
            f"INSERT INTO markers (script) VALUES ({n});\n"
        )
        (dest / name(n, "simple")).write_text(text, encoding="utf-8")
    return MigrationSet(dest, count, bulk, bulk_rows, cic)
