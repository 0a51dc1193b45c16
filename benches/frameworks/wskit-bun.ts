// The real ws-kit on Bun: the seed's recipe (createBunHandler, a zod
// message, Bun.serve) with an ECHO handler, for benches/frameworks/run.py.
import { createBunHandler } from "@ws-kit/bun";
import { createRouter, message, withZod, z } from "@ws-kit/zod";

const Echo = message("ECHO", { text: z.string() });
const Ping = message("PING");
const Pong = message("PONG");

const router = createRouter()
  .plugin(withZod())
  .on(Ping, (ctx) => {
    ctx.send(Pong, {});
  })
  .on(Echo, (ctx) => {
    ctx.send(Echo, { text: ctx.payload.text });
  });

const { fetch: handleWebSocket, websocket } = createBunHandler(router, {
  authenticate(req) {
    return { connectedAt: Date.now() };
  },
});

const server = Bun.serve({
  port: Number(process.env.PORT ?? 3001),
  hostname: "127.0.0.1",
  fetch(req, server) {
    if (new URL(req.url).pathname === "/ws") {
      return handleWebSocket(req, server);
    }
    return new Response("WebSocket server");
  },
  websocket,
});
console.log(`ws-kit on bun listening on ${server.port}`);
