"""Crash safety: SIGKILL `persistor migrate` at random moments, then run it again.

After every kill: no half-applied script, no effects without a successful
history row, no advisory lock left once the killed session is gone, and a
follow-up migrate that completes (exit 0) without waiting. A no-transaction
script killed half way is the one allowed exception: it is counted, and
recovered the way an operator would (drop the leftover index, migrate again).
"""

from __future__ import annotations

import psycopg
import pytest
from reliability.scripts import MigrationSet

from reliability import harness as h

pytestmark = pytest.mark.postgres


def _assert_safe(stats: h.KillStats, kills: int) -> None:
    assert stats.kills == kills, stats.notes
    assert stats.violations == []
    assert stats.leftover_locks == 0
    assert stats.sessions_stuck == 0
    assert stats.follow_up_waited == 0
    assert set(stats.final_codes) == {0}, stats.final_codes
    # every follow-up either succeeded or hit the no-transaction script's leftover
    assert set(stats.follow_up_codes) <= {0, 4}, stats.follow_up_codes
    assert stats.follow_up_codes.get(4, 0) == stats.failed_row_cases
    assert stats.resumed + stats.repaired == stats.failed_row_cases


def test_checker_sees_half_applied_scripts_and_orphan_effects(
    rel_admin: str, small_set: MigrationSet
) -> None:
    # the invariants are not vacuous: damage a migrated database and they object
    url = h.create_database(rel_admin)
    try:
        assert h.run("migrate", url, small_set.path, "--target", "3").code == 0
        assert h.violations(h.read_state(url, rel_admin), small_set) == []
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t_5 (id int)")  # effects of V005 without a row
            conn.execute("DELETE FROM markers WHERE script = 2")  # V002 row without its marker
            conn.execute("ALTER TABLE t_3 DROP COLUMN extra")  # V003 only partly there
        bad = h.violations(h.read_state(url, rel_admin), small_set)
        assert any("V005" in b and "no success row" in b for b in bad), bad
        assert any("V002" in b and "marker" in b for b in bad), bad
        assert any("V003" in b and "column" in b for b in bad), bad
        assert h.violations(h.read_state(url, rel_admin), small_set, complete=True) != bad
    finally:
        h.drop_database(rel_admin, url)


def test_five_sigkills_leave_no_half_applied_script_and_no_lock(
    rel_admin: str, small_set: MigrationSet
) -> None:
    stats = h.kill_campaign(rel_admin, small_set, 5, seed=11, budget_s=60)
    _assert_safe(stats, 5)


def test_sigkills_with_client_connection_check_interval(
    rel_admin: str, small_set: MigrationSet
) -> None:
    # The server cancels the dead client's statement at once: a killed CREATE
    # INDEX CONCURRENTLY then leaves an INVALID index (reported, then dropped).
    stats = h.kill_campaign(
        rel_admin,
        small_set,
        2,
        seed=12,
        pgoptions="-c client_connection_check_interval=50",
        budget_s=40,
    )
    _assert_safe(stats, 2)
    assert max(stats.linger, default=0) < 1.0


@pytest.mark.slow
def test_fifty_sigkills_on_thirty_scripts(rel_admin: str, full_set: MigrationSet) -> None:
    stats = h.kill_campaign(rel_admin, full_set, 50, seed=4, budget_s=600)
    _assert_safe(stats, 50)
