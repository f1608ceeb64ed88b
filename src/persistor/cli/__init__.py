"""The `persistor` command line: `main` parses, calls the API and renders; `run` is the process."""

from __future__ import annotations

import gc
import sys
from typing import NoReturn


def run() -> NoReturn:
    """Run the command line as its own process and exit with its code."""
    # One command is one short process whose objects (modules, scripts,
    # history rows) live until it exits: the cyclic collector re-scanning them
    # cost ~5 % of a no-op migrate's instructions (bench W2), while a
    # 1,000-script migrate and a 15 s `stress` peak at the same memory without
    # it. Off before the imports, which are most of those objects. Not in
    # main(): that one also runs inside callers.
    gc.disable()
    from persistor.cli.main import main

    sys.exit(main())
