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
      ws.send(message);
    },
  },
});
console.log(`listening ${server.port}`);
