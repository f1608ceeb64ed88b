#!/usr/bin/env bash
# The one command: bash reliability/run.sh [--committed] [--quick] [--seed N] [--no-doc]
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
# --committed: test persistor as committed (git archive HEAD src), not the working
# tree that others may be editing while this runs.
if [ "${1:-}" = "--committed" ]; then
  shift
  export PERSISTOR_SRC="$(mktemp -d)/src" PERSISTOR_SRC_REV="$(git rev-parse --short HEAD)"
  git archive HEAD src | tar -x -C "$(dirname "$PERSISTOR_SRC")"
fi
SRC="${PERSISTOR_SRC:+$PERSISTOR_SRC:}"
exec env PYTHONPATH="$SRC$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m reliability.run "$@"
