// A thin Brisa-shaped layer on Volley's serve(): a `src/websocket` module
// exporting attach/open/message/close/drain (declared once per server, not
// per socket), API routes exporting GET/POST/… that receive a
// RequestContext with `ws` and `i18n`, and `globalThis.brisaServer` for
// publishing from anywhere.
//
// RequestContext.ws: the WebSocket of the client making the request. The
// layer tells it by a cookie set on the 101 answer (`brisa-ws=<id>`);
// requests from a client with no open WebSocket get `ws` undefined.
import { randomUUID } from 'node:crypto';
import { serve } from 'volley';

const COOKIE = 'brisa-ws';

function cookie(req, name) {
  for (const part of (req.headers.get('cookie') || '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/** A tiny i18n: `t(key)` from the messages of the request's language. */
function i18nFor(req, messages, defaultLocale) {
  const wanted = (req.headers.get('accept-language') || '').split(',').map((l) => l.split(';')[0].trim().slice(0, 2));
  const locale = wanted.find((l) => messages[l]) ?? defaultLocale;
  return { locale, t: (key) => messages[locale]?.[key] ?? key };
}

/**
 * Start a Brisa-style server.
 *   websocket: the src/websocket module (attach, open, message, close, drain)
 *   api:       { '/api/path': module exporting GET/POST/… }
 *   pages:     { '/': () => Response }
 *   i18n:      { defaultLocale, messages: { en: { key: text } } }
 *   perMessageDeflate, port, hostname, maxPayloadLength, workers (engine threads)
 */
export function createServer({ websocket = {}, api = {}, pages = {}, i18n = {}, port = 3000, hostname = '127.0.0.1', workers, ...ws } = {}) {
  const sockets = new Map(); // cookie id → ServerWebSocket
  const messages = i18n.messages ?? { en: {} };
  const defaultLocale = i18n.defaultLocale ?? Object.keys(messages)[0] ?? 'en';

  const server = serve({
    port,
    hostname,
    workers,
    async fetch(req, srv) {
      const url = new URL(req.url);
      if ((req.headers.get('upgrade') || '').toLowerCase() === 'websocket') {
        const data = websocket.attach ? await websocket.attach(req) : {};
        const id = randomUUID();
        const headers = { 'set-cookie': `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax` };
        if (srv.upgrade(req, { data: { ...data, [COOKIE]: id }, headers })) return undefined;
        return new Response('WebSocket upgrade failed\n', { status: 400 });
      }
      const route = api[url.pathname];
      if (route) {
        const handler = route[req.method];
        if (!handler) return new Response('Method Not Allowed\n', { status: 405 });
        const id = cookie(req, COOKIE);
        const ctx = Object.assign(req, { ws: id ? sockets.get(id) : undefined, i18n: i18nFor(req, messages, defaultLocale) });
        return handler(ctx);
      }
      const page = pages[url.pathname];
      if (page) return page(req);
      return new Response('Not Found\n', { status: 404 });
    },
    websocket: {
      ...ws,
      open(sock) {
        sockets.set(sock.data[COOKIE], sock);
        return websocket.open?.(sock);
      },
      message: (sock, m) => websocket.message?.(sock, m),
      close(sock, code, reason) {
        sockets.delete(sock.data[COOKIE]);
        return websocket.close?.(sock, code, reason);
      },
      drain: (sock) => websocket.drain?.(sock),
    },
  });
  globalThis.brisaServer = server;
  return server;
}
