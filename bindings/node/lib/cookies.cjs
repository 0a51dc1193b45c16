'use strict';
// Bun's `Cookie` and `CookieMap` (bun-types 1.4.5), as Bun 1.4.5 behaves:
// every rule below was first observed on the real binary
// (testing/cookie-probe.mjs runs under both; test/cookies.test.mjs states
// the answers). A route request's `req.cookies` is a CookieMap over its
// Cookie header; the changes made to it (`set`, `delete`) are sent as
// Set-Cookie headers on whatever answers that request: the route's
// Response, the error handler's, or the 101 of `server.upgrade(req)`.

const EPOCH = new Date(0);
const SAME_SITE = ['strict', 'lax', 'none'];

function invalid(what) {
  return new TypeError(`Invalid cookie ${what}: contains invalid characters`);
}

/** A cookie name is visible ASCII except '=' and ';' (Bun accepts the other
 * RFC 6265 separators). */
function checkName(name) {
  if (name.length === 0) throw invalid('name');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x3d || c === 0x3b) throw invalid('name');
  }
  return name;
}

/** Domain: lower-case letters, digits, '.' and '-' only (Bun refuses upper
 * case too); '' means none. */
function checkDomain(domain) {
  if (domain === undefined || domain === null) return null;
  const d = String(domain);
  if (d === '') return null;
  if (!/^[a-z0-9.-]+$/.test(d)) throw invalid('domain');
  return d;
}

/** Path: printable ASCII (space included) except ';'; '' leaves it out. */
function checkPath(path) {
  if (path === undefined || path === null) return '/';
  const p = String(path);
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x3b) throw invalid('path');
  }
  return p;
}

function checkSameSite(v) {
  if (v === undefined) return 'lax';
  if (!SAME_SITE.includes(v)) throw new TypeError("Invalid sameSite value. Must be 'strict', 'lax', or 'none'");
  return v;
}

/** An ES5 ISO date ("2030-01-01", "2030-01-01T00:00:00Z"): Bun's date
 * parser for cookies does not take these, only the HTTP/legacy forms. */
const ISO_DATE = /^\s*[+-]?\d{4,6}-\d/;

/** `expires`: a Date (must be valid), a number of *seconds* since the
 * epoch (Bun's reading; one past Date's range leaves Expires out), or a
 * date string in HTTP/legacy form. */
function toExpires(v) {
  if (v === undefined || v === null) return undefined;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new RangeError('expires must be a valid Date (or Number)');
    return new Date(v.getTime());
  }
  if (typeof v === 'number') {
    const d = new Date(v * 1000);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  if (typeof v === 'string') {
    const t = ISO_DATE.test(v) ? NaN : Date.parse(v);
    if (Number.isNaN(t)) throw new TypeError('Invalid cookie expiration date');
    return new Date(t);
  }
  let shown;
  try {
    shown = JSON.stringify(v) ?? String(v);
  } catch {
    shown = Object.prototype.toString.call(v);
  }
  throw new TypeError(`The argument 'expires' Invalid expires value. Must be a Date or a number. Received ${shown}`);
}

/** Max-Age: any number but NaN (Infinity and negatives are written as
 * they are, as Bun does); anything else leaves it out. */
function toMaxAge(v) {
  return typeof v === 'number' && !Number.isNaN(v) ? v : undefined;
}

/** A value on the wire: percent-encoded as encodeURIComponent does (a lone
 * surrogate becomes U+FFFD first rather than throwing). */
function encodeValue(v) {
  const s = String(v);
  return encodeURIComponent(s.toWellFormed ? s.toWellFormed() : s);
}

/** A request's cookie value: %XX decoded as UTF-8; a '%' with two more
 * characters that are not hex digits is one U+FFFD, a '%' at the end is
 * U+FFFD, bytes that are not UTF-8 are U+FFFD (as Bun reads them). */
function decodeValue(s) {
  if (!s.includes('%')) return s;
  const out = [];
  const bytes = []; // a run of %XX, decoded together as UTF-8
  const flush = () => {
    if (bytes.length) {
      out.push(Buffer.from(bytes).toString('utf8'));
      bytes.length = 0;
    }
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c !== '%') {
      flush();
      out.push(c);
      i++;
    } else if (i + 2 < s.length) {
      const hex = s.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
      } else {
        flush();
        out.push('\uFFFD');
      }
      i += 3;
    } else {
      flush();
      out.push('\uFFFD');
      i++;
    }
  }
  flush();
  return out.join('');
}

/** A Cookie request header ("a=1; b=2") as [name, value] pairs, in order,
 * duplicates kept: names and values trimmed of spaces and tabs, pairs
 * without '=' or with an empty name skipped, values percent-decoded. */
function parseCookieHeader(header) {
  const pairs = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, '');
    if (name === '') continue;
    pairs.push([name, decodeValue(part.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, ''))]);
  }
  return pairs;
}

const STATE = Symbol('volley.cookie');

