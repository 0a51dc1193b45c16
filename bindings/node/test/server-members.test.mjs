// Bun's Server members and options, as Bun 1.4.5 behaves (each checked on
// Bun first; the return values and member list are also checked against
// real Bun every run by bun-fidelity.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import { client, until } from '../testing/client.mjs';
import { serve } from 'volley';

function start(t, options) {
  const server = serve({ port: 0, hostname: '127.0.0.1', ...options });
  t.after(() => server.stop(true));
  return server;
}

const upgrade = (req, server) => (server.upgrade(req) ? undefined : new Response('no\n', { status: 400 }));

test('reload swaps the handlers and returns the server; fetch runs a request through them', async (t) => {
  // Bun: s.fetch('http://x/abc') gives the handler's Response; reload()
  // returns s, and both real requests and s.fetch see the new handler; a
  // handler that gives nothing makes s.fetch reject.
  const server = start(t, { id: 'my-id', fetch: (req) => new Response(`one ${new URL(req.url).pathname}`) });
  assert.equal(server.id, 'my-id');
  assert.equal(await (await server.fetch('http://x/abc')).text(), 'one /abc');
  assert.equal(await (await server.fetch(new Request('http://x/req'))).text(), 'one /req');
  assert.equal(server.reload({ fetch: () => new Response('two') }), server);
  assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/`)).text(), 'two');
  assert.equal(await (await server.fetch('http://x/')).text(), 'two');
  server.reload({ fetch: () => undefined });
  await assert.rejects(server.fetch('http://x/'), /fetch\(\) returned an empty value/);
  // The WebSocket handlers too.
  server.reload({ fetch: upgrade, websocket: { message: (ws, m) => ws.send(`new ${m}`) } });
  const c = await client(`ws://127.0.0.1:${server.port}/`);
  c.send('hi');
  assert.equal(await c.next(), 'new hi');
  c.close();
});

test('id, protocol, development, pendingRequests; unref lets the process exit', async (t) => {
  const server = start(t, { fetch: () => new Promise((r) => setTimeout(() => r(new Response('late')), 200)) });
  assert.equal(server.id, '');
  assert.equal(server.protocol, 'http');
  assert.equal(server.development, process.env.NODE_ENV !== 'production');
  assert.equal(start(t, { fetch: upgrade, development: false }).development, false);
  assert.equal(server.pendingRequests, 0);
  const late = fetch(`http://127.0.0.1:${server.port}/`);
  await until(() => server.pendingRequests === 1, 'a pending request');
  assert.equal(await (await late).text(), 'late');
  assert.equal(server.pendingRequests, 0);
  // Bun: development is false under NODE_ENV=production (checked on
  // Bun 1.4.5); and an unref'd server does not keep the process alive.
  const script = `
    const { serve } = require(${JSON.stringify(join(process.cwd(), 'lib', 'volley.cjs'))});
    const s = serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') });
    console.log(s.development);
    s.unref();`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, NODE_ENV: 'production' }, timeout: 20_000 });
  assert.equal(out.toString().trim(), 'false');
});

test('timeout(req, s) closes the connection of a request left unanswered', async (t) => {
  const server = start(t, {
    fetch(req, server) {
      server.timeout(req, 0.2);
      return new Promise(() => {}); // never answers
    },
  });
  const t0 = Date.now();
  await assert.rejects(fetch(`http://127.0.0.1:${server.port}/`));
  const took = Date.now() - t0;
  assert.ok(took >= 150 && took < 5000, `closed after ${took} ms`);
  assert.equal(server.pendingRequests, 0);
});

test('Symbol.dispose stops the server (Bun has dispose, not asyncDispose)', async () => {
  // What `using server = serve(...)` calls at the end of its block (Node 20
  // has no `using` syntax yet).
  const server = serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') });
  const port = server.port;
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'x');
  assert.equal(typeof server[Symbol.asyncDispose], 'undefined');
  server[Symbol.dispose]();
  await until(async () => {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return false;
    } catch {
      return true;
    }
  }, 'the disposed server to stop listening');
});

