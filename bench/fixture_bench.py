"""How long it takes to hand a test a fresh, migrated Ecliptix database.

Two ways, measured in one run on the same server, 50 tests each:

- template: what the pytest plugin's `persistor_db` does, a copy of a database
  migrated once (`CREATE DATABASE … TEMPLATE`, the next one made ahead in a
  thread while the test before runs), then a connection to it;
- migrate: create an empty database and apply every Ecliptix migration to it,
  then connect.

Each test's database is dropped after it; the drop is timed apart (it is the
fixture's teardown, not part of handing the test its database), and the
results also give setup and teardown together.

    .venv/bin/python bench/fixture_bench.py [--tests 50] [--url postgresql://…]

Without --url it starts a private embedded PostgreSQL, as the plugin does.
Results go to bench/results/fixture.json and bench/results/fixture.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from persistor.api import migrate
from persistor.pytest_plugin.databases import (
    Copies,
    TestServer,
    database_copy,
    embedded_server,
    migrate_template,
)
from persistor.settings import Settings, load_settings

RESULTS = Path(__file__).parent / "results"


@contextmanager
def migrated_from_empty(server: TestServer, settings: Settings) -> Iterator[str]:
    """Create an empty database, migrate it and connect: the way without a template."""
    name = server.create("persistor_bench")
    url = server.url_of(name)
    try:
        migrate(replace(settings, url=url))
        with psycopg.connect(url):
            yield url
    finally:
        server.drop(name)


def timed(
    make: Callable[[], AbstractContextManager[object]], tests: int
) -> tuple[list[float], list[float]]:
    """Return the milliseconds each fresh database took to be handed over, and to be dropped."""
    handed: list[float] = []
    dropped: list[float] = []
    for _ in range(tests):
        started = time.perf_counter()
        with make():
            handed.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
        dropped.append((time.perf_counter() - started) * 1000)
    return handed, dropped


def summary(times: list[float]) -> dict[str, float]:
    """Return median, p90, min and max of a list of milliseconds, rounded."""
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


def measure(server: TestServer, tests: int) -> dict[str, Any]:
    """Time both ways on one server and return the figures."""
    settings = load_settings({}, env={})  # the packaged Ecliptix migrations
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    template = migrate_template(server, settings)
    once_ms = (time.perf_counter() - started) * 1000
    spares = Copies(template)  # as persistor_db does: the next copy is made ahead
    try:
        copies, copy_drops = timed(lambda: database_copy(template, spares), tests)
        spares.close()
        migrations, migration_drops = timed(lambda: migrated_from_empty(server, settings), tests)
    finally:
        spares.close()
        server.drop(template.name)
    with psycopg.connect(server.admin_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    copy, full = summary(copies), summary(migrations)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "tests": tests,
        "server_version": row[0] if row else "?",
        "copy_strategy": server.strategy,
        "scripts": len(template.result.applied),
        "template_once_ms": round(once_ms, 1),
        "template_copy": copy,
        "migrate_each_time": full,
        "speedup_median": round(full["median_ms"] / copy["median_ms"], 1),
        # Setup and teardown together: what a test costs beyond its own body.
        "per_test_with_drop_median_ms": {
            "template_copy": round(
                statistics.median(map(sum, zip(copies, copy_drops, strict=True))), 1
            ),
            "migrate_each_time": round(
                statistics.median(map(sum, zip(migrations, migration_drops, strict=True))), 1
            ),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        # The machine is shared: what else ran shows here (1-minute load, before and after).
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def markdown(doc: dict[str, Any]) -> str:
    """Return the results as the table docs/PERFORMANCE.md quotes."""
    copy, full = doc["template_copy"], doc["migrate_each_time"]
    lines = [
        f"Fresh migrated Ecliptix database per test ({doc['tests']} tests each, "
        f"PostgreSQL {doc['server_version']}, {doc['scripts']} scripts, {doc['when']})",
        "",
        "| way | median ms | p90 ms | min ms | max ms |",
        "|---|---|---|---|---|",
        f"| template copy (`persistor_db`, {doc['copy_strategy']}) | {copy['median_ms']} | "
        f"{copy['p90_ms']} | {copy['min_ms']} | {copy['max_ms']} |",
        f"| migrate an empty database | {full['median_ms']} | {full['p90_ms']} | "
        f"{full['min_ms']} | {full['max_ms']} |",
        "",
        f"With the drop after each test, the median test costs "
        f"{doc['per_test_with_drop_median_ms']['template_copy']} ms (copy) against "
        f"{doc['per_test_with_drop_median_ms']['migrate_each_time']} ms (migrate).",
        "",
        f"Template copy is {doc['speedup_median']}x faster at the median; migrating the "
        f"template once took {doc['template_once_ms']} ms. Machine: {doc['machine']}, "
        f"load average {doc['load_average'][0]} before and {doc['load_average'][1]} after.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=50)
    parser.add_argument("--url", help="a PostgreSQL server to use instead of an embedded one")
    parser.add_argument("--out", default="fixture", help="results file name, without suffix")
    args = parser.parse_args()
    if args.url:
        given = TestServer(args.url)
        doc = measure(given, args.tests)
        given.close()
    else:
        with embedded_server() as server:
            doc = measure(server, args.tests)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = markdown(doc)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
