// Bun.serve's `unix` option, as Bun 1.4.5 behaves: testing/unix-probe.mjs
// prints what an app observes, under volley and (when the real Bun binary
// is installed, as npm ci installs it) under Bun, so the expectation below
// is checked against the reference each run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from 'volley';

const probe = fileURLToPath(new URL('../testing/unix-probe.mjs', import.meta.url));
const bunBin = fileURLToPath(new URL('../node_modules/@oven/bun-linux-x64/bin/bun', import.meta.url));

function run(cmd, env) {
  const out = execFileSync(cmd, [probe], { env: { ...process.env, ...env }, timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out.toString().trim().split('\n').pop());
}

/** What Bun 1.4.5 gives on a Unix socket. */
const BUN = {
  // No port or hostname; the URL names the socket.
  port: 'undefined', hostname: 'undefined', url: 'unix://DIR/app.sock', is_socket: true,
  // HTTP and WebSocket as on TCP; the peer has no address.
  http_status: 'HTTP/1.1 200 OK', http_body: { url: 'http://localhost/x?y=1', ip: null },
  ws_head: 'HTTP/1.1 101', ws_frame: { m: 'hi', remoteAddress: 'undefined', ip: null },
  // A path in use (a live server's, or a socket file another program
  // left) is refused, and left alone; stop removes the server's own file.
  second: 'address in use', exists_after_stop: false, over_stale: 'address in use', stale_kept: true,
};

test('the reference: real Bun gives what these tests expect', { skip: !existsSync(bunBin) && 'no Bun binary (npm ci installs it)' }, () => {
  assert.deepEqual(run(bunBin, {}), BUN);
});

test('volley on a Unix socket gives what Bun gives', () => {
  assert.deepEqual(run(process.execPath, { VOLLEY: '1' }), BUN);
});

test('unix with a port, or not a string, is refused by name (Bun ignores the port)', () => {
  assert.throws(() => serve({ unix: '/tmp/volley-x.sock', port: 8080, fetch: () => new Response('') }), /port does not apply with unix/);
  assert.throws(() => serve({ unix: 42, fetch: () => new Response('') }), /unix must be a path/);
});
