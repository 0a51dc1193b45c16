// Bun's ServerWebSocket and Server, member by member, as Bun 1.4.5 behaves:
// testing/bun-probe.mjs prints what an app observes (return values,
// readyState, what reaches the wire for close codes, compression defaults,
// a throwing handler), once under volley and, when the real Bun binary is
// installed (npm's @oven/bun-linux-x64, a devDependency), once under Bun,
// so the expectations below are checked against the reference each run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const probe = fileURLToPath(new URL('../testing/bun-probe.mjs', import.meta.url));
const bunBin = fileURLToPath(new URL('../node_modules/@oven/bun-linux-x64/bin/bun', import.meta.url));

function run(cmd, env) {
  const out = execFileSync(cmd, [probe], { env: { ...process.env, ...env }, timeout: 60_000 });
  return JSON.parse(out.toString().trim().split('\n').pop());
}

/** What Bun 1.4.5 gives, where volley matches it. */
const BUN = {
  // Return values: the message's bytes, 0 for an empty one; ping/pong the
  // payload's bytes.
  send_hello: 5, send_empty: 0, sendText: 5, sendBinary: 5, ping_none: 0, ping_abc: 3, pong_ab: 2,
  // subscribe is true (also when already subscribed); unsubscribe false
  // when it was not.
  sub1: true, sub2: true, isSub: true, unsub1: true, unsub2: false,
  // publish: 0 with nobody (else) subscribed, else the bytes.
  server_publish_nobody: 0, server_publish_one: 5,
  ws_publish_only_self: 0, ws_publishText_only_self: 0, ws_publish_other_topic: 0, ws_publish_with_another: 5,
  id: '', protocol: 'http', development: true,
  ws_has: ['pause', 'resume'], isPaused: false, dispose: 'function/undefined',
  readyState_after_close: 3,
  // close(1005), close(0), close(1006): a close frame without a code.
  close_1005: 'ok', close_1005_wire: ['no code', 0],
  close_0: 'ok', close_0_wire: ['no code', 0],
  close_1006: 'ok', close_1006_wire: ['no code', 0],
  // A reason of 200 bytes ('é' × 100) is cut to 122, at a character boundary.
  close_4000_100: 'ok', close_4000_100_wire: [4000, 122],
  close_1000_0: 'ok', close_1000_0_wire: [1000, 0],
  // A throwing message handler: error(error, ws) is called, error first,
  // and the socket stays open (the next message is answered).
  error_args: ['boom', 'throw'], throw_wire: ['ready', 'still one', 'still two'],
};

/** Where volley differs on purpose (README, "Differences from Bun"): a
 * close code no endpoint may send throws RangeError instead of going on
 * the wire, where the peer would fail the connection with 1002. */
const VOLLEY_ONLY = {
  close_999_wire: 'no close frame', close_1004_wire: 'no close frame', close_5000_wire: 'no close frame',
};

/** Compression defaults, as [RSV1] per frame: send(m) uncompressed,
 * send(m, true) compressed, send(m, false) not; server.publish(t, m)
 * compressed, and with true too. (Sizes differ: compression levels.) */
const DEFLATE_RSV1 = [false, true, false, true, true];
/** ws.publish(t, m), with true, with false: compressed only when asked. */
const WS_PUBLISH_RSV1 = [false, true, false];

function check(got, who) {
  for (const [k, v] of Object.entries(BUN)) assert.deepEqual(got[k], v, `${who}: ${k}`);
  assert.deepEqual(got.deflate_wire.map(([rsv1]) => rsv1), DEFLATE_RSV1, `${who}: compression defaults`);
  assert.deepEqual(got.ws_publish_deflate_wire.map(([rsv1]) => rsv1), WS_PUBLISH_RSV1, `${who}: ws.publish compression default`);
  for (const m of ['ref', 'unref', 'reload', 'fetch', 'timeout', 'closeIdleConnections']) assert.ok(got.has.includes(m), `${who}: server.${m}`);
}

test('the reference: real Bun gives what these tests expect', { skip: !existsSync(bunBin) && 'no Bun binary (npm ci installs it)' }, () => {
  const bun = run(bunBin, {});
  check(bun, 'Bun');
  for (const c of ['close_999', 'close_1004', 'close_5000']) assert.equal(bun[c], 'ok');
});

test('volley gives what Bun gives, member by member', () => {
  const v = run(process.execPath, { VOLLEY: '1' });
  check(v, 'volley');
  for (const [k, val] of Object.entries(VOLLEY_ONLY)) assert.deepEqual(v[k], val, `volley: ${k}`);
  for (const c of ['close_999', 'close_1004', 'close_5000']) assert.match(v[c], /^threw RangeError/);
});
