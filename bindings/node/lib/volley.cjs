'use strict';
// Bun's serve() and ServerWebSocket on Node, over Volley's C ABI in
// event-queue mode. The engine's workers run the protocol and the fan-out;
// this thread watches one pipe, drains events in packed batches (one FFI
// call per batch, payloads read in place), calls the handlers, and sends
// back with one FFI call per send, corked so each worker is woken once per
// batch. Sends answer like Bun at once (bytes, -1, 0).
const net = require('node:net');
const fs = require('node:fs');
const { f, koffi, ABI_VERSION, SendStage } = require('./native.cjs');
const { Cookie, CookieMap } = require('./cookies.cjs');

// The packed records' layout, kinds, flags and codes: the library's own
// definitions (lib/wire.cjs is generated from them and checked by
// ffi/tests/wire.rs), never a copy kept here.
const W = require('./wire.cjs');
const K = {
  UPGRADE: W.EVENT_KIND_UPGRADE, REQUEST: W.EVENT_KIND_REQUEST, OPEN: W.EVENT_KIND_OPEN,
  MESSAGE: W.EVENT_KIND_MESSAGE, CLOSE: W.EVENT_KIND_CLOSE, DRAIN: W.EVENT_KIND_DRAIN,
  PING: W.EVENT_KIND_PING, PONG: W.EVENT_KIND_PONG, DROPPED: W.EVENT_KIND_DROPPED, TOPIC: W.EVENT_KIND_TOPIC,
};
const EV_BINARY = W.EVENT_BINARY;
const DATA_BY_ADDRESS = W.PACKED_DATA_BY_ADDRESS;
const TOPIC_BY_ADDRESS = W.PACKED_TOPIC_BY_ADDRESS;
const SEND_BINARY = W.SEND_BINARY;
const SEND_COMPRESS = W.SEND_COMPRESS;
const SEND_NO_COMPRESS = W.SEND_NO_COMPRESS;
const STOP_GRACEFUL = W.STOP_GRACEFUL;
const STOP_NO_WAIT = W.STOP_NO_WAIT;
const STOP_LISTEN_ONLY = W.STOP_LISTEN_ONLY;
const RESULT_OK = W.RESULT_OK;
const RESULT_CLOSED = W.RESULT_CLOSED;
const RESULT_STOPPED = W.RESULT_STOPPED;
// Record fields, as byte offsets and (for the 32-bit view) word offsets.
const R_KIND = W.RECORD_KIND;
const R_FLAGS = W.RECORD_FLAGS;
const R_CODE = W.RECORD_CODE;
const R_KEY_W = W.RECORD_KEY / 4;
const R_GEN_W = W.RECORD_GENERATION / 4;
const R_USER_W = W.RECORD_USER / 4;
const R_DATA_LEN_W = W.RECORD_DATA_LEN / 4;
const R_TOPIC_LEN_W = W.RECORD_TOPIC_LEN / 4;
const R_HEADER = W.RECORD_HEADER;
const R_PAD = W.RECORD_ALIGN - 1;
if ([W.RECORD_KEY, W.RECORD_GENERATION, W.RECORD_USER, W.RECORD_DATA_LEN, W.RECORD_TOPIC_LEN].some((o) => o % 4)) {
  throw new Error('volley: lib/wire.cjs puts a 32-bit record field off a 4-byte boundary; this binding reads them as words');
}
const POLL_BYTES = 1 << 20;
/** Bytes an event-stream body may have waiting before its pump pauses. */
const STREAM_SLACK = 64 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const INLINE_MAX = W.PACKED_INLINE_MAX;
const TOPICS = Symbol('volley.eventStream');
/** Bun's dedicated compressor sizes, as window bits (uWebSockets'
 * DEDICATED_COMPRESSOR_3KB … _256KB). */
const COMPRESSOR_WINDOW_BITS = { '3KB': 9, '4KB': 9, '8KB': 10, '16KB': 11, '32KB': 12, '64KB': 13, '128KB': 14, '256KB': 15 };
/** Where server.publish's volley_publish_result is written (one thread). */
const PUBLISH_RESULT = Buffer.alloc(32);
const STILL_WRITING = Symbol('volley.stillWriting');
/** The send stage (volley_send_stage, then the payload): each send writes
 * the connection, flags, length and bytes here and passes its address. A
 * Buffer this size has its own backing store, which V8 never moves, and
 * STAGE lives as long as the module. */
const STAGE_HEADER = koffi.sizeof(SendStage);
const STAGE_FIELDS = {
  gen: koffi.offsetof(SendStage, 'ws') + koffi.offsetof('volley_ws', 'generation'),
  key: koffi.offsetof(SendStage, 'ws') + koffi.offsetof('volley_ws', 'key'),
  reserved: koffi.offsetof(SendStage, 'ws') + koffi.offsetof('volley_ws', 'reserved'),
  flags: koffi.offsetof(SendStage, 'flags'),
  len: koffi.offsetof(SendStage, 'len'),
};
if (Object.values(STAGE_FIELDS).some((o) => o % 4) || STAGE_HEADER % 4) {
  throw new Error('volley: volley_send_stage has a field off a 4-byte boundary; this binding writes them as words');
}
const STAGE_CAP = 64 * 1024;
const STAGE = Buffer.allocUnsafeSlow(STAGE_HEADER + STAGE_CAP);
const STAGE_AT = Number(koffi.address(STAGE));
const STAGE_W = new Uint32Array(STAGE.buffer, STAGE.byteOffset, STAGE_HEADER / 4);
const S_GEN_LO = STAGE_FIELDS.gen / 4;
const S_GEN_HI = S_GEN_LO + 1;
const S_KEY = STAGE_FIELDS.key / 4;
const S_FLAGS = STAGE_FIELDS.flags / 4;
const S_LEN = STAGE_FIELDS.len / 4;
STAGE_W[STAGE_FIELDS.reserved / 4] = 0;
/** The payload's place in the stage. */
const STAGE_DATA = new Uint8Array(STAGE.buffer, STAGE.byteOffset + STAGE_HEADER, STAGE_CAP);
/** Strings this long always fit encoded (3 bytes per UTF-16 unit at most). */
const STAGE_CHARS = STAGE_CAP / 3;
const encoder = new TextEncoder();

/** The text message most recently handed to a handler and where its UTF-8
 * bytes lie (a poll buffer, until that buffer's next poll): sending or
 * echoing an equal string copies those bytes instead of encoding it again
 * (an echo's and a relay's case; equal strings have equal UTF-8). A
 * record's payload starts on a word (records are 8-byte aligned, their
 * header a multiple of 4), and so does the stage's: the copy goes by
 * words, the last one taking up to 3 bytes of the record's padding. */
let recvText = null;
let recvWords = null;
let recvWord = 0;
let recvLen = 0;
if (R_HEADER % 4 || W.RECORD_ALIGN % 4 || STAGE_CAP % 4) {
  throw new Error('volley: a record payload or the stage is off a word boundary; this binding copies them by words');
}
const STAGE_DATA_W = new Uint32Array(STAGE.buffer, STAGE.byteOffset + STAGE_HEADER, STAGE_CAP / 4);

/** Up to this many words a loop copies faster than a native call (which
 * costs a view of the source first). */