/** Bun's `Cookie`: a name, a value and its attributes. */
class Cookie {
  /**
   * new Cookie(name, value, options?) | new Cookie(cookieString)
   * | new Cookie({ name, value, ...options })
   */
  constructor(a, b, c) {
    if (arguments.length === 0) throw new TypeError('Not enough arguments');
    if (typeof a === 'string' && arguments.length === 1) {
      // (Bun's wording differs from parse()'s here.)
      if (!a.includes('=')) throw new TypeError('Invalid cookie string: empty');
      this[STATE] = parseSetCookie(a)[STATE];
      return;
    }
    if (a !== null && typeof a === 'object') {
      if (a.name === undefined) throw new TypeError('name is required');
      this[STATE] = state(a.name, a.value === undefined ? '' : a.value, a);
      return;
    }
    this[STATE] = state(a, b, c || {});
  }

  get name() {
    return this[STATE].name;
  }
  /** Read-only, as on Bun: assigning is ignored. */
  set name(_) {}
  get value() {
    return this[STATE].value;
  }
  set value(v) {
    this[STATE].value = String(v);
  }
  get domain() {
    return this[STATE].domain;
  }
  set domain(v) {
    this[STATE].domain = checkDomain(v);
  }
  get path() {
    return this[STATE].path;
  }
  set path(v) {
    this[STATE].path = checkPath(v);
  }
  get expires() {
    return this[STATE].expires;
  }
  set expires(v) {
    this[STATE].expires = toExpires(v);
  }
  get maxAge() {
    return this[STATE].maxAge;
  }
  set maxAge(v) {
    this[STATE].maxAge = toMaxAge(v);
  }
  get secure() {
    return this[STATE].secure;
  }
  set secure(v) {
    this[STATE].secure = !!v;
  }
  get httpOnly() {
    return this[STATE].httpOnly;
  }
  set httpOnly(v) {
    this[STATE].httpOnly = !!v;
  }
  get partitioned() {
    return this[STATE].partitioned;
  }
  set partitioned(v) {
    this[STATE].partitioned = !!v;
  }
  get sameSite() {
    return this[STATE].sameSite;
  }
  set sameSite(v) {
    this[STATE].sameSite = checkSameSite(v);
  }

  /** Max-Age decides when set (RFC 6265 5.3), else Expires; a session
   * cookie never expires. */
  isExpired() {
    const s = this[STATE];
    if (s.maxAge !== undefined) return s.maxAge <= 0;
    return s.expires !== undefined && s.expires.getTime() < Date.now();
  }

  /** The Set-Cookie header value, attributes in Bun's order. */
  serialize() {
    const s = this[STATE];
    let out = `${s.name}=${encodeValue(s.value)}`;
    if (s.domain) out += `; Domain=${s.domain}`;
    if (s.path) out += `; Path=${s.path}`;
    if (s.expires !== undefined) out += `; Expires=${s.expires.toUTCString()}`;
    if (s.maxAge !== undefined) out += `; Max-Age=${s.maxAge}`;
    if (s.secure) out += '; Secure';
    if (s.httpOnly) out += '; HttpOnly';
    if (s.partitioned) out += '; Partitioned';
    out += `; SameSite=${s.sameSite[0].toUpperCase()}${s.sameSite.slice(1)}`;
    return out;
  }

  toString() {
    return this.serialize();
  }

  toJSON() {
    const s = this[STATE];
    const o = { name: s.name, value: s.value };
    if (s.domain) o.domain = s.domain;
    o.path = s.path;
    if (s.expires !== undefined) o.expires = s.expires;
    if (s.maxAge !== undefined) o.maxAge = s.maxAge;
    Object.assign(o, { secure: s.secure, sameSite: s.sameSite, httpOnly: s.httpOnly, partitioned: s.partitioned });
    return o;
  }

  get [Symbol.toStringTag]() {
    return 'Cookie';
  }

  static parse(cookieString) {
    return parseSetCookie(String(cookieString));
  }

  static from(name, value, options) {
    return new Cookie(name, value, options || {});
  }
}

function state(name, value, o) {
  return {
    name: checkName(String(name)),
    value: String(value),
    domain: checkDomain(o.domain),
    path: checkPath(o.path),
    expires: toExpires(o.expires),
    maxAge: toMaxAge(o.maxAge),
    secure: !!o.secure,
    httpOnly: !!o.httpOnly,
    partitioned: !!o.partitioned,
    sameSite: checkSameSite(o.sameSite),
  };
}

/** A Set-Cookie string ("n=v; Path=/; Secure") as a Cookie. The value is
 * kept as written (not decoded); attribute names are case-insensitive;
 * an attribute Bun cannot read (a bad date, Max-Age, SameSite) is left at
 * its default. */
