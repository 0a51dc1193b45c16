// Bun peer for benches/compare, on the shared convention:
//   /echo echoes with the opcode; /sub subscribes to "t" and publishes what it
//   sends to "t"; /pub publishes to "t" without subscribing.
//   PORT (default 9001); WS_DEFLATE=1 turns permessage-deflate on; REUSE_PORT=1
//   shares the port with other processes (benches/scaling).
const deflate = process.env.WS_DEFLATE === '1';
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT ?? 9001),
  // benches/scaling runs one process per core on one port.
  reusePort: process.env.REUSE_PORT === '1',
  fetch(req, server) {
    const path = new URL(req.url).pathname;
    if (path === '/health') return new Response('ok'); // the HTTP soak (benches/http)
    if (server.upgrade(req, { data: { path } })) return undefined;
    return new Response('upgrade required', { status: 426 });
  },
  websocket: {
    maxPayloadLength: 16 * 1024 * 1024,
    idleTimeout: 120,
    perMessageDeflate: deflate,
    open(ws) {
      if (ws.data.path === '/sub') ws.subscribe('t');
    },
    message(ws, msg) {
      switch (ws.data.path) {
        case '/echo':
          ws.send(msg, deflate);
          break;
        case '/sub':
          ws.publish('t', msg, deflate);
          break;
        case '/pub':
          server.publish('t', msg, deflate);
          break;
      }
    },
  },
});
console.log(`bun: listening on http://127.0.0.1:${server.port}/`);
