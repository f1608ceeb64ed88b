#!/usr/bin/env bash
# bash reliability/live_traffic.sh [--hold 15] [--clients 16] [--no-doc]
# A long transaction holds a table while persistor migrate, then psql -f, alter it and
# 16 client sessions query it; about 1 minute. Writes the "Live traffic" section of
# docs/RELIABILITY.md (and reliability/LIVE_TRAFFIC.md, reliability/results/live_traffic.json).
# Needs psql and a PostgreSQL at PERSISTOR_TEST_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in "$ROOT/.venv/bin/python" /tmp/venv/bin/python python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import persistor, psycopg' 2>/dev/null; then PY="$c"; break; fi
  done
fi
[ -n "$PY" ] || { echo "no Python with persistor installed; set PYTHON=..." >&2; exit 2; }
export PERSISTOR_TEST_URL="${PERSISTOR_TEST_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
cd "$ROOT"
exec env PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m reliability.live_traffic "$@"
