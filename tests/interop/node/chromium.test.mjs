// Headless Chromium (Debian's `chromium`, driven by playwright-core) against
// `volley serve --deflate`: the browser negotiates permessage-deflate and
// exchanges 0 B to 16 MiB intact. Runs wherever /usr/bin/chromium exists;
// in CI (CI=true) a missing browser is a failure, not a skip.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = process.env.VOLLEY_BIN ?? path.join(root, 'target/release/volley');
const exe = process.env.CHROMIUM ?? '/usr/bin/chromium';
const have = existsSync(exe);
if (!have && process.env.CI === 'true') throw new Error(`${exe} is missing in CI`);

let server;
let host;
let browser;

before(async () => {
  if (!have) return;
  server = spawn(bin, ['serve', '--port', '0', '--deflate'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(server.stdout, 'data');
  host = /http:\/\/([^/]+)\//.exec(line.toString())[1];
  browser = await chromium.launch({
    executablePath: exe,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

test('Chromium negotiates permessage-deflate and echoes 0 B to 16 MiB', { skip: !have && 'no chromium' }, async () => {
  const page = await browser.newPage();
  await page.goto(`http://${host}/`);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'open');
  const result = await page.evaluate(async (url) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    await new Promise((r) => (ws.onopen = r));
    const next = () => new Promise((r) => (ws.onmessage = (e) => r(e.data)));
    const out = { extensions: ws.extensions, ok: [] };
    // Multi-byte text once (its UTF-8 is longer than its length in JS).
    let q = next();
    const greek = 'κόσμε ✓ '.repeat(5000);
    ws.send(greek);
    out.multibyte = (await q) === greek;
    for (const size of [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]) {
      // ASCII, so the message is exactly `size` bytes on the wire.
      const text = 'volley echo test '.repeat(Math.ceil(size / 17)).slice(0, size);
      let p = next();
      ws.send(text);
      const t = await p;
      const bytes = new Uint8Array(size).map((_, i) => (i * 31) & 255);
      p = next();
      ws.send(bytes);
      const b = new Uint8Array(await p);
      out.ok.push(t === text && b.length === size && b.every((v, i) => v === bytes[i]));
    }
    ws.close(4001, 'done');
    return out;
  }, `ws://${host}/echo`);
  assert.match(result.extensions, /permessage-deflate/);
  assert.equal(result.multibyte, true);
  assert.deepEqual(result.ok, [true, true, true, true, true, true]);
  // The demo page itself talked to /echo and got its greeting back.
  assert.match(await page.title(), /echo: hello from the page/);
});
