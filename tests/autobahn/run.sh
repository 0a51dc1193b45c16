#!/usr/bin/env bash
# Run Autobahn|Testsuite against `volley serve` and compare the result with
# the checked-in expectation.
#   tests/autobahn/run.sh plain       sections 1-10, no compression      (~20 s)
#   tests/autobahn/run.sh deflate     all 517 cases, --deflate (shared)  (~7 min on one core)
#   tests/autobahn/run.sh dedicated   12.1, 13.1-13.4, --deflate=dedicated (~3 min)
#   tests/autobahn/run.sh c           sections 1-10 against examples/c/echo.c
#                                     on the static library (VOLLEY_C_ECHO: the binary)
#   tests/autobahn/run.sh deflate dedicated   both at once
#
# The fuzzing client (Python) is the bottleneck, one core per client: each
# mode gets its own server, and its cases are split into shards, each with
# its own client, all running at once (AUTOBAHN_SHARDS=1: one client per
# mode). The shards' reports are merged and checked as one.
set -euo pipefail
shopt -s lastpipe
[ $# -gt 0 ] || set -- plain
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rig="${AUTOBAHN_RIG:-$root/../shared/tools/autobahn}"
venv="${AUTOBAHN_VENV:-/tmp/autobahn-venv}"
bin="${VOLLEY_BIN:-$root/target/release/volley}"
base="${AUTOBAHN_OUTDIR:-/tmp/volley-autobahn}"

for mode in "$@"; do
  case "$mode" in
    plain | deflate | dedicated) ;;
    c) : "${VOLLEY_C_ECHO:?build examples/c/echo.c and point VOLLEY_C_ECHO at it}" ;;
    *) echo "usage: $0 plain|deflate|dedicated|c ..." >&2; exit 2 ;;
  esac
done

# Once, before any client starts (setup.sh is not safe to run twice at once).
"$rig/setup.sh" "$venv" >/dev/null

# run_mode MODE: a server, the mode's shards against it at once, their
# reports merged and checked.
run_mode() {
  local mode="$1" flags=() shards=() nodeflate=0 expected
  # A shard is "CASES|EXCLUDED" (comma-separated patterns).
  case "$mode" in
    plain | c) shards=("*|"); nodeflate=1; expected=expected-nodeflate.json ;;
    deflate)
      flags=(--deflate)
      shards=("*|")
      # Sections 12 and 13 (permessage-deflate) take 97 % of the time
      # (case durations of one run: 1-10 17 s, 12.1-12.4 335 s, 12.5 114 s,
      # 13 243 s): two shards of about 355 s each, which with `dedicated`'s
      # 170 s share two cores evenly.
      [ "${AUTOBAHN_SHARDS:-}" = 1 ] || shards=("*|12.5.*,13.*" "12.5.*,13.*|")
      expected=expected-all.json
      ;;
    dedicated)
      flags=(--deflate=dedicated)
      shards=("12.1.*,13.1.*,13.2.*,13.3.*,13.4.*|")
      expected=expected-dedicated.json
      ;;
  esac

  local out="$base/$mode"
  rm -rf "$out"
  mkdir -p "$out"
  local log="$out/server.log" pid
  if [ "$mode" = c ]; then
    "$VOLLEY_C_ECHO" 0 >"$log" 2>&1 &
  else
    "$bin" serve --port 0 "${flags[@]}" >"$log" 2>&1 &
  fi
  pid=$!
  trap "kill $pid 2>/dev/null || true" EXIT
  for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
  local addr
  addr="$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$log" | head -1)"
  [ "$mode" != c ] || addr="127.0.0.1:$(sed -n 's/^listening //p' "$log" | head -1)"
  [ -n "$addr" ] || { echo "autobahn $mode: the server did not start"; cat "$log"; return 1; }

  local i=0 s pids=() reports=()
  for s in "${shards[@]}"; do
    AUTOBAHN_VENV="$venv" AUTOBAHN_OUTDIR="$out/shard$i" AUTOBAHN_TIMEOUT=1500 \
      AUTOBAHN_NO_DEFLATE="$nodeflate" AUTOBAHN_EXCLUDE="${s#*|}" \
      "$rig/run.sh" "ws://$addr/echo" volley "${s%%|*}" >"$out/shard$i.log" 2>&1 &
    pids+=($!)
    reports+=("$out/shard$i/index.json")
    i=$((i + 1))
  done
  # The rig's own verdict is printed; check.py's is the one that counts.
  for s in "${pids[@]}"; do wait "$s" || true; done
  for ((s = 0; s < i; s++)); do tail -n 2 "$out/shard$s.log" | sed "s/^/[$mode $s] /"; done
  kill -0 "$pid" 2>/dev/null || { echo "autobahn $mode: the server died during the run"; return 1; }
  python3 "$here/check.py" "$here/$expected" "${reports[@]}" | sed "s/^/[$mode] /"
}

if [ $# -eq 1 ]; then
  run_mode "$1"
  exit
fi
# Several modes: each in the background, its output kept and shown in order.
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
pids=()
for mode in "$@"; do
  (run_mode "$mode") >"$logs/$mode" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
for mode in "$@"; do cat "$logs/$mode"; done
exit "$rc"