const LOOP_WORDS = 64;

/** Forget the text message last received if its bytes are in `words`
 * (a poll buffer about to be rewritten, or let go). */
function forgetReceivedIn(words) {
  if (recvWords === words) recvText = recvWords = null;
}

/** Stage the payload of the text message last received (see recvText). */
function stageReceived() {
  const src = recvWords;
  const at = recvWord;
  const words = (recvLen + 3) >>> 2;
  if (words <= LOOP_WORDS) {
    for (let i = 0; i < words; i++) STAGE_DATA_W[i] = src[at + i];
  } else {
    STAGE_DATA_W.set(src.subarray(at, at + words));
  }
  return recvLen;
}

/** Send what the stage holds (`n` payload bytes) to `ws`. */
function sendStaged(srv, ws, n, flags) {
  STAGE_W[S_GEN_LO] = ws._genLo;
  STAGE_W[S_GEN_HI] = ws._genHi;
  STAGE_W[S_KEY] = ws._key;
  STAGE_W[S_FLAGS] = flags;
  STAGE_W[S_LEN] = n;
  return f.send_staged(srv, STAGE_AT);
}
const utf8Slice = typeof Buffer.prototype.utf8Slice === 'function'
  ? (b, s, e) => b.utf8Slice(s, e)
  : (b, s, e) => b.toString('utf8', s, e);

if (f.abi_version() !== ABI_VERSION) {
  throw new Error(`volley: libvolley ABI ${f.abi_version()}, this binding speaks ${ABI_VERSION}`);
}

/** Bun's `compress` argument for a publish: compressed (when the client
 * agreed to permessage-deflate) unless `false`. */
function compressFlags(compress) {
  return compress === true ? SEND_COMPRESS : compress === false ? SEND_NO_COMPRESS : 0;
}

/** Bun's `compress` argument for a send and a ws.publish: compressed only
 * when `true` (checked on Bun 1.4.5: `ws.send(m)` and `ws.publish(t, m)` go
 * out uncompressed, with `true` compressed, while `server.publish(t, m)`
 * compresses). */
function sendCompressFlags(compress) {
  return compress === true ? SEND_COMPRESS : SEND_NO_COMPRESS;
}

/** A Blob's bytes cannot be read synchronously on Node, and Bun's send
 * answers at once: refuse it by name rather than send something else. */
function refuseBlob(data, what) {
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    throw new TypeError(`volley: ${what}(Blob) is not supported on Node (a Blob's bytes cannot be read synchronously): pass new Uint8Array(await blob.arrayBuffer())`);
  }
}

/** Bun's close(code): 0, 1005 and 1006 send a close frame without a code;
 * a reason past 123 bytes is cut at a character boundary. */
function closeArgs(code, reason) {
  if (code === undefined) code = 1000;
  code = Number(code);
  if (code === 0 || code === 1005 || code === 1006) return [1005, ''];
  let r = reason === undefined ? '' : String(reason);
  if (Buffer.byteLength(r) > 123) {
    const b = Buffer.from(r).subarray(0, 124);
    let n = 123;
    // Back to the start of the character that crosses byte 123.
    while (n > 0 && (b[n] & 0xc0) === 0x80) n--;
    r = b.toString('utf8', 0, n);
  }
  return [code, r];
}

/** A Buffer over the same memory (no copy) for any BufferSource. */
function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return Buffer.from(data);
  throw new TypeError('volley: data must be a string, a Buffer, an ArrayBuffer or a typed array');
}

const BINARY_TYPES = ['nodebuffer', 'arraybuffer', 'uint8array', 'blob'];

/** Bytes `start..end` of `b` as their own memory, in `type` (a socket's
 * `binaryType`). Never a slice of Node's shared pool or of the event
 * buffer: code written for Bun reads `message.buffer`, which must hold
 * exactly this message (a pooled Buffer's `.buffer` is 8 KiB that may
 * hold other clients' bytes). `allocUnsafeSlow` gives a Buffer with an
 * ArrayBuffer of its own, exactly this long; the copy fills all of it. */
function ownBytes(b, start, end, type) {
  const m = Buffer.allocUnsafeSlow(end - start);
  b.copy(m, 0, start, end);
  return asBinaryType(m, type);
}

/** `m` (a Buffer with an ArrayBuffer of its own) in `type`. */
function asBinaryType(m, type) {
  if (type === 'nodebuffer') return m;
  if (type === 'arraybuffer') return m.buffer;
  if (type === 'uint8array') return new Uint8Array(m.buffer);
  return new Blob([m]);
}

