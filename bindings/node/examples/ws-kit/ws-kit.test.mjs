// The seed's ws-kit recipe on Volley: envelopes and their errors, RPC with
// correlation ids, deadlines and cancellation, pub/sub in memory and
// across processes through the Redis bridge, auth at the upgrade.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { client } from '../../testing/client.mjs';
import { haveRedis, startRedis } from '../../testing/redis.mjs';
import { haveChromium, pageResult } from '../browser.mjs';
import { start } from './app.mjs';

function boot(t, options = {}) {
  const server = start({ port: 0, ...options });
  t.after(() => server.stop(true));
  return server;
}

/** A ws client that parses envelopes. */
async function kit(port, token = 't1') {
  const ws = await client(`ws://127.0.0.1:${port}/ws?token=${token}`);
  const next = ws.next;
  ws.next = async () => JSON.parse(await next());
  ws.msg = (type, payload = {}, meta = {}) => ws.send(JSON.stringify({ type, meta, payload }));
  return ws;
}

test('PING → PONG and ECHO, in { type, meta, payload } envelopes', async (t) => {
  const server = boot(t);
  const ws = await kit(server.port);
  ws.msg('PING');
  const pong = await ws.next();
  assert.equal(pong.type, 'PONG');
  assert.deepEqual(pong.payload, {});
  assert.equal(typeof pong.meta.timestamp, 'number');
  ws.msg('ECHO', { text: 'Hello' });
  assert.deepEqual((await ws.next()).payload, { text: 'Hello' });
});

test('invalid envelopes and payloads get ERROR with a code; the connection stays open', async (t) => {
  const server = boot(t);
  const ws = await kit(server.port);
  const expectError = async (code, what) => {
    const m = await ws.next();
    assert.equal(m.type, 'ERROR', what);
    assert.equal(m.payload.code, code, what);
    return m;
  };
  ws.send('not json');
  await expectError('INVALID_ARGUMENT', 'not JSON');
  ws.send(JSON.stringify({ meta: {}, payload: {} }));
  await expectError('INVALID_ARGUMENT', 'no type');
  ws.send(JSON.stringify({ type: 'ECHO', meta: {}, payload: ['x'] }));
  await expectError('INVALID_ARGUMENT', 'payload not an object');
  ws.msg('NOPE');
  await expectError('UNIMPLEMENTED', 'unknown type');
  ws.msg('CHAT_MESSAGE', { channelId: 'general', text: '', sentAt: 1 });
  const m = await expectError('INVALID_ARGUMENT', 'schema');
  assert.deepEqual(m.payload.details.issues, [{ path: 'text', message: 'String must contain at least 1 character(s)' }]);
  ws.msg('ECHO', { text: 'x', extra: true });
  assert.match((await expectError('INVALID_ARGUMENT', 'strict object')).payload.details.issues[0].message, /Unrecognized key/);
  ws.msg('ERROR', { code: 'INTERNAL' }); // clients may not send ERROR: ignored
  ws.msg('PING');
  assert.equal((await ws.next()).type, 'PONG');
});

test('pub/sub through the memory adapter: a channel reaches its subscribers only', async (t) => {
  const server = boot(t);
  const [a, b, c] = await Promise.all([kit(server.port), kit(server.port), kit(server.port)]);
  for (const [ws, ch] of [[a, 'general'], [b, 'general'], [c, 'random']]) {
    ws.msg('JOIN_CHANNEL', { channelId: ch });
    assert.equal((await ws.next()).type, 'JOINED');
  }
  a.msg('CHAT_MESSAGE', { channelId: 'general', text: 'Hello!', sentAt: 123 });
  for (const ws of [a, b]) assert.deepEqual((await ws.next()).payload, { channelId: 'general', text: 'Hello!', sentAt: 123 });
  assert.ok(await c.quiet(150), 'another channel hears nothing');
});

