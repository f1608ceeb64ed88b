"""Which pending scripts `migrate` need not hand to the parser: nothing in them can be flagged.

Every rule looks at DDL on tables and indexes (CREATE TABLE/INDEX, ALTER,
DROP, REINDEX, VACUUM, CLUSTER, REFRESH, TRUNCATE). A script made only of
statements of other kinds (functions, views, triggers, types, data changes,
grants) gives no finding, so parsing it, and importing the parser at all,
would be pure cost on every deploy of such scripts (bench W4: ~0.1 s for 100
PL/pgSQL functions). The statements are told apart by their leading words
from the splitter's own tokens; the rules themselves still read the parse tree.
"""

from __future__ import annotations

from itertools import islice

from persistor.core.splitter import SplitError, pg_tokens, split_statements

# Leading words of statements no rule looks at ("create or replace" is read past).
_QUIET_FIRST = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "select",
        "with",
        "values",
        "grant",
        "revoke",
        "comment",
        "do",
        "call",
        "set",
        "reset",
        "notify",
        "security",
        "analyze",
        "copy",
    }
)
_QUIET_CREATED = frozenset(
    {
        "function",
        "procedure",
        "view",
        "trigger",
        "type",
        "domain",
        "schema",
        "sequence",
        "extension",
        "role",
        "user",
        "policy",
        "aggregate",
        "operator",
        "collation",
        "cast",
        "rule",
        "language",
        "publication",
        "subscription",
        "statistics",
        "conversion",
    }
)
IGNORE_MARK = "persistor:lint-ignore"


def cannot_be_flagged(text: str) -> bool:
    """Return True when no rule can flag any statement of the script (so it need not be parsed).

    A script with an ignore comment is always parsed: its comments are checked
    against the statements. Text the splitter cannot split is parsed too (the
    parser names the problem).
    """
    if IGNORE_MARK in text:
        return False
    try:
        statements = split_statements(text)
    except SplitError:
        return False
    return all(_quiet(statement.text) for statement in statements)


def _quiet(statement: str) -> bool:
    words = [value for kind, value in islice(pg_tokens(statement), 5) if kind == "word"]
    if not words:
        return False
    if words[0] in _QUIET_FIRST:
        return True
    if words[0] != "create":
        return False
    rest = words[1:]
    if rest[:2] == ["or", "replace"]:
        rest = rest[2:]
    while rest and rest[0] in (
        "temp",
        "temporary",
        "materialized",
        "recursive",
        "trusted",
        "procedural",
        "constraint",
        "unlogged",
    ):
        if rest[0] in ("materialized", "unlogged"):
            return False  # materialized views are refreshed; unlogged tables are tables
        rest = rest[1:]
    return bool(rest) and rest[0] in _QUIET_CREATED
