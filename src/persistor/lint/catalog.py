"""The lint rules: ids, severities, and what each says (no parser here: settings read it)."""

from __future__ import annotations

from typing import Literal, NamedTuple

Severity = Literal["error", "warning"]


class Rule(NamedTuple):
    """One rule: its id (part of the contract), severity, why it hurts and the safe way."""

    id: str
    severity: Severity
    why: str
    fix: str


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "index-not-concurrent",
            "error",
            "CREATE INDEX holds a SHARE lock for the whole build: every INSERT, UPDATE and "
            "DELETE on the table waits until the index is built",
            "CREATE INDEX CONCURRENTLY in a script of its own with -- persistor:no-transaction",
        ),
        Rule(
            "drop-index-not-concurrent",
            "error",
            "DROP INDEX takes an ACCESS EXCLUSIVE lock on the table: it queues behind every "
            "running query and blocks every query that arrives after it",
            "DROP INDEX CONCURRENTLY in a script with -- persistor:no-transaction",
        ),
        Rule(
            "reindex-not-concurrent",
            "error",
            "REINDEX locks out writes to the table (and reads that use the index) for the "
            "whole rebuild",
            "REINDEX … CONCURRENTLY in a script with -- persistor:no-transaction",
        ),
        Rule(
            "constraint-not-valid",
            "error",
            "adding a FOREIGN KEY or CHECK checks every row while holding a lock that blocks "
            "writes (ACCESS EXCLUSIVE for CHECK)",
            "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in a later transaction "
            "(it takes a lock that lets reads and writes go on)",
        ),
        Rule(
            "unique-without-index",
            "error",
            "ADD CONSTRAINT UNIQUE / PRIMARY KEY builds its index under an ACCESS EXCLUSIVE "
            "lock: the table is unusable until it is built",
            "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … UNIQUE USING INDEX "
            "(or PRIMARY KEY USING INDEX)",
        ),
        Rule(
            "set-not-null",
            "error",
            "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
            "ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it, then "
            "SET NOT NULL (PostgreSQL 12+ uses the constraint and skips the scan)",
        ),
        Rule(
            "column-type-change",
            "error",
            "changing a column's type rewrites the table and its indexes under an ACCESS "
            "EXCLUSIVE lock (only widening varchar, or varchar to text, does not)",
            "add a new column, backfill it in batches, switch the application over, then drop "
            "the old column",
        ),
        Rule(
            "volatile-default",
            "error",
            "a default computed per row (volatile function, serial, identity or stored "
            "generated column) rewrites the whole table under an ACCESS EXCLUSIVE lock",
            "add the column without a default (or with a constant one), set the default "
            "afterwards, and backfill existing rows in batches",
        ),
        Rule(
            "table-rewrite",
            "error",
            "VACUUM FULL, CLUSTER, SET TABLESPACE and a plain REFRESH MATERIALIZED VIEW rewrite "
            "the relation under an ACCESS EXCLUSIVE lock: reads and writes wait until it ends",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY; for bloat use pg_repack or pg_squeeze; "
            "run maintenance outside migrations, at a quiet hour",
        ),
        Rule(
            "drop-table",
            "warning",
            "the running application may still read or write the table; its data is gone",
            "stop using the table in a release first, drop it in a later one, with a backup",
        ),
        Rule(
            "drop-column",
            "warning",
            "the running application may still select or insert the column and will fail",
            "stop using the column in a release first (ignore it in the ORM), drop it later",
        ),
        Rule(
            "rename",
            "warning",
            "running application code still uses the old name and fails until it is redeployed",
            "add the new name beside the old one (a new column kept in sync, or a view), move "
            "the application over, then drop the old name",
        ),
        Rule(
            "prefer-bigint-identity",
            "warning",
            "an int or serial key runs out at 2,147,483,647 rows, and widening it later "
            "rewrites the table",
            "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        ),
        Rule(
            "prefer-timestamptz",
            "warning",
            "timestamp without time zone stores wall-clock time with no zone: values shift "
            "when a server or client time zone changes",
            "timestamptz (timestamp with time zone)",
        ),
    )
}

# A repeatable script replaces functions, views and triggers on every change;
# only these rules say something useful about it.
REPEATABLE_RULES = frozenset({"table-rewrite", "drop-table", "drop-column"})


def unknown_rules(ids: list[str] | tuple[str, ...]) -> list[str]:
    """Return the ids among ids that name no rule."""
    return [i for i in ids if i not in RULES]


def known_rules_text() -> str:
    """Return the rule ids, comma-separated, for error messages."""
    return ", ".join(RULES)
