// Headless Chromium (Debian's `chromium`, driven by playwright-core) loads a
// page from the binding's fetch handler and talks to its WebSocket:
// permessage-deflate negotiated, text and binary from 0 B to 1 MiB echoed,
// a publish from the server received. Runs wherever /usr/bin/chromium
// exists; in CI (CI=true) a missing browser is a failure, not a skip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { serve } from 'volley';

const exe = process.env.CHROMIUM ?? '/usr/bin/chromium';
const have = existsSync(exe);
if (!have && process.env.CI === 'true') throw new Error(`${exe} is missing in CI`);

const PAGE = `<!doctype html><title>volley</title><script>
  window.result = (async () => {
    const ws = new WebSocket('ws://' + location.host + '/ws');
    ws.binaryType = 'arraybuffer';
    const inbox = [];
    let wake = null;
    ws.onmessage = (e) => { inbox.push(e.data); if (wake) { wake(); wake = null; } };
    const next = async () => { while (!inbox.length) await new Promise((r) => (wake = r)); return inbox.shift(); };
    await new Promise((r) => (ws.onopen = r));
    const out = { extensions: ws.extensions, ok: [] };
    for (const size of [0, 125, 126, 65536, 1 << 20]) {
      const text = 'volley '.repeat(Math.ceil(size / 7)).slice(0, size);
      ws.send(text);
      const t = await next();
      const bytes = new Uint8Array(size).map((_, i) => (i * 31) & 255);
      ws.send(bytes);
      const b = new Uint8Array(await next());
      out.ok.push(t === text && b.length === size && b.every((v, i) => v === bytes[i]));
    }
    ws.send('publish please');
    out.published = await next();
    ws.close(4001, 'done');
    return out;
  })();
</script>`;

test('Chromium loads a page from fetch and negotiates deflate on the WebSocket', { skip: !have && 'no chromium' }, async (t) => {
  const server = serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch(req, server) {
      if (new URL(req.url).pathname === '/ws' && server.upgrade(req)) return;
      return new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } });
    },
    websocket: {
      perMessageDeflate: true,
      open(ws) {
        ws.subscribe('page');
      },
      message(ws, m) {
        if (m === 'publish please') server.publish('page', 'from the server');
        else ws.send(m, true); // compressed when asked, as on Bun
      },
    },
  });
  t.after(() => server.stop(true));
  const browser = await chromium.launch({
    executablePath: exe,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.port}/`);
  // evaluate waits for the page's promise with no timeout of its own.
  const result = await page.evaluate(() =>
    Promise.race([window.result, new Promise((_, fail) => setTimeout(() => fail(new Error('window.result still pending after 15 s')), 15000))]),
  );
  assert.match(result.extensions, /permessage-deflate/);
  assert.deepEqual(result.ok, [true, true, true, true, true]);
  assert.equal(result.published, 'from the server');
  assert.ok(server.stats().compressions > 0, 'the server compressed');
});
