// Bun's Cookie, CookieMap and a route request's req.cookies, as Bun 1.4.5
// behaves. testing/cookie-probe.mjs prints 206 observations (parsing of
// the Cookie header, every set/delete form, attribute validation and
// order, Set-Cookie on route answers, error answers and the 101 of
// server.upgrade); cookies.bun-1.4.5.json is what real Bun printed. The
// probe runs under Bun (when npm ci installed it) to show the record is
// still Bun's, and under volley, which must print the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const probe = fileURLToPath(new URL('../testing/cookie-probe.mjs', import.meta.url));
const bunBin = fileURLToPath(new URL('../node_modules/@oven/bun-linux-x64/bin/bun', import.meta.url));
const BUN = JSON.parse(readFileSync(new URL('./cookies.bun-1.4.5.json', import.meta.url), 'utf8'));

function run(cmd, env) {
  // TZ=UTC: legacy date strings ("Jan 2 2030") are read in local time.
  const out = execFileSync(cmd, [probe], { env: { ...process.env, TZ: 'UTC', ...env }, timeout: 60_000 });
  return JSON.parse(out.toString().trim().split('\n').pop());
}

function check(got, who) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(BUN).sort(), `${who}: the same observations`);
  for (const [k, v] of Object.entries(BUN)) assert.deepEqual(got[k], v, `${who}: ${k}`);
}

test('the record holds what these tests rely on', () => {
  // A few rows spelled out, so a reader sees Bun's rules without the file.
  assert.deepEqual(BUN.route_set_cookie, [
    'manual=1', // the route's own Set-Cookie first, then the changes
    'visited=yes; Path=/; SameSite=Lax',
    'old=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax',
  ]);
  assert.deepEqual(BUN.ws_101, ['set-cookie: wsc=1; Path=/; SameSite=Lax']);
  assert.deepEqual(BUN['sc/throw'], [500, ['t=1; Path=/; SameSite=Lax']]);
  assert.deepEqual(BUN['sc/ro'], [200, []]);
  assert.equal(BUN.fetch_cookies, 'undefined'); // only route requests have cookies
  assert.deepEqual(BUN.dup, ['1', 3, [['a', '1'], ['a', '2'], ['b', '3']], { a: '1', b: '3' }]);
  assert.equal(BUN.set_headers.headers[1], 'd=v%20v%3B; Domain=ex.com; Path=/p; Max-Age=60; Secure; HttpOnly; Partitioned; SameSite=Strict');
  assert.deepEqual(BUN.exp_num_small, ['s=1; Path=/; Expires=Thu, 01 Jan 1970 00:16:40 GMT; SameSite=Lax']); // seconds
  assert.equal(BUN.bad_name, 'threw TypeError: Invalid cookie name: contains invalid characters');
  assert.equal(Object.keys(BUN).length, 206);
});

test('the reference: real Bun still prints the record', { skip: !existsSync(bunBin) && 'no Bun binary (npm ci installs it)' }, () => {
  check(run(bunBin, {}), 'Bun');
});

test('volley prints what Bun prints, observation by observation', () => {
  check(run(process.execPath, { VOLLEY: '1' }), 'volley');
});
