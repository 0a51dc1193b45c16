// @ts-check
// Echo, Bun style: `node examples/echo.mjs [port]`.
import { serve } from 'volley';

const server = serve({
  port: Number(process.argv[2] ?? 3000),
  hostname: '127.0.0.1',
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response('Connect a WebSocket to this URL to get your messages back.\n');
  },
  websocket: {
    message(ws, message) {
      // Bun's answer: the bytes sent, -1 when queued behind a backlog (a
      // `drain` follows), 0 when dropped. A client that sends faster than it
      // reads is slowed down, not silently dropped from: stop reading it
      // until its echoes have drained.
      if (ws.send(message) === -1) ws.pause();
    },
    drain(ws) {
      ws.resume();
    },
  },
});
console.log(`listening ${server.port}`);
