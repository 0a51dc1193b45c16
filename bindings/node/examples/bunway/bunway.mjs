// A thin bunWay-shaped layer on Volley's serve(): Express-style routes and
// middleware (`app.use`, `(req, res, next)`), `session()`, and WebSocket
// routes that run their middleware before the upgrade:
//   app.ws(path, ...middleware, handlers)
// ws.data is bunWay's WebSocketData: { routePath, params, handlers, req },
// `req` being the upgrade request with its session, params and `get()`.
// The socket handed to handlers is the engine's ServerWebSocket with
// bunWay's `bufferedAmount` property; it is the same object from open to
// close, so it can be kept in Maps and Sets.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { serve } from 'volley';
import { compileRoute } from '../route.mjs';

/** The Express-like request bunWay handlers get. */
class BunRequest {
  constructor(request, url, params, body) {
    this.raw = request;
    this.method = request.method;
    this.url = url.pathname + url.search;
    this.path = url.pathname;
    this.query = Object.fromEntries(url.searchParams);
    this.params = params;
    this.body = body;
    this.headers = request.headers;
    this.session = undefined;
  }

  /** A request header (case-insensitive), as Express's `req.get`. */
  get(name) {
    return this.headers.get(name) ?? undefined;
  }

  cookie(name) {
    for (const part of (this.headers.get('cookie') || '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === name) return decodeURIComponent(v.join('='));
    }
    return undefined;
  }
}

/** The Express-like response: builds one Response. */
class BunResponse {
  constructor() {
    this.statusCode = 200;
    this.headers = new Headers();
    this.body = null;
    this.ended = false;
  }

  status(code) {
    this.statusCode = code;
    return this;
  }

  set(name, value) {
    this.headers.append(name, value);
    return this;
  }

  json(value) {
    this.headers.set('content-type', 'application/json');
    return this.send(JSON.stringify(value));
  }

  text(value) {
    if (!this.headers.has('content-type')) this.headers.set('content-type', 'text/plain; charset=utf-8');
    return this.send(String(value));
  }

  html(value) {
    this.headers.set('content-type', 'text/html; charset=utf-8');
    return this.send(String(value));
  }

  send(body) {
    this.body = body;
    this.ended = true;
    return this;
  }

