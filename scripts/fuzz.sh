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
[ ${#targets[@]} -gt 0 ] || targets=(handshake_request frame_decoder inflate deflate_roundtrip unmask_equiv conn_worker http_framing)
cargo fuzz build --sanitizer none -O
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
for t in "${targets[@]}"; do
  grown="fuzz/grown/$t"
  mkdir -p "$grown"
  log="$logs/$t.log"
  if cargo fuzz run --sanitizer none -O "$t" "$grown" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    echo "fuzz $t: $(grep -E '^Done' "$log" | tail -1) (corpus $(ls "$grown" | wc -l) grown + $(ls "fuzz/corpus/$t" | wc -l) seeds)"
  else
    echo "fuzz $t: FAILED"; tail -30 "$log"; exit 1
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    cargo fuzz run --sanitizer none -O "$t" "fuzz/corpus/$t" "$grown" -- -merge=1 >"$log" 2>&1
    echo "fuzz $t: merged into fuzz/corpus/$t ($(ls "fuzz/corpus/$t" | wc -l) files)"
  fi
done

# The targets that reach `unsafe` — word-at-a-time unmasking, and the
# decoder's promise that text is UTF-8 (which the unchecked `str` conversion
# in dispatch relies on) — once more under AddressSanitizer, the second
# through the real worker. Miri needs a nightly toolchain, which this
# project's machines cannot fetch; the sanitizer flags are enabled on stable
# with RUSTC_BOOTSTRAP=1.
if [ "${FUZZ_ASAN:-1}" = 1 ]; then
  for t in unmask_equiv conn_worker; do
    mkdir -p "fuzz/grown/$t"
    log="$logs/$t.asan.log"
    if RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "fuzz/grown/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 >"$log" 2>&1; then
      echo "fuzz $t (AddressSanitizer): $(grep -E '^Done' "$log" | tail -1)"
    else
      echo "fuzz $t (AddressSanitizer): FAILED"; tail -30 "$log"; exit 1
    fi
  done
fi
