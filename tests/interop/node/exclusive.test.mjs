// The port is a server's alone unless it asks to share it, against a peer
// nobody here wrote: a real Bun (npm's @oven/bun-linux-x64) started with
// Bun.serve({ reusePort: true }). A default `volley serve` on Bun's port
// fails with "address in use"; one with --reuse-port joins Bun's group (the
// kernel allows that to processes of the same user: sharing was asked for
// on both sides). And the other way round: Bun with reusePort cannot take
// the port of a default `volley serve`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const bin = process.env.VOLLEY_BIN ?? path.join(root, 'target/release/volley');
const bun = path.join(here, 'node_modules/@oven/bun-linux-x64/bin/bun');

const BUN_SERVER = `
const s = Bun.serve({ hostname: '127.0.0.1', port: Number(process.env.PORT), reusePort: true,
  fetch() { return new Response('bun'); } });
console.log('listening ' + s.port);
`;

/** A process that prints "listening PORT" (or the volley banner); its port. */
async function started(child) {
  let out = '';
  for await (const chunk of child.stdout) {
    out += chunk;
    const m = out.match(/listening (?:on https?:\/\/127\.0\.0\.1:)?(\d+)/);
    if (m) return Number(m[1]);
  }
  throw new Error(`exited before listening: ${out}`);
}

/** `volley serve` on `port` that must fail: its exit status and stderr. */
function serveMustFail(port, ...args) {
  return spawnSync(bin, ['serve', '--port', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
}

test('a default volley serve cannot take the port of a Bun with reusePort; --reuse-port shares it', async (t) => {
  const b = spawn(bun, ['-e', BUN_SERVER], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => b.kill());
  const port = await started(b);
  const r = serveMustFail(port);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /in use/i);
  const shared = spawn(bin, ['serve', '--port', String(port), '--reuse-port'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => shared.kill());
  assert.equal(await started(shared), port);
});

test('a Bun with reusePort cannot take the port of a default volley serve', async (t) => {
  const v = spawn(bin, ['serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => v.kill());
  const port = await started(v);
  const b = spawn(bun, ['-e', BUN_SERVER], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  b.stderr.on('data', (d) => { err += d; });
  const [code] = await once(b, 'exit');
  assert.notEqual(code, 0, 'Bun started on a port volley serve holds alone');
  assert.match(err, /in use|EADDRINUSE/i);
});