function parseSetCookie(str) {
  if (str === '') throw new TypeError('Invalid cookie string: empty');
  if (/^[ \t]|[ \t]$|[\r\n\0]/.test(str)) throw new TypeError('cookie string is not a valid HTTP header value');
  const parts = str.split(';');
  const first = parts[0];
  const eq = first.indexOf('=');
  if (eq < 0) throw new TypeError("Invalid cookie string: no '=' found");
  const name = first.slice(0, eq).trim();
  if (name === '') throw new TypeError('Invalid cookie string: name cannot be empty');
  const c = new Cookie(name, first.slice(eq + 1).trim());
  const s = c[STATE];
  for (const attr of parts.slice(1)) {
    const i = attr.indexOf('=');
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? '' : attr.slice(i + 1).trim();
    if (key === 'domain') {
      try {
        s.domain = checkDomain(val.toLowerCase());
      } catch {}
    } else if (key === 'path') {
      try {
        s.path = checkPath(val);
      } catch {}
    } else if (key === 'expires') {
      const t = ISO_DATE.test(val) ? NaN : Date.parse(val);
      if (!Number.isNaN(t)) s.expires = new Date(t);
    } else if (key === 'max-age') {
      const n = parseInt(val, 10);
      if (!Number.isNaN(n)) s.maxAge = n;
    } else if (key === 'samesite') {
      const v = val.toLowerCase();
      s.sameSite = SAME_SITE.includes(v) ? v : 'lax';
    } else if (key === 'secure') {
      s.secure = true;
    } else if (key === 'httponly') {
      s.httpOnly = true;
    } else if (key === 'partitioned') {
      s.partitioned = true;
    }
  }
  return c;
}

const MAP = Symbol('volley.cookieMap');

/** A change replaces any earlier one to that name and goes last. */
function change(map, name, ch) {
  const { changes } = map[MAP];
  changes.delete(name);
  changes.set(name, ch);
}

/**
 * Bun's `CookieMap`: the request's cookies (in header order, duplicates
 * kept, the first one answering `get`) under the changes made to them.
 * A change (set or delete) replaces any earlier change to that name and
 * moves it last; changes come first when iterating, then the request's
 * cookies they leave untouched; `toSetCookieHeaders()` lists the changes
 * as Set-Cookie values, a delete as an empty value that expired in 1970.
 */
class CookieMap {
  constructor(init) {
    let original;
    if (init === undefined || init === null) {
      original = [];
    } else if (typeof init === 'string') {
      original = parseCookieHeader(init);
    } else if (Array.isArray(init)) {
      original = init.map((pair) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError('Expected arrays of exactly two strings');
        return [String(pair[0]), String(pair[1])];
      });
    } else if (typeof init === 'object') {
      original = Object.entries(init).map(([k, v]) => [k, String(v)]);
    } else {
      throw new TypeError('Invalid initializer type');
    }
    // changes: name -> { cookie, deleted }, in the order last made.
    this[MAP] = { original, changes: new Map() };
  }

  get(name) {
    if (name === undefined) return null;
    const key = String(name);
    const { original, changes } = this[MAP];
    const ch = changes.get(key);
    if (ch) return ch.deleted ? null : ch.cookie.value;
    const hit = original.find(([k]) => k === key);
    return hit ? hit[1] : null;
  }

  has(name) {
    return this.get(name) !== null;
  }

  /** set(name, value, options?) | set({ name, value, ...options }) |
   * set(cookie): a Cookie is kept as given, so later changes to it show. */
  set(a, b, c) {
    if (arguments.length === 0) return;
    let cookie;
    if (a instanceof Cookie) cookie = a;
    else if (a !== null && typeof a === 'object') cookie = new Cookie(a);
    else cookie = new Cookie(a, b, c || {});
    change(this, cookie.name, { cookie, deleted: false });
  }

  /** delete(name) | delete(name, { domain, path }) | delete({ name,
   * domain, path }): sent as an expired empty cookie with that domain and
   * path, whether or not the request had it. */
  delete(a, b) {
    const o = a !== null && typeof a === 'object' ? a : { ...(b || {}), name: a };
    if (o.name === undefined) throw new TypeError('name is required');
    const cookie = new Cookie(String(o.name), '', { domain: o.domain, path: o.path, expires: EPOCH });
    change(this, cookie.name, { cookie, deleted: true });
  }

  get size() {
    let n = 0;
    for (const _ of this.entries()) n++;
    return n;
  }

  *entries() {
    const { original, changes } = this[MAP];
    for (const [name, ch] of changes) if (!ch.deleted) yield [name, ch.cookie.value];
    for (const [name, value] of original) if (!changes.has(name)) yield [name, value];
  }

  *keys() {
    for (const [k] of this.entries()) yield k;
  }

  *values() {
    for (const [, v] of this.entries()) yield v;
  }

  forEach(callback) {
    for (const [k, v] of this.entries()) callback(v, k, this);
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  /** The first value of each name, as a plain object. */
  toJSON() {
    const o = {};
    for (const [k, v] of this.entries()) if (!Object.prototype.hasOwnProperty.call(o, k)) o[k] = v;
    return o;
  }

  toSetCookieHeaders() {
    return [...this[MAP].changes.values()].map((ch) => ch.cookie.serialize());
  }

  get [Symbol.toStringTag]() {
    return 'CookieMap';
  }
}

module.exports = { Cookie, CookieMap, parseCookieHeader };
