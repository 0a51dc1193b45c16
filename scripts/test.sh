#!/usr/bin/env bash
# Every test Volley has: lint, unit and integration tests, criterion benches
# (one pass each), interop with Python `websockets`, Node `ws`, the
# `eventsource` package and headless Chromium, and Autobahn|Testsuite.
#   scripts/test.sh
# Needs: Rust stable, Python 3.11 with venv, Node 20 with npm, Debian's
# chromium (optional outside CI); the Autobahn rig in ../shared/tools/autobahn.
# Installs its Python and npm packages itself.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
passed=0
failed=0
failures=()

step() {
  local name="$1"
  shift
  echo
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== FAILED: $name"
  fi
}

python_interop() {
  local venv="$root/.venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/python/requirements.txt || return 1
  (cd tests/interop/python && VOLLEY_BIN="$root/target/release/volley" "$venv/bin/python" -m pytest -q)
}

node_interop() {
  (cd tests/interop/node && npm ci --silent --no-audit --no-fund &&
    VOLLEY_BIN="$root/target/release/volley" npm test --silent)
}

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo build (release)" cargo build --release -p volley-cli
step "cargo test" cargo test --workspace
step "fuzz: every target, FUZZ_SECONDS (30) each" scripts/fuzz.sh
step "criterion benches (one pass each)" cargo bench -q -p volley-benches --bench hot_paths -- --test
step "interop: Python websockets" python_interop
step "interop: Node ws" node_interop
step "Autobahn|Testsuite 1-10, plain" tests/autobahn/run.sh plain
step "Autobahn|Testsuite, all 517 cases, --deflate" tests/autobahn/run.sh deflate
step "Autobahn|Testsuite 12-13 subset, --deflate=dedicated" tests/autobahn/run.sh dedicated

echo
for f in "${failures[@]}"; do echo "failed suite: $f"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
