// A thin ws-kit-shaped layer on Volley's serve(): typed `{ type, meta,
// payload }` envelopes validated by schema (message(), rpc()), a router
// (`.on`, `.rpc`, `.plugin`), request/response with correlation ids,
// deadlines and cancellation, pub/sub through adapters, and
// `createBunHandler(router, { authenticate })` for Bun.serve-shaped servers
// (Volley's serve() is one).
//
// Wire behaviour (ws-kit's error spec):
// - not JSON, no string `type`, or a `meta`/`payload` that is not an
//   object: ERROR { code: "INVALID_ARGUMENT" } (the connection stays open);
// - a payload failing its schema: ERROR INVALID_ARGUMENT with the issues in
//   `details`, or RPC_ERROR with the request's `meta.correlationId`;
// - a type with no handler: ERROR UNIMPLEMENTED;
// - an RPC not answered by its deadline (`meta.timeoutMs`, default 30 s):
//   RPC_ERROR DEADLINE_EXCEEDED, and a later reply is dropped (one-shot);
//   `$ws:abort` with the correlation id cancels it (RPC_ERROR CANCELLED);
// - ERROR messages from clients are ignored;
// - authenticate() returning nothing: HTTP 401 before the upgrade.
import { z, toObject } from './z.mjs';

export { z };

/** A message schema: `message(type, payload?, meta?)`. */
export function message(type, payload, meta) {
  return { type, payload: payload ? toObject(payload) : null, meta: meta ? toObject(meta) : null };
}

/** A request/response pair: `rpc(type, payload, responseType, responsePayload)`. */
export function rpc(type, payload, responseType, responsePayload) {
  const req = message(type, payload);
  req.response = message(responseType, responsePayload);
  return req;
}

/** Validation with these schemas (the built-in z; kept for ws-kit's API shape). */
export const withZod = () => (router) => router;

/**
 * In-process pub/sub: the engine's own topics (one encoding per publish,
 * fan-out on its workers).
 */
export const memoryPubSub = () => ({ name: 'memory', serveOptions: {} });

/**
 * Pub/sub across processes: the engine's Redis bridge. The server must be
 * started with the adapter's `serveOptions` (createBunHandler returns them).
 */
export const redisPubSub = ({ url }) => ({ name: 'redis', serveOptions: { pubsubBridge: url } });

/** `withPubSub({ adapter })`: enables ctx.publish and ctx.topics. */
export const withPubSub = ({ adapter }) => (router) => {
  router.pubsub = adapter;
  return router;
};

const envelope = (type, payload, meta = {}) => JSON.stringify({ type, meta: { timestamp: Date.now(), ...meta }, payload });

export function createRouter() {
  const handlers = new Map();
  const router = {
    pubsub: null,
    hooks: { open: [], close: [] },
    plugin(fn) {
      return fn(router) ?? router;
    },
    on(schema, handler) {
      handlers.set(schema.type, { schema, handler, rpc: false });
      return router;
    },
    rpc(schema, handler) {
      handlers.set(schema.type, { schema, handler, rpc: true });
      return router;
    },
    onOpen(fn) {
      router.hooks.open.push(fn);
      return router;
    },
    onClose(fn) {
      router.hooks.close.push(fn);
      return router;
    },
    handlers,
  };
  return router;
}

/**
 * The fetch and websocket handlers for a Bun.serve-shaped server, and the
 * serve options the pub/sub adapter needs.
 */
