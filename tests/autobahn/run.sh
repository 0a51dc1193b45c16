#!/usr/bin/env bash
# Run Autobahn|Testsuite against `volley serve` and compare the result with
# the checked-in expectation.
#   tests/autobahn/run.sh plain       sections 1-10, no compression      (~20 s)
#   tests/autobahn/run.sh deflate     all 517 cases, --deflate (shared)  (~7 min)
#   tests/autobahn/run.sh dedicated   12.1, 13.1-13.4, --deflate=dedicated (~3 min)
#   tests/autobahn/run.sh c           sections 1-10 against examples/c/echo.c
#                                     on the static library (VOLLEY_C_ECHO: the binary)
set -euo pipefail
mode="${1:-plain}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rig="${AUTOBAHN_RIG:-$root/../shared/tools/autobahn}"
venv="${AUTOBAHN_VENV:-/tmp/autobahn-venv}"
bin="${VOLLEY_BIN:-$root/target/release/volley}"
out="${AUTOBAHN_OUTDIR:-/tmp/volley-autobahn}/$mode"

case "$mode" in
  plain) flags=(); cases="*"; export AUTOBAHN_NO_DEFLATE=1; expected=expected-nodeflate.json ;;
  deflate) flags=(--deflate); cases="*"; expected=expected-all.json ;;
  dedicated) flags=(--deflate=dedicated); cases="12.1.*,13.1.*,13.2.*,13.3.*,13.4.*"; expected=expected-dedicated.json ;;
  c) flags=(); cases="*"; export AUTOBAHN_NO_DEFLATE=1; expected=expected-nodeflate.json ;;
  *) echo "usage: $0 plain|deflate|dedicated" >&2; exit 2 ;;
esac

"$rig/setup.sh" "$venv" >/dev/null
log="$(mktemp)"
if [ "$mode" = c ]; then
  "${VOLLEY_C_ECHO:?build examples/c/echo.c and point VOLLEY_C_ECHO at it}" 0 >"$log" 2>&1 &
else
  "$bin" serve --port 0 "${flags[@]}" >"$log" 2>&1 &
fi
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
addr="$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$log" | head -1)"
[ "$mode" != c ] || addr="127.0.0.1:$(sed -n 's/^listening //p' "$log" | head -1)"
[ -n "$addr" ] || { echo "autobahn: volley serve did not start"; cat "$log"; exit 1; }

set +e
AUTOBAHN_VENV="$venv" AUTOBAHN_OUTDIR="$out" AUTOBAHN_TIMEOUT=1500 \
  "$rig/run.sh" "ws://$addr/echo" volley "$cases" | tail -n 3
set -e
kill -0 $pid 2>/dev/null || { echo "autobahn: volley serve died during the run"; exit 1; }
python3 "$here/check.py" "$out/index.json" "$here/$expected"
