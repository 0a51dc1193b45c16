// Compiled by `npm run typecheck` (tsc --noEmit): the generics give
// `ws.data` the type of what `server.upgrade(req, { data })` attaches, as
// Bun's types do; misuse fails to compile (the @ts-expect-error lines).
import { serve, type ServerWebSocket } from 'volley';

type User = { id: number; name: string };

const server = serve<User>({
  port: 0,
  fetch(req, server) {
    if (server.upgrade(req, { data: { id: 1, name: 'ann' } })) return;
    // @ts-expect-error: data must be a User
    server.upgrade(req, { data: { id: 'one' } });
    return new Response(req.params['x'] ?? 'none');
  },
  websocket: {
    message(ws, message) {
      const n: number = ws.data.id;
      const s: string = ws.data.name;
      // @ts-expect-error: no such field
      ws.data.missing;
      const sent: number = ws.send(typeof message === 'string' ? message : message.subarray(1));
      ws.publish('room', `${n} ${s} ${sent}`, true);
      ws.cork((w: ServerWebSocket<User>) => w.sendText('x'));
    },
    close(ws, code, reason) {
      const c: number = code;
      const r: string = reason;
      void [c, r, ws.readyState];
    },
    perMessageDeflate: { compress: 'shared', decompress: true },
    idleTimeout: 60,
  },
});
const count: number = server.subscriberCount('room');
void count;
void server.stop(true);
