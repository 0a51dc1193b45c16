// Code typed against bun-types (Bun's own declarations, npm bun-types
// 1.4.5) handed to volley's serve unchanged: `npm run typecheck` compiles
// this with tsc --noEmit. The idioms of Bun's docs must type-check:
// `websocket: { data: {} as T }`, `message` optional, compressor sizes,
// handlers written as Bun's WebSocketHandler<T>, Bun's error(error, ws).
import type { ServerWebSocket as BunSocket, WebSocketHandler as BunHandler } from 'bun';
import { serve, type ServerWebSocket } from 'volley';

type User = { name: string; room: string };

// A handler object written for Bun, typed by Bun's types.
const bunHandler: BunHandler<User> = {
  data: {} as User,
  open(ws) {
    ws.subscribe(ws.data.room);
  },
  close(ws, code, reason) {
    void [ws.data.name, code, reason];
  },
  error(error, ws) {
    void [error.message, ws.data.name];
  },
  perMessageDeflate: { compress: '16KB', decompress: 'shared' },
  maxPayloadLength: 1 << 20,
  idleTimeout: 60,
};

serve({
  port: 0,
  fetch(req, server) {
    if (server.upgrade(req, { data: { name: 'ann', room: 'lobby' } })) return;
    return new Response('no');
  },
  websocket: bunHandler,
});

// Bun's docs idiom, inline: ws.data typed from `data: {} as T`, no message.
serve({
  port: 0,
  fetch(req, server) {
    server.upgrade(req, { data: { name: 'bob', room: 'r' } });
    return undefined;
  },
  websocket: {
    data: {} as User,
    open(ws) {
      const n: string = ws.data.name;
      const ok: boolean = ws.subscribe(ws.data.room);
      const sent: number = ws.send(`hi ${n} ${ok}`);
      void sent;
      ws.pause();
      ws.resume();
      void ws.isPaused;
    },
  },
});

// A function written for Bun's socket type takes volley's socket.
function greet(ws: BunSocket<User>): number {
  return ws.send(`hello ${ws.data.name}`);
}
declare const mine: ServerWebSocket<User>;
greet(mine as unknown as BunSocket<User>);

// ws-kit's handler for Bun.serve, handed to volley's serve as it is.
import { createBunHandler } from '@ws-kit/bun';
import { createRouter } from '@ws-kit/zod';

const wsKit = createBunHandler(createRouter());
serve({ port: 0, fetch: wsKit.fetch, websocket: wsKit.websocket });

// A route written against Bun's BunRequest (req.cookies, Bun's CookieMap).
import type { BunRequest } from 'bun';
const bunRoute = (req: BunRequest<'/me'>) => {
  req.cookies.set('seen', '1');
  return new Response(req.cookies.get('sid') ?? 'anonymous');
};
serve({ port: 0, routes: { '/me': bunRoute } });
