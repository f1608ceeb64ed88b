"""A primary failing over mid-migrate: real servers (initdb, pg_basebackup, pg_ctl promote)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability.failover import Cluster, failover_round, pg_bindir, write_scripts

from persistor.cli.main import main

pytestmark = pytest.mark.skipif(pg_bindir() is None, reason="no PostgreSQL binaries installed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A primary and a synchronous streaming standby on loopback ports of their own."""
    bindir = pg_bindir()
    assert bindir is not None
    c = Cluster(bindir).start()
    yield c
    c.close()


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scripts(tmp_path_factory.mktemp("failover") / "migrations")


def test_every_command_takes_a_multi_host_url_and_finds_the_primary(
    cluster: Cluster, scripts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The standby first: libpq skips it, as it does not take writes.
    hosts = f"127.0.0.1:{cluster.standby.port},127.0.0.1:{cluster.primary.port}"
    url = f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"
    common = ["--url", url, "--location", str(scripts), "--schema", "multi"]
    for command in ("test", "validate", "status", "migrate", "status"):
        assert main([command, *common]) == 0, capsys.readouterr().err
    assert "15 applied" in capsys.readouterr().out
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{url} name=multi schema=multi\n{url} name=other schema=other\n")
    assert main(["migrate", "--targets", str(targets), "--location", str(scripts)]) == 0
    assert "multi  up to date, at version 015" in capsys.readouterr().out


def _rounds(cluster: Cluster, scripts: Path, count: int, seed: int, prefix: str) -> None:
    rng = random.Random(seed)
    done: dict[str, int] = {}
    for n in range(count):
        r = failover_round(cluster, scripts, f"{prefix}_{n}", done, rng)
        assert r.exit_code in (0, 3), r.message  # done before the kill, or "run again"
        assert r.exit_code == 0 or r.said_run_again, r.message
        assert r.half_applied == 0, r.problems
        assert r.acknowledged_lost == 0, r.problems
        assert r.stuck_locks == 0
        assert r.follow_up_complete, r


def test_a_failover_mid_migrate_leaves_nothing_half_done_and_the_rerun_completes(
    cluster: Cluster, scripts: Path
) -> None:
    _rounds(cluster, scripts, 3, seed=7, prefix="quick")


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~6-16 s a round on 2 shared cores
def test_twenty_failovers_mid_migrate(cluster: Cluster, scripts: Path) -> None:
    _rounds(cluster, scripts, 20, seed=12, prefix="long")
