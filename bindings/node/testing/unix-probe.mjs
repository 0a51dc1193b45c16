// What a Bun app observes when it serves on a Unix socket (Bun.serve's
// `unix`), printed as JSON. Run by test/unix.test.mjs under real Bun and
// under Node with VOLLEY=1 (volley's serve). Clients are raw node:net ones.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
const serve = process.env.VOLLEY ? (await import('volley')).serve : Bun.serve;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'volley-unix-'));
const sock = path.join(dir, 'app.sock');
const out = {};

/** Write `req` on a new connection to the socket; read until `done(bytes)`. */
function talk(req, done) {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let got = Buffer.alloc(0);
    c.on('connect', () => c.write(req));
    c.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (done(got)) {
        c.destroy();
        resolve(got);
      }
    });
    c.on('error', reject);
    setTimeout(() => reject(new Error(`timeout: ${got}`)), 5000);
  });
}

const server = serve({
  unix: sock,
  fetch(req, server) {
    if (req.headers.get('upgrade')) {
      return server.upgrade(req, { data: { ip: server.requestIP(req) } }) ? undefined : new Response('no', { status: 400 });
    }
    return new Response(JSON.stringify({ url: req.url, ip: server.requestIP(req) }));
  },
  websocket: {
    message(ws, m) {
      ws.send(JSON.stringify({ m: String(m), remoteAddress: ws.remoteAddress ?? 'undefined', ip: ws.data.ip }));
    },
  },
});
out.port = server.port ?? 'undefined';
out.hostname = server.hostname ?? 'undefined';
out.url = String(server.url).replace(dir, 'DIR');
out.is_socket = fs.statSync(sock).isSocket();

const http = await talk('GET /x?y=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', (b) => {
  const s = b.toString();
  const i = s.indexOf('\r\n\r\n');
  const len = /content-length: (\d+)/i.exec(s);
  return i >= 0 && len && b.length >= i + 4 + Number(len[1]);
});
const text = http.toString();
out.http_status = text.slice(0, 15);
out.http_body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));

// An upgrade, then one masked text frame ("hi", mask 0): the echo's text.
const up = 'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
  + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
const wire = await new Promise((resolve, reject) => {
  const c = net.connect(sock);
  let got = Buffer.alloc(0);
  let sent = false;
  c.on('connect', () => c.write(up));
  c.on('data', (d) => {
    got = Buffer.concat([got, d]);
    const i = got.indexOf('\r\n\r\n');
    if (i < 0) return;
    if (!sent) {
      sent = true;
      c.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]));
    }
    const f = got.subarray(i + 4);
    if (f.length >= 2 && f.length >= 2 + (f[1] & 0x7f)) {
      c.destroy();
      resolve({ head: got.subarray(0, 12).toString(), frame: f.subarray(2, 2 + (f[1] & 0x7f)).toString() });
    }
  });
  c.on('error', reject);
  setTimeout(() => reject(new Error(`timeout: ${got}`)), 5000);
});
out.ws_head = wire.head;
out.ws_frame = JSON.parse(wire.frame);

// A second server on the same path: the socket is taken.
try {
  serve({ unix: sock, fetch: () => new Response('x') }).stop(true);
  out.second = 'listening';
} catch (e) {
  out.second = /in use/i.test(String(e.message)) ? 'address in use' : String(e.message);
}

await server.stop(true);
await new Promise((r) => setTimeout(r, 100));
out.exists_after_stop = fs.existsSync(sock);

// A socket file left by another program (bound, then closed without
// removing it): not replaced, the path is in use.
execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', sock]);
try {
  serve({ unix: sock, fetch: () => new Response('x') }).stop(true);
  out.over_stale = 'listening';
} catch (e) {
  out.over_stale = /in use/i.test(String(e.message)) ? 'address in use' : String(e.message);
}
out.stale_kept = fs.statSync(sock).isSocket();
fs.rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(out));
