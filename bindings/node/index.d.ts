// Types for volley: Bun's serve() and ServerWebSocket, on Node. The shapes
// and names follow Bun's own (bun-types), so code typed for Bun type-checks
// here unchanged; `ws.data` is typed from `server.upgrade(req, { data })`
// through the type parameter of `serve<T>()` and `WebSocketHandler<T>`.
/// <reference types="node" />

export type BufferSource = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

/** A connection's state, as in `WebSocket.readyState`. */
export type WebSocketReadyState = 0 | 1 | 2 | 3;

/** Bun's per-message compression settings. */
export type WebSocketCompressor =
  | 'disable' | 'shared' | 'dedicated' | '3KB' | '4KB' | '8KB' | '16KB' | '32KB' | '64KB' | '128KB' | '256KB' | boolean;

export interface ServerWebSocket<T = undefined> {
  /**
   * Send a message (compressed only when `compress` is true, as on Bun): the message's bytes
   * when sent (0 for an empty one), -1 when queued behind a backlog (a `drain` follows), 0
   * when dropped. A Blob throws TypeError (its bytes cannot be read synchronously on Node).
   */
  send(data: string | BufferSource | Blob, compress?: boolean): number;
  sendText(data: string, compress?: boolean): number;
  sendBinary(data: BufferSource | Blob, compress?: boolean): number;
  /** Publish to every subscriber of `topic` but this one (unless `publishToSelf`): the bytes, or 0 when nobody else is subscribed. Compressed unless `compress` is false. */
  publish(topic: string, data: string | BufferSource | Blob, compress?: boolean): number;
  publishText(topic: string, data: string, compress?: boolean): number;
  publishBinary(topic: string, data: BufferSource | Blob, compress?: boolean): number;
  /** True once subscribed (also when already); false when the socket is not open. */
  subscribe(topic: string): boolean;
  /** True when it was subscribed. */
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  readonly subscriptions: string[];
  /** Run `callback` with sends batched (one write, one wake-up). */
  cork<R>(callback: (ws: ServerWebSocket<T>) => R): R;
  /** 0, 1005 and 1006 send a close frame without a code; a reason past 123 bytes is cut. */
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(data?: string | BufferSource | Blob): number;
  pong(data?: string | BufferSource | Blob): number;
  /** The value given to `server.upgrade(req, { data })`; settable. */
  data: T;
  readonly readyState: WebSocketReadyState;
  readonly remoteAddress: string;
  /** How binary messages arrive (Bun's four): Buffer (default), ArrayBuffer, Uint8Array or Blob. */
  binaryType: 'nodebuffer' | 'arraybuffer' | 'uint8array' | 'blob';
  getBufferedAmount(): number;
  /** Stop reading from this client (TCP then holds it back) until `resume()`. */
  pause(): void;
  resume(): void;
  readonly isPaused: boolean;
  /** Volley's older names for `pause()` and `resume()`. */
  pauseReading(): void;
  resumeReading(): void;
}

export interface WebSocketHandler<T = undefined> {
  open?(ws: ServerWebSocket<T>): void | Promise<void>;
  /** Optional, as on Bun. A binary message is its own memory (`.buffer` is exactly the message), in `ws.binaryType`. */
  message?(ws: ServerWebSocket<T>, message: string | Buffer): void | Promise<void>;
  close?(ws: ServerWebSocket<T>, code: number, reason: string): void | Promise<void>;
  drain?(ws: ServerWebSocket<T>): void | Promise<void>;
  ping?(ws: ServerWebSocket<T>, data: Buffer): void | Promise<void>;
  pong?(ws: ServerWebSocket<T>, data: Buffer): void | Promise<void>;
  /** A handler threw or rejected: the error, first, and the socket (which stays open). */
  error?(error: Error, ws: ServerWebSocket<T>): void | Promise<void>;
  /** Bun's idiom for typing `ws.data`: `data: {} as MyData` (not used at run time). */
  data?: T;
  /** Largest message in bytes (1009 past it). Default 16 MiB. */
  maxPayloadLength?: number;
  /** Seconds of silence before a ping (or a close). Default 120. */
  idleTimeout?: number;
  /** Bytes queued per connection past which sends are dropped (0). Default 16 MiB. */
  backpressureLimit?: number;
  /** Close (1008) instead of dropping past the limit. Default false. */
  closeOnBackpressureLimit?: boolean;
  /** Default true. */
  sendPings?: boolean;
  /** Default false. */
  publishToSelf?: boolean;
  perMessageDeflate?:
    | boolean
    | { compress?: WebSocketCompressor; decompress?: WebSocketCompressor; threshold?: number };
}

