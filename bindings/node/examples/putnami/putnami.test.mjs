// Putnami's documented streaming endpoints on Volley, driven by `ws`,
// `eventsource`, fetch() and one Chromium page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { client } from '../../testing/client.mjs';
import { haveChromium, pageResult } from '../browser.mjs';
import { start } from './app.mjs';

function boot(t) {
  const server = start({ port: 0 });
  t.after(() => server.stop(true));
  return server;
}

test('server-stream over WebSocket: the welcome, then the close when the handler returns', async (t) => {
  const server = boot(t);
  const ws = await client(`ws://127.0.0.1:${server.port}/api/events`);
  assert.deepEqual(JSON.parse(await ws.next()), { event: 'welcome', payload: 'hello' });
  assert.equal((await ws.closed).code, 1000);
});

test('server-stream over SSE on the same path (Accept: text/event-stream), events as they come', async (t) => {
  const server = boot(t);
  const source = new EventSource(`http://127.0.0.1:${server.port}/api/events`);
  t.after(() => source.close());
  const [e] = await once(source, 'message');
  assert.deepEqual(JSON.parse(e.data), { event: 'welcome', payload: 'hello' });
  // Ticks arrive one by one while the handler runs, and the stream ends with it.
  const res = await fetch(`http://127.0.0.1:${server.port}/api/ticks?n=5`, { headers: { accept: 'text/event-stream' } });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const seen = [];
  let text = '';
  for await (const chunk of res.body) {
    text += Buffer.from(chunk).toString();
    seen.push(text.split('\n\n').filter(Boolean).length);
  }
  // The engine opens every stream with a `: volley` comment line.
  const events = text
    .split('\n\n')
    .filter((ev) => ev.startsWith('data: '))
    .map((ev) => JSON.parse(ev.slice(6)));
  assert.deepEqual(events.map((x) => x.payload), ['0', '1', '2', '3', '4']);
  assert.ok(seen.length >= 2, 'more than one chunk: streamed, not buffered');
});

test('client-stream: messages in, one validated result out; a bad message is refused and not counted', async (t) => {
  const server = boot(t);
  const ws = await client(`ws://127.0.0.1:${server.port}/api/upload`);
  ws.send(JSON.stringify({ type: 'chunk', data: 'a' }));
  ws.send(JSON.stringify({ type: 'chunk' }));
  const err = JSON.parse(await ws.next());
  assert.equal(err.error.code, 'INVALID_MESSAGE');
  assert.deepEqual(err.error.issues, [{ path: 'data', message: 'required' }]);
  ws.send('not json');
  assert.equal(JSON.parse(await ws.next()).error.message, 'not JSON');
  ws.send(JSON.stringify({ type: 'chunk', data: 'b', extra: 1 }));
  assert.deepEqual(JSON.parse(await ws.next()).error.issues, [{ path: 'extra', message: 'unexpected field' }]);
  ws.send(JSON.stringify({ type: 'chunk', data: 'c' }));
  ws.send(JSON.stringify({ type: 'end', data: '' }));
  assert.deepEqual(JSON.parse(await ws.next()), { result: 'processed 2 messages' });
  assert.equal((await ws.closed).code, 1000);
});

test('bidirectional with a Uuid path parameter: welcome, echoes, 1011 when the handler throws', async (t) => {
  const server = boot(t);
  const room = randomUUID();
  const ws = await client(`ws://127.0.0.1:${server.port}/api/chat/${room}`);
  assert.deepEqual(JSON.parse(await ws.next()), { event: 'welcome', payload: room });
  ws.send(JSON.stringify({ type: 'say', data: 'one' }));
  ws.send(JSON.stringify({ type: 'say', data: 'two' }));
  assert.deepEqual(JSON.parse(await ws.next()), { event: 'echo', payload: 'one' });
  assert.deepEqual(JSON.parse(await ws.next()), { event: 'echo', payload: 'two' });
  ws.send(JSON.stringify({ type: 'say', data: 42 }));
  assert.deepEqual(JSON.parse(await ws.next()).error.issues, [{ path: 'data', message: 'expected a string' }]);
  ws.send(JSON.stringify({ type: 'crash', data: '' }));
  assert.deepEqual(await ws.closed, { code: 1011, reason: 'internal error' });
});

test('params are validated before the upgrade: 400 with the issue; client-streams refuse SSE with 426', async (t) => {
  const server = boot(t);
  const bad = new WebSocket(`ws://127.0.0.1:${server.port}/api/chat/not-a-uuid`);
  const [, res] = await once(bad, 'unexpected-response');
  assert.equal(res.statusCode, 400);
  let body = '';
  for await (const c of res) body += c;
  assert.deepEqual(JSON.parse(body), { error: { code: 'INVALID_PARAMS', issues: [{ path: 'roomId', message: 'expected a UUID' }] } });
  const sse = await fetch(`http://127.0.0.1:${server.port}/api/upload`, { headers: { accept: 'text/event-stream' } });
  assert.equal(sse.status, 426);
  assert.equal((await fetch(`http://127.0.0.1:${server.port}/api/nope`)).status, 404);
});

test('unary REST: JSON in and out, 400 on a body that fails its schema', async (t) => {
  const server = boot(t);
  const post = (body) => fetch(`http://127.0.0.1:${server.port}/api/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const ok = await post(JSON.stringify({ name: 'ann' }));
  assert.deepEqual(await ok.json(), { greeting: 'hello ann' });
  const bad = await post(JSON.stringify({ name: 1 }));
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, 'INVALID_BODY');
  assert.equal((await post('{')).status, 400);
});

test('a message past the size limit closes with 1009', async (t) => {
  const server = boot(t);
  const ws = await client(`ws://127.0.0.1:${server.port}/api/upload`);
  ws.send(JSON.stringify({ type: 'chunk', data: 'x'.repeat(64 * 1024) }));
  assert.equal((await ws.closed).code, 1009);
});

test('Chromium: bidirectional chat over WebSocket, server-stream over EventSource', { skip: !haveChromium && 'no chromium' }, async (t) => {
  const server = boot(t);
  const got = await pageResult(`http://127.0.0.1:${server.port}/`);
  assert.deepEqual(got, {
    welcome: true,
    echo: { event: 'echo', payload: 'from chromium' },
    invalid: 'INVALID_MESSAGE',
    sse: { event: 'welcome', payload: 'hello' },
  });
});
