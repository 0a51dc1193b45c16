// bunWay's documented WebSocket features on Volley, driven by `ws` clients,
// fetch() and one Chromium page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { client, until } from '../../testing/client.mjs';
import { haveRedis, startRedis } from '../../testing/redis.mjs';
import { haveChromium, pageResult } from '../browser.mjs';
import { createApp, log } from './app.mjs';

function start(t, options = {}, appOptions = {}) {
  const app = createApp(appOptions);
  app.listen(0, options);
  t.after(() => app.stop(true));
  return app;
}


/** Log in as `userId`: the session cookie to send with later requests. */
async function login(app, userId) {
  const res = await fetch(`http://127.0.0.1:${app.port}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  assert.equal(res.status, 200);
  return res.headers.get('set-cookie').split(';')[0];
}

test('Quick Start: /chat welcomes, echoes, and sees the close code and reason', async (t) => {
  const app = start(t);
  const ws = await client(`ws://127.0.0.1:${app.port}/chat`);
  assert.equal(await ws.next(), 'Welcome to the chat!');
  ws.send('hi');
  assert.equal(await ws.next(), 'Echo: hi');
  ws.close(1000, 'Normal closure');
  await until(() => log.includes('Client disconnected: 1000 Normal closure'), 'the close handler');
  assert.ok(log.includes('Received: hi'));
});

test('route parameters reach ws.data.params', async (t) => {
  const app = start(t);
  const ws = await client(`ws://127.0.0.1:${app.port}/room/blue`);
  assert.equal(await ws.next(), 'joined room: blue');
  ws.send('x');
  assert.equal(await ws.next(), 'blue: x');
});

test('middleware before the upgrade: no session → 401 JSON, a session → the socket opens', async (t) => {
  const app = start(t);
  const refused = new WebSocket(`ws://127.0.0.1:${app.port}/protected`);
  const [, res] = await once(refused, 'unexpected-response');
  assert.equal(res.statusCode, 401);
  let body = '';
  for await (const chunk of res) body += chunk;
  assert.deepEqual(JSON.parse(body), { error: 'Unauthorized' });

  const cookie = await login(app, 'u42');
  const ws = await client(`ws://127.0.0.1:${app.port}/protected`, { headers: { cookie } });
  assert.equal(await ws.next(), 'hello u42');
  // A forged cookie is a new, empty session.
  const forged = new WebSocket(`ws://127.0.0.1:${app.port}/protected`, { headers: { cookie: `${cookie}x` } });
  const [, r2] = await once(forged, 'unexpected-response');
  assert.equal(r2.statusCode, 401);
});

test('ws.data.req: the session, request headers and the matched route', async (t) => {
  const app = start(t);
  const cookie = await login(app, 'ann');
  const ws = await client(`ws://127.0.0.1:${app.port}/user`, { headers: { cookie, 'user-agent': 'volley-test/1' } });
  assert.deepEqual(JSON.parse(await ws.next()), { userId: 'ann', userAgent: 'volley-test/1', routePath: '/user' });
});

test('chat rooms: joins and messages go to the others in the room, leaving is announced', async (t) => {
  const app = start(t);
  const a = await client(`ws://127.0.0.1:${app.port}/chat/general`);
  const b = await client(`ws://127.0.0.1:${app.port}/chat/general`);
  assert.equal(await a.next(), 'User joined');
  const elsewhere = await client(`ws://127.0.0.1:${app.port}/chat/random`);
  b.send('Hello!');
  assert.equal(await a.next(), 'Hello!');
  b.close();
  assert.equal(await a.next(), 'User left');
  assert.ok(await elsewhere.quiet(200), 'nothing arrives');
});

