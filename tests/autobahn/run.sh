#!/usr/bin/env bash
# Run Autobahn|Testsuite sections 1-10 against `volley serve` and compare the
# result with expected-nodeflate.json (every case OK or INFORMATIONAL).
#   tests/autobahn/run.sh            (needs target/release/volley)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rig="${AUTOBAHN_RIG:-$root/../shared/tools/autobahn}"
venv="${AUTOBAHN_VENV:-/tmp/autobahn-venv}"
bin="${VOLLEY_BIN:-$root/target/release/volley}"
out="${AUTOBAHN_OUTDIR:-/tmp/volley-autobahn}"

"$rig/setup.sh" "$venv" >/dev/null
log="$(mktemp)"
"$bin" serve --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done
addr="$(sed -n 's|.*http://\([^/]*\)/.*|\1|p' "$log" | head -1)"
[ -n "$addr" ] || { echo "autobahn: volley serve did not start"; cat "$log"; exit 1; }

set +e
AUTOBAHN_VENV="$venv" AUTOBAHN_OUTDIR="$out" AUTOBAHN_NO_DEFLATE=1 AUTOBAHN_TIMEOUT=900 \
  "$rig/run.sh" "ws://$addr/echo" volley | tail -n 4
set -e
kill -0 $pid 2>/dev/null || { echo "autobahn: volley serve died during the run"; exit 1; }
python3 "$here/check.py" "$out/index.json" "$here/expected-nodeflate.json"