export function createBunHandler(router, { authenticate, defaultTimeoutMs = 30000, onError } = {}) {
  let server = null;
  const report = (e, ctx) => {
    if (onError) onError(e, ctx);
    else console.error('ws-kit:', e?.message ?? e);
  };

  function send(ws, type, payload, meta) {
    return ws.send(envelope(type, payload, meta));
  }

  function fail(ws, code, message, details, correlationId) {
    const payload = { code, message };
    if (details !== undefined) payload.details = details;
    if (correlationId !== undefined) send(ws, 'RPC_ERROR', payload, { correlationId });
    else send(ws, 'ERROR', payload);
  }

  function contextFor(ws, entry, msg, receivedAt) {
    const meta = msg.meta ?? {};
    const correlationId = entry.rpc ? meta.correlationId : undefined;
    const ctx = {
      type: msg.type,
      meta,
      payload: msg.payload,
      data: ws.data.conn,
      ws,
      receivedAt,
      send(schema, payload, extra = {}) {
        return send(ws, schema.type, schema.payload ? schema.payload.parse(payload ?? {}) : {}, extra);
      },
      error(code, message, details) {
        if (entry.rpc) {
          if (!settle()) return;
        }
        fail(ws, code, message, details, correlationId);
      },
      publish(topic, schema, payload) {
        if (!router.pubsub) throw new Error('ws-kit: publishing needs withPubSub()');
        const body = schema.payload ? schema.payload.parse(payload ?? {}) : {};
        return server.publish(topic, envelope(schema.type, body));
      },
      topics: {
        subscribe: (topic) => ws.subscribe(topic),
        unsubscribe: (topic) => ws.unsubscribe(topic),
        has: (topic) => ws.isSubscribed(topic),
      },
    };
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(ctx._timer);
      ws.data.inflight.delete(correlationId);
      return true;
    };
    if (entry.rpc) {
      const timeoutMs = Number.isFinite(meta.timeoutMs) && meta.timeoutMs > 0 ? meta.timeoutMs : defaultTimeoutMs;
      const abort = new AbortController();
      ctx.deadline = receivedAt + timeoutMs;
      ctx.timeRemaining = () => Math.max(0, ctx.deadline - Date.now());
      ctx.abortSignal = abort.signal;
      ctx.onCancel = (fn) => abort.signal.addEventListener('abort', fn, { once: true });
      ctx.reply = (schema, payload) => {
        const body = schema.payload ? schema.payload.parse(payload ?? {}) : {};
        if (!settle()) return 0; // one-shot: a late or second reply is dropped
        return send(ws, schema.type, body, { correlationId });
      };
      ctx.progress = (payload) => {
        if (!settled) send(ws, '$ws:rpc-progress', payload, { correlationId });
      };
      ctx._cancel = (code, message) => {
        if (!settle()) return;
        abort.abort();
        if (ws.readyState === 1) fail(ws, code, message, undefined, correlationId);
      };
      ctx._timer = setTimeout(() => ctx._cancel('DEADLINE_EXCEEDED', `no reply within ${timeoutMs} ms`), timeoutMs);
      ws.data.inflight.set(correlationId, ctx);
    }
    return ctx;
  }

  function onMessage(ws, raw) {
    const receivedAt = Date.now();
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
    } catch {
      return fail(ws, 'INVALID_ARGUMENT', 'Message is not valid JSON');
    }
    const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (!isObj(msg) || typeof msg.type !== 'string' || msg.type === '') {
      return fail(ws, 'INVALID_ARGUMENT', 'Invalid envelope: expected { type, meta, payload }');
    }
    if ((msg.meta !== undefined && !isObj(msg.meta)) || (msg.payload !== undefined && !isObj(msg.payload))) {
      return fail(ws, 'INVALID_ARGUMENT', 'Invalid envelope: meta and payload must be objects');
    }
    if (msg.type === 'ERROR') return undefined; // server-to-client only: ignored
    if (msg.type === '$ws:abort') {
      ws.data.inflight.get(msg.meta?.correlationId)?._cancel('CANCELLED', 'Cancelled by the client');
      return undefined;
    }
    const entry = router.handlers.get(msg.type);
    if (!entry) return fail(ws, 'UNIMPLEMENTED', `No handler for message type ${msg.type}`);
    const correlationId = msg.meta?.correlationId;
    if (entry.rpc && (typeof correlationId !== 'string' || correlationId === '')) {
      return fail(ws, 'INVALID_ARGUMENT', 'RPC requests need meta.correlationId');
    }
    if (entry.rpc && ws.data.inflight.has(correlationId)) {
      return fail(ws, 'ALREADY_EXISTS', 'A request with this correlationId is in flight', undefined, correlationId);
    }
    const parsed = (entry.schema.payload ?? toObject(null)).safeParse(msg.payload ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      return fail(ws, 'INVALID_ARGUMENT', 'Payload validation failed', { issues }, entry.rpc ? correlationId : undefined);
    }
    msg.payload = parsed.data;
    const ctx = contextFor(ws, entry, msg, receivedAt);
    Promise.resolve()
      .then(() => entry.handler(ctx))
      .catch((e) => {
        report(e, ctx);
        if (entry.rpc) ctx._cancel('INTERNAL', 'Internal error');
        else fail(ws, 'INTERNAL', 'Internal error');
      });
    return undefined;
  }

  return {
    /** Serve options the pub/sub adapter needs (the Redis bridge's URL). */
    options: router.pubsub?.serveOptions ?? {},
    async fetch(req, srv) {
      server = srv;
      const conn = authenticate ? await authenticate(req) : {};
      if (!conn) return new Response('Unauthorized\n', { status: 401 });
      if (srv.upgrade(req, { data: { conn, inflight: new Map() } })) return undefined;
      return new Response('Expected a WebSocket upgrade\n', { status: 426, headers: { upgrade: 'websocket' } });
    },
    websocket: {
      open(ws) {
        for (const fn of router.hooks.open) fn({ ws, data: ws.data.conn });
      },
      message: onMessage,
      close(ws, code, reason) {
        for (const ctx of ws.data.inflight.values()) ctx._cancel('CANCELLED', 'Connection closed');
        for (const fn of router.hooks.close) fn({ ws, data: ws.data.conn, code, reason });
      },
    },
  };
}
