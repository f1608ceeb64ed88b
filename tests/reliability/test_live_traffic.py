"""Live traffic, in small: the application waits about lock_timeout_ms behind persistor, not the whole transaction.

The full figures (16 clients, a 15 s transaction) are in docs/RELIABILITY.md,
from `bash reliability/live_traffic.sh`.
"""

from __future__ import annotations

import shutil

import pytest

from reliability import live_traffic as lt

pytestmark = pytest.mark.postgres


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql on the PATH")
def test_clients_wait_at_most_about_the_lock_timeout_behind_persistor(rel_admin: str) -> None:
    res = lt.measure(rel_admin, clients=4, hold=5.0)
    persistor, psql = res["phases"]["persistor"], res["phases"]["psql"]
    assert persistor["exit_code"] == 0 and psql["exit_code"] == 0
    # 2000 ms lock timeout, plus scheduling slack on a busy machine
    assert persistor["max_ms"] < 3000, persistor
    assert any("gave up waiting for a lock, blocked by pid" in e for e in persistor["stderr"])
    # psql's ALTER starts 1 s into the 5 s transaction and holds the queue until it ends
    assert psql["max_ms"] > 3500, psql
    assert persistor["migration_done_after_release_s"] < 10


def test_the_section_replaces_itself_and_otherwise_goes_before_the_findings() -> None:
    doc = "# R\n\n## 4. Lease\n\ntext\n\n## Findings\n\nf\n"
    first = lt.insert_section(doc, lt.HEADING + "\n\nold figures\n")
    assert (
        first == f"# R\n\n## 4. Lease\n\ntext\n\n{lt.HEADING}\n\nold figures\n\n## Findings\n\nf\n"
    )
    second = lt.insert_section(first, lt.HEADING + "\n\nnew figures\n")
    assert second == first.replace("old figures", "new figures")
