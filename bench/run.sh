#!/usr/bin/env bash
# The one command: bash bench/run.sh [--quick] [--repeats N] [--only tool,..] [--skip part,..]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ ! -f "$HERE/.tools/.done" ] || [ "${BENCH_REINSTALL:-}" = 1 ]; then
  bash "$HERE/setup.sh"
fi
# persistor as users get it (a regular install, bytecode compiled), rebuilt
# from this tree on every run: an editable install under
# PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start.
"$HERE/.tools/venv/bin/pip" install -q --no-deps --force-reinstall "$HERE/.." >>"$HERE/.tools/install.log" 2>&1
exec "$HERE/.tools/venv/bin/python" "$HERE/run.py" "$@"
