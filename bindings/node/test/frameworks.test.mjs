// Bun-first frameworks on Node, unchanged but for `import 'volley/bun'`
// first: the real npm packages (versions pinned in package.json), driven
// by the `ws` client. Each behaviour below was first run on real Bun 1.4.5
// with the same code (the shim leaves a real Bun alone).
import 'volley/bun';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, cpSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { client } from '../testing/client.mjs';

const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

test('the shim: opt-in Bun.serve, env, version, gc; CloseEvent; never process.versions.bun', () => {
  assert.equal(typeof Bun.serve, 'function');
  assert.equal(Bun.env, process.env);
  assert.equal(Bun.version, '1.4.5');
  Bun.gc(true);
  assert.equal(process.versions.bun, undefined);
  const e = new CloseEvent('close', { code: 4000, reason: 'r', wasClean: true });
  assert.deepEqual([e.type, e.code, e.reason, e.wasClean], ['close', 4000, 'r', true]);
});

test('Elysia: .ws() echoes text and binary and stays up (it calls server.reload after listen)', async () => {
  const { Elysia } = await import('elysia');
  const app = new Elysia().ws('/ws', {
    message(ws, m) {
      ws.send(m);
    },
  }).listen(0);
  try {
    const port = app.server.port;
    const c = await client(`ws://127.0.0.1:${port}/ws`);
    c.send('hello');
    assert.equal(await c.next(), 'hello');
    c.send(Buffer.from([1, 2, 3, 250]));
    assert.deepEqual(await c.next(), Buffer.from([1, 2, 3, 250]));
    c.close();
    await new Promise((r) => setTimeout(r, 200));
    const d = await client(`ws://127.0.0.1:${port}/ws`);
    d.send('still up');
    assert.equal(await d.next(), 'still up');
    d.close();
    assert.deepEqual(unhandled, []);
  } finally {
    await app.stop();
  }
});

test('hono: createBunWebSocket with upgradeWebSocket: open, exact echo, close event, getConnInfo', async () => {
  const { Hono } = await import('hono');
  const { createBunWebSocket, getConnInfo } = await import('hono/bun');
  const { upgradeWebSocket, websocket } = createBunWebSocket();
  const events = [];
  const app = new Hono();
  app.get('/info', (c) => c.json(getConnInfo(c)));
  app.get('/ws', upgradeWebSocket(() => ({
    onOpen() {
      events.push('open');
    },
    onMessage(evt, ws) {
      events.push(typeof evt.data === 'string' ? evt.data : `bytes ${evt.data.byteLength}`);
      ws.send(evt.data);
    },
    onClose(evt) {
      events.push(`close ${evt.code} ${evt.reason}`);
    },
  })));
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: app.fetch, websocket });
  try {
    const info = await (await fetch(`http://127.0.0.1:${server.port}/info`)).json();
    assert.equal(info.remote.address, '127.0.0.1');
    assert.equal(info.remote.addressType, 'IPv4');
    assert.ok(info.remote.port > 0);
    const c = await client(`ws://127.0.0.1:${server.port}/ws`);
    c.send('hello');
    assert.equal(await c.next(), 'hello');
    // Different bytes from two clients, interleaved: hono passes
    // message.buffer on, so each echo is exactly its own message.
    const d = await client(`ws://127.0.0.1:${server.port}/ws`);
    c.send(Buffer.from('secret-of-c'));
    d.send(Buffer.from([9]));
    assert.deepEqual(await c.next(), Buffer.from('secret-of-c'));
    assert.deepEqual(await d.next(), Buffer.from([9]));
    c.close(4000, 'bye');
    d.close();
    await c.closed;
    for (let i = 0; i < 100 && !events.includes('close 4000 bye'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(events.includes('open'));
    assert.ok(events.includes('close 4000 bye'), events.join(', '));
    assert.ok(events.includes('bytes 11') && events.includes('bytes 1'));
  } finally {
    await server.stop(true);
  }
});

async function wsKitChecks(port, errors) {
  const url = `ws://127.0.0.1:${port}/`;
  const a = await client(url);
  const b = await client(url);
  const send = (c, type, payload, meta = {}) => c.send(JSON.stringify({ type, meta, payload }));
  const next = async (c) => JSON.parse(await c.next());
  send(a, 'JOIN', { room: 'r' });
  assert.deepEqual((await next(a)).payload, { text: 'joined r' });
  send(b, 'JOIN', { room: 'r' });
  assert.deepEqual((await next(b)).payload, { text: 'joined r' });
  // A topic: both members get the room's message.
  send(a, 'SAY', { room: 'r', text: 'hello room' });
  assert.deepEqual(await next(a), { type: 'SAID', payload: { text: 'hello room' } });
  assert.deepEqual(await next(b), { type: 'SAID', payload: { text: 'hello room' } });
  // RPC: the reply carries the correlation id.
  send(a, 'GET_USER', { id: '7' }, { correlationId: 'c1' });
  assert.deepEqual(await next(a), { type: 'USER', meta: { correlationId: 'c1' }, payload: { id: '7', name: 'user 7' } });
  // Validation errors reach router.onError (on Bun too), and the
  // connection stays usable.
  send(a, 'SAY', { room: 'r', text: '' });
  send(a, 'GET_USER', { id: 7 }, { correlationId: 'c2' });
  for (let i = 0; i < 200 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(errors, ['VALIDATION_ERROR', 'VALIDATION_ERROR']);
  send(a, 'GET_USER', { id: '8' }, { correlationId: 'c3' });
  assert.equal((await next(a)).meta.correlationId, 'c3');
  a.close();
  b.close();
}

test('ws-kit: createBunHandler with zod messages, an RPC, topics and validation errors', async () => {
  const { start, errors } = await import('../testing/wskit-app.mjs');
  const server = start();
  try {
    await wsKitChecks(server.port, errors);
  } finally {
    await server.stop(true);
  }
});

test('ws-kit: its own serve() runs through the shim', async () => {
  const { serve } = await import('@ws-kit/bun');
  const { createRouter, message, withZod, z } = await import('@ws-kit/zod');
  const Echo = message('ECHO', { text: z.string() });
  const router = createRouter().plugin(withZod()).on(Echo, (ctx) => ctx.send(Echo, { text: ctx.payload.text }));
  // The server it makes, to stop it at the end (serve() keeps it).
  const made = [];
  const orig = Bun.serve;
  Bun.serve = (o) => {
    const srv = orig(o);
    made.push(srv);
    return srv;
  };
  try {
    void serve(router, { port: 0, hostname: '127.0.0.1' });
    for (let i = 0; i < 100 && made.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(made.length, 1, 'ws-kit serve() called Bun.serve once');
    const c = await client(`ws://127.0.0.1:${made[0].port}/`);
    c.send(JSON.stringify({ type: 'ECHO', meta: {}, payload: { text: 'via serve' } }));
    assert.deepEqual(JSON.parse(await c.next()).payload, { text: 'via serve' });
    c.close();
  } finally {
    Bun.serve = orig;
    await Promise.all(made.map((m) => m.stop(true)));
  }
});
