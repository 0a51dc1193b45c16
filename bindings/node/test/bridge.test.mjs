// pubsubBridge: a Node server and a `volley serve` process bridged through
// a real redis-server share their topics, both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { client } from '../testing/client.mjs';
import { haveRedis, startRedis } from '../testing/redis.mjs';
import { serve } from 'volley';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('a Node server and a volley serve process share topics through Redis', { skip: !haveRedis }, async (t) => {
  const redis = await startRedis(t);
  const url = `redis://127.0.0.1:${redis.port}/nodetest`;

  const server = serve({
    port: 0,
    hostname: '127.0.0.1',
    pubsubBridge: url,
    fetch(req, srv) {
      if (srv.upgrade(req)) return;
      return new Response('ws only', { status: 400 });
    },
    websocket: {
      open(ws) {
        ws.subscribe('t');
      },
      message(ws, m) {
        ws.publish('t', m);
      },
    },
  });
  t.after(() => server.stop(true));

  const bin = process.env.VOLLEY_BIN || path.join(root, 'target/release/volley');
  const other = spawn(bin, ['serve', '--port', '0', '--workers', '2', '--pubsub-bridge', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => other.kill());
  const [line] = await once(other.stdout, 'data');
  const otherPort = /127\.0\.0\.1:(\d+)/.exec(line.toString())[1];

  const here = await client(`ws://127.0.0.1:${server.port}/`);
  const sender = await client(`ws://127.0.0.1:${server.port}/`);
  const there = await client(`ws://127.0.0.1:${otherPort}/sub`);
  await redis.subscribers('nodetest:t', 2);

  // From a Node handler's ws.publish, to the other process (and locally).
  sender.send('from node');
  assert.equal(await there.next(), 'from node');
  assert.equal(await here.next(), 'from node');
  // From server.publish, binary.
  server.publish('t', Buffer.from([1, 2, 3]));
  assert.deepEqual([...(await there.next())], [1, 2, 3]);
  assert.deepEqual([...(await here.next())], [1, 2, 3]);
  // From the other process into Node, in order.
  const pub = await client(`ws://127.0.0.1:${otherPort}/pub`);
  for (let i = 0; i < 100; i++) pub.send(`m${i}`);
  for (let i = 0; i < 100; i++) assert.equal(await here.next(), `m${i}`);

  const s = server.stats();
  assert.equal(s.bridgedIn, 100);
  assert.ok(s.bridgedOut >= 2, JSON.stringify(s));
  assert.equal(s.bridgeLost, 0);
  for (const ws of [here, sender, there, pub]) ws.close();
});

test('a malformed bridge URL is refused at serve()', () => {
  assert.throws(() => serve({ port: 0, hostname: '127.0.0.1', pubsubBridge: 'http://nope', fetch: () => new Response('') }), /argument/);
});