/** A body chunk (bytes, or a string some streams yield) as a Buffer. */
function chunkBuffer(value) {
  return typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function bytes(s) {
  const b = Buffer.from(String(s), 'utf8');
  return { data: b, len: b.length };
}

/** A route request's `cookies` (Bun's BunRequest): a CookieMap over its
 * Cookie header, made on first use and kept on the pending request, whose
 * answer then carries the changes (withCookies). `req.clone()` keeps
 * `params` and `cookies`, as on Bun. */
function routeCookies(req, pending) {
  if (!pending) return;
  Object.defineProperty(req, 'cookies', {
    enumerable: true,
    get() {
      if (!pending.cookies) pending.cookies = new CookieMap(req.headers.get('cookie') || '');
      return pending.cookies;
    },
  });
  const clone = req.clone;
  Object.defineProperty(req, 'clone', {
    value() {
      const c = clone.call(req);
      Object.defineProperty(c, 'params', { value: req.params, enumerable: true });
      Object.defineProperty(c, 'cookies', { get: () => req.cookies, enumerable: true });
      return c;
    },
  });
}

/** Headers with the Set-Cookie values of the request's cookie changes
 * appended after the ones already there (Bun's order); the input as it was
 * when nothing changed. */
function withCookies(init, pending) {
  const set = pending && pending.cookies ? pending.cookies.toSetCookieHeaders() : [];
  if (set.length === 0) return init;
  const h = new Headers(init || undefined);
  for (const v of set) h.append('set-cookie', v);
  return h;
}

/** Headers (any HeadersInit or a Headers) as the C ABI's header array. */
function headerArray(init) {
  if (!init) return [[], 0];
  const list = [];
  const h = init instanceof Headers ? init : new Headers(init);
  for (const [k, v] of h) list.push({ name: bytes(k), value: bytes(v) });
  return [list, list.length];
}

// The library's log records (warnings and errors: a TLS configuration
// refused, a panic caught at the C boundary, an answer dropped) wait in its
// queue and are taken here on this thread, never by a callback on a worker
// thread; they go to the console. Taken on each event batch, at serve(),
// and once a second (unref'd: it never keeps the process alive).
f.set_log(null, null, Number(process.env.VOLLEY_LOG_LEVEL ?? 2));
const LOG_BUF = Buffer.alloc(4096);
function takeLogs() {
  const level = [0];
  for (;;) {
    const n = Number(f.log_take(level, LOG_BUF, LOG_BUF.length));
    if (n === 0) return;
    const text = LOG_BUF.toString('utf8', 0, Math.min(n, LOG_BUF.length));
    if (level[0] <= 1) console.error(text);
    else if (level[0] === 2) console.warn(text);
    else console.log(text);
  }
}
setInterval(takeLogs, 1000).unref();

function check(r, what) {
  if (r !== RESULT_OK && r !== RESULT_CLOSED) throw new Error(`volley: ${what}: ${f.error_message(r)}`);
  return r === RESULT_OK;
}

/** Read a packed request (see volley_server_poll_packed): its fields in
 * the library's order (W.REQUEST_FIELDS), each a length-prefixed string or a
 * counted list of them. */
function parseRequest(buf, start) {
  let p = start;
  const u32 = () => {
    const v = buf.readUInt32LE(p);
    p += 4;
    return v;
  };
  const bytes = () => {
    const n = u32();
    const b = buf.subarray(p, p + n);
    p += n;
    return b;
  };
  const r = {};
  for (const [name, kind] of W.REQUEST_FIELDS) {
    if (kind === 'list') {
      const items = [];
      for (let i = 0, n = u32(); i < n; i++) items.push(bytes());
      r[name] = items;
    } else {
      r[name] = bytes();
    }
  }
  const text = (b) => b.toString('utf8');
  const headers = [];
  for (let i = 0; i + 1 < r.headers.length; i += 2) headers.push([text(r.headers[i]), r.headers[i + 1].toString('latin1')]);
  const params = {};
  for (let i = 0; i + 1 < r.params.length; i += 2) params[text(r.params[i])] = text(r.params[i + 1]);
  return {
    method: text(r.method),
    path: text(r.path),
    query: text(r.query),
    headers,
    params,
    protocols: r.protocols.map(text),
    address: text(r.address),
    secure: r.secure.length > 0,
    body: r.body.length > 0 ? Buffer.from(r.body) : null,
  };
}

function splitAddress(a) {
  const i = a.lastIndexOf(':');
  if (i < 0) return { address: a, port: 0, family: 'IPv4' };
  let host = a.slice(0, i);
  const v6 = host.startsWith('[');
  if (v6) host = host.slice(1, -1);
  return { address: host, port: Number(a.slice(i + 1)), family: v6 ? 'IPv6' : 'IPv4' };
}

/** Route patterns: `/literal`, `/:param`, a final `/*`. */
function compileRoutes(routes) {
  return Object.entries(routes || {}).map(([pattern, value]) => {
    const segs = pattern.split('/').filter(Boolean);
    return { pattern, segs, value };
  });
}

function matchRoute(table, path) {
  const parts = path.split('/').filter(Boolean);
  // Exact patterns win over parameters, as in Bun.
  let best = null;
  for (const r of table) {
    const params = {};
    let ok = true;
    let i = 0;
    let score = 0;
    for (; i < r.segs.length; i++) {
      const s = r.segs[i];
      if (s === '*') {
        params['*'] = parts.slice(i).map(decodeURIComponent).join('/');
        i = parts.length;
        break;
      }
      if (i >= parts.length) {
        ok = false;
        break;
      }
      if (s.startsWith(':')) params[s.slice(1)] = decodeURIComponent(parts[i]);
      else if (s === parts[i]) score++;
      else {
        ok = false;
        break;
      }
    }
    if (ok && i === parts.length && (!best || score > best.score)) best = { route: r, params, score };
  }
  return best;
}

class ServerWebSocket {
  constructor(server, key, generation, index, data, remoteAddress) {
    this._server = server;
    this._key = key;
    this._gen = generation;
    // The generation's two 32-bit halves, as the send stage takes them.
    this._genLo = generation >>> 0;
    this._genHi = Math.floor(generation / 4294967296) >>> 0;
    this._index = index;
    this._state = 0;
    this._topics = new Set();
    this._remote = remoteAddress;
    this.data = data;
    this._binaryType = 'nodebuffer';
    this._closeCalled = false;
    this._paused = false;
  }

  /** How binary messages arrive: 'nodebuffer' (Buffer, the default),
   * 'arraybuffer', 'uint8array' or 'blob', as on Bun; anything else throws
   * Bun's error. */
  get binaryType() {
    return this._binaryType;
  }

  set binaryType(t) {
    if (!BINARY_TYPES.includes(t)) {
      throw new Error('binaryType must be either "uint8array", "arraybuffer", "nodebuffer" or "blob"');
    }
    this._binaryType = t;
  }

  /** Bun's: 3 as soon as close() or terminate() was called. */
  get readyState() {
    return this._closeCalled ? 3 : this._state;
  }

  get remoteAddress() {
    // Undefined on a Unix socket, as in Bun (its peers have no address).
    return this._remote ? splitAddress(this._remote).address : undefined;
  }

  _ws() {
    return { generation: this._gen, key: this._key, reserved: 0 };
  }

  send(data, compress) {
    if (typeof data === 'string') return this.sendText(data, compress);
    return this.sendBinary(data, compress);
  }

  /** Bun's numbers: the message's bytes when sent (0 for an empty one), -1
   * when queued behind backpressure, 0 when dropped. */
  sendText(text, compress) {
    const s = this._server;
    if (s._srv === null) return 0; // stopped: dropped, as on Bun
    if (!s._draining) s._ensureCork();
    const str = typeof text === 'string' ? text : String(text);
    let r;
    let n;
    if (str === recvText) {
      // The bytes it was decoded from: no encoding (see recvText).
      n = stageReceived();
      r = sendStaged(s._srv, this, n, sendCompressFlags(compress));
    } else if (str.length <= STAGE_CHARS) {
      n = encoder.encodeInto(str, STAGE_DATA).written;
      r = sendStaged(s._srv, this, n, sendCompressFlags(compress));
    } else {
      n = Buffer.byteLength(str);
      r = f.send_text(s._srv, this._key, this._gen, str, n, sendCompressFlags(compress));
    }
    if (r <= -100) throw new Error(`volley: send: ${f.error_message(-r)}`);
    return r > 0 ? n : r;
  }

  sendBinary(data, compress) {
    refuseBlob(data, 'sendBinary');
    const s = this._server;
    if (s._srv === null) return 0;
    if (!s._draining) s._ensureCork();
    const b = toBuffer(data);
    let r;
    if (b.length <= STAGE_CAP) {
      STAGE_DATA.set(b);
      r = sendStaged(s._srv, this, b.length, SEND_BINARY | sendCompressFlags(compress));
    } else {
      r = f.send_bytes(s._srv, this._key, this._gen, b, b.length, SEND_BINARY | sendCompressFlags(compress));
    }
    if (r <= -100) throw new Error(`volley: send: ${f.error_message(-r)}`);
    return r > 0 ? b.length : r;
  }

  publish(topic, data, compress) {
    if (typeof data === 'string') return this.publishText(topic, data, compress);
    return this.publishBinary(topic, data, compress);
  }

  /** Bun's number: the message's bytes, or 0 when nobody else is
   * subscribed (checked on Bun 1.4.5: 0 when only the publisher is). */
  publishText(topic, text, compress) {
    if (this._server._srv === null) return 0;
    // In (or after) the close handler the connection is gone from the
    // engine, which refuses a publish "as" it (CLOSED). Bun delivers it (its
    // docs' chat room announces "has left the chat" from close): the socket
    // is no longer subscribed, so a server publish reaches the same peers.
    if (this._state === 3) return this._server.publish(topic, String(text), compress);
    this._server._ensureCork();
    const t = String(topic);
    const str = String(text);
    const len = Buffer.byteLength(str);
    const r = f.ws_publish_text(this._server._srv, this._key, this._gen, t, Buffer.byteLength(t), str, len, sendCompressFlags(compress));
    return r > 0 && this._othersOn(t) ? len : 0;
  }

  publishBinary(topic, data, compress) {
    refuseBlob(data, 'publishBinary');
    if (this._server._srv === null) return 0;
    if (this._state === 3) return this._server.publish(topic, toBuffer(data), compress);
    this._server._ensureCork();
    const t = String(topic);
    const b = toBuffer(data);
    const r = f.ws_publish_bytes(
      this._server._srv, this._key, this._gen, t, Buffer.byteLength(t), b, b.length, SEND_BINARY | sendCompressFlags(compress));
    return r > 0 && this._othersOn(t) ? b.length : 0;
  }

  /** Is someone besides this socket subscribed to `t` (the engine reports
   * the workers a publish went to, which counts the publisher's own)? */
  _othersOn(t) {
    if (!this._topics.has(t)) return true;
    return this._server.subscriberCount(t) > 1;
  }

  /** Bun's: true once subscribed (also when already), false when the
   * socket is not open. */
  subscribe(topic) {
    const t = String(topic);
    if (this._state !== 1 || this._server._srv === null) return false;
    if (this._topics.has(t)) return true;
    this._server._ensureCork();
    if (!check(f.subscribe(this._server._srv, this._ws(), t, Buffer.byteLength(t)), 'subscribe')) return false;
    this._topics.add(t);
    return true;
  }

  /** Bun's: true when it was subscribed, false otherwise. */
  unsubscribe(topic) {
    const t = String(topic);
    if (!this._topics.delete(t)) return false;
    if (this._state === 3 || this._server._srv === null) return true;
    this._server._ensureCork();
    check(f.unsubscribe(this._server._srv, this._ws(), t, Buffer.byteLength(t)), 'unsubscribe');
    return true;
  }

  isSubscribed(topic) {
    return this._topics.has(String(topic));
  }

  get subscriptions() {
    return [...this._topics];
  }

  cork(callback) {
    const s = this._server;
    f.cork(s._srv);
    try {
      return callback(this);
    } finally {
      f.uncork(s._srv);
    }
  }

  /** Bun's close: 0, 1005 and 1006 send a close frame without a code, a
   * long reason is cut at a character boundary, and readyState is 3 at
   * once. A code no endpoint may send (999, 1004, 5000…) throws RangeError
   * (Bun puts it on the wire, and the peer fails the connection). */
  close(code, reason) {
    if (this._state !== 1 || this._closeCalled || this._server._srv === null) return;
    const [c, r] = closeArgs(code, reason);
    this._server._ensureCork();
    const res = f.close(this._server._srv, this._ws(), c, r, Buffer.byteLength(r));
    if (res !== RESULT_OK && res !== RESULT_CLOSED) throw new RangeError(`volley: close(${code}): ${f.error_message(res)}`);
    this._closeCalled = true;
  }

  terminate() {
    if (this._state === 3 || this._server._srv === null) return;
    this._server._ensureCork();
    f.terminate(this._server._srv, this._ws());
    this._closeCalled = true;
  }

  /** Bun's number: the payload's bytes (0 for none) when sent, else 0. */
  ping(data) {
    refuseBlob(data, 'ping');
    const b = data === undefined ? Buffer.alloc(0) : typeof data === 'string' ? Buffer.from(data) : toBuffer(data);
    if (this._server._srv === null) return 0;
    this._server._ensureCork();
    return f.ping(this._server._srv, this._ws(), b, b.length) === RESULT_OK ? b.length : 0;
  }

  pong(data) {
    refuseBlob(data, 'pong');
    const b = data === undefined ? Buffer.alloc(0) : typeof data === 'string' ? Buffer.from(data) : toBuffer(data);
    if (this._server._srv === null) return 0;
    this._server._ensureCork();
    return f.pong(this._server._srv, this._ws(), b, b.length) === RESULT_OK ? b.length : 0;
  }

  getBufferedAmount() {
    if (this._server._srv === null) return 0;
    return Number(f.buffered(this._server._srv, this._ws()));
  }

  /** Bun's pause(): no more message events until resume(); the client is
   * then held back by TCP. */
  pause() {
    if (this._state === 3 || this._server._srv === null) return;
    if (f.pause(this._server._srv, this._ws()) === RESULT_OK) this._paused = true;
  }

  resume() {
    if (this._server._srv === null) return;
    this._paused = false;
    if (this._state !== 3) f.resume(this._server._srv, this._ws());
  }

  get isPaused() {
    return this._paused;
  }

  /** The names Volley had before Bun added pause()/resume(). */
  pauseReading() {
    this.pause();
  }

  resumeReading() {
    this.resume();
  }
}

class Server {
  constructor(options) {
    if (!options || typeof options !== 'object') throw new TypeError('volley: serve() needs options');
    // Options Bun has and Volley cannot honour are refused by name, never
    // accepted and ignored.
    if (options.unix !== undefined && typeof options.unix !== 'string') {
      throw new TypeError('volley: serve: unix must be a path (a string)');
    }
    if (options.unix !== undefined && options.port !== undefined) {
      // Bun ignores port beside unix; here nothing is accepted and ignored.
      throw new TypeError('volley: serve: port does not apply with unix (a Unix socket has no port)');
    }
    // A specific IPv6 address is IPv6-only already; on '::' (every
    // interface, IPv4 too on Linux) Volley cannot drop IPv4.
    if (options.ipv6Only && !(typeof options.hostname === 'string' && options.hostname.includes(':') && options.hostname !== '::')) {
      throw new TypeError("volley: serve: ipv6Only is supported only with a specific IPv6 hostname (such as '::1'), not with '::' or IPv4");
    }
    this._options = options;
    this._id = options.id === undefined || options.id === null ? '' : String(options.id);
    // Bun's: true unless NODE_ENV is production (an object, such as
    // { hmr }, counts as true). Only reported: Volley never serves Bun's
    // development error pages, which show stack traces.
    this._development = options.development === undefined
      ? process.env.NODE_ENV !== 'production'
      : Boolean(options.development);
    this._pendingRequests = 0;
    this._ws = options.websocket || null;
    const w0 = this._ws || {};
    this._onMessage = typeof w0.message === 'function' ? w0.message : null;
    this._routes = compileRoutes(options.routes);
    this._fetch = options.fetch || null;
    this._error = options.error || null;
    this._sockets = [null];
    this._free = [];
    this._open = 0;
    this._pending = new WeakMap();
    this._corked = false;
    this._draining = false;
    this._stopping = null;
    // Records are 8-byte aligned: read their headers through a word view.
    const ab = new ArrayBuffer(POLL_BYTES);
    this._buf = Buffer.from(ab);
    this._u32 = new Uint32Array(ab);
    this._unix = options.unix;
    this._hostname = this._unix === undefined ? options.hostname || '0.0.0.0' : undefined;

    const o = {};
    f.options_init_sized(o, f.options_size);
    const env = Number(process.env.PORT || process.env.NODE_PORT || 3000);
    o.port = options.port === undefined ? env : Number(options.port);
    o.host = this._hostname || '0.0.0.0';
    if (this._unix !== undefined) {
      // Bun's unix: a Unix stream socket instead of TCP; the server has no
      // port or hostname, and removes its socket file when it stops.
      o.unix_path = this._unix;
      o.port = 0;
    }
    o.routes = null;
    o.routes_len = 0;
    if (options.workers !== undefined) o.workers = options.workers;
    // Bun's reusePort: share the port with other processes (SO_REUSEPORT);
    // without it the port is this server's alone ("address in use").
    if (options.reusePort !== undefined) o.reuse_port = options.reusePort ? 1 : 0;
    if (options.maxRequestBodySize !== undefined) o.max_body_bytes = options.maxRequestBodySize;
    // Bun's HTTP idleTimeout (seconds, 0 disables): the time a connection
    // may take to send a request, and a keep-alive one to send its next.
    if (options.idleTimeout !== undefined) {
      const t = options.idleTimeout;
      if (typeof t !== 'number' || !(t >= 0) || t > 255) {
        throw new TypeError('volley: serve: idleTimeout is a number of seconds from 0 to 255');
      }
      o.handshake_timeout_ms = t === 0 ? 0xffffffff : Math.round(t * 1000);
    }
    if (options.pubsubBridge) o.pubsub_bridge = String(options.pubsubBridge);
    const w = this._ws || {};
    if (w.maxPayloadLength !== undefined) o.max_payload_length = w.maxPayloadLength;
    if (w.idleTimeout !== undefined) o.idle_timeout_ms = Math.round(w.idleTimeout * 1000);
    if (w.backpressureLimit !== undefined) o.backpressure_limit = w.backpressureLimit;
    if (w.closeOnBackpressureLimit !== undefined) o.close_on_backpressure_limit = !!w.closeOnBackpressureLimit;
    if (w.sendPings !== undefined) o.send_pings = !!w.sendPings;
    if (w.publishToSelf !== undefined) o.publish_to_self = !!w.publishToSelf;
    const pmd = w.perMessageDeflate;
    if (pmd) {
      // Bun's compressors: 'shared' (true), 'dedicated' ('256KB'), or a
      // dedicated one of a size ('3KB'…'128KB'), which is its window: the
      // server's window bits as uWebSockets sizes them. A decompressor's
      // size does not narrow the window clients may use (a larger window
      // always inflates).
      const mode = (v, what) => {
        if (v === false || v === 'disable') return [0, 15];
        if (v === true || v === 'shared') return [1, 15];
        if (v === 'dedicated') return [2, 15];
        if (typeof v === 'string' && v in COMPRESSOR_WINDOW_BITS) return [2, COMPRESSOR_WINDOW_BITS[v]];
        throw new TypeError(`volley: serve: websocket.perMessageDeflate.${what} must be a boolean, 'disable', 'shared', 'dedicated' or a size ('3KB' to '256KB'), not ${JSON.stringify(v)}`);
      };
      const [c, bits] = pmd === true ? [1, 15] : mode(pmd.compress === undefined ? true : pmd.compress, 'compress');
      const [d] = pmd === true ? [1] : mode(pmd.decompress === undefined ? true : pmd.decompress, 'decompress');
      o.deflate_compress = c;
      o.deflate_decompress = d;
      o.deflate_max_window_bits = bits;
      if (pmd.threshold !== undefined) o.deflate_threshold = pmd.threshold;
    }
    if (Array.isArray(options.tls)) {
      throw new TypeError('volley: serve: tls as an array (several certificates by server name) is not supported; give one { cert, key }');
    }
    if (options.tls) {
      // As on Bun: a string or bytes are the PEM itself, a file object
      // (Bun.file's, or anything with a path) names a file, an array is a
      // chain (concatenated).
      const pem = (v, what) => {
        if (Array.isArray(v)) return Buffer.concat(v.map((x) => pem(x, what)));
        if (typeof v === 'string') return Buffer.from(v);
        if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return Buffer.from(toBuffer(v));
        if (v && typeof v === 'object' && typeof (v.path ?? v.name) === 'string') return fs.readFileSync(v.path ?? v.name);
        throw new TypeError(`volley: serve: tls.${what} must be PEM text, bytes, a file object or an array of them`);
      };
      const cert = pem(options.tls.cert, 'cert');
      const key = pem(options.tls.key, 'key');
      o.tls_cert_pem = cert;
      o.tls_cert_pem_len = cert.length;
      o.tls_key_pem = key;
      o.tls_key_pem_len = key.length;
      this._tls = true;
    }
    const out = [null];
    const r = f.server_new(o, null, null, out);
    takeLogs();
    if (r !== RESULT_OK) {
      const detail = f.last_error();
      throw new Error(`volley: serve: ${f.error_message(r)}${detail ? `: ${detail}` : ''}`);
    }
    this._srv = out[0];
    this.port = this._unix === undefined ? f.server_port(this._srv) : undefined;
    const fd = [0];
    check(f.server_fd(this._srv, fd), 'fd');
    // Our own descriptor for libuv (the server keeps and closes its own).
    this._watch = new net.Socket({ fd: f.dup(fd[0]), readable: true, writable: false });
    this._watch.on('data', () => this._drain());
    this._watch.on('error', (e) => this._report(e));
    this._drain();
  }

  get hostname() {
    return this._hostname;
  }

  get url() {
    if (this._unix !== undefined) return new URL(`unix://${this._unix}`);
    const host = this._hostname === '0.0.0.0' ? 'localhost' : this._hostname;
    return new URL(`${this._tls ? 'https' : 'http'}://${host}:${this.port}/`);
  }

  get pendingWebSockets() {
    return this._open;
  }

  get development() {
    return this._development;
  }

  get id() {
    return this._id;
  }

  get protocol() {
    return this._tls ? 'https' : 'http';
  }

  /** HTTP requests (and upgrades) whose answer has not been given yet. */
  get pendingRequests() {
    return this._pendingRequests;
  }

  /** Let the process exit while this server runs (Node's unref), or not. */
  unref() {
    if (this._watch) this._watch.unref();
  }

  ref() {
    if (this._watch) this._watch.ref();
  }

  /** Bun's reload: new handlers (fetch, routes, error, websocket) for what
   * comes next; the listener, port and options stay. */
  reload(options) {
    if (!options || typeof options !== 'object') throw new TypeError('volley: reload() needs options');
    if (options.fetch !== undefined) this._fetch = options.fetch;
    if (options.routes !== undefined) this._routes = compileRoutes(options.routes);
    if (options.error !== undefined) this._error = options.error;
    if (options.websocket !== undefined) {
      this._ws = options.websocket;
      this._onMessage = this._ws && typeof this._ws.message === 'function' ? this._ws.message : null;
    }
    return this;
  }

  /** Bun's server.fetch: run a request through the routes and fetch
   * handler, as if it had come in (it cannot be upgraded). */
  fetch(request) {
    const req = typeof request === 'string' ? new Request(request) : request;
    return Promise.resolve()
      .then(() => this._route(req))
      .then((res) => {
        // Bun 1.4.5 rejects the same way when the handler gives nothing.
        if (res === undefined || res === null) throw new Error('fetch() returned an empty value');
        return res;
      });
  }

  /** Bun's server.timeout: a request not answered within `seconds` has
   * its connection closed (0 clears it). */
  timeout(req, seconds) {
    const pending = this._pending.get(req);
    if (!pending || pending.answered) return;
    if (pending.timer) clearTimeout(pending.timer);
    pending.timer = null;
    if (!(seconds > 0)) return;
    pending.timer = setTimeout(() => {
      pending.timer = null;
      if (pending.answered || !this._srv) return;
      pending.answered = true;
      this._pendingRequests--;
      this._ensureCork();
      f.terminate(this._srv, { generation: pending.generation, key: pending.key, reserved: 0 });
    }, seconds * 1000);
    pending.timer.unref();
  }

  /** Bun's closeIdleConnections: close keep-alive HTTP connections
   * between requests; WebSockets and requests in flight stay. Returns how
   * many were closed. */
  closeIdleConnections() {
    if (this._srv === null) return 0;
    const n = [0];
    check(f.close_idle(this._srv, n), 'closeIdleConnections');
    return Number(n[0]);
  }

  [Symbol.dispose]() {
    this.stop(true);
  }

  // ---- batching -------------------------------------------------------

  /** Sends outside a drained batch (timers, promises) are corked until the
   * end of the current tick: one wake-up per worker, not one per send. */
  _ensureCork() {
    if (this._draining || this._corked || !this._srv) return;
    this._corked = true;
    f.cork(this._srv);
    queueMicrotask(() => {
      this._corked = false;
      if (this._srv) f.uncork(this._srv);
    });
  }

  _drain() {
    takeLogs();
    if (this._draining || !this._srv) return;
    this._draining = true;
    f.cork(this._srv);
    try {
      for (;;) {
        forgetReceivedIn(this._u32); // rewritten now
        const used = f.poll_packed(this._srv, this._buf, POLL_BYTES);
        if (used <= 0) break;
        this._dispatch(used);
        if (used < POLL_BYTES / 2) break;
      }
    } finally {
      f.uncork(this._srv);
      this._draining = false;
    }
  }

  _field(p, len, byAddress) {
    if (!byAddress) return [this._buf, p];
    const copy = Buffer.allocUnsafeSlow(len);
    f.copy(copy, this._buf.readBigUInt64LE(p), len);
    return [copy, 0];
  }

  _dispatch(used) {
    const buf = this._buf;
    const u32 = this._u32;
    const onMessage = this._onMessage;
    let off = 0;
    while (off < used) {
      const w = off >>> 2;
      const kind = buf[off + R_KIND];
      const flags = buf[off + R_FLAGS];
      // The user value is a u64 whose high half is 0 (a slot index).
      const user = u32[w + R_USER_W];
      const dlen = u32[w + R_DATA_LEN_W];
      const tlen = u32[w + R_TOPIC_LEN_W];
      const dataAt = off + R_HEADER;
      const dw = flags & DATA_BY_ADDRESS ? 8 : dlen;
      const tw = flags & TOPIC_BY_ADDRESS ? 8 : tlen;
      const next = off + ((R_HEADER + dw + tw + R_PAD) & ~R_PAD);
      if (kind === K.MESSAGE && (flags & DATA_BY_ADDRESS) === 0) {
        // The hot path: a whole message, inline.
        const ws = this._sockets[user];
        if (ws !== null && ws !== undefined && onMessage !== null) {
          let msg;
          if (flags & EV_BINARY) {
            msg = ownBytes(buf, dataAt, dataAt + dlen, ws._binaryType);
          } else {
            msg = utf8Slice(buf, dataAt, dataAt + dlen);
            if (dlen <= STAGE_CAP) {
              recvText = msg;
              recvWords = u32;
              recvWord = dataAt >>> 2;
              recvLen = dlen;
            }
          }
          try {
            const r = onMessage.call(this._ws, ws, msg);
            if (r !== undefined && r !== null && typeof r.then === 'function') r.then(undefined, (e) => this._wsError(ws, e));
          } catch (e) {
            this._wsError(ws, e);
          }
        }
        off = next;
        continue;
      }
      const key = u32[w + R_KEY_W];
      const gen = u32[w + R_GEN_W] + u32[w + R_GEN_W + 1] * 4294967296;
      switch (kind) {
        case K.MESSAGE: {
          const ws = this._sockets[user];
          if (ws) {
            const [b, at] = this._field(dataAt, dlen, flags & DATA_BY_ADDRESS);
            // Copied out of the library already when by address (a Buffer of
            // its own): no second copy.
            const msg = !(flags & EV_BINARY)
              ? b.toString('utf8', at, at + dlen)
              : b === this._buf
                ? ownBytes(b, at, at + dlen, ws._binaryType)
                : asBinaryType(b, ws._binaryType);
            this._call(ws, 'message', msg);
          }
          break;
        }
        case K.OPEN: {
          const ws = this._sockets[user];
          if (ws) {
            ws._state = 1;
            this._open++;
            this._call(ws, 'open');
          }
          break;
        }
        case K.CLOSE: {
          const ws = this._sockets[user];
          if (ws) {
            const [b, at] = this._field(dataAt, dlen, flags & DATA_BY_ADDRESS);
            const wasOpen = ws._state !== 0;
            ws._state = 3;
            // Never opened (an accepted upgrade whose client left first):
            // no close handler, as on Bun; the slot is freed all the same.
            if (wasOpen) {
              this._open--;
              this._call(ws, 'close', buf.readUInt16LE(off + R_CODE), b.toString('utf8', at, at + dlen));
            }
            ws._topics.clear();
            this._sockets[user] = null;
            this._free.push(user);
          }
          break;
        }
        case K.DRAIN: {
          const ws = this._sockets[user];
          if (ws) this._call(ws, 'drain');
          break;
        }
        case K.PING:
        case K.PONG: {
          const ws = this._sockets[user];
          if (ws) {
            const [b, at] = this._field(dataAt, dlen, flags & DATA_BY_ADDRESS);
            this._call(ws, kind === K.PING ? 'ping' : 'pong', b === this._buf ? ownBytes(b, at, at + dlen, 'nodebuffer') : b);
          }
          break;
        }
        case K.UPGRADE:
        case K.REQUEST: {
          const [b, at] = this._field(dataAt, dlen, flags & DATA_BY_ADDRESS);
          this._http(kind === K.UPGRADE, key, gen, parseRequest(b, at));
          break;
        }
        default:
          break;
      }
      off = next;
    }
  }

  _call(ws, name, a, b) {
    const h = this._ws && this._ws[name];
    if (!h) return;
    const failed = name === 'open' ? (e) => this._openFailed(ws, e) : (e) => this._wsError(ws, e);
    try {
      const r = h.call(this._ws, ws, a, b);
      if (r && typeof r.then === 'function') r.then(undefined, failed);
    } catch (e) {
      failed(e);
    }
  }

  /** A handler threw (or its promise rejected): as on Bun, the error goes
   * to websocket.error(error, ws) and the socket stays open; without that
   * handler it is logged. Never rethrown: that would end the process. */
  _wsError(ws, e) {
    const h = this._ws && this._ws.error;
    if (typeof h === 'function') {
      try {
        const r = h.call(this._ws, e, ws);
        if (r && typeof r.then === 'function') r.then(undefined, (e2) => console.error('volley: websocket.error threw:', e2));
        return;
      } catch (e2) {
        console.error('volley: websocket.error threw:', e2);
        return;
      }
    }
    console.error('volley: a websocket handler threw:', e);
  }

  /** open threw: reported as any handler error, then the socket is closed
   * with 1011 (Bun drops the TCP connection; a close frame says why). */
  _openFailed(ws, e) {
    this._wsError(ws, e);
    if (ws._state === 1) {
      try {
        ws.close(1011, 'internal error');
      } catch {
        /* closed meanwhile */
      }
    }
  }

  _report(e) {
    if (this._error) {
      try {
        this._error.call(this, e);
        return;
      } catch (e2) {
        e = e2;
      }
    }
    console.error('volley:', e);
  }

  // ---- HTTP and upgrades ---------------------------------------------------

  _http(upgrade, key, generation, r) {
    const host = (r.headers.find(([k]) => k.toLowerCase() === 'host') || [])[1] || `localhost:${this.port}`;
    const url = `${r.secure ? 'https' : 'http'}://${host}${r.path}${r.query ? `?${r.query}` : ''}`;
    const init = { method: r.method, headers: new Headers(r.headers) };
    if (r.body && r.method !== 'GET' && r.method !== 'HEAD') {
      init.body = r.body;
      init.duplex = 'half';
    }
    let req;
    try {
      req = new Request(url, init);
    } catch (e) {
      this._pendingRequests++;
      this._answer({ upgrade, key, generation, answered: false, timer: null }, new Response(`bad request: ${e.message}\n`, { status: 400 }));
      return;
    }
    const pending = { upgrade, key, generation, address: r.address, protocols: r.protocols, answered: false, timer: null };
    this._pending.set(req, pending);
    this._pendingRequests++;
    let result;
    try {
      result = this._route(req);
    } catch (e) {
      this._failed(pending, e);
      return;
    }
    if (result && typeof result.then === 'function') {
      result.then((res) => this._settle(pending, res), (e) => this._failed(pending, e));
    } else {
      this._settle(pending, result);
    }
  }

  _route(req) {
    const path = new URL(req.url).pathname;
    const m = this._routes.length ? matchRoute(this._routes, path) : null;
    if (m) {
      Object.defineProperty(req, 'params', { value: m.params, enumerable: true });
      routeCookies(req, this._pending.get(req));
      let v = m.route.value;
      if (v && typeof v === 'object' && !(v instanceof Response)) v = v[req.method] || v.default;
      if (v instanceof Response) return v.clone();
      if (typeof v === 'function') return v.call(this, req, this);
    }
    if (!('params' in req)) Object.defineProperty(req, 'params', { value: {}, enumerable: true });
    if (this._fetch) return this._fetch.call(this, req, this);
    return undefined;
  }

  /** fetch (or a route) threw: Bun's error option answers with its
   * Response (or a promise of one); without one, or when it fails too,
   * the error is logged and the client gets 500. */
  _failed(pending, e) {
    const fallback = () => this._answer(pending, new Response('internal error\n', { status: 500 }));
    if (!this._error) {
      console.error('volley:', e);
      fallback();
      return;
    }
    let r;
    try {
      r = this._error.call(this, e);
    } catch (e2) {
      console.error('volley: error handler threw:', e2);
      fallback();
      return;
    }
    Promise.resolve(r).then(
      (res) => {
        if (res instanceof Response) this._answer(pending, res);
        else fallback();
      },
      (e2) => {
        console.error('volley: error handler failed:', e2);
        fallback();
      },
    );
  }

  /** A request is answered (or upgraded): no longer pending. */
  _settled(pending) {
    pending.answered = true;
    this._pendingRequests--;
    if (pending.timer) {
      clearTimeout(pending.timer);
      pending.timer = null;
    }
  }

  _settle(pending, res) {
    if (pending.answered) return;
    if (res instanceof Response) {
      this._answer(pending, res);
    } else if (pending.upgrade) {
      this._answer(pending, new Response('WebSocket upgrade was not accepted\n', { status: 400 }));
    } else {
      this._answer(pending, new Response('not found\n', { status: 404 }));
    }
  }

  _answer(pending, res) {
    if (pending.answered) return;
    this._settled(pending);
    const ws = { generation: pending.generation, key: pending.key, reserved: 0 };
    const [h, hl] = headerArray(withCookies(res.headers, pending));
    const topics = res[TOPICS];
    // A text/event-stream body streams live (as on Bun): each chunk is
    // written as it comes, and the response ends with the stream.
    const live = !topics && res.body !== null && /^\s*text\/event-stream/i.test(res.headers.get('content-type') || '');
    if ((topics || live) && !pending.upgrade) {
      const list = (topics || []).map((t) => bytes(t));
      this._ensureCork();
      f.respond_events(this._srv, ws, res.status, h, hl, list, list.length);
      if (live) this._pump(ws, res.body.getReader());
      return;
    }
    if (res.body !== null && !pending.upgrade) {
      this._sendBody(ws, res, h, hl).catch((e) => {
        // The body failed before anything was sent: a 500 instead.
        this._report(e);
        if (this._srv) f.respond(this._srv, ws, 500, [], 0, null, 0);
      });
      return;
    }
    res.arrayBuffer().then(
      (body) => {
        if (!this._srv) return;
        const b = Buffer.from(body);
        this._ensureCork();
        const fn = pending.upgrade ? f.reject : f.respond;
        fn(this._srv, ws, res.status === 101 ? 500 : res.status, h, hl, b, b.length);
      },
      (e) => {
        this._report(e);
        if (this._srv) (pending.upgrade ? f.reject : f.respond)(this._srv, ws, 500, [], 0, null, 0);
      },
    );
  }

  /**
   * A body that is all there (a string, bytes, a stream already written)
   * goes out whole, with its length; a stream its producer is still
   * writing streams live, as on Bun: the head at once, then each chunk as
   * it comes, the end of the stream ending the response. Which one is told
   * by whether each read resolves before the next turn of the event loop.
   */
  async _sendBody(ws, res, h, hl) {
    const reader = res.body.getReader();
    const chunks = [];
    for (;;) {
      const next = reader.read();
      const r = await Promise.race([next, new Promise((resolve) => setImmediate(resolve, STILL_WRITING))]);
      if (!this._srv) {
        await reader.cancel();
        return;
      }
      if (r === STILL_WRITING) {
        this._ensureCork();
        f.respond_stream(this._srv, ws, res.status, h, hl);
        for (const b of chunks) {
          if (Number(f.send_bytes(this._srv, ws.key, ws.generation, b, b.length, SEND_BINARY)) === 0) {
            await reader.cancel();
            return;
          }
        }
        return this._pump(ws, reader, next);
      }
      if (r.done) break;
      chunks.push(chunkBuffer(r.value));
    }
    const b = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    this._ensureCork();
    f.respond(this._srv, ws, res.status, h, hl, b, b.length);
  }

  /**
   * Write a streamed body to its request as the chunks come (raw bytes by
   * id), waiting while the client is behind; a client that left cancels
   * the stream. The end of the stream ends the response. `first` is a
   * read already under way.
   */
  async _pump(ws, reader, first) {
    try {
      for (let next = first; ; next = undefined) {
        const { value, done } = await (next ?? reader.read());
        if (done || !this._srv) break;
        const b = chunkBuffer(value);
        if (b.length === 0) continue;
        this._ensureCork();
        let r = Number(f.send_bytes(this._srv, ws.key, ws.generation, b, b.length, SEND_BINARY));
        // 0 on a live response: the worker's mailbox was full, not a
        // client gone; wait and send the chunk again. Gone (or stopped):
        // cancel the stream.
        while (r === 0 && this._srv && f.ready_state(this._srv, ws) !== 3) {
          await sleep(5);
          if (!this._srv) break;
          this._ensureCork();
          r = Number(f.send_bytes(this._srv, ws.key, ws.generation, b, b.length, SEND_BINARY));
        }
        if (r === 0) {
          await reader.cancel();
          return;
        }
        // Behind: wait (in steps) until the client has read most of it.
        while (r < 0 && this._srv && f.buffered(this._srv, ws) > STREAM_SLACK) await sleep(5);
      }
    } catch (e) {
      this._report(e);
    }
    if (this._srv) {
      this._ensureCork();
      f.close(this._srv, ws, 1000, null, 0);
    }
  }

  upgrade(req, options = {}) {
    const pending = this._pending.get(req);
    if (!pending || !pending.upgrade || pending.answered || !this._srv) return false;
    // A client that already left (Bun's upgrade returns false then too):
    // nothing to accept. One that leaves after this still ends with a
    // terminal event that frees its slot.
    const id = { generation: pending.generation, key: pending.key, reserved: 0 };
    if (f.ready_state(this._srv, id) === 3) return false;
    this._settled(pending);
    const index = this._free.length ? this._free.pop() : this._sockets.length;
    const socket = new ServerWebSocket(this, pending.key, pending.generation, index, options.data, pending.address);
    this._sockets[index] = socket;
    let protocol = null;
    let headers = withCookies(options.headers, pending);
    if (headers) {
      const h = new Headers(headers);
      const p = h.get('sec-websocket-protocol');
      if (p) {
        protocol = p;
        h.delete('sec-websocket-protocol');
      }
      headers = h;
    }
    const [list, n] = headerArray(headers);
    this._ensureCork();
    const r = f.accept(this._srv, socket._ws(), index, protocol, list, n);
    if (r !== RESULT_OK) {
      this._sockets[index] = null;
      this._free.push(index);
      return false;
    }
    return true;
  }

  publish(topic, data, compress) {
    this._ensureCork();
    const t = String(topic);
    // After stop (the engine says STOPPED, or the server is freed): 0, as
    // Bun's publish returns.
    if (this._srv === null) return 0;
    refuseBlob(data, 'publish');
    // volley_publish_result: delivered, backpressured, dropped, forwarded.
    const out = PUBLISH_RESULT;
    let r;
    let len;
    if (typeof data === 'string') {
      len = Buffer.byteLength(data);
      r = f.publish_text(this._srv, t, Buffer.byteLength(t), data, len, compressFlags(compress), out);
    } else {
      const b = toBuffer(data);
      len = b.length;
      r = f.publish(this._srv, t, Buffer.byteLength(t), b, len, SEND_BINARY | compressFlags(compress), out);
    }
    if (r === RESULT_STOPPED) return 0;
    check(r, 'publish');
    // Bun's number: the bytes, or 0 when nobody is subscribed.
    const reached = out.readBigUInt64LE(0) + out.readBigUInt64LE(8) + out.readBigUInt64LE(24);
    return reached > 0n ? len : 0;
  }

  subscriberCount(topic) {
    const t = String(topic);
    const n = [0];
    check(f.subscriber_count(this._srv, t, Buffer.byteLength(t), n), 'subscriberCount');
    return Number(n[0]);
  }

  requestIP(req) {
    const p = this._pending.get(req);
    return p && p.address ? splitAddress(p.address) : null;
  }

  /** Bun's stop: refuse new connections at once; with
   * `closeActiveConnections`, also close 1001 to every WebSocket (they get
   * `close_timeout` to finish), else let open WebSockets and requests end by
   * themselves (a later `stop(true)` closes them). The promise resolves when
   * everything is gone and freed. Never blocks this thread. */
  stop(closeActiveConnections = false) {
    if (this._srv && (closeActiveConnections || !this._stopping)) {
      f.server_stop(this._srv, (closeActiveConnections ? STOP_GRACEFUL : STOP_LISTEN_ONLY) | STOP_NO_WAIT);
    }
    if (this._stopping) return this._stopping;
    this._stopping = new Promise((resolve) => {
      // Events keep coming through the descriptor; this only looks for the
      // end, often at first, then less (open WebSockets may last hours).
      let wait = 5;
      const tick = () => {
        this._drain();
        if (f.is_running(this._srv)) {
          setTimeout(tick, wait);
          wait = Math.min(wait * 2, 200);
          return;
        }
        this._drain();
        const s = this._srv;
        this._srv = null;
        forgetReceivedIn(this._u32); // let it go
        if (this._corked) {
          // End ours before the server goes (the queued uncork will find no
          // server); the library ends a freed server's corks too, so this
          // is tidiness, not a condition of later sends waking workers.
          this._corked = false;
          f.uncork(s);
        }
        this._watch.destroy();
        f.server_free(s);
        if (this._unix !== undefined) {
          // As Bun: the socket file goes with the server (the library
          // leaves it to its host).
          try {
            if (fs.statSync(this._unix).isSocket()) fs.unlinkSync(this._unix);
          } catch {}
        }
        resolve();
      };
      tick();
    });
    return this._stopping;
  }

  /** Counters from the engine (connections, messages, polls…). */
  stats() {
    // volley_stats: struct_size, then one u64 per name below.
    const b = Buffer.alloc(8 + 8 * STAT_NAMES.length);
    b.writeUInt32LE(b.length, 0);
    check(f.stats(this._srv, b), 'stats');
    const out = {};
    STAT_NAMES.forEach((n, i) => {
      out[n] = Number(b.readBigUInt64LE(8 + 8 * i));
    });
    return out;
  }
}

/** The fields of volley_stats after struct_size, in order. */
const STAT_NAMES = ['connections', 'opened', 'refused', 'messagesIn', 'requests', 'publishes', 'framesEncoded',
  'compressions', 'delivered', 'dropped', 'mailboxFull', 'bytesOut', 'buffered', 'polls', 'polledEvents',
  'bridgedOut', 'bridgedIn', 'bridgeLost'];

function serve(options) {
  return new Server(options);
}

/** A Response that streams publishes to `topics` as Server-Sent Events. */
function eventStream(topics, init = {}) {
  const res = new Response(null, { status: init.status || 200, headers: init.headers });
  Object.defineProperty(res, TOPICS, { value: Array.isArray(topics) ? topics.map(String) : [String(topics)] });
  return res;
}

module.exports = { serve, eventStream, Server, ServerWebSocket, Cookie, CookieMap };
