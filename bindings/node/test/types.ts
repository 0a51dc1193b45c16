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

// Route requests carry Bun's req.cookies (a CookieMap); fetch's do not.
import { CookieMap, Cookie } from 'volley';
serve({
  port: 0,
  routes: {
    '/login': (req) => {
      const sid: string | null = req.cookies.get('sid');
      req.cookies.set('sid', 'abc', { httpOnly: true, sameSite: 'strict', maxAge: 3600 });
      req.cookies.delete({ name: 'old', path: '/' });
      for (const [name, value] of req.cookies) void [name, value];
      return new Response(sid ?? 'none');
    },
  },
  fetch(req) {
    // @ts-expect-error: only route requests have cookies (as on Bun)
    req.cookies;
    return new Response('x');
  },
});
const jar = new CookieMap('a=1; b=2');
jar.set(new Cookie('c', '3', { secure: true }));
const headers: string[] = jar.toSetCookieHeaders();
const parsed: Cookie = Cookie.parse('n=v; Path=/');
void [headers, parsed.serialize(), jar.size];
