// The seed's ws-kit recipe (step 3, "Start the server") on Volley: the same
// code with `serve` from volley for Bun.serve.
//   node examples/ws-kit/app.mjs [port]              (memory pub/sub)
//   REDIS_URL=redis://127.0.0.1:6379/app node examples/ws-kit/app.mjs 3002
//                                                     (pub/sub across processes)
// Connect to ws://HOST:PORT/ws?token=… (authenticate() wants a token).
import { fileURLToPath } from 'node:url';
import { serve } from 'volley';
import { createBunHandler, memoryPubSub, redisPubSub, withPubSub } from './ws-kit.mjs';
import { createAppRouter } from './protocol/router.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><title>ws-kit on volley</title><script>
window.result = (async () => {
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws?token=page');
  const inbox = [];
  let wake = null;
  ws.onmessage = (e) => { inbox.push(JSON.parse(e.data)); if (wake) { wake(); wake = null; } };
  const next = async () => { while (!inbox.length) await new Promise((w) => (wake = w)); return inbox.shift(); };
  await new Promise((r) => (ws.onopen = r));
  const out = {};
  ws.send(JSON.stringify({ type: 'PING', meta: {}, payload: {} }));
  out.pong = (await next()).type;
  ws.send(JSON.stringify({ type: 'JOIN_CHANNEL', meta: {}, payload: { channelId: 'general' } }));
  out.joined = (await next()).payload.channelId;
  ws.send(JSON.stringify({ type: 'CHAT_MESSAGE', meta: {}, payload: { channelId: 'general', text: 'Hello!', sentAt: Date.now() } }));
  out.chat = (await next()).payload.text;
  ws.send(JSON.stringify({ type: 'GET_MESSAGES', meta: { correlationId: 'c1' }, payload: { channelId: 'general' } }));
  const reply = await next();
  out.rpc = { type: reply.type, correlationId: reply.meta.correlationId, texts: reply.payload.messages.map((m) => m.text) };
  return out;
})();
</script>`;

/** Start the example server; `redisUrl` bridges pub/sub across processes. */
export function start({ port = 3001, redisUrl, maxPayloadLength = 64 * 1024, workers } = {}) {
  const adapter = redisUrl ? redisPubSub({ url: redisUrl }) : memoryPubSub();
  const router = createAppRouter().plugin(withPubSub({ adapter }));

  const { fetch: handleWebSocket, websocket, options } = createBunHandler(router, {
    authenticate(req) {
      // Validate auth token, return initial connection data
      const url = new URL(req.url);
      const token = url.searchParams.get('token') ?? req.headers.get('authorization')?.replace(/^Bearer /, '');
      if (!token || token === 'revoked') return undefined;
      return { connectedAt: Date.now(), token };
    },
  });

  return serve({
    port,
    hostname: '127.0.0.1',
    workers,
    ...options,
    fetch(req, server) {
      const path = new URL(req.url).pathname;
      if (path === '/ws') {
        return handleWebSocket(req, server);
      }
      if (path === '/') return new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } });
      return new Response('WebSocket server');
    },
    websocket: { maxPayloadLength, ...websocket },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = start({ port: Number(process.argv[2] ?? 3001), redisUrl: process.env.REDIS_URL });
  console.log(`ws-kit example on ws://127.0.0.1:${server.port}/ws`);
}
