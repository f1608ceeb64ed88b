"""The client's fast path: one prepared statement per call, driven through psycopg's internals.

Why it exists: on an idle autocommit connection a database function call is
one statement, and most of its cost in Python is psycopg's cursor machinery
(cursor object, query conversion, row factory). Sending our own prepared
statement and loading its rows with a reused ``Transformer`` brought the
client to the bare-psycopg floor in bench E1 (bench/README.md).

Why it is private and gated: it uses ``psycopg.adapt.Transformer``,
``psycopg.generators.execute`` and raw ``PGresult`` objects, which are not
psycopg's public API and may change in any minor release. So it runs only on
the psycopg versions it was tested with (``TESTED_PSYCOPG``); on any other the
client takes its plain cursor path, which needs nothing but psycopg's public
API. That is why persistor itself does not pin psycopg to one minor version:
moving to a psycopg this module has not seen costs speed, never correctness.
To add a version, run tests/ecliptix/test_api_fast_path.py and bench E1 on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import psycopg
from psycopg import errors
from psycopg.pq import DiagnosticField, ExecStatus
from psycopg.pq.abc import PGresult

TESTED_PSYCOPG = ("3.3",)


def supports(version: str) -> bool:
    """Return whether the fast path was tested with this psycopg version ('3.3.9' …)."""
    major_minor = ".".join(version.split(".")[:2])
    return major_minor in TESTED_PSYCOPG


try:  # internals: a psycopg that moved them simply gets the plain path
    from psycopg.adapt import PyFormat, Transformer
    from psycopg.generators import execute

    AVAILABLE = supports(psycopg.__version__)
except ImportError:  # pragma: no cover - depends on the installed psycopg
    AVAILABLE = False

_TUPLES_OK = int(ExecStatus.TUPLES_OK)
_COMMAND_OK = int(ExecStatus.COMMAND_OK)
_FATAL_ERROR = int(ExecStatus.FATAL_ERROR)
_SQLSTATE = DiagnosticField.SQLSTATE


class Statement:
    """One function's query, prepared on the connection, and the Transformer for its values.

    Arguments go as text with unknown type: the server types each from its
    cast, so one prepared statement fits every value (psycopg would key its
    own on the dumped types: int2 vs int8…). The name derives from the text,
    so clients sharing a connection share the statement instead of piling up
    new ones.
    """

    __slots__ = ("checked", "formats", "loaders", "name", "prepared", "query", "tx")

    def __init__(self, conn: psycopg.Connection[Any], query: bytes, nargs: int) -> None:
        """Hold query (with $n placeholders) for nargs values on conn."""
        self.query = query
        self.name = b"_ecliptix_" + hashlib.blake2b(query, digest_size=12).hexdigest().encode()
        self.tx = Transformer(conn)
        self.formats = [PyFormat.TEXT] * nargs
        self.prepared = False  # known to exist on the connection
        self.loaders = -1  # column count tx has loaders for; -1 none
        self.checked = False  # column names matched the row class


def run_prepared(
    conn: psycopg.Connection[Any],
    st: Statement,
    params: tuple[object, ...],
    check_columns: Callable[[list[str]], None] | None,
    make: Callable[[Sequence[Any]], Any],
) -> list[Any]:
    """Run st with params as one prepared statement; return its rows, each made by make."""
    # psycopg's cursor machinery, cut to what one prepared call needs: the
    # same dumpers, loaders, wait loop (interruptible) and error classes.
    tx = st.tx
    with conn.lock:
        values = tx.dump_sequence(params, st.formats)
        res = _send(conn, st, values)
        # Same prepared statement, same columns: keep the loaders. (The
        # count is checked as well: psycopg's C loader trusts it.)
        nfields = res.nfields
        if st.loaders == nfields:
            tx.set_pgresult(res, set_loaders=False)
        else:
            tx.set_pgresult(res)
            st.loaders = nfields
        if check_columns is not None and not st.checked:
            check_columns([(res.fname(i) or b"").decode() for i in range(nfields)])
            st.checked = True
        rows = tx.load_rows(0, res.ntuples, make)
        tx.set_pgresult(None, set_loaders=False)  # drop the result (it may hold secrets)
    return rows


def _send(conn: psycopg.Connection[Any], st: Statement, values: Any) -> PGresult:
    pgconn = conn.pgconn
    for attempt in (1, 2):
        if not st.prepared:
            _prepare(conn, st)
        pgconn.send_query_prepared(st.name, values)
        results: list[PGresult] = conn.wait(execute(pgconn))
        if len(results) == 1 and results[0].status == _TUPLES_OK:
            return results[0]
        if attempt == 1 and results and results[0].error_field(_SQLSTATE) == b"26000":
            # Deallocated behind our back (DISCARD ALL, DEALLOCATE ALL):
            # nothing ran, so prepare again and retry once.
            st.prepared = st.checked = False
            st.loaders = -1
            continue
        _raise(conn, results)
    raise AssertionError("unreachable")  # pragma: no cover


def _prepare(conn: psycopg.Connection[Any], st: Statement) -> None:
    conn.pgconn.send_prepare(st.name, st.query)
    results = conn.wait(execute(conn.pgconn))
    # 42P05: another client on this connection prepared the same text.
    if len(results) != 1 or (
        results[0].status != _COMMAND_OK and results[0].error_field(_SQLSTATE) != b"42P05"
    ):
        _raise(conn, results)
    st.prepared = True
    st.checked = False  # a new statement may have new columns
    st.loaders = -1


def _raise(conn: psycopg.Connection[Any], results: Sequence[PGresult]) -> NoReturn:
    for res in results:
        if res.status == _FATAL_ERROR:
            raise errors.error_from_result(res, encoding=conn.info.encoding)
    status = [ExecStatus(r.status).name for r in results]
    raise errors.InternalError(f"unexpected results from the server: {status}")
