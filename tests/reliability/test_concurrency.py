"""Ten migrators started together; CREATE INDEX CONCURRENTLY while nine others wait."""

from __future__ import annotations

import pytest
from reliability.scripts import MigrationSet

from reliability import harness as h

pytestmark = pytest.mark.postgres


def _assert_round(r: h.RoundResult) -> None:
    assert r.codes == [0] * 10, r.errors
    assert (r.duplicates, r.missing) == (0, 0)
    assert r.violations == []
    assert r.leftover_locks == 0


def test_ten_migrators_apply_every_script_exactly_once(
    rel_admin: str, small_set: MigrationSet
) -> None:
    for _ in range(2):
        _assert_round(h.concurrent_round(rel_admin, small_set, lock_timeout=60, timeout=90))


def test_lock_never_deadlocks_with_create_index_concurrently(
    rel_admin: str, cic_set: MigrationSet
) -> None:
    # One migrator runs the no-transaction CIC script while 9 others poll for
    # the lock; CIC waits for every transaction that could see the table, so a
    # waiter holding a transaction open would deadlock it.
    r = h.cic_with_waiters(rel_admin, cic_set, waiters=9, timeout=60)
    assert r.codes == [0] * 10
    # Every other migrator was really waiting while the CIC ran: the script
    # holds the CIC back until all nine have asked for the lock.
    assert r.waited == 9
    assert r.index == "valid"
    assert r.violations == []


@pytest.mark.slow
def test_control_a_waiter_inside_a_transaction_does_deadlock_the_cic(
    rel_admin: str, cic_set: MigrationSet
) -> None:
    # Shows the test above would catch the bug it is about.
    c = h.naive_waiter_control(rel_admin, cic_set)
    assert "deadlock" in c["migrator_error"] or "deadlock" in c["waiter"], c


@pytest.mark.slow
def test_twenty_rounds_of_ten_migrators(rel_admin: str, full_set: MigrationSet) -> None:
    for _ in range(20):
        _assert_round(h.concurrent_round(rel_admin, full_set))
