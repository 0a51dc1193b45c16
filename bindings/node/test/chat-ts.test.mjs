// Bun's documentation chat room, in TypeScript (examples/bun-chat/server.ts:
// the docs' code with only `import 'volley/bun'` added): it type-checks
// against bun-types (tsc), and the compiled program serves the chat on Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { client } from '../testing/client.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the docs chat room type-checks against bun-types and runs on Node', async (t) => {
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  execFileSync(process.execPath, [tsc, '-p', 'examples/bun-chat/tsconfig.json'], { cwd: root, stdio: 'inherit' });
  const proc = spawn(process.execPath, ['.build/bun-chat/server.js'], { cwd: root, env: { ...process.env, PORT: '0' } });
  t.after(() => proc.kill());
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  while (!/Listening on .*:(\d+)/.test(out)) await once(proc.stdout, 'data');
  const port = Number(/Listening on .*:(\d+)/.exec(out)[1]);
  const url = `ws://127.0.0.1:${port}/`;
  const ann = await client(url, { headers: { cookie: 'username=ann' } });
  assert.equal(await ann.next(), 'ann has entered the chat');
  const bob = await client(url, { headers: { cookie: 'username=bob' } });
  assert.equal(await bob.next(), 'bob has entered the chat');
  assert.equal(await ann.next(), 'bob has entered the chat');
  ann.send('hi all');
  assert.equal(await ann.next(), 'ann: hi all');
  assert.equal(await bob.next(), 'ann: hi all');
  ann.close();
  assert.equal(await bob.next(), 'ann has left the chat');
  bob.close();
  const res = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(await res.text(), 'Hello world');
});
