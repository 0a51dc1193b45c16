#!/usr/bin/env bash
# Run every cargo-fuzz target for FUZZ_SECONDS (default 30) each; fails on
# any crash, panic, leak report or timeout. New inputs go to a scratch
# corpus; the checked-in seeds in fuzz/corpus/<target> are read only.
#   scripts/fuzz.sh [target ...]
# Uses `--sanitizer none` (cargo-fuzz on stable Rust; see TOOLCHAIN notes).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(handshake_request frame_decoder inflate deflate_roundtrip unmask_equiv conn_server_bytes)
cargo fuzz build --sanitizer none -O
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  if cargo fuzz run --sanitizer none -O "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    echo "fuzz $t: $(grep -E '^Done' "$log" | tail -1)"
  else
    echo "fuzz $t: FAILED"; tail -30 "$log"; exit 1
  fi
done

# The targets that reach `unsafe` — word-at-a-time unmasking, and the
# decoder's promise that text is UTF-8 (which the unchecked `str` conversion
# in dispatch relies on) — once more under AddressSanitizer. Miri needs a
# nightly toolchain, which this project's machines cannot fetch; the
# sanitizer flags are enabled on stable with RUSTC_BOOTSTRAP=1.
if [ "${FUZZ_ASAN:-1}" = 1 ]; then
  for t in unmask_equiv conn_server_bytes; do
    log="$scratch/$t.asan.log"
    if RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 >"$log" 2>&1; then
      echo "fuzz $t (AddressSanitizer): $(grep -E '^Done' "$log" | tail -1)"
    else
      echo "fuzz $t (AddressSanitizer): FAILED"; tail -30 "$log"; exit 1
    fi
  done
fi
