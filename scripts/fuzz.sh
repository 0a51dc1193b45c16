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