test('RPC: replies carry the correlation id; defaults apply; bad requests get RPC_ERROR', async (t) => {
  const server = boot(t);
  const ws = await kit(server.port);
  ws.msg('JOIN_CHANNEL', { channelId: 'c' });
  await ws.next();
  for (let i = 0; i < 60; i++) ws.msg('CHAT_MESSAGE', { channelId: 'c', text: `m${i}`, sentAt: i });
  for (let i = 0; i < 60; i++) await ws.next();
  ws.msg('GET_MESSAGES', { channelId: 'c' }, { correlationId: 'req-1' });
  const r = await ws.next();
  assert.equal(r.type, 'MESSAGES');
  assert.equal(r.meta.correlationId, 'req-1');
  assert.equal(r.payload.messages.length, 50, 'limit defaults to 50');
  assert.equal(r.payload.messages.at(-1).text, 'm59');
  ws.msg('GET_MESSAGES', { channelId: 'c', limit: 'ten' }, { correlationId: 'req-2' });
  const bad = await ws.next();
  assert.equal(bad.type, 'RPC_ERROR');
  assert.equal(bad.meta.correlationId, 'req-2');
  assert.equal(bad.payload.code, 'INVALID_ARGUMENT');
  ws.msg('GET_MESSAGES', { channelId: 'c' });
  const noId = await ws.next();
  assert.equal(noId.type, 'ERROR');
  assert.equal(noId.payload.code, 'INVALID_ARGUMENT');
});

test('RPC deadlines and cancellation: DEADLINE_EXCEEDED, CANCELLED, no late reply, replies matched by id', async (t) => {
  const server = boot(t);
  const ws = await kit(server.port);
  ws.msg('SLOW_QUERY', { ms: 400 }, { correlationId: 'late', timeoutMs: 50 });
  const e = await ws.next();
  assert.deepEqual([e.type, e.meta.correlationId, e.payload.code], ['RPC_ERROR', 'late', 'DEADLINE_EXCEEDED']);
  ws.msg('SLOW_QUERY', { ms: 5000 }, { correlationId: 'stop-me' });
  ws.msg('$ws:abort', {}, { correlationId: 'stop-me' });
  const c = await ws.next();
  assert.deepEqual([c.type, c.meta.correlationId, c.payload.code], ['RPC_ERROR', 'stop-me', 'CANCELLED']);
  // Two in flight: answered in completion order, each with its own id.
  ws.msg('SLOW_QUERY', { ms: 120 }, { correlationId: 'slow' });
  ws.msg('SLOW_QUERY', { ms: 10 }, { correlationId: 'fast' });
  assert.equal((await ws.next()).meta.correlationId, 'fast');
  assert.equal((await ws.next()).meta.correlationId, 'slow');
  assert.ok(await ws.quiet(450), 'the timed-out request never replies');
});

test('auth at the upgrade: no token or a revoked one → 401', async (t) => {
  const server = boot(t);
  for (const q of ['', '?token=revoked']) {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws${q}`);
    const [, res] = await once(ws, 'unexpected-response');
    assert.equal(res.statusCode, 401);
  }
  assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/other`)).text(), 'WebSocket server');
});

test('a message past maxPayloadLength closes with 1009', async (t) => {
  const server = boot(t, { maxPayloadLength: 1024 });
  const ws = await kit(server.port);
  ws.msg('ECHO', { text: 'x'.repeat(2048) });
  assert.equal((await ws.closed).code, 1009);
});

test('pub/sub across processes through the Redis adapter (the engine\'s bridge)', { skip: !haveRedis && 'no redis-server' }, async (t) => {
  const redis = await startRedis(t);
  const app = fileURLToPath(new URL('./app.mjs', import.meta.url));
  const ports = [];
  for (let i = 0; i < 2; i++) {
    const p = spawn(process.execPath, [app, '0'], { env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${redis.port}/wskit` }, stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => p.kill());
    const [line] = await once(p.stdout, 'data');
    ports.push(Number(/127\.0\.0\.1:(\d+)/.exec(line.toString())[1]));
  }
  const a = await kit(ports[0]);
  const b = await kit(ports[1]);
  for (const ws of [a, b]) {
    ws.msg('JOIN_CHANNEL', { channelId: 'general' });
    await ws.next();
  }
  await redis.subscribers('wskit:channel:general', 2);
  a.msg('CHAT_MESSAGE', { channelId: 'general', text: 'across', sentAt: 1 });
  assert.equal((await b.next()).payload.text, 'across');
  assert.equal((await a.next()).payload.text, 'across');
  assert.ok(await a.quiet(200), 'the publisher\'s process delivers once');
});

test('Chromium: PING, JOIN, CHAT and an RPC from a page', { skip: !haveChromium && 'no chromium' }, async (t) => {
  const server = boot(t);
  const got = await pageResult(`http://127.0.0.1:${server.port}/`);
  assert.deepEqual(got, {
    pong: 'PONG',
    joined: 'general',
    chat: 'Hello!',
    rpc: { type: 'MESSAGES', correlationId: 'c1', texts: ['Hello!'] },
  });
});
