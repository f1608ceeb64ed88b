#!/usr/bin/env bash
# The one command: bash reliability/run.sh [--quick] [--seed N] [--no-doc]
# Full run: ~13 min on 2 cores; writes docs/RELIABILITY.md and reliability/results/full.json.
# --quick: ~2 min smoke run; writes reliability/results/quick.json only.
# Needs a PostgreSQL at PERSISTOR_TEST_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
# and root (or an installed pgbouncer) for the PgBouncer part.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in /tmp/venv/bin/python "$ROOT/.venv/bin/python" python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import persistor, psycopg' 2>/dev/null; then PY="$c"; break; fi
  done
fi
[ -n "$PY" ] || { echo "no Python with persistor installed; set PYTHON=..." >&2; exit 2; }
export PERSISTOR_TEST_URL="${PERSISTOR_TEST_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
cd "$ROOT"
exec env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m reliability.run "$@"
