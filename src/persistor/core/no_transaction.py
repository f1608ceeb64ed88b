"""Recognising statements by their first words: which PostgreSQL refuses in a transaction.

Works on the tokens of `persistor.core.splitter.pg_tokens`, so words inside
strings, quoted identifiers and comments never count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

from persistor.core.splitter import Token, pg_tokens

__all__ = ["blocks_no_traffic", "first_keyword", "needs_no_transaction"]


def _word(tokens: list[Token], k: int) -> str | None:
    if k < len(tokens) and tokens[k][0] == "word":
        return tokens[k][1]
    return None


def _is_op(tokens: list[Token], k: int, op: str) -> bool:
    return k < len(tokens) and tokens[k] == ("op", op)


def _after_name(tokens: list[Token], k: int) -> int:
    """Index past a possibly qualified name starting at ``k`` (``k`` if none)."""
    if k >= len(tokens) or tokens[k][0] not in ("word", "ident"):
        return k
    k += 1
    while _is_op(tokens, k, ".") and k + 1 < len(tokens) and tokens[k + 1][0] in ("word", "ident"):
        k += 2
    return k


def _options(tokens: list[Token], k: int) -> tuple[dict[str, str | None], int]:
    """Parse ``( name [=] [value], … )`` at ``k``; return the options and the index past it."""
    opts: dict[str, str | None] = {}
    if not _is_op(tokens, k, "("):
        return opts, k
    k += 1
    name: str | None = None
    while k < len(tokens):
        kind, value = tokens[k]
        k += 1
        if kind == "op" and value in ",)":
            name = None
            if value == ")":
                break
        elif kind == "op" and value == "=":
            continue
        elif name is None and kind in ("word", "ident"):
            name = value.lower()
            opts[name] = None
        elif name is not None:
            opts[name] = value.lower()
    return opts, k


_FALSE_WORDS = frozenset({"false", "fals", "fal", "fa", "f", "no", "n", "off", "of", "0"})


def _option_true(opts: dict[str, str | None], name: str, default: bool = True) -> bool:
    """An option's boolean value, parsed as PostgreSQL's ``parse_bool`` does."""
    if name not in opts:
        return default
    value = opts[name]
    return value is None or value not in _FALSE_WORDS


def _find_with_options(tokens: list[Token], k: int) -> dict[str, str | None]:
    while k < len(tokens):
        if _word(tokens, k) == "with" and _is_op(tokens, k + 1, "("):
            return _options(tokens, k + 1)[0]
        k += 1
    return {}


def first_keyword(statement: str) -> str | None:
    """Return the first word of ``statement`` in lower case, skipping comments."""
    return _word(list(islice(pg_tokens(statement), 1)), 0)


def blocks_no_traffic(statement: str) -> bool:
    """Whether ``statement`` is a CONCURRENTLY index or partition change run outside a transaction.

    ``CREATE INDEX``, ``DROP INDEX``, ``REINDEX`` and ``ALTER TABLE … DETACH
    PARTITION`` with ``CONCURRENTLY`` wait for other transactions without
    holding up the application's reads and writes, and one that gives up
    half way leaves an INVALID index (or a pending detach) behind that a retry
    cannot build over: such a statement is better left to wait.
    """
    tokens = list(islice(pg_tokens(statement), 64))
    if _word(tokens, 0) not in ("create", "drop", "reindex", "alter"):
        return False
    return ("word", "concurrently") in tokens and needs_no_transaction(statement)


def needs_no_transaction(statement: str) -> bool:
    """Whether PostgreSQL refuses to run ``statement`` inside a transaction block.

    Only the first statement of the text is looked at.  Comments are skipped,
    keywords are matched case-insensitively, and words inside strings, quoted
    identifiers and comments do not count.  Recognised (PostgreSQL 12-18):

    * ``VACUUM`` (any form)
    * ``CREATE [UNIQUE] INDEX CONCURRENTLY``, ``DROP INDEX CONCURRENTLY``
    * ``REINDEX … CONCURRENTLY`` (keyword or ``(CONCURRENTLY [true])`` option),
      and ``REINDEX SCHEMA|DATABASE|SYSTEM`` in any form
    * ``CLUSTER`` without a table name (``CLUSTER``, ``CLUSTER VERBOSE``,
      ``CLUSTER (VERBOSE)``)
    * ``ALTER TABLE … DETACH PARTITION … CONCURRENTLY``
    * ``CREATE DATABASE``, ``DROP DATABASE``, ``ALTER DATABASE … SET TABLESPACE``
    * ``CREATE TABLESPACE``, ``DROP TABLESPACE``
    * ``ALTER SYSTEM``
    * ``CREATE SUBSCRIPTION``, unless ``WITH (create_slot = false)`` or
      ``WITH (connect = false)`` (creating the replication slot, the default,
      is what is refused)
    * ``DROP SUBSCRIPTION`` (refused when the subscription has a replication
      slot, which cannot be seen from the text; assumed, as that is the usual
      case)
    * ``ALTER SUBSCRIPTION … REFRESH PUBLICATION``; ``ALTER SUBSCRIPTION …
      SET|ADD|DROP PUBLICATION`` unless ``WITH (refresh = false)``;
      ``ALTER SUBSCRIPTION … SET (failover …)`` or ``SET (two_phase …)``
      (refused, PostgreSQL 17/18, when the subscription has a slot; assumed)
    * ``DISCARD ALL``
    * ``COMMIT PREPARED``, ``ROLLBACK PREPARED``

    Not recognised, because the text does not tell: ``REINDEX`` and
    ``CLUSTER`` of a partitioned table, and ``CALL``/``DO`` of code that
    commits.  ``ALTER TYPE … ADD VALUE`` is allowed in a transaction since
    PostgreSQL 12, and ``REFRESH MATERIALIZED VIEW CONCURRENTLY`` always was.
    """
    gen = pg_tokens(statement)
    tokens = list(islice(gen, 32))
    check = _BY_FIRST_WORD.get(_word(tokens, 0) or "")
    return check is not None and check(tokens, gen)


def _create_needs_no_transaction(tokens: list[Token], rest: Iterator[Token]) -> bool:
    second = _word(tokens, 1)
    k = 2 if second == "unique" else 1
    if _word(tokens, k) == "index":
        return _word(tokens, k + 1) == "concurrently"
    if second in ("database", "tablespace"):
        return True
    if second == "subscription":
        tokens.extend(rest)
        opts = _find_with_options(tokens, 2)
        return _option_true(opts, "connect") and _option_true(opts, "create_slot")
    return False


def _drop_needs_no_transaction(tokens: list[Token], rest: Iterator[Token]) -> bool:
    second = _word(tokens, 1)
    if second in ("database", "tablespace", "subscription"):
        return True
    return second == "index" and _word(tokens, 2) == "concurrently"


def _reindex_needs_no_transaction(tokens: list[Token], rest: Iterator[Token]) -> bool:
    opts, k = _options(tokens, 1)
    if _option_true(opts, "concurrently", default=False):
        return True
    kind = _word(tokens, k)
    return kind in ("schema", "database", "system") or _word(tokens, k + 1) == "concurrently"


def _cluster_needs_no_transaction(tokens: list[Token], rest: Iterator[Token]) -> bool:
    k = 2 if _word(tokens, 1) == "verbose" else 1
    k = _options(tokens, k)[1]
    return k >= len(tokens)  # no table name: CLUSTER of the whole database


def _alter_needs_no_transaction(tokens: list[Token], rest: Iterator[Token]) -> bool:
    second = _word(tokens, 1)
    if second == "system":
        return True
    if second == "database":
        k = _after_name(tokens, 2)
        return _word(tokens, k) == "set" and _word(tokens, k + 1) == "tablespace"
    if second == "table":
        k = 2
        if _word(tokens, k) == "if" and _word(tokens, k + 1) == "exists":
            k += 2
        if _word(tokens, k) == "only":
            k += 1
        k = _after_name(tokens, k)
        if _is_op(tokens, k, "*"):
            k += 1
        if _word(tokens, k) != "detach" or _word(tokens, k + 1) != "partition":
            return False
        k = _after_name(tokens, k + 2)
        return _word(tokens, k) == "concurrently"
    if second == "subscription":
        tokens.extend(rest)
        k = _after_name(tokens, 2)
        action = _word(tokens, k)
        target = _word(tokens, k + 1)
        if action == "refresh":
            return target == "publication"
        if action in ("set", "add", "drop") and target == "publication":
            return _option_true(_find_with_options(tokens, k + 2), "refresh")
        if action == "set" and _is_op(tokens, k + 1, "("):
            opts = _options(tokens, k + 1)[0]
            return "failover" in opts or "two_phase" in opts
    return False


_BY_FIRST_WORD: dict[str, Callable[[list[Token], Iterator[Token]], bool]] = {
    "vacuum": lambda tokens, rest: True,
    "create": _create_needs_no_transaction,
    "drop": _drop_needs_no_transaction,
    "alter": _alter_needs_no_transaction,
    "reindex": _reindex_needs_no_transaction,
    "cluster": _cluster_needs_no_transaction,
    "discard": lambda tokens, rest: _word(tokens, 1) == "all",
    "commit": lambda tokens, rest: _word(tokens, 1) == "prepared",
    "rollback": lambda tokens, rest: _word(tokens, 1) == "prepared",
}
