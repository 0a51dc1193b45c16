// Putnami's WebSockets & Streaming documentation, endpoint by endpoint, on Volley.
//   node examples/putnami/app.mjs [port]
//
//   /api/events            server-stream (src/api/events/ws.ts): WebSocket or SSE
//   /api/ticks?n=N         server-stream of N ticks, 10 ms apart: WebSocket or SSE
//   /api/upload            client-stream (src/api/upload/ws.ts)
//   /api/chat/[roomId]     bidirectional with a Uuid path parameter
//   /api/hello             unary REST (POST { name })
//   /                      a page using the chat (WebSocket) and events (SSE)
import { fileURLToPath } from 'node:url';
import { createApp, endpoint, Stream, Uuid } from './putnami.mjs';

// src/api/events/ws.ts
export const events = endpoint()
  .returns(Stream({ event: String, payload: String }))
  .handle(async (ctx) => {
    ctx.send({ event: 'welcome', payload: 'hello' });
    // handler runs until it returns, then the connection closes
  });

export const ticks = endpoint()
  .query({ n: { optional: String } })
  .returns(Stream({ event: String, payload: String }))
  .handle(async (ctx) => {
    const n = Number(ctx.queryParams().n ?? 3);
    for (let i = 0; i < n; i++) {
      ctx.send({ event: 'tick', payload: String(i) });
      await new Promise((r) => setTimeout(r, 10));
    }
  });

// src/api/upload/ws.ts
export const upload = endpoint()
  .body(Stream({ type: String, data: String }))
  .returns({ result: String })
  .handle(async (ctx) => {
    let count = 0;
    for await (const msg of ctx.messages()) {
      if (msg.type === 'end') break;
      count++;
    }
    return { result: `processed ${count} messages` };
  });

// src/api/chat/[roomId]/ws.ts
export const chat = endpoint()
  .params({ roomId: Uuid })
  .body(Stream({ type: String, data: String }))
  .returns(Stream({ event: String, payload: String }))
  .handle(async (ctx) => {
    ctx.send({ event: 'welcome', payload: ctx.params.roomId });
    for await (const msg of ctx.messages()) {
      if (msg.type === 'crash') throw new Error('asked to crash');
      ctx.send({ event: 'echo', payload: msg.data });
    }
  });

export const hello = endpoint()
  .body({ name: String })
  .returns({ greeting: String })
  .handle(async (ctx) => ({ greeting: `hello ${ctx.body.name}` }));

const PAGE = `<!doctype html><meta charset="utf-8"><title>Putnami on volley</title><script>
window.result = (async () => {
  const room = crypto.randomUUID();
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/chat/' + room);
  const inbox = [];
  let wake = null;
  ws.onmessage = (e) => { inbox.push(JSON.parse(e.data)); if (wake) { wake(); wake = null; } };
  const next = async () => { while (!inbox.length) await new Promise((w) => (wake = w)); return inbox.shift(); };
  await new Promise((r) => (ws.onopen = r));
  const out = { welcome: (await next()).payload === room };
  ws.send(JSON.stringify({ type: 'hello', data: 'from chromium' }));
  out.echo = await next();
  ws.send(JSON.stringify({ type: 'hello' }));
  out.invalid = (await next()).error.code;
  ws.close();
  const source = new EventSource('/api/events');
  out.sse = await new Promise((r) => (source.onmessage = (e) => { source.close(); r(JSON.parse(e.data)); }));
  return out;
})();
</script>`;

export function start(options = {}) {
  return createApp({
    routes: {
      '/api/events': events,
      '/api/ticks': ticks,
      '/api/upload': upload,
      '/api/chat/[roomId]': chat,
      '/api/hello': hello,
    },
    pages: { '/': () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } }) },
    maxPayloadLength: 64 * 1024, // Limit message size
    ...options,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = start({ port: Number(process.argv[2] ?? 3000) });
  console.log(`Putnami example on http://127.0.0.1:${server.port}/`);
}
