#!/usr/bin/env bash
# Run every cargo-fuzz target for FUZZ_SECONDS (default 30) each; fails on
# any crash, panic, leak report or timeout.
#   scripts/fuzz.sh [target ...]
# New inputs go to fuzz/grown/<target> (ignored by git), which later runs
# start from, so a machine's fuzzing accumulates; the checked-in seeds in
# fuzz/corpus/<target> are read only. `FUZZ_MERGE=1 scripts/fuzz.sh`
# minimises what grew into the seed corpus (to commit).
# Uses `--sanitizer none` (cargo-fuzz on stable Rust; see TOOLCHAIN notes).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(handshake_request frame_decoder connection inflate deflate_roundtrip unmask_equiv conn_worker http_framing)
cargo fuzz build --sanitizer none -O
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
# Targets run `jobs` at a time (FUZZ_JOBS, default: the number of cores),
# each on its own core for FUZZ_SECONDS, so the whole pass costs
# targets/jobs rounds of wall time, not one per target.
jobs="${FUZZ_JOBS:-$(nproc)}"
failed=0

# fuzz_one TARGET LOG RSS-MB [SANITIZER-ARGS...]: one target's run, then its verdict.
fuzz_one() {
  local t="$1" log="$2" rss="$3" label="$1"
  shift 3
  [ "$#" -gt 0 ] || label="$t (AddressSanitizer)"
  mkdir -p "fuzz/grown/$t"
  if cargo fuzz run "$@" -O "$t" "fuzz/grown/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=10 >"$log" 2>&1; then
    echo "fuzz $label: $(grep -E '^Done' "$log" | tail -1) (corpus $(ls "fuzz/grown/$t" | wc -l) grown + $(ls "fuzz/corpus/$t" | wc -l) seeds)"
  else
    echo "fuzz $label: FAILED"; tail -30 "$log"; return 1
  fi
}

# pool CMD...: start CMD in the background once fewer than `jobs` run.
pool() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || failed=1
  done
  "$@" &
}

drain() {
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
    wait -n || failed=1
  done
}

for t in "${targets[@]}"; do
  pool fuzz_one "$t" "$logs/$t.log" 2048 --sanitizer none
done
drain
[ "$failed" = 0 ] || exit 1
if [ "${FUZZ_MERGE:-0}" = 1 ]; then
  for t in "${targets[@]}"; do
    cargo fuzz run --sanitizer none -O "$t" "fuzz/corpus/$t" "fuzz/grown/$t" -- -merge=1 >"$logs/$t.merge.log" 2>&1
    echo "fuzz $t: merged into fuzz/corpus/$t ($(ls "fuzz/corpus/$t" | wc -l) files)"
  done
fi

# The targets that reach `unsafe` — word-at-a-time unmasking, and the
# decoder's promise that text is UTF-8 (which the unchecked `str` conversion
# in dispatch relies on) — once more under AddressSanitizer, the second
# through the real worker. Miri needs a nightly toolchain, which this
# project's machines cannot fetch; the sanitizer flags are enabled on stable
# with RUSTC_BOOTSTRAP=1.
if [ "${FUZZ_ASAN:-1}" = 1 ]; then
  # Build once before the pool, so the parallel runs find it built.
  RUSTC_BOOTSTRAP=1 cargo fuzz build -O unmask_equiv >"$logs/asan.build.log" 2>&1 &&
    RUSTC_BOOTSTRAP=1 cargo fuzz build -O conn_worker >>"$logs/asan.build.log" 2>&1 ||
    { echo "fuzz: AddressSanitizer build FAILED"; tail -30 "$logs/asan.build.log"; exit 1; }
  export RUSTC_BOOTSTRAP=1
  for t in unmask_equiv conn_worker; do
    pool fuzz_one "$t" "$logs/$t.asan.log" 4096
  done
  drain
  [ "$failed" = 0 ] || exit 1
fi
