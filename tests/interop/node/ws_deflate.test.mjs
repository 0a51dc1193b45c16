// permessage-deflate interop: Node `ws` against `volley serve --deflate`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = process.env.VOLLEY_BIN ?? path.join(root, 'target/release/volley');
const servers = {};

before(async () => {
  for (const mode of ['shared', 'dedicated']) {
    const p = spawn(bin, ['serve', '--port', '0', `--deflate=${mode}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = await once(p.stdout, 'data');
    servers[mode] = { p, base: `ws://${/http:\/\/([^/]+)\//.exec(line.toString())[1]}` };
  }
});

after(() => Object.values(servers).forEach((s) => s.p.kill()));

const SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024];

for (const mode of ['shared', 'dedicated']) {
  for (const binary of [false, true]) {
    for (const size of SIZES) {
      test(`${mode}: compressed ${binary ? 'binary' : 'text'} ${size} B, whole and fragmented`, async () => {
        const ws = new WebSocket(`${servers[mode].base}/echo`, { perMessageDeflate: true, maxPayload: 64 << 20 });
        await once(ws, 'open');
        assert.match(ws.extensions, /permessage-deflate/);
        const msg = Buffer.alloc(size);
        for (let i = 0; i < size; i++) msg[i] = binary ? (i * 7) & 0xff : 97 + (i % 26);
        for (const fragmented of [false, true]) {
          const got = new Promise((resolve) => ws.once('message', (d, isBinary) => resolve({ d, isBinary })));
          if (fragmented && size >= 3) {
            const t = Math.floor(size / 3);
            ws.send(msg.subarray(0, t), { binary, fin: false, compress: true });
            ws.send(msg.subarray(t, 2 * t), { binary, fin: false, compress: true });
            ws.send(msg.subarray(2 * t), { binary, fin: true, compress: true });
          } else {
            ws.send(msg, { binary, compress: true });
          }
          const { d, isBinary } = await got;
          assert.equal(isBinary, binary);
          assert.equal(Buffer.compare(d, msg), 0, 'payload intact');
        }
        ws.close();
        await once(ws, 'close');
      });
    }
  }
}
