#!/usr/bin/env bash
# The one command: bash bench/run.sh [--quick] [--repeats N] [--only tool,..] [--skip part,..]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ ! -f "$HERE/.tools/.done" ] || [ "${BENCH_REINSTALL:-}" = 1 ]; then
  bash "$HERE/setup.sh"
fi
exec "$HERE/.tools/venv/bin/python" "$HERE/run.py" "$@"
