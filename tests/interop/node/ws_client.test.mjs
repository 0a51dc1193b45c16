// Interop with the Node `ws` client against `volley serve`'s /echo.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = process.env.VOLLEY_BIN ?? path.join(root, 'target/release/volley');
let server;
let base;

before(async () => {
  server = spawn(bin, ['serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(server.stdout, 'data');
  const m = /http:\/\/([^/]+)\//.exec(line.toString());
  assert.ok(m, `no listening line: ${line}`);
  base = `ws://${m[1]}`;
});

after(() => server.kill());

function open(opts = {}) {
  const ws = new WebSocket(`${base}/echo`, { perMessageDeflate: false, maxPayload: 64 << 20, ...opts });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws) {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
}

const SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024];

function makePayload(size, binary) {
  if (binary) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
    return b;
  }
  const unit = Buffer.from('volley ✓ κόσμε ');
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += unit.length) unit.copy(b, i);
  // Trim a cut code point at the end so the text stays valid UTF-8.
  return Buffer.from(b.toString('utf8').replace(/\uFFFD+$/, ''));
}

for (const binary of [false, true]) {
  for (const fragmented of [false, true]) {
    for (const size of SIZES) {
      const name = `${binary ? 'binary' : 'text'} ${fragmented ? 'fragmented' : 'whole'} ${size} B`;
      test(name, async () => {
        const ws = await open();
        const msg = makePayload(size, binary);
        const got = nextMessage(ws);
        if (fragmented && msg.length >= 3) {
          const third = Math.floor(msg.length / 3);
          // ws sends one message in fragments with fin: false on all but the last.
          ws.send(msg.subarray(0, third), { binary, fin: false });
          ws.send(msg.subarray(third, 2 * third), { binary, fin: false });
          ws.send(msg.subarray(2 * third), { binary, fin: true });
        } else {
          ws.send(msg, { binary });
        }
        const { data, isBinary } = await got;
        assert.equal(isBinary, binary);
        assert.equal(data.length, msg.length);
        assert.ok(Buffer.compare(data, msg) === 0, 'payload intact');
        ws.close();
        await once(ws, 'close');
      });
    }
  }
}

for (const [code, reason] of [[1000, 'bye'], [3001, 'app'], [4999, 'ünïcode']]) {
  test(`close code ${code} is echoed`, async () => {
    const ws = await open();
    ws.close(code, reason);
    const [gotCode] = await once(ws, 'close');
    assert.equal(gotCode, code);
  });
}

test('oversized message is refused with 1009', async () => {
  const ws = await open();
  ws.send(Buffer.alloc(16 * 1024 * 1024 + 1));
  const [code] = await once(ws, 'close');
  assert.equal(code, 1009);
});

test('ping gets a pong with the same payload', async () => {
  const ws = await open();
  ws.ping(Buffer.from('are you there'));
  const [data] = await once(ws, 'pong');
  assert.equal(data.toString(), 'are you there');
  ws.close();
});
