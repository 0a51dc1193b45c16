#!/usr/bin/env bash
# The C ABI from the outside, as its users get it: install into a prefix,
# build C (gcc, C99) and C++ (g++, C++17) programs against the static
# library found through pkg-config, with -Wall -Wextra -Werror -pedantic,
# and a Zig program (@cImport of the header); drive each with Python
# `websockets`; again under valgrind memcheck; Autobahn 1-10 against the C
# echo example.
#   tests/c/run.sh            everything
#   VALGRIND=0 AUTOBAHN=0 tests/c/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/python/requirements.txt ziglang==0.15.2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
scripts/install.sh --prefix "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
bin="$work/bin"
mkdir -p "$bin"
warn=(-Wall -Wextra -Werror -pedantic -O2 -g)
# Include the header alone, as C99 and as C++17.
echo '#include "volley.h"' | gcc -std=c99 "${warn[@]}" -I"$prefix/include" -fsyntax-only -x c -
echo '#include "volley.hpp"' | g++ -std=c++17 "${warn[@]}" -I"$prefix/include" -fsyntax-only -x c++ -
static() { pkg-config --cflags --libs --static volley; }
gcc -std=c99 "${warn[@]}" -D_POSIX_C_SOURCE=200809L tests/c/server.c -o "$bin/server_c" $(static)
g++ -std=c++17 "${warn[@]}" tests/c/server.cpp -o "$bin/server_cpp" $(static)
gcc -std=c99 "${warn[@]}" tests/c/abi.c -o "$bin/abi" $(static)
gcc -std=c99 "${warn[@]}" examples/c/echo.c -o "$bin/echo" $(static)
gcc -std=c99 "${warn[@]}" -D_POSIX_C_SOURCE=200809L examples/c/chat.c -o "$bin/chat" $(static)
# The shared library: its SONAME, and a program linked through
# volley-shared.pc that loads it by that name.
readelf -d "$prefix/lib/libvolley.so.0" | grep -q 'SONAME.*\[libvolley\.so\.0\]' ||
  { echo "c: libvolley.so has no SONAME libvolley.so.0" >&2; exit 1; }
gcc -std=c99 "${warn[@]}" tests/c/abi.c -o "$bin/abi_shared" $(pkg-config --cflags --libs volley-shared)
ldd "$bin/abi_shared" | grep -q "libvolley.so.0 => $prefix/lib/libvolley.so.0" ||
  { echo "c: abi_shared does not load libvolley.so.0 from the prefix" >&2; ldd "$bin/abi_shared"; exit 1; }
"$bin/abi_shared" && echo "c: abi.c on the shared library (SONAME libvolley.so.0)"
for b in server_c server_cpp echo; do
  if ldd "$bin/$b" | grep -q libvolley; then echo "c: $b is linked with the shared library" >&2; exit 1; fi
done
"$venv/bin/python" -m ziglang build-exe tests/zig/server.zig -I"$prefix/include" "$prefix/lib/libvolley.a" \
  -lc -lunwind -O ReleaseSafe -femit-bin="$bin/server_zig" --cache-dir "$work/zig-cache" --global-cache-dir "$work/zig-global"
echo "c: built C, C++ and Zig programs on the static library"
"$bin/abi" && echo "c: abi.c: every check holds"
# The same checks with AddressSanitizer and UBSan on the C side (heap
# overruns of a caller's short struct, use after free of its buffers).
gcc -std=c99 "${warn[@]}" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
  tests/c/abi.c -o "$bin/abi_asan" $(static)
ASAN_OPTIONS=detect_leaks=1 "$bin/abi_asan" && echo "c: abi.c clean under ASan and UBSan"
# Lifetime misuse (free from a callback while main joins, calls after free,
# free racing another thread's calls, stop from a signal handler): plain,
# then with ASan and UBSan (valgrind below).
gcc -std=c99 "${warn[@]}" tests/c/lifetime.c -o "$bin/lifetime" $(static) -lpthread
"$bin/lifetime" && echo "c: lifetime.c: every check holds"
gcc -std=c99 "${warn[@]}" -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
  tests/c/lifetime.c -o "$bin/lifetime_asan" $(static) -lpthread
ASAN_OPTIONS=detect_leaks=1 "$bin/lifetime_asan" && echo "c: lifetime.c clean under ASan and UBSan"

export VOLLEY_TEST_SERVERS="c=$bin/server_c,cpp=$bin/server_cpp,zig=$bin/server_zig"
export VOLLEY_CHAT_BIN="$bin/chat"
"$venv/bin/python" -m pytest -q tests/c/test_servers.py

if [ "${VALGRIND:-1}" = 1 ]; then
  command -v valgrind >/dev/null || { echo "c: valgrind is missing" >&2; exit 1; }
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible "$bin/abi"
  echo "c: abi.c clean under valgrind"
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible "$bin/lifetime"
  echo "c: lifetime.c clean under valgrind"
  # The C (callback) and C++ (queue) servers under memcheck: any leak or
  # invalid access makes the server exit 99, which the tests check.
  VOLLEY_WRAP="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible" \
  VOLLEY_TEST_SERVERS="c=$bin/server_c,cpp=$bin/server_cpp" VOLLEY_CHAT_BIN="" \
    "$venv/bin/python" -m pytest -q tests/c/test_servers.py
fi

if [ "${AUTOBAHN:-1}" = 1 ]; then
  VOLLEY_C_ECHO="$bin/echo" tests/autobahn/run.sh c
fi
