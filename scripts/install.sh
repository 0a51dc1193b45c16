#!/usr/bin/env bash
# Install the C ABI the C way: header, static and shared library, pkg-config.
#   scripts/install.sh --prefix DIR
# Then: cc prog.c $(pkg-config --cflags --libs --static volley)   (static)
#       cc prog.c $(pkg-config --cflags --libs volley-shared)      (shared:
#         libvolley.so.0, its SONAME, with an rpath to DIR/lib)
# A Zig build of the static library also needs -lunwind (Rust's unwinder):
#       zig build-exe main.zig DIR/lib/libvolley.a -lc -lunwind
# with PKG_CONFIG_PATH=DIR/lib/pkgconfig.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    *) echo "usage: scripts/install.sh --prefix DIR" >&2; exit 2 ;;
  esac
done
[ -n "$prefix" ] || { echo "usage: scripts/install.sh --prefix DIR" >&2; exit 2; }
cargo build --release -q -p volley-ffi
version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="volley-ffi"))')
# The system libraries a Rust static library needs, as rustc reports them.
libs=$(cargo rustc --release -q -p volley-ffi --crate-type staticlib -- --print native-static-libs 2>&1 |
  sed -n 's/.*native-static-libs: //p' | tail -1)
[ -n "$libs" ] || libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 include/volley.h include/volley.hpp "$prefix/include/"
install -m 0644 target/release/libvolley.a "$prefix/lib/"
# The shared library under its SONAME (libvolley.so.0: ABI major 0 of the
# file name, see ffi/build.rs) with the unversioned name for -lvolley.
install -m 0755 target/release/libvolley.so "$prefix/lib/libvolley.so.0"
ln -sf libvolley.so.0 "$prefix/lib/libvolley.so"
# volley.pc links the static library (what `pkg-config --static` users
# want, and plain `--libs` gets the same); volley-shared.pc the shared one.
cat > "$prefix/lib/pkgconfig/volley.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: volley
Description: WebSocket server engine with Bun's ServerWebSocket surface (static library)
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libvolley.a $libs
PC
cat > "$prefix/lib/pkgconfig/volley-shared.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: volley-shared
Description: WebSocket server engine with Bun's ServerWebSocket surface (shared library)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lvolley
PC
echo "installed volley $version into $prefix ($libs)"
