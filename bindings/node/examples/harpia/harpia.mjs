// A thin harpia-shaped layer on Volley's serve(): `app.ws(path, handlers)`
// with typed `ws.data`, `app.websocket.connections`, `app.get(path, fn)`
// and `app.listen({ port, tls })`. Only what harpia's WebSocket documentation
// shows; the engine does the protocol, routing of upgrades is done here.
//
// ws.data, set before `open`: { url, params, query, token, ...whatever the
// handlers add }. `token` comes from `?token=` or `Authorization: Bearer`.
// A handler that throws goes to the route's `error(ws, error)`; without
// one the connection closes with 1011.
import { readFileSync } from 'node:fs';
import { serve } from 'volley';
import { compileRoute } from '../route.mjs';

/** A PEM given as a path, a Buffer, PEM text or a `{ path }` (Bun.file-like). */
function pem(v) {
  if (v && typeof v === 'object' && 'path' in v) return readFileSync(v.path);
  if (Buffer.isBuffer(v)) return v;
  return String(v).includes('-----BEGIN') ? Buffer.from(String(v)) : readFileSync(String(v));
}

export function harpia() {
  const wsRoutes = [];
  const httpRoutes = [];
  const connections = new Set();
  let server = null;

  /** Run a handler; a throw goes to the route's error handler (or 1011). */
  function guard(route, ws, name, ...args) {
    const fn = route.handlers[name];
    if (!fn) return;
    const fail = (error) => {
      if (route.handlers.error) {
        try {
          route.handlers.error(ws, error);
          return;
        } catch {
          // fall through to the default
        }
      }
      ws.close(1011, 'internal error');
    };
    try {
      const r = fn(ws, ...args);
      if (r && typeof r.then === 'function') r.then(undefined, fail);
    } catch (e) {
      fail(e);
    }
  }

  const websocket = {
    open(ws) {
      connections.add(ws);
      guard(ws.data.route, ws, 'open');
    },
    message(ws, message) {
      guard(ws.data.route, ws, 'message', message);
    },
    close(ws, code, reason) {
      connections.delete(ws);
      guard(ws.data.route, ws, 'close', code, reason);
    },
    drain(ws) {
      guard(ws.data.route, ws, 'drain');
    },
  };

  const app = {
    /** The open WebSockets of every route, and the options they share. */
    websocket: { connections },

    ws(path, handlers) {
      wsRoutes.push({ path, match: compileRoute(path), handlers });
      return app;
    },

    get(path, handler) {
      httpRoutes.push({ path, match: compileRoute(path), handler });
      return app;
    },

    /** Start serving. `tls: { key, cert }` serves wss:// and https://. */
    listen(options = {}) {
      const opts = typeof options === 'number' ? { port: options } : options;
      server = serve({
        port: opts.port ?? 3000,
        hostname: opts.hostname ?? '127.0.0.1',
        tls: opts.tls ? { key: pem(opts.tls.key), cert: pem(opts.tls.cert) } : undefined,
        fetch(req, srv) {
          const url = new URL(req.url);
          for (const route of wsRoutes) {
            const params = route.match(url.pathname);
            if (!params) continue;
            const auth = req.headers.get('authorization') || '';
            const token = url.searchParams.get('token') ?? (auth.startsWith('Bearer ') ? auth.slice(7) : undefined);
            const data = { url: req.url, params, query: Object.fromEntries(url.searchParams), token, route };
            // `route` is the layer's; keep it out of JSON.stringify(ws.data).
            Object.defineProperty(data, 'route', { enumerable: false });
            if (srv.upgrade(req, { data })) return undefined;
            return new Response('WebSocket upgrade expected\n', { status: 426, headers: { upgrade: 'websocket' } });
          }
          for (const route of httpRoutes) {
            const params = route.match(url.pathname);
            if (params && (req.method === 'GET' || req.method === 'HEAD')) return route.handler(req, params);
          }
          return new Response('Not Found\n', { status: 404 });
        },
        websocket: { ...websocket, ...(opts.websocket || {}) },
      });
      app.server = server;
      app.port = server.port;
      return server;
    },

    /** Publish to a topic (for handlers using ws.subscribe). */
    publish(topic, data, compress) {
      return server.publish(topic, data, compress);
    },

    stop(closeActiveConnections = true) {
      return server?.stop(closeActiveConnections);
    },
  };
  return app;
}

export default harpia;