  toResponse() {
    return new Response(this.body, { status: this.statusCode, headers: this.headers });
  }
}

/**
 * Run a chain of `(req, res, next)` functions: 'next' when every one called
 * next(), 'ended' when one answered, 'stalled' when one did neither.
 */
async function run(chain, req, res) {
  for (const fn of chain) {
    let next = false;
    await fn(req, res, () => {
      next = true;
    });
    if (res.ended) return 'ended';
    if (!next) return 'stalled';
  }
  return 'next';
}

/**
 * Cookie sessions kept in memory, the cookie signed with `secret`
 * (HMAC-SHA256): `req.session` is an object saved after each request.
 */
export function session({ secret, name = 'bunway.sid' }) {
  const store = new Map();
  const sign = (id) => `${id}.${createHmac('sha256', secret).update(id).digest('base64url')}`;
  const verify = (value) => {
    const i = value.lastIndexOf('.');
    if (i < 0) return null;
    const id = value.slice(0, i);
    const want = Buffer.from(sign(id));
    const got = Buffer.from(value);
    return want.length === got.length && timingSafeEqual(want, got) ? id : null;
  };
  return (req, res, next) => {
    const cookie = req.cookie(name);
    let id = cookie ? verify(cookie) : null;
    if (!id || !store.has(id)) {
      id = randomUUID();
      store.set(id, {});
      res.set('set-cookie', `${name}=${encodeURIComponent(sign(id))}; Path=/; HttpOnly; SameSite=Lax`);
    }
    req.session = store.get(id);
    req.sessionID = id;
    next();
  };
}

export function bunway() {
  const middleware = [];
  const routes = [];
  const wsRoutes = [];
  let server = null;

  const route = (method) => (path, ...fns) => {
    routes.push({ method, path, match: compileRoute(path), chain: fns });
    return app;
  };

  const call = (ws, name, ...args) => {
    const fn = ws.data.handlers[name];
    if (fn) return fn(ws, ...args);
  };

  const app = {
    use(fn) {
      middleware.push(fn);
      return app;
    },
    get: route('GET'),
    post: route('POST'),
    put: route('PUT'),
    delete: route('DELETE'),

    /** `app.ws(path, ...middleware, handlers)`: middleware runs before the upgrade. */
    ws(path, ...rest) {
      const handlers = rest.pop();
      wsRoutes.push({ path, match: compileRoute(path), chain: rest, handlers });
      return app;
    },

    /** Every route, as `METHOD  path` lines (printed and returned). */
    printRoutes() {
      const lines = [...routes.map((r) => `${r.method.padEnd(8)}${r.path}`), ...wsRoutes.map((r) => `${'WS'.padEnd(8)}${r.path}`)];
      const text = lines.join('\n');
      console.log(text);
      return text;
    },

    async fetch(request, srv) {
      const url = new URL(request.url);
      const upgrade = (request.headers.get('upgrade') || '').toLowerCase() === 'websocket';
      if (upgrade) {
        for (const r of wsRoutes) {
          const params = r.match(url.pathname);
          if (!params) continue;
          const req = new BunRequest(request, url, params, undefined);
          const res = new BunResponse();
          const passed = (await run(middleware, req, res)) === 'next' && (await run(r.chain, req, res)) === 'next';
          if (!passed) return res.ended ? res.toResponse() : new Response('Forbidden\n', { status: 403 });
          const data = { routePath: r.path, params, handlers: r.handlers, req };
          const headers = res.headers.has('set-cookie') ? { 'set-cookie': res.headers.get('set-cookie') } : undefined;
          if (srv.upgrade(request, { data, headers })) return undefined;
          return new Response('WebSocket upgrade failed\n', { status: 400 });
        }
      }
      for (const r of routes) {
        if (r.method !== request.method && !(r.method === 'GET' && request.method === 'HEAD')) continue;
        const params = r.match(url.pathname);
        if (!params) continue;
        let body;
        const type = request.headers.get('content-type') || '';
        if (request.method !== 'GET' && request.method !== 'HEAD') {
          const text = await request.text();
          try {
            body = type.includes('application/json') && text ? JSON.parse(text) : text;
          } catch {
            return new Response(JSON.stringify({ error: 'invalid JSON body' }), { status: 400, headers: { 'content-type': 'application/json' } });
          }
        }
        const req = new BunRequest(request, url, params, body);
        const res = new BunResponse();
        if ((await run(middleware, req, res)) === 'next') await run(r.chain, req, res);
        return res.ended ? res.toResponse() : new Response('Not Found\n', { status: 404 });
      }
      return new Response('Not Found\n', { status: 404 });
    },

    /** `options`: hostname, websocket (engine limits), pubsubBridge (Redis URL). */
    listen(port = 3000, options = {}) {
      server = serve({
        port,
        hostname: options.hostname ?? '127.0.0.1',
        pubsubBridge: options.pubsubBridge,
        fetch: (req, srv) => app.fetch(req, srv),
        websocket: {
          ...options.websocket,
          open(ws) {
            Object.defineProperty(ws, 'bufferedAmount', { get: () => ws.getBufferedAmount() });
            return call(ws, 'open');
          },
          message: (ws, m) => call(ws, 'message', m),
          close: (ws, code, reason) => call(ws, 'close', code, reason),
          drain: (ws) => call(ws, 'drain'),
        },
      });
      app.server = server;
      app.port = server.port;
      return server;
    },

    stop(closeActiveConnections = true) {
      return server?.stop(closeActiveConnections);
    },
  };
  return app;
}

export default bunway;
