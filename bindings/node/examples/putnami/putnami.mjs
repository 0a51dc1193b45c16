// A thin Putnami-shaped layer on Volley's serve(): `endpoint()` with
// `.params() .body() .returns() .handle()`, `Stream()` slots that choose the
// streaming mode, schemas of constructors (`String`, `Number`, `Boolean`,
// `Uuid`, nested objects and arrays) checked on every message, and routes
// named like Putnami's files (`/api/chat/[roomId]`).
//
//   body      returns    mode           transport
//   T         T          unary          HTTP (JSON in and out)
//   T         Stream(T)  server-stream  WebSocket or SSE (Accept: text/event-stream)
//   Stream(T) T          client-stream  WebSocket
//   Stream(T) Stream(T)  bidirectional  WebSocket
//
// Errors, as the client sees them:
// - params or query that fail their schema: HTTP 400 with a JSON `error`,
//   before any upgrade;
// - a client-stream or bidirectional endpoint asked for SSE or plain HTTP: 426;
// - a message that is not JSON or fails the body schema: the text message
//   {"error":{"code":"INVALID_MESSAGE","message":…,"issues":[{"path","message"}]}}
//   and the message never reaches the handler (the connection stays open);
// - a message past maxPayloadLength: close 1009 (the engine);
// - the handler throws: close 1011 "internal error" (SSE: an `error` event, then the end);
// - the handler returns: close 1000 (after the result, for client-stream).
import { serve } from 'volley';
import { compileRoute } from '../route.mjs';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** A UUID string (any version 1-8, RFC 9562 variant). */
export const Uuid = Object.freeze({ kind: 'uuid' });

/** Mark a slot as a stream of `schema` messages. */
export function Stream(schema) {
  return { stream: true, schema };
}

/**
 * Check `value` against a schema: { ok, value, issues }. Schemas:
 * String, Number, Boolean, Uuid, { key: schema }, [schema], and
 * `{ optional: schema }` for a key that may be missing.
 */
export function check(schema, value, path = '') {
  const issues = [];
  const at = (p) => p || '(root)';
  const walk = (s, v, p) => {
    if (s === String) {
      if (typeof v !== 'string') issues.push({ path: at(p), message: 'expected a string' });
    } else if (s === Number) {
      if (typeof v !== 'number' || !Number.isFinite(v)) issues.push({ path: at(p), message: 'expected a number' });
    } else if (s === Boolean) {
      if (typeof v !== 'boolean') issues.push({ path: at(p), message: 'expected a boolean' });
    } else if (s === Uuid) {
      if (typeof v !== 'string' || !UUID_RE.test(v)) issues.push({ path: at(p), message: 'expected a UUID' });
    } else if (Array.isArray(s)) {
      if (!Array.isArray(v)) issues.push({ path: at(p), message: 'expected an array' });
      else v.forEach((x, i) => walk(s[0], x, `${p}[${i}]`));
    } else if (s && typeof s === 'object') {
      if (!v || typeof v !== 'object' || Array.isArray(v)) {
        issues.push({ path: at(p), message: 'expected an object' });
        return;
      }
      for (const [k, sub] of Object.entries(s)) {
        const key = p ? `${p}.${k}` : k;
        if (sub && typeof sub === 'object' && 'optional' in sub) {
          if (v[k] !== undefined) walk(sub.optional, v[k], key);
        } else if (v[k] === undefined) {
          issues.push({ path: key, message: 'required' });
        } else {
          walk(sub, v[k], key);
        }
      }
      for (const k of Object.keys(v)) {
        if (!(k in s)) issues.push({ path: p ? `${p}.${k}` : k, message: 'unexpected field' });
      }
    } else {
      throw new TypeError(`putnami: not a schema: ${String(s)}`);
    }
  };
  walk(schema, value, path);
  return { ok: issues.length === 0, value, issues };
}

/** The endpoint builder. */
export function endpoint() {
  const def = { params: null, query: null, body: null, returns: null, handler: null };
  const b = {
    params(s) {
      def.params = s;
      return b;
    },
    query(s) {
      def.query = s;
      return b;
    },
    body(s) {
      def.body = s;
      return b;
    },
    returns(s) {
      def.returns = s;
      return b;
    },
    handle(fn) {
      def.handler = fn;
      const inStream = !!def.body?.stream;
      const outStream = !!def.returns?.stream;
      def.mode = inStream ? (outStream ? 'bidirectional' : 'client-stream') : outStream ? 'server-stream' : 'unary';
      return Object.freeze({ ...def });
    },
  };
  return b;
}

const json = (status, value) => Response.json(value, { status });

/** An async queue of client messages: `messages()` iterates it. */
class Inbox {
  constructor() {
    this.items = [];
    this.waiting = null;
    this.ended = false;
  }

  push(v) {
    if (this.waiting) {
      this.waiting({ value: v, done: false });
      this.waiting = null;
    } else {
      this.items.push(v);
    }
  }

  end() {
    this.ended = true;
    if (this.waiting) {
      this.waiting({ value: undefined, done: true });
      this.waiting = null;
    }
  }

