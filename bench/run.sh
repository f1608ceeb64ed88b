#!/usr/bin/env bash
# The one command: bash bench/run.sh [--quick] [--repeats N] [--only tool,..] [--skip part,..]
#                                    [--against REF]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ ! -f "$HERE/.tools/.done" ] || [ "${BENCH_REINSTALL:-}" = 1 ]; then
  bash "$HERE/setup.sh"
fi
# persistor as users get it (a regular install, bytecode compiled), rebuilt
# from this tree on every run: an editable install under
# PYTHONDONTWRITEBYTECODE=1 would recompile every module on every start.
"$HERE/.tools/venv/bin/pip" install -q --no-deps --force-reinstall "$HERE/.." >>"$HERE/.tools/install.log" 2>&1
# --against REF: persistor at another commit runs in the same run, interleaved
# with this tree's (tool persistor_ref), so a change is judged against its
# parent on the same machine under the same load.
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--against" ]; then
    ref="${args[$((i + 1))]:?--against needs a commit}"
    src="$HERE/.tools/ref-src"
    rm -rf "$src" && mkdir -p "$src"
    git -C "$HERE/.." archive "$ref" | tar -x -C "$src"
    [ -x "$HERE/.tools/venv-ref/bin/python" ] || python3 -m venv "$HERE/.tools/venv-ref"
    "$HERE/.tools/venv-ref/bin/pip" install -q --force-reinstall "$src" >>"$HERE/.tools/install.log" 2>&1
    export BENCH_REF="$(git -C "$HERE/.." rev-parse --short "$ref")"
  fi
done
exec "$HERE/.tools/venv/bin/python" "$HERE/run.py" "$@"
