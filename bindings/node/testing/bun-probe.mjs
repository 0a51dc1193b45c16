// What a Bun app observes of ServerWebSocket and Server, printed as JSON.
// Run by test/bun-fidelity.test.mjs twice: under real Bun (Bun.serve), and
// under Node with VOLLEY=1 (volley's serve). Raw TCP clients read the wire.
import net from 'node:net';
const serve = process.env.VOLLEY ? (await import('volley')).serve : Bun.serve;
const out = {};
let server;
const handlers = {
  open(ws) {
    const q = ws.data.q;
    if (q === 'ret') {
      out.send_hello = ws.send('hello');
      out.send_empty = ws.send('');
      out.sendText = ws.sendText('hello');
      out.sendBinary = ws.sendBinary(new Uint8Array(5));
      out.ping_none = ws.ping();
      out.ping_abc = ws.ping('abc');
      out.pong_ab = ws.pong('ab');
      out.sub1 = ws.subscribe('t');
      out.sub2 = ws.subscribe('t');
      out.isSub = ws.isSubscribed('t');
      out.unsub1 = ws.unsubscribe('t');
      out.unsub2 = ws.unsubscribe('t');
      out.server_publish_nobody = server.publish('nobody', 'x');
      ws.subscribe('t');
      out.server_publish_one = server.publish('t', 'hello');
      out.id = server.id; out.protocol = server.protocol; out.development = server.development;
      out.pendingRequests = server.pendingRequests;
      out.has = ['ref','unref','reload','fetch','timeout','closeIdleConnections'].filter((k) => typeof server[k] === 'function');
      out.ws_has = ['pause','resume'].filter((k) => typeof ws[k] === 'function');
      out.isPaused = ws.isPaused;
      out.dispose = typeof server[Symbol.dispose] + '/' + typeof server[Symbol.asyncDispose];
      ws.close();
      out.readyState_after_close = ws.readyState;
    } else if (q === 'pub') {
      ws.subscribe('p');
      out.ws_publish_only_self = ws.publish('p', 'hello');
      out.ws_publishText_only_self = ws.publishText('p', 'hello');
      out.ws_publish_other_topic = ws.publish('nobody', 'hello');
    } else if (q === 'pub2') {
      ws.subscribe('p');
      out.ws_publish_with_another = ws.publish('p', 'hello');
    } else if (q.startsWith('close')) {
      const [, code, rlen] = q.split('_');
      try { ws.close(Number(code), 'é'.repeat(Number(rlen || 0))); out[q] = 'ok'; } catch (e) { out[q] = 'threw ' + e.constructor.name + ': ' + e.message; }
    } else if (q === 'deflate') {
      const big = 'a'.repeat(100000);
      ws.send(big); ws.send(big, true); ws.send(big, false);
      ws.subscribe('d'); server.publish('d', big); server.publish('d', big, true);
    } else if (q === 'deflate_sub') {
      ws.subscribe('e');
    } else if (q === 'deflate_pub') {
      const big = 'b'.repeat(100000);
      ws.publish('e', big); ws.publish('e', big, true); ws.publish('e', big, false);
    } else if (q === 'throw') {
      ws.send('ready');
    }
  },
  message(ws, m) {
    if (ws.data.q === 'throw') {
      if (String(m) === 'boom') throw new Error('boom');
      ws.send('still ' + m);
    }
  },
  error(error, ws) { out.error_args = [error && error.message, ws && ws.data && ws.data.q]; },
  perMessageDeflate: true,
};
server = serve({
  port: 0, hostname: '127.0.0.1',
  fetch(req, s) { const q = new URL(req.url).searchParams.get('q'); return s.upgrade(req, { data: { q } }) ? undefined : new Response('no', { status: 400 }); },
  websocket: handlers,
});
// A raw client: returns the frames it got [{op, rsv1, len, payload}] until close or timeout.
function raw(q, { deflate = false, sends = [], ms = 400 } = {}) {
  return new Promise((resolve) => {
    const c = net.connect(server.port, '127.0.0.1');
    let buf = Buffer.alloc(0); let head = false; const frames = [];
    c.on('connect', () => c.write(`GET /?q=${q} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${deflate ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : ''}\r\n`));
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!head) { const i = buf.indexOf('\r\n\r\n'); if (i < 0) return; head = true; buf = buf.subarray(i + 4);
        for (const s of sends) { const p = Buffer.from(s); c.write(Buffer.concat([Buffer.from([0x81, 0x80 | p.length, 0, 0, 0, 0]), p])); } }
      for (;;) {
        if (buf.length < 2) break; let len = buf[1] & 127, h = 2;
        if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); h = 4; } else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); h = 10; }
        if (buf.length < h + len) break;
        frames.push({ op: buf[0] & 15, rsv1: !!(buf[0] & 64), len, payload: buf.subarray(h, h + len) }); buf = buf.subarray(h + len);
      }
    });
    c.on('close', () => resolve(frames)); c.on('error', () => resolve(frames));
    setTimeout(() => { c.destroy(); resolve(frames); }, ms);
  });
}
await raw('ret');
await Promise.all([raw('pub', { ms: 300 }), new Promise((r) => setTimeout(r, 100)).then(() => raw('pub2', { ms: 200 }))]);
for (const q of ['close_1005', 'close_0', 'close_1006', 'close_999', 'close_1004', 'close_5000', 'close_4000_100', 'close_1000_0']) {
  const fr = await raw(q);
  const cl = fr.find((f) => f.op === 8);
  out[q + '_wire'] = cl ? (cl.len >= 2 ? [cl.payload.readUInt16BE(0), cl.payload.length - 2] : ['no code', cl.len]) : 'no close frame';
}
const d = await raw('deflate', { deflate: true });
out.deflate_wire = d.map((f) => [f.rsv1, f.len]);
const sub = raw('deflate_sub', { deflate: true, ms: 600 });
await new Promise((r) => setTimeout(r, 150));
await raw('deflate_pub', { deflate: true, ms: 100 });
out.ws_publish_deflate_wire = (await sub).map((f) => [f.rsv1, f.len]);
const t = await raw('throw', { sends: ['one', 'boom', 'two'], ms: 600 });
out.throw_wire = t.map((f) => f.op === 8 ? ['close', f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null] : String(f.payload));
console.log(JSON.stringify(out, null, 0));
await server.stop(true);
process.exit(0);