  [Symbol.asyncIterator]() {
    return {
      next: () => {
        if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.waiting = r));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** The handler's context for one call. */
function context(ep, params, query, send, inbox) {
  const ctx = { params, queryParams: () => query };
  if (ep.returns?.stream) {
    ctx.send = (data) => {
      const c = check(ep.returns.schema, data);
      if (!c.ok) throw new TypeError(`putnami: ctx.send: ${c.issues.map((i) => `${i.path}: ${i.message}`).join(', ')}`);
      send(JSON.stringify(data));
    };
  }
  if (ep.body?.stream) ctx.messages = () => inbox;
  return ctx;
}

/**
 * Serve `routes` ({ '/api/x/[id]': endpoint }). Options go to serve()
 * (port, hostname, tls) and to its websocket section (maxPayloadLength,
 * idleTimeout, …); `pages` adds plain GET routes returning Responses.
 */
export function createApp({ routes, pages = {}, port = 3000, hostname = '127.0.0.1', tls, ...websocket }) {
  const table = Object.entries(routes).map(([path, ep]) => ({ path, match: compileRoute(path, 'brackets'), ep }));

  async function fetch(req, srv) {
    const url = new URL(req.url);
    if (pages[url.pathname] && req.method === 'GET') return pages[url.pathname](req);
    for (const { match, ep } of table) {
      const raw = match(url.pathname);
      if (!raw) continue;
      const query = Object.fromEntries(url.searchParams);
      if (ep.params) {
        const c = check(ep.params, raw);
        if (!c.ok) return json(400, { error: { code: 'INVALID_PARAMS', issues: c.issues } });
      }
      if (ep.query) {
        const c = check(ep.query, query);
        if (!c.ok) return json(400, { error: { code: 'INVALID_QUERY', issues: c.issues } });
      }
      const isWs = (req.headers.get('upgrade') || '').toLowerCase() === 'websocket';
      const wantsSse = /text\/event-stream/.test(req.headers.get('accept') || '');
      if (isWs && ep.mode !== 'unary') {
        if (srv.upgrade(req, { data: { ep, params: raw, query } })) return undefined;
        return json(400, { error: { code: 'BAD_UPGRADE' } });
      }
      if (ep.mode === 'server-stream' && wantsSse) return sse(ep, raw, query);
      if (ep.mode !== 'unary') {
        return new Response(`${ep.mode} endpoints are WebSocket-only\n`, { status: 426, headers: { upgrade: 'websocket' } });
      }
      return unary(ep, req, raw, query);
    }
    return json(404, { error: { code: 'NOT_FOUND' } });
  }

  async function unary(ep, req, params, query) {
    let body;
    if (ep.body) {
      try {
        body = await req.json();
      } catch {
        return json(400, { error: { code: 'INVALID_JSON' } });
      }
      const c = check(ep.body, body);
      if (!c.ok) return json(400, { error: { code: 'INVALID_BODY', issues: c.issues } });
    }
    const ctx = { params, queryParams: () => query, body };
    try {
      return json(200, await ep.handler(ctx));
    } catch (e) {
      return json(500, { error: { code: 'INTERNAL', message: String(e?.message ?? e) } });
    }
  }

  /** A server-stream over Server-Sent Events: each ctx.send is one event. */
  function sse(ep, params, query) {
    const enc = new TextEncoder();
    let closed = false;
    const stream = new ReadableStream({
      start(c) {
        const send = (text) => {
          if (!closed) c.enqueue(enc.encode(`data: ${text}\n\n`));
        };
        const ctx = context(ep, params, query, send, null);
        Promise.resolve()
          .then(() => ep.handler(ctx))
          .then(
            () => {
              if (!closed) c.close();
            },
            (e) => {
              if (closed) return;
              c.enqueue(enc.encode(`event: error\ndata: ${JSON.stringify({ code: 'INTERNAL', message: String(e?.message ?? e) })}\n\n`));
              c.close();
            },
          );
      },
      cancel() {
        closed = true;
      },
    });
    return new Response(stream, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
  }

  const server = serve({
    port,
    hostname,
    tls,
    fetch,
    websocket: {
      ...websocket,
      open(ws) {
        const { ep, params, query } = ws.data;
        const inbox = new Inbox();
        ws.data.inbox = inbox;
        const ctx = context(ep, params, query, (text) => ws.send(text), inbox);
        Promise.resolve()
          .then(() => ep.handler(ctx))
          .then((result) => {
              if (ws.readyState !== 1) return;
              if (ep.mode === 'client-stream' && ep.returns) {
                const c = check(ep.returns, result);
                if (!c.ok) throw new TypeError(`putnami: result: ${c.issues.map((i) => `${i.path}: ${i.message}`).join(', ')}`);
                ws.send(JSON.stringify(result));
              }
              ws.close(1000, '');
          })
          .catch((e) => {
            console.error('putnami: handler failed:', e?.message ?? e);
            if (ws.readyState === 1) ws.close(1011, 'internal error');
          });
      },
      message(ws, message) {
        const { ep, inbox } = ws.data;
        if (!ep.body?.stream) {
          ws.send(JSON.stringify({ error: { code: 'UNEXPECTED_MESSAGE', message: 'this endpoint takes no messages' } }));
          return;
        }
        let value;
        try {
          value = JSON.parse(typeof message === 'string' ? message : message.toString('utf8'));
        } catch {
          ws.send(JSON.stringify({ error: { code: 'INVALID_MESSAGE', message: 'not JSON', issues: [] } }));
          return;
        }
        const c = check(ep.body.schema, value);
        if (!c.ok) {
          ws.send(JSON.stringify({ error: { code: 'INVALID_MESSAGE', message: 'the message does not match the schema', issues: c.issues } }));
          return;
        }
        inbox.push(value);
      },
      close(ws) {
        ws.data.inbox?.end();
      },
    },
  });
  return server;
}