test('options Volley cannot honour are refused by name; idleTimeout as Bun bounds it', () => {
  // unix is supported (test/unix.test.mjs); a port beside it is refused.
  assert.throws(() => serve({ port: 0, unix: '/tmp/volley.sock', fetch: upgrade }), /port does not apply with unix/);
  assert.throws(() => serve({ port: 0, hostname: '::', ipv6Only: true, fetch: upgrade }), /ipv6Only/);
  // Bun: "Bun.serve expects idleTimeout to be 255 or less" (TypeError).
  assert.throws(() => serve({ port: 0, idleTimeout: 300, fetch: upgrade }), TypeError);
  assert.throws(() => serve({ port: 0, idleTimeout: -1, fetch: upgrade }), TypeError);
  const s = serve({ port: 0, hostname: '::1', ipv6Only: true, idleTimeout: 0, fetch: upgrade });
  s.stop(true);
});

test('idleTimeout closes a connection that sends no request for that long', async (t) => {
  const net = await import('node:net');
  const server = start(t, { idleTimeout: 1, fetch: () => new Response('x') });
  const sock = net.connect(server.port, '127.0.0.1');
  const t0 = Date.now();
  await new Promise((r) => sock.on('close', r).on('error', r));
  const took = Date.now() - t0;
  assert.ok(took >= 800 && took < 5000, `closed after ${took} ms`);
});

test('ws.pause() and resume(): no messages while paused, then all of them', async (t) => {
  const got = [];
  let sock;
  const server = start(t, {
    fetch: upgrade,
    websocket: {
      open(ws) {
        sock = ws;
        ws.pause();
      },
      message(ws, m) {
        got.push(m);
      },
    },
  });
  const c = await client(`ws://127.0.0.1:${server.port}/`);
  await until(() => sock?.isPaused, 'paused');
  c.send('a');
  c.send('b');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(got, []);
  sock.resume();
  assert.equal(sock.isPaused, false);
  await until(() => got.length === 2, 'both messages');
  assert.deepEqual(got, ['a', 'b']);
  c.close();
});

test('tls: strings and bytes are the PEM itself, a file object names a file (as on Bun)', async (t) => {
  let dir;
  try {
    dir = mkdtempSync(join(tmpdir(), 'volley-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  } catch {
    t.skip('openssl is not installed (this test makes its certificate with it)');
    return;
  }
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const key = readFileSync(join(dir, 'key.pem'));
  const get = (port) => new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/', ca: cert, servername: 'localhost', checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  for (const tls of [{ cert, key: key.toString() }, { cert: Buffer.from(cert), key }, { cert: { path: join(dir, 'cert.pem') }, key: { name: join(dir, 'key.pem') } }]) {
    const server = start(t, { tls, fetch: () => new Response('secure') });
    assert.equal(server.protocol, 'https');
    assert.equal(await get(server.port), 'secure');
  }
  // A path given as a string is PEM text to Bun, so it is refused, never read.
  assert.throws(() => serve({ port: 0, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, fetch: upgrade }));
});

test('closeIdleConnections closes keep-alive connections between requests, as Bun\'s does', async (t) => {
  // Bun 1.4.5: three answered keep-alive connections and one mid-request:
  // it returned 3 and closed those three.
  const net = await import('node:net');
  const server = start(t, { fetch: () => new Response('x') });
  const conns = [];
  for (let i = 0; i < 3; i++) {
    const c = net.connect(server.port, '127.0.0.1');
    await once(c, 'connect');
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(c, 'data');
    conns.push(c);
  }
  const partial = net.connect(server.port, '127.0.0.1');
  await once(partial, 'connect');
  partial.write('GET / HTTP/1.1\r\nHost: x\r\n');
  await new Promise((r) => setTimeout(r, 200));
  const closed = conns.map((c) => once(c, 'close'));
  assert.equal(server.closeIdleConnections(), 3);
  await Promise.all(closed);
  partial.write('\r\n');
  const [answer] = await once(partial, 'data');
  assert.match(answer.toString(), /^HTTP\/1.1 200 /);
  partial.destroy();
});