test('notifications: an HTTP route notifies one user over their WebSocket', async (t) => {
  const app = start(t);
  const cookie = await login(app, 'buyer');
  const other = await login(app, 'someone-else');
  const mine = await client(`ws://127.0.0.1:${app.port}/notifications`, { headers: { cookie } });
  const theirs = await client(`ws://127.0.0.1:${app.port}/notifications`, { headers: { cookie: other } });
  const res = await fetch(`http://127.0.0.1:${app.port}/api/order`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'book' }),
  });
  const order = await res.json();
  assert.equal(order.item, 'book');
  assert.deepEqual(JSON.parse(await mine.next()), { type: 'order_created', orderId: order.id });
  assert.ok(await theirs.quiet(200), 'nothing arrives');
  // Without a session the HTTP route answers 401 too.
  const anon = await fetch(`http://127.0.0.1:${app.port}/api/order`, { method: 'POST', body: '{}' });
  assert.equal(anon.status, 401);
});

test('heartbeat: pings on an interval, pongs are taken, the interval stops with the socket', async (t) => {
  const app = start(t, {}, { heartbeatMs: 40 });
  const ws = await client(`ws://127.0.0.1:${app.port}/stream`);
  assert.deepEqual(JSON.parse(await ws.next()), { type: 'ping' });
  assert.deepEqual(JSON.parse(await ws.next()), { type: 'ping' });
  ws.send(JSON.stringify({ type: 'pong' }));
  ws.send(JSON.stringify({ type: 'other' }));
  let m;
  do m = JSON.parse(await ws.next());
  while (m.type === 'ping');
  assert.deepEqual(m, { type: 'ack', bufferedAmount: 0 });
  assert.ok(log.includes('pong'));
  ws.close();
  await until(() => log.includes('heartbeat stopped'), 'the interval to stop');
});

test('printRoutes lists HTTP and WS routes', async (t) => {
  const app = start(t);
  const text = app.printRoutes();
  assert.match(text, /^GET {5}\/$/m);
  assert.match(text, /^POST {4}\/api\/order$/m);
  assert.match(text, /^WS {6}\/chat$/m);
  assert.match(text, /^WS {6}\/chat\/:room$/m);
});

test('a message past maxPayloadLength closes with 1009', async (t) => {
  const app = start(t, { websocket: { maxPayloadLength: 64 * 1024 } });
  const ws = await client(`ws://127.0.0.1:${app.port}/chat`);
  assert.equal(await ws.next(), 'Welcome to the chat!');
  ws.send('x'.repeat(64 * 1024 + 1));
  assert.equal((await ws.closed).code, 1009);
});

test('scale-out: rooms on two processes bridged through Redis', { skip: !haveRedis && 'no redis-server' }, async (t) => {
  const redis = await startRedis(t);
  const app = fileURLToPath(new URL('./app.mjs', import.meta.url));
  const ports = [];
  for (let i = 0; i < 2; i++) {
    const p = spawn(process.execPath, [app, '0'], { env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${redis.port}/bunway` }, stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => p.kill());
    for (;;) {
      const [chunk] = await once(p.stdout, 'data');
      const m = /on http:\/\/127\.0\.0\.1:(\d+)/.exec(chunk.toString());
      if (m) {
        ports.push(Number(m[1]));
        break;
      }
    }
  }
  const a = await client(`ws://127.0.0.1:${ports[0]}/scaled/lobby`);
  await redis.subscribers('bunway:room:lobby', 1);
  const b = await client(`ws://127.0.0.1:${ports[1]}/scaled/lobby`);
  assert.equal(await a.next(), 'User joined');
  await redis.subscribers('bunway:room:lobby', 2);
  a.send('from process one');
  assert.equal(await b.next(), 'from process one');
  b.send('from process two');
  assert.equal(await a.next(), 'from process two');
});

test('Chromium: log in, chat in a room, get notified of an order', { skip: !haveChromium && 'no chromium' }, async (t) => {
  const app = start(t);
  const got = await pageResult(`http://127.0.0.1:${app.port}/`);
  assert.equal(got.joined, 'User joined');
  assert.equal(got.chat, 'Hello!');
  assert.deepEqual(got.note, { type: 'order_created', orderId: got.order.id });
});
