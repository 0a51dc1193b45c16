#!/usr/bin/env bash
# The npm package as a user gets it: `npm pack` with the prebuilt library
# (scripts/prebuilt.sh: linux-x64, glibc >= 2.28, stripped), installed into
# an empty project and run where there is no cargo and no VOLLEY_LIB; and
# the clear error on a platform it does not cover.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/prebuilt.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A copy of the package with the library in it (the working tree keeps
# none, so a stale copy can never shadow a fresh build there).
mkdir -p "$tmp/pkg"
(cd bindings/node && git ls-files -z --cached --others --exclude-standard | grep -zv '^node_modules/' |
  xargs -0 cp --parents -t "$tmp/pkg")
mkdir -p "$tmp/pkg/prebuilt/linux-x64"
cp target/prebuilt/libvolley.so "$tmp/pkg/prebuilt/linux-x64/"
(cd "$tmp/pkg" && npm pack --silent --pack-destination "$tmp" >/dev/null)
tarball=$(ls "$tmp"/volley-*.tgz)
size=$(stat -c %s "$tarball")
echo "node package: $(basename "$tarball"), $size bytes"
tar tzf "$tarball" > "$tmp/contents"
grep -qx 'package/prebuilt/linux-x64/libvolley.so' "$tmp/contents"
[ "$size" -lt $((10 * 1024 * 1024)) ] || { echo "node package: $size bytes, larger than a stripped library explains" >&2; exit 1; }
mkdir -p "$tmp/app"
cd "$tmp/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "$tarball" ws@8.18.0
cp "$root/bindings/node/examples/echo.mjs" .
cat > check.mjs <<'JS'
// The echo example, started as a user would, answers a ws client.
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
const server = spawn(process.execPath, ['echo.mjs', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
for await (const chunk of server.stdout) {
  out += chunk;
  if (/listening (\d+)/.test(out)) break;
}
const port = /listening (\d+)/.exec(out)[1];
const c = new WebSocket(`ws://127.0.0.1:${port}/`);
await new Promise((r, e) => { c.on('open', r); c.on('error', e); });
c.send('from the packed package');
const [m] = await new Promise((r) => c.once('message', (...a) => r(a)));
if (m.toString() !== 'from the packed package') throw new Error(`echo: ${m}`);
c.close();
server.kill();
console.log('node package: the echo example answers, library from the package');
JS
# No cargo on PATH, no VOLLEY_LIB: the package's own library or nothing.
nodedir=$(dirname "$(command -v node)")
env -u VOLLEY_LIB PATH="$nodedir:/usr/bin:/bin" sh -c '! command -v cargo >/dev/null' 
env -u VOLLEY_LIB PATH="$nodedir:/usr/bin:/bin" node check.mjs
# A platform the package does not cover: a clear error that says what to do.
if env -u VOLLEY_LIB node -e "Object.defineProperty(process, 'platform', { value: 'darwin' }); require('volley')" 2>err.txt; then
  echo "node package: loaded on a faked darwin" >&2; exit 1
fi
grep -q "prebuilt libvolley.so is for linux-x64 with glibc >= 2.28, not darwin-x64" err.txt || { cat err.txt >&2; exit 1; }
echo "node package: darwin-x64 gets: $(grep -m1 '^Error: volley' err.txt)"
