#!/usr/bin/env bash
# The Python wheel as a user gets it: built from this checkout by `pip
# wheel` (its library made by scripts/prebuilt.sh: linux-x64, glibc 2.28,
# stripped), tagged py3-none-manylinux_2_28_x86_64, leaving the tree clean;
# auditwheel confirms the floor, pip accepts its tags for CPython 3.9, and
# the wheel (not the source tree) installs into a fresh venv and serves.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/tools"
"$tmp/tools/bin/pip" install -q --disable-pip-version-check auditwheel==6.1.0
env -u VOLLEY_LIB "$tmp/tools/bin/pip" wheel -q --disable-pip-version-check --no-deps -w "$tmp/dist" ./bindings/python
wheel=$(ls "$tmp"/dist/*.whl)
echo "python wheel: $(basename "$wheel"), $(stat -c %s "$wheel") bytes"
case "$(basename "$wheel")" in
  volley-*-py3-none-manylinux_2_28_x86_64.whl) ;;
  *) echo "python wheel: unexpected tags" >&2; exit 1 ;;
esac
[ "$(stat -c %s "$wheel")" -lt $((10 * 1024 * 1024)) ] || { echo "python wheel: too large for a stripped library" >&2; exit 1; }
# pip wheel left nothing behind in the checkout.
left=$(git status --porcelain --ignored bindings/python | grep -E 'build/|egg-info' || true)
[ -z "$left" ] || { echo "python wheel: left in the tree: $left" >&2; exit 1; }
"$tmp/tools/bin/auditwheel" show "$wheel" | tee "$tmp/audit"
tr -s ' \n' ' ' < "$tmp/audit" | grep -q 'consistent with the following platform tag: "manylinux_2_28_x86_64"'
"$tmp/tools/bin/pip" install -q --disable-pip-version-check --dry-run --python-version 3.9 --only-binary=:all: \
  --no-deps --target "$tmp/py39" "$wheel"
echo "python wheel: pip accepts its tags for CPython 3.9"
python3 -m venv "$tmp/user"
"$tmp/user/bin/pip" install -q --disable-pip-version-check "$wheel" websockets==15.0.1
cd "$tmp"
env -u VOLLEY_LIB "$tmp/user/bin/python" - <<'PY'
import asyncio, pathlib
import websockets
import volley, volley.asyncio as vws

where = pathlib.Path(volley.__file__).parent
assert "site-packages" in str(where), where
lib = where / "libvolley.so"
assert lib.stat().st_size < 10 * 1024 * 1024, lib.stat().st_size

async def main():
    async def echo(ws):
        async for m in ws:
            await ws.send(m)
    async with vws.serve(echo, "127.0.0.1", 0) as server:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as c:
            await c.send("from the wheel")
            assert await c.recv() == "from the wheel"
    print(f"python wheel: installed at {where}, echo answered")

asyncio.run(main())
PY
