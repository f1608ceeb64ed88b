"""The cost lint adds to `persistor migrate`: the same call migrate makes, timed in-process.

Usage: python bench/lint_cost.py FOLDER  (every script of FOLDER pending, as in W1).
Prints one JSON object: seconds for the parser import plus `lint_planned` on every
script, the number of scripts, and the findings. Reading and hashing the files is
not counted: migrate does that with or without lint.
"""

from __future__ import annotations

import json
import sys
import time

from persistor.core.planner import PlannedScript
from persistor.session import load_scripts
from persistor.settings import load_settings


def main() -> int:
    settings = load_settings({"locations": [sys.argv[1]]}, env={})
    discovery, sources = load_scripts(settings)
    pending = [
        PlannedScript(f, sources[f.name]) for f in (*discovery.versioned, *discovery.repeatable)
    ]
    started, cpu = time.perf_counter(), time.process_time()
    from persistor.lint.linter import lint_planned  # its first use imports the parser

    found = lint_planned(pending, settings.lint)
    doc = {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "scripts": len(pending),
        "findings": len(found.findings),
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
