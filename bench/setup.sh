#!/usr/bin/env bash
# Install every peer into bench/.tools (gitignored). Idempotent; failures of a
# peer are recorded in .tools/install.log and do not stop the bench.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
T="$HERE/.tools"
mkdir -p "$T"
LOG="$T/install.log"
: >"$LOG"
log() { echo "[setup] $*" | tee -a "$LOG" >&2; }

PY="${PYTHON:-python3}"
if [ ! -x "$T/venv/bin/python" ]; then
  log "creating venv"; "$PY" -m venv "$T/venv" >>"$LOG" 2>&1
fi
VP="$T/venv/bin/pip"
"$VP" install -q --upgrade pip >>"$LOG" 2>&1
log "pip: persistor's dependencies + psycopg + matplotlib + profilers"
"$VP" install -q "$REPO" "psycopg[binary]>=3.2" matplotlib py-spy pyinstrument >>"$LOG" 2>&1 || log "FAILED: persistor/matplotlib/profilers"
for p in yoyo-migrations alembic pyway; do
  "$VP" install -q "$p" >>"$LOG" 2>&1 && log "ok: $p" || log "FAILED: $p"
done
# psycopg2 for alembic/yoyo/pyway (they use psycopg2 or psycopg)
"$VP" install -q psycopg2-binary >>"$LOG" 2>&1 || log "FAILED: psycopg2-binary"

if command -v npm >/dev/null; then
  mkdir -p "$T/npm"
  [ -f "$T/npm/package.json" ] || echo '{"name":"bench-tools","private":true}' >"$T/npm/package.json"
  for p in dbmate node-pg-migrate pg; do
    (cd "$T/npm" && npm install --no-audit --no-fund -s "$p" >>"$LOG" 2>&1) && log "ok: npm $p" || log "FAILED: npm $p"
  done
else
  log "FAILED: npm not found (dbmate, node-pg-migrate skipped)"
fi

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  need=()
  command -v sqitch >/dev/null || need+=(sqitch libdbd-pg-perl)
  command -v hyperfine >/dev/null || need+=(hyperfine)
  command -v pgbench >/dev/null || need+=(postgresql-client)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt: ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >>"$LOG" 2>&1 || log "FAILED: apt ${need[*]}"
  fi
fi
command -v sqitch >/dev/null && log "ok: sqitch" || log "FAILED: sqitch"
command -v hyperfine >/dev/null && log "ok: hyperfine" || log "FAILED: hyperfine"
touch "$T/.done"
