// Brisa's documented WebSocket features on Volley, driven by `ws` clients,
// fetch() and one Chromium page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client } from '../../testing/client.mjs';
import { haveChromium, pageResult } from '../browser.mjs';
import { start } from './app.mjs';
import { history } from './src/websocket.mjs';

function boot(t, options = {}) {
  const server = start({ port: 0, ...options });
  t.after(() => server.stop(true));
  return server;
}

test('attach(request) fills ws.data; group chat over pub/sub: enter, talk, leave', async (t) => {
  const server = boot(t);
  const a = await client(`ws://127.0.0.1:${server.port}/?username=ann&channelId=c1`, { headers: { cookie: 'X-Token=tok-1' } });
  const b = await client(`ws://127.0.0.1:${server.port}/?username=bob`);
  assert.equal(await a.next(), 'bob has entered the chat');
  b.send('hello');
  assert.equal(await a.next(), 'bob: hello');
  a.send('hi bob');
  assert.equal(await b.next(), 'ann: hi bob');
  // The sender does not get its own publish.
  assert.ok(await a.quiet(150), 'nothing arrives');
  // ws.publish from the close handler still reaches the others.
  b.close();
  assert.equal(await a.next(), 'bob has left the chat');
  assert.equal(server.subscriberCount('the-group-chat'), 1);
});

test('server.publish from outside a handler (an API route) reaches every subscriber', async (t) => {
  const server = boot(t);
  const a = await client(`ws://127.0.0.1:${server.port}/?username=ann`);
  const b = await client(`ws://127.0.0.1:${server.port}/?username=bob`);
  assert.equal(await a.next(), 'bob has entered the chat');
  const res = await fetch(`http://127.0.0.1:${server.port}/api/announce`, { method: 'POST', body: 'maintenance at 5' });
  assert.equal(res.status, 204);
  assert.equal(await a.next(), 'announcement: maintenance at 5');
  assert.equal(await b.next(), 'announcement: maintenance at 5');
});

test('an API route sends on the caller\'s own WebSocket (RequestContext.ws) with i18n', async (t) => {
  const server = boot(t);
  const cookies = [];
  const ws = await client(`ws://127.0.0.1:${server.port}/?username=ann`);
  const other = await client(`ws://127.0.0.1:${server.port}/?username=bob`);
  assert.equal(await ws.next(), 'bob has entered the chat');
  // The 101 set the brisa-ws cookie; a browser sends it back with fetch().
  cookies.push(...(ws.upgradeHeaders['set-cookie'] ?? []));
  assert.equal(cookies.length, 1, 'the 101 sets one cookie');
  const cookie = cookies[0].split(';')[0];
  const res = await fetch(`http://127.0.0.1:${server.port}/api/hello-world`, { headers: { cookie, 'accept-language': 'es' } });
  assert.equal(await res.text(), '¡Hola mundo!');
  assert.equal(await ws.next(), '¡Hola mundo!');
  assert.ok(await other.quiet(150), 'nothing arrives');
  // Without a socket the route still answers.
  const anon = await fetch(`http://127.0.0.1:${server.port}/api/hello-world`);
  assert.equal(await anon.text(), 'Hello world!');
});

test('the compression flag compresses that message only', async (t) => {
  const server = boot(t);
  const a = await client(`ws://127.0.0.1:${server.port}/?username=ann`, { perMessageDeflate: true });
  const b = await client(`ws://127.0.0.1:${server.port}/?username=bob`, { perMessageDeflate: true });
  assert.equal(await a.next(), 'bob has entered the chat');
  assert.match(a.extensions, /permessage-deflate/);
  const before = server.stats().compressions;
  b.send('plain');
  assert.equal(await a.next(), 'bob: plain');
  assert.equal(server.stats().compressions, before, 'a short message without the flag is sent as is');
  b.send('/zip squeezed');
  assert.equal(await a.next(), 'bob: squeezed');
  assert.equal(await b.next(), 'sent compressed: squeezed');
  assert.ok(server.stats().compressions >= before + 2, 'ws.publish(…, true) and ws.send(…, true) compressed');
});

test('send return codes acted upon: -1 waits for drain, 0 is kept and retried, nothing is lost', async (t) => {
  history.length = 0;
  const server = boot(t, { backpressureLimit: 256 * 1024 });
  const talker = await client(`ws://127.0.0.1:${server.port}/?username=talker`);
  const reader = await client(`ws://127.0.0.1:${server.port}/?username=reader`);
  assert.equal(await talker.next(), 'reader has entered the chat');
  const line = 'x'.repeat(4000);
  for (let i = 0; i < 50; i++) talker.send(`${i} ${line}`);
  for (let i = 0; i < 50; i++) await reader.next();
  // 50 × 200 = 10,000 history lines (40 MB, more than loopback's socket
  // buffers hold) to a reader that does not read for a while.
  reader._socket.pause();
  reader.send('/history 200');
  await new Promise((r) => setTimeout(r, 300));
  reader._socket.resume();
  let n = 0;
  for (;;) {
    const m = await reader.next();
    if (m.startsWith('{')) {
      assert.deepEqual(JSON.parse(m), { end: true });
      break;
    }
    assert.equal(m, `talker: ${n % 50} ${line}`);
    n++;
  }
  assert.equal(n, 10000);
  reader.send('/stats');
  const stats = JSON.parse(await reader.next());
  // The reader stalled: sends said -1 (or 0, kept and retried), drain resumed them.
  assert.ok(stats.backpressured + stats.dropped >= 1 && stats.drains >= 1, JSON.stringify(stats));
  assert.equal(stats.sent + stats.backpressured, 10001, JSON.stringify(stats));
});

test('a message past maxPayloadLength closes with 1009', async (t) => {
  const server = boot(t, { maxPayloadLength: 1024 });
  const ws = await client(`ws://127.0.0.1:${server.port}/?username=big`);
  ws.send('y'.repeat(1025));
  assert.equal((await ws.closed).code, 1009);
});

test('Chromium: the page chats and its fetch() reaches its own socket', { skip: !haveChromium && 'no chromium' }, async (t) => {
  const server = boot(t);
  const got = await pageResult(`http://127.0.0.1:${server.port}/`);
  assert.deepEqual(got, {
    joined: 'bob has entered the chat',
    chat: 'bob: hi all',
    api: 'Hello world!',
    viaSocket: 'Hello world!',
    extensions: got.extensions,
  });
  assert.match(got.extensions, /^permessage-deflate/);
});
