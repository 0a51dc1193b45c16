// harpia's documented WebSocket features on Volley, driven by `ws` clients
// and one Chromium page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { client, until } from '../../testing/client.mjs';
import { haveChromium, pageResult } from '../browser.mjs';
import { createApp, log } from './app.mjs';

function start(t, options = {}) {
  const app = createApp();
  app.listen({ port: 0, ...options });
  t.after(() => app.stop(true));
  return app;
}


test('/chat: welcome, typed data, a throwing handler goes to error(ws, error), close is seen', async (t) => {
  const app = start(t);
  const ws = await client(`ws://127.0.0.1:${app.port}/chat?name=ann`);
  assert.equal(await ws.next(), 'Welcome to the chat!');
  ws.send('hello');
  ws.send('throw');
  assert.equal(await ws.next(), 'error: the handler failed');
  ws.send('still here');
  await until(() => log.includes('Message from ann: still here'), 'the second message');
  assert.ok(log.includes('Message from ann: hello'));
  assert.ok(log.includes('WebSocket error: the handler failed'));
  const [conn] = app.websocket.connections;
  assert.equal(conn.data.userId, '123');
  assert.equal(conn.data.username, 'ann');
  assert.match(conn.data.sessionId, /^[0-9a-f-]{36}$/);
  ws.close(1000);
  await until(() => log.includes('ann disconnected'), 'the close handler');
  assert.equal(app.websocket.connections.size, 0);
});

test('/game: data assigned in open, kept per connection', async (t) => {
  const app = start(t);
  const a = await client(`ws://127.0.0.1:${app.port}/game?game=g1`);
  const b = await client(`ws://127.0.0.1:${app.port}/game?game=g1`);
  const da = JSON.parse(await a.next());
  const db = JSON.parse(await b.next());
  assert.equal(da.gameId, 'g1');
  assert.notEqual(da.playerId, db.playerId);
  a.send('5');
  a.send('7');
  assert.deepEqual(JSON.parse(await a.next()), { score: 5 });
  assert.deepEqual(JSON.parse(await a.next()), { score: 12 });
  b.send('1');
  assert.deepEqual(JSON.parse(await b.next()), { score: 1 });
});

test('/notifications: a broadcast reaches every open connection', async (t) => {
  const app = start(t);
  const clients = await Promise.all([1, 2, 3].map(() => client(`ws://127.0.0.1:${app.port}/notifications`)));
  const chat = await client(`ws://127.0.0.1:${app.port}/chat`);
  assert.equal(await chat.next(), 'Welcome to the chat!');
  clients[0].send('deploy at 5');
  for (const c of [...clients, chat]) assert.equal(await c.next(), 'deploy at 5');
});

test('/room/:roomId: the room comes from ws.data.url; publishes stay in the room', async (t) => {
  const app = start(t);
  const a = await client(`ws://127.0.0.1:${app.port}/room/r1`);
  const b = await client(`ws://127.0.0.1:${app.port}/room/r1`);
  const other = await client(`ws://127.0.0.1:${app.port}/room/r2`);
  a.send('in r1');
  assert.equal(await b.next(), 'in r1');
  other.send('in r2');
  a.send('again');
  assert.equal(await b.next(), 'again');
  assert.ok((await a.quiet(200)) && (await other.quiet(0)), 'nothing reaches the sender or another room');
  assert.deepEqual([...app.websocket.connections].map((c) => c.data.roomId).sort(), ['r1', 'r1', 'r2']);
});

test('/secure: a bad or missing token closes with 1008 "Invalid token"', async (t) => {
  const app = start(t);
  for (const url of ['/secure', '/secure?token=nope']) {
    const ws = await client(`ws://127.0.0.1:${app.port}${url}`);
    assert.deepEqual(await ws.closed, { code: 1008, reason: 'Invalid token' });
  }
  const ok = await client(`ws://127.0.0.1:${app.port}/secure`, { headers: { authorization: 'Bearer let-me-in' } });
  assert.equal(await ok.next(), 'authorized');
  ok.send('x');
  assert.equal(await ok.next(), 'secure: x');
});

test('/reliable: a message it cannot process gets an error, then 1011', async (t) => {
  const app = start(t);
  const ws = await client(`ws://127.0.0.1:${app.port}/reliable`);
  ws.send(JSON.stringify({ n: 21 }));
  assert.equal(await ws.next(), '{"doubled":42}');
  ws.send('not json');
  assert.equal(await ws.next(), 'Error processing message');
  assert.deepEqual(await ws.closed, { code: 1011, reason: 'Processing error' });
});

test('/high-volume: a producer stops at backpressure and drain resumes it; nothing is lost', async (t) => {
  const app = start(t, { websocket: { backpressureLimit: 1 << 20 } });
  const ws = await client(`ws://127.0.0.1:${app.port}/high-volume`);
  const count = 400;
  ws._socket.pause(); // a slow reader: the server's queue fills
  ws.send(`burst ${count} 65536`);
  await new Promise((r) => setTimeout(r, 300));
  ws._socket.resume();
  let bytes = 0;
  for (let i = 0; i < count; i++) bytes += (await ws.next()).length;
  assert.equal(bytes, count * 65536);
  const end = JSON.parse(await ws.next());
  assert.equal(end.done, true);
  assert.ok(end.drains >= 1, `drained ${end.drains} times`);
  assert.ok(log.includes('Client receive buffer full'));
});

test('a message past maxPayloadLength closes with 1009; other paths get 404, plain GET on a ws route 426', async (t) => {
  const app = start(t, { websocket: { maxPayloadLength: 1 << 20 } });
  const ws = await client(`ws://127.0.0.1:${app.port}/chat`);
  assert.equal(await ws.next(), 'Welcome to the chat!');
  ws.send(Buffer.alloc((1 << 20) + 1));
  assert.equal((await ws.closed).code, 1009);
  assert.equal((await fetch(`http://127.0.0.1:${app.port}/nope`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${app.port}/chat`)).status, 426);
});

test('TLS: app.listen({ tls: { key, cert } }) serves wss://', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'harpia-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  // As the seed writes it: Bun.file(path) is a { path } here.
  const app = start(t, { tls: { key: { path: key }, cert: { path: cert } } });
  const ws = await client(`wss://127.0.0.1:${app.port}/chat`, { ca: execFileSync('cat', [cert]) });
  assert.equal(await ws.next(), 'Welcome to the chat!');
});

test('Chromium: the page talks to /chat and a room', { skip: !haveChromium && 'no chromium' }, async (t) => {
  const app = start(t);
  const got = await pageResult(`http://127.0.0.1:${app.port}/`);
  assert.deepEqual(got, ['Welcome to the chat!', 'hi from a']);
});
