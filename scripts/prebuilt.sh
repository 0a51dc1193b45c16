#!/usr/bin/env bash
# The prebuilt libvolley.so that the npm package and the Python wheel carry:
# built from this checkout's sources for linux-x64 against a glibc floor of
# 2.28 (cargo-zigbuild, with Zig from PyPI), stripped, SONAME libvolley.so.0.
#   scripts/prebuilt.sh            -> target/prebuilt/libvolley.so
# Installs cargo-zigbuild and ziglang (into .venv-zig) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
floor=2.28
venv="$root/.venv-zig"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check ziglang==0.15.2
fi
command -v cargo-zigbuild >/dev/null || cargo install -q --locked cargo-zigbuild@0.24.1
# cargo-zigbuild finds `python3 -m ziglang` on PATH.
PATH="$venv/bin:$PATH" cargo zigbuild -q --release -p volley-ffi \
  --target "x86_64-unknown-linux-gnu.$floor" --target-dir target/prebuilt
out=target/prebuilt/libvolley.so
cp target/prebuilt/x86_64-unknown-linux-gnu/release/libvolley.so "$out"
strip --strip-unneeded "$out"
# The floor holds: no symbol needs a newer glibc.
newest=$(objdump -T "$out" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
if [ "$(printf '%s\n%s\n' "$newest" "$floor" | sort -V | tail -1)" != "$floor" ]; then
  echo "prebuilt: needs GLIBC_$newest, past the floor $floor" >&2
  exit 1
fi
echo "prebuilt: $out ($(stat -c %s "$out") bytes, glibc >= $floor, newest symbol GLIBC_$newest)"
