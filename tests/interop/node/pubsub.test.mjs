// Pub/sub and Server-Sent Events against `volley serve`, with clients nobody
// here wrote: Node `ws` for /sub, /pub and /chat/:room, the `eventsource`
// package for /events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = process.env.VOLLEY_BIN ?? path.join(root, 'target/release/volley');
let server;
let host;

before(async () => {
  server = spawn(bin, ['serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(server.stdout, 'data');
  host = /http:\/\/([^/]+)\//.exec(line.toString())[1];
});

after(() => server.kill());

async function open(p) {
  const ws = new WebSocket(`ws://${host}${p}`);
  await once(ws, 'open');
  return ws;
}

function collect(ws, n) {
  return new Promise((resolve) => {
    const got = [];
    ws.on('message', (d) => {
      got.push(d.toString());
      if (got.length === n) resolve(got);
    });
  });
}

test('a /pub message reaches every /sub subscriber in order', async () => {
  const subs = await Promise.all([open('/sub'), open('/sub'), open('/sub')]);
  const got = subs.map((s) => collect(s, 100));
  const pub = await open('/pub');
  for (let i = 0; i < 100; i++) pub.send(`m${i}`);
  for (const g of got) {
    assert.deepEqual(await g, Array.from({ length: 100 }, (_, i) => `m${i}`));
  }
  for (const s of [...subs, pub]) s.close();
});

test('chat rooms are separate and the sender is excluded', async () => {
  const [a, b, other, other2] = await Promise.all([
    open('/chat/one'), open('/chat/one'), open('/chat/two'), open('/chat/two'),
  ]);
  // Order decides, not a sleep: each room delivers in order, so the first
  // message `a` sees must be b's reply (never its own), and the first one
  // `other` sees must be room two's (never room one's).
  const aFirst = collect(a, 1);
  const otherFirst = collect(other, 1);
  const got = collect(b, 1);
  a.send('hello room one');
  assert.deepEqual(await got, ['hello room one']);
  b.send('reply in room one');
  other2.send('hello room two');
  assert.deepEqual(await aFirst, ['reply in room one']);
  assert.deepEqual(await otherFirst, ['hello room two']);
  for (const s of [a, b, other, other2]) s.close();
});

test('an EventSource receives publishes to t', async () => {
  const es = new EventSource(`http://${host}/events`);
  await once(es, 'open');
  const messages = [];
  const done = new Promise((resolve) => {
    es.onmessage = (e) => {
      messages.push(e.data);
      if (messages.length === 3) resolve();
    };
  });
  const pub = await open('/pub');
  for (const m of ['first', 'second\nwith two lines', 'third']) pub.send(m);
  await done;
  assert.deepEqual(messages, ['first', 'second\nwith two lines', 'third']);
  es.close();
  pub.close();
});