/** Bun's `CookieMap.set` options (and a `Cookie`'s attributes). */
export interface CookieInit {
  name?: string;
  value?: string;
  domain?: string;
  /** Defaults to '/'; '' leaves Path out. */
  path?: string;
  /** A Date, a number of seconds since the epoch, or an HTTP date string. */
  expires?: number | Date | string;
  secure?: boolean;
  /** Defaults to 'lax'. */
  sameSite?: CookieSameSite;
  httpOnly?: boolean;
  partitioned?: boolean;
  maxAge?: number;
}

export type CookieSameSite = 'strict' | 'lax' | 'none';

export interface CookieStoreDeleteOptions {
  name: string;
  domain?: string | null;
  path?: string;
}

/** Bun's `Cookie`: a name, a value and its attributes. */
export declare class Cookie {
  constructor(name: string, value: string, options?: CookieInit);
  constructor(cookieString: string);
  constructor(cookieObject?: CookieInit);
  readonly name: string;
  value: string;
  domain: string | null;
  path: string;
  expires?: Date;
  secure: boolean;
  sameSite: CookieSameSite;
  partitioned: boolean;
  maxAge?: number;
  httpOnly: boolean;
  isExpired(): boolean;
  serialize(): string;
  toString(): string;
  toJSON(): CookieInit;
  static parse(cookieString: string): Cookie;
  static from(name: string, value: string, options?: CookieInit): Cookie;
}

/** Bun's `CookieMap`: a route request's cookies and the changes made to
 * them, which its answer carries as Set-Cookie headers. */
export declare class CookieMap implements Iterable<[string, string]> {
  constructor(init?: string[][] | Record<string, string> | string);
  get(name: string): string | null;
  toSetCookieHeaders(): string[];
  has(name: string): boolean;
  set(name: string, value: string, options?: CookieInit): void;
  set(options: CookieInit): void;
  set(cookie: Cookie): void;
  delete(name: string): void;
  delete(options: CookieStoreDeleteOptions): void;
  delete(name: string, options: Omit<CookieStoreDeleteOptions, 'name'>): void;
  toJSON(): Record<string, string>;
  readonly size: number;
  entries(): IterableIterator<[string, string]>;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  forEach(callback: (value: string, key: string, map: CookieMap) => void): void;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}

/** A route's request: the WHATWG Request, with route parameters and its
 * cookies (Bun's BunRequest). */
export type BunRequest<P extends string = string> = Request & {
  readonly params: Record<P, string>;
  readonly cookies: CookieMap;
  clone(): BunRequest<P>;
};

/** A request as `fetch` sees it: the WHATWG Request (no cookies, as on Bun). */
export type FetchRequest = Request & { readonly params: Record<string, string> };

export type RouteHandler<T> = (
  req: BunRequest,
  server: Server<T>,
) => Response | undefined | void | Promise<Response | undefined | void>;

export type HTTPMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'CONNECT' | 'OPTIONS' | 'TRACE' | 'PATCH';

export interface Server<T = undefined> {
  /** Upgrade the request to a WebSocket with this data; false if it is not an upgrade request. */
  upgrade(req: Request, options?: { data?: T; headers?: HeadersInit }): boolean;
  /** Publish to every subscriber of `topic`: the bytes, or 0 when nobody is subscribed. */
  publish(topic: string, data: string | BufferSource | Blob, compress?: boolean): number;
  subscriberCount(topic: string): number;
  /** WebSockets open now. */
  readonly pendingWebSockets: number;
  readonly port: number;
  readonly hostname: string;
  readonly url: URL;
  /** Bun's: true unless NODE_ENV is production, or the `development` option. */
  readonly development: boolean;
  readonly id: string;
  readonly protocol: 'http' | 'https';
  /** HTTP requests and upgrades not answered yet. */
  readonly pendingRequests: number;
  /** New handlers (fetch, routes, error, websocket); the listener stays. */
  reload(options: Partial<ServeOptions<T>> | object): Server<T>;
  /** Run a request through the routes and fetch handler, as if it had come in. */
  fetch(request: Request | string): Promise<Response>;
  /** Close the connection of `req` if it is not answered within `seconds` (0 clears). */
  timeout(req: Request, seconds: number): void;
  /** Let the process exit while the server runs (`unref`), or not. */
  unref(): void;
  ref(): void;
  /** Close keep-alive HTTP connections between requests: how many. */
  closeIdleConnections(): number;
  /** `stop(true)`, for `using server = serve(...)`. */
  [Symbol.dispose](): void;
  requestIP(req: Request): { address: string; port: number; family: 'IPv4' | 'IPv6' } | null;
  /**
   * Refuse new connections now. With `closeActiveConnections`, close 1001 to every open
   * WebSocket too; without, let open WebSockets and requests end by themselves (a later
   * `stop(true)` closes them). Resolves when everything is gone and the server is freed.
   */
  stop(closeActiveConnections?: boolean): Promise<void>;
  /** Volley: the engine's counters. */
  stats(): Record<string, number>;
}

export interface ServeOptions<T = undefined> {
  port?: number | string;
  hostname?: string;
  /**
   * Bun's `unix`: listen on a Unix stream socket at this path instead of
   * TCP (no `port` beside it: refused). The server's `port` and `hostname`
   * are then undefined (as in Bun, whose types say number and string too),
   * peers have no address, a path in use is "address in use", and the
   * socket file is removed when the server stops.
   */
  unix?: string;
  /** Worker threads running the protocol (default: one per core). */
  workers?: number;
  /**
   * Bun's `reusePort`: share the port with other processes that ask for the
   * same (`SO_REUSEPORT`). Default false: the port is this server's alone,
   * and serve() throws "address in use" when it is taken.
   */
  reusePort?: boolean;
  maxRequestBodySize?: number;
  /** Seconds a connection may take to send a request (and a keep-alive one its next), 0 to 255; 0 disables. Default 10. */
  idleTimeout?: number;
  /** Reported as `server.development` (Volley serves no development error pages). */
  development?: boolean | object;
  /** `server.id`. */
  id?: string | null;
  /** Supported only with a specific IPv6 hostname, which is IPv6-only already. */
  ipv6Only?: boolean;
  /**
   * Carry publishes to every process bridged to the same Redis:
   * `redis://[:password@]host[:port][/prefix]` or `rediss://`.
   */
  pubsubBridge?: string;
  /** PEM text or bytes, a file object (`{ path }`, or Bun.file-like `{ name }`), or an array (a chain). */
  tls?: TLSConfig | TLSConfig[];
  routes?: Record<string, Response | RouteHandler<T> | Partial<Record<HTTPMethod, RouteHandler<T>>>>;
  fetch?(
    this: Server<T>,
    req: FetchRequest,
    server: Server<T>,
  ): Response | undefined | void | Promise<Response | undefined | void>;
  websocket?: WebSocketHandler<T>;
  error?(this: Server<T>, error: Error): Response | void | Promise<Response | void>;
}

/** PEM text or bytes, or a file: `{ path }`, or a Bun.file-like Blob with a `name`. */
export type TLSValue = string | BufferSource | Blob | { path: string } | { name: string };

/** `tls`: one certificate and key. An array (Bun's SNI list) throws TypeError: not supported. */
export interface TLSConfig {
  cert?: TLSValue | TLSValue[];
  key?: TLSValue | TLSValue[];
}

export function serve<T = undefined>(options: ServeOptions<T>): Server<T>;

/** A Response that streams publishes to `topics` as Server-Sent Events. */
export function eventStream(topics: string | string[], init?: { status?: number; headers?: HeadersInit }): Response;

declare const volley: {
  serve: typeof serve;
  eventStream: typeof eventStream;
  Cookie: typeof Cookie;
  CookieMap: typeof CookieMap;
};
export default volley;
