// What a Bun app observes of Bun's Cookie, CookieMap and a route
// request's req.cookies, printed as JSON. Run by test/cookies.test.mjs
// under real Bun (Bun.CookieMap, Bun.serve) and under Node with VOLLEY=1
// (volley's CookieMap and serve); both with TZ=UTC (legacy date strings
// are read in local time).
import net from 'node:net';
const V = process.env.VOLLEY ? await import('volley') : null;
const serve = V ? V.serve : Bun.serve;
const CookieMap = V ? V.CookieMap : Bun.CookieMap;
const Cookie = V ? V.Cookie : Bun.Cookie;
const out = {};
const tryit = (k, f) => {
  try {
    out[k] = f();
  } catch (e) {
    out[k] = 'threw ' + e.name + ': ' + e.message;
  }
};

// The map on its own.
tryit('dup', () => { const m = new CookieMap('a=1; a=2; b=3'); return [m.get('a'), m.size, [...m], m.toJSON()]; });
tryit('dup_set', () => { const m = new CookieMap('a=1; a=2; b=3'); m.set('a', 'x'); return [m.get('a'), m.size, [...m]]; });
tryit('dup_del', () => { const m = new CookieMap('a=1; a=2; b=3'); m.delete('a'); return [m.get('a'), m.size, [...m], m.toSetCookieHeaders()]; });
tryit('order', () => { const m = new CookieMap('o1=1; o2=2; o3=3'); m.set('n1', 'a'); m.set('o2', 'b'); m.set('n2', 'c'); m.set('n1', 'd'); return [[...m], m.toSetCookieHeaders()]; });
tryit('order_del_set', () => { const m = new CookieMap(); m.set('x', '1'); m.set('y', '2'); m.delete('x'); m.set('x', '3'); return [[...m], m.toSetCookieHeaders()]; });
tryit('same_name_diff_path', () => { const m = new CookieMap(); m.set('x', '1', { path: '/a' }); m.set('x', '2', { path: '/b' }); return [[...m], m.toSetCookieHeaders()]; });
tryit('del_opts', () => { const m = new CookieMap('x=1'); m.delete('x', { path: '/a', domain: 'd.com' }); return m.toSetCookieHeaders(); });
tryit('del_null_domain', () => { const m = new CookieMap('x=1'); m.delete({ name: 'x', domain: null }); return m.toSetCookieHeaders(); });
tryit('del_missing', () => { const m = new CookieMap(); m.delete('nope'); return [m.toSetCookieHeaders(), m.size]; });
tryit('enc', () => { const m = new CookieMap(); m.set('v', "!'()*-._~=/:@$&+?#[]%^`{}|\\<>"); return m.toSetCookieHeaders(); });
tryit('dec_bad', () => [...new CookieMap('a=%zz; b=%E9; c=%41')]);
for (const ch of ['=', '(', ')', '<', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '{', '}', ' ', '\t', 'é', '\x01', '!', '#', '$', '%', '&', "'", '*', '+', '-', '.', '^', '_', '`', '|', '~']) {
  tryit('name_' + ch.charCodeAt(0), () => { const m = new CookieMap(); m.set('a' + ch + 'b', '1'); return m.toSetCookieHeaders()[0]; });
}
tryit('both_exp', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: 5, expires: new Date(0) }); return m.toSetCookieHeaders(); });
tryit('exp_http', () => { const m = new CookieMap(); m.set('s', '1', { expires: 'Wed, 02 Jan 2030 03:04:05 GMT' }); return m.toSetCookieHeaders(); });
tryit('exp_num_small', () => { const m = new CookieMap(); m.set('s', '1', { expires: 1000 }); return m.toSetCookieHeaders(); });
tryit('exp_invalid_date', () => { const m = new CookieMap(); m.set('s', '1', { expires: new Date(NaN) }); return m.toSetCookieHeaders(); });
tryit('maxage_neg', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: -1 }); return m.toSetCookieHeaders(); });
tryit('maxage_nan', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: NaN }); return m.toSetCookieHeaders(); });
tryit('maxage_big', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: 1e21 }); return m.toSetCookieHeaders(); });
tryit('maxage_str', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: '5' }); return m.toSetCookieHeaders(); });
tryit('domain_bad', () => { const m = new CookieMap(); m.set('s', '1', { domain: 'a;b' }); return m.toSetCookieHeaders(); });
tryit('path_bad', () => { const m = new CookieMap(); m.set('s', '1', { path: '/a;b' }); return m.toSetCookieHeaders(); });
tryit('samesite_case', () => { const m = new CookieMap(); m.set('s', '1', { sameSite: 'Strict' }); return m.toSetCookieHeaders(); });
tryit('set_noargs', () => { const m = new CookieMap(); m.set(); return m.toSetCookieHeaders(); });
tryit('set_obj_noname', () => { const m = new CookieMap(); m.set({ value: '1' }); return m.toSetCookieHeaders(); });
tryit('set_undefined_value', () => { const m = new CookieMap(); m.set('u', undefined); return m.toSetCookieHeaders(); });
tryit('set_null_value', () => { const m = new CookieMap(); m.set('u', null); return m.toSetCookieHeaders(); });
tryit('get_noarg', () => new CookieMap('a=1').get());
tryit('obj_num', () => [...new CookieMap({ a: 1 })]);
tryit('arr_bad', () => [...new CookieMap([['a']])]);
tryit('arr_bad2', () => [...new CookieMap([['a', '1', '2']])]);
tryit('init_num', () => [...new CookieMap(5)]);
tryit('init_null', () => [...new CookieMap(null)]);
tryit('init_encoded_obj', () => { const m = new CookieMap({ 'a': 'x y' }); return [m.get('a'), m.toSetCookieHeaders()]; });
tryit('iter_during', () => { const m = new CookieMap('a=1'); const it = m.entries(); m.set('b', '2'); return [...it]; });
tryit('size_set', () => { const m = new CookieMap(); try { m.size = 5; } catch (e) { return 'threw ' + e.name; } return m.size; });
tryit('ctor_nonew', () => { try { CookieMap('a=1'); return 'ok'; } catch (e) { return 'threw ' + e.name; } });
tryit('tostring', () => String(new CookieMap('a=1')));
tryit('json_stringify', () => JSON.stringify(new CookieMap('a=1; b=2')));
tryit('cookie_ctor_str', () => { const c = new Cookie('n=v; Path=/x; Expires=Wed, 02 Jan 2030 03:04:05 GMT'); return [c.name, c.value, c.path, c.expires && c.expires.toISOString(), c.domain, c.maxAge, c.secure, c.sameSite, c.partitioned, c.httpOnly]; });
tryit('cookie_defaults', () => { const c = new Cookie('n', 'v'); return [c.name, c.value, c.path, c.expires, c.domain, c.maxAge, c.secure, c.sameSite, c.partitioned, c.httpOnly, c.isExpired(), String(c)]; });
tryit('cookie_obj', () => { const c = new Cookie({ name: 'n', value: 'v', maxAge: 0 }); return [c.isExpired(), c.serialize(), JSON.stringify(c)]; });
tryit('cookie_noargs', () => { const c = new Cookie(); return [c.name, c.value, c.serialize()]; });
tryit('cookie_set_value', () => { const c = new Cookie('n', 'v'); c.value = 'w x'; c.secure = true; c.sameSite = 'none'; return c.serialize(); });
tryit('cookie_name_ro', () => { const c = new Cookie('n', 'v'); try { c.name = 'z'; } catch (e) { return 'threw ' + e.name; } return c.name; });
tryit('cookie_expired_past', () => new Cookie('n', 'v', { expires: new Date(Date.now() - 1000) }).isExpired());
tryit('cookie_parse_enc', () => { const c = Cookie.parse('n=a%20b; Max-Age=abc; SameSite=weird; Domain=.x.com; secure'); return [c.value, c.maxAge, c.sameSite, c.domain, c.secure]; });
tryit('cookie_parse_bad', () => { const c = Cookie.parse('novalue'); return [c.name, c.value]; });
tryit('cookie_from', () => Cookie.from('a', 'b', { httpOnly: true }).serialize());
tryit('cookie_json_full', () => new Cookie('s', 'abc', { domain: 'd', maxAge: 5, expires: new Date(0) }).toJSON());
tryit('cookie_tag', () => Object.prototype.toString.call(new Cookie('a', 'b')));
tryit('cookie_in_map_get', () => { const m = new CookieMap(); const c = new Cookie('k', 'v'); m.set(c); c.value = 'changed'; return [m.get('k'), m.toSetCookieHeaders()]; });

for (const d of ['a_b', 'a:b', '[::1]', '*.x', 'A.B', '.x.com', 'a/b', 'a!b', 'a~b', 'a+b']) tryit('dom ' + d, () => { const m = new CookieMap(); m.set('s', '1', { domain: d }); return m.toSetCookieHeaders()[0]; });
for (const s of ['2030-01-01', '2030-01-01T00:00:00Z', 'Jan 2 2030', '1/2/2030', 'Wed, 02 Jan 2030 03:04:05 +0200', 'Thu Jan 02 2030 03:04:05 GMT+0200 (X)']) tryit('exp ' + s, () => { const m = new CookieMap(); m.set('s', '1', { expires: s }); return m.toSetCookieHeaders()[0]; });
tryit('exp_obj2', () => { const m = new CookieMap(); m.set('s', '1', { expires: true }); return m.toSetCookieHeaders(); });
tryit('exp_bigdate', () => { const m = new CookieMap(); m.set('s', '1', { expires: new Date(8.64e15) }); return m.toSetCookieHeaders(); });
tryit('parse_trailing', () => Cookie.parse('n=v; Path=/a').path);
tryit('parse_inner', () => { const c = Cookie.parse('n=v;Path=/a;Secure'); return [c.path, c.secure]; });
tryit('parse_space_val', () => Cookie.parse('n=v w').value);
tryit('parse_maxage_neg', () => Cookie.parse('n=v; Max-Age=-5').maxAge);
tryit('parse_maxage_frac', () => Cookie.parse('n=v; Max-Age=1.5').maxAge);
tryit('ctor_str_opts', () => new Cookie('n=v; Path=/a', 'x').serialize());
tryit('cm_get_after_cookie_obj', () => { const m = new CookieMap(); m.set({ name: 'a', value: 'b' }); return m.get('a'); });
tryit('ctor_obj_noname', () => new Cookie({ value: 'v' }).serialize());
tryit('ctor_name_only', () => new Cookie('n').serialize());

// Constructor forms, changes, headers; then req.cookies in routes.
// Standalone CookieMap.
tryit('str', () => [...new CookieMap('a=1; b=two;  c = 3 ; d; =e; f=x=y; a=dup; g="q"; h=%20z')]);
tryit('obj', () => [...new CookieMap({ x: '1', y: 'two' })]);
tryit('arr', () => [...new CookieMap([['x', '1'], ['y', '2']])]);
tryit('empty', () => [new CookieMap().size, new CookieMap('').size]);
tryit('get', () => { const m = new CookieMap('a=1'); return [m.get('a'), m.get('zz'), m.has('a'), m.has('zz')]; });
tryit('fresh_headers', () => new CookieMap('a=1').toSetCookieHeaders());
tryit('set_headers', () => {
  const m = new CookieMap('a=1; b=2');
  m.set('c', '3');
  m.set('d', 'v v;', { httpOnly: true, secure: true, maxAge: 60, domain: 'ex.com', path: '/p', sameSite: 'strict', partitioned: true });
  m.set({ name: 'e', value: '5', expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)) });
  m.delete('b');
  m.delete({ name: 'zz', domain: 'ex.com', path: '/q' });
  m.set('a', 'new');
  return { headers: m.toSetCookieHeaders(), entries: [...m], size: m.size, json: m.toJSON(), keys: [...m.keys()], values: [...m.values()], getb: m.get('b') };
});
tryit('set_then_delete', () => { const m = new CookieMap(); m.set('x', '1'); m.delete('x'); return [m.toSetCookieHeaders(), m.size]; });
tryit('delete_then_set', () => { const m = new CookieMap('x=0'); m.delete('x'); m.set('x', '1'); return [m.toSetCookieHeaders(), m.size]; });
tryit('set_number', () => { const m = new CookieMap(); m.set('n', 5); return m.toSetCookieHeaders(); });
tryit('bad_name', () => { const m = new CookieMap(); m.set('a b', '1'); return m.toSetCookieHeaders(); });
tryit('bad_name2', () => { const m = new CookieMap(); m.set('a;b', '1'); return m.toSetCookieHeaders(); });
tryit('empty_name', () => { const m = new CookieMap(); m.set('', '1'); return m.toSetCookieHeaders(); });
tryit('value_enc', () => { const m = new CookieMap(); m.set('v', 'a;b,c d"é'); return [m.toSetCookieHeaders(), m.get('v')]; });
tryit('path_empty', () => { const m = new CookieMap(); m.set('p', '1', { path: '' }); return m.toSetCookieHeaders(); });
tryit('samesite_none', () => { const m = new CookieMap(); m.set('s', '1', { sameSite: 'none' }); return m.toSetCookieHeaders(); });
tryit('samesite_bad', () => { const m = new CookieMap(); m.set('s', '1', { sameSite: 'bogus' }); return m.toSetCookieHeaders(); });
tryit('expires_num', () => { const m = new CookieMap(); m.set('s', '1', { expires: 1893456000000 }); return m.toSetCookieHeaders(); });
tryit('expires_str', () => { const m = new CookieMap(); m.set('s', '1', { expires: '2030-01-01T00:00:00Z' }); return m.toSetCookieHeaders(); });
tryit('maxage0', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: 0 }); return m.toSetCookieHeaders(); });
tryit('maxage_frac', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: 1.7 }); return m.toSetCookieHeaders(); });
tryit('foreach', () => { const r = []; new CookieMap('a=1; b=2').forEach((v, k, mm) => r.push([k, v, mm instanceof CookieMap])); return r; });
tryit('cookie_serialize', () => new Cookie('s', 'abc', { domain: 'ex.com', httpOnly: true }).serialize());
tryit('cookie_json', () => new Cookie('s', 'abc', { secure: true }).toJSON());
tryit('cookie_parse', () => { const c = Cookie.parse('n=v; Path=/x; Secure; SameSite=Strict; Max-Age=10; HttpOnly; Domain=a.b'); return [c.name, c.value, c.path, c.secure, c.sameSite, c.maxAge, c.httpOnly, c.domain]; });
tryit('set_cookie_obj', () => { const m = new CookieMap(); m.set(new Cookie('k', 'v')); return m.toSetCookieHeaders(); });
tryit('tag', () => Object.prototype.toString.call(new CookieMap()));
// In a server: req.cookies on a route request.
const server = serve({
  port: 0,
  routes: {
    '/r': (req) => {
      const c = req.cookies;
      out.route_seen = [c instanceof CookieMap, c.get('sid'), c.size, [...c]];
      c.set('visited', 'yes');
      c.delete('old');
      return new Response('hi', { headers: { 'set-cookie': 'manual=1' } });
    },
    '/ro': (req) => { out.ro_seen = [req.cookies.get('x'), req.cookies.size]; return new Response('ok'); },
    '/p/:id': (req) => { out.param_cookies = req.cookies.get('a'); req.cookies.set('a', 'b'); return Response.json({ ok: 1 }); },
    '/async': async (req) => { await new Promise((r) => setTimeout(r, 5)); req.cookies.set('late', '1'); return new Response('x'); },
  },
  fetch(req) { out.fetch_cookies = typeof req.cookies; return new Response('fallback'); },
});
const base = `http://127.0.0.1:${server.port}`;
let r = await fetch(base + '/r', { headers: { cookie: 'sid=abc; old=1; other=2' } });
out.route_set_cookie = r.headers.getSetCookie();
r = await fetch(base + '/ro', { headers: { cookie: 'x=1' } });
out.ro_set_cookie = r.headers.getSetCookie();
r = await fetch(base + '/ro');
out.ro_seen_none = out.ro_seen;
r = await fetch(base + '/p/1', { headers: { cookie: 'a=z' } });
out.param_set_cookie = r.headers.getSetCookie();
r = await fetch(base + '/async');
out.async_set_cookie = r.headers.getSetCookie();
r = await fetch(base + '/nope');
await r.text();
server.stop(true);

// Upgrades, method routes, redirects, errors.
tryit('dec2', () => [...new CookieMap('x=a%zzb; y=%; z=%4; w=a%2; v=%C3%A9; u=+; t=a\tb; s=\t q \t')]);
for (const ch of [' ', ',', 'é', '\t', '=', '\x7f', '"']) {
  tryit('dom_' + ch.charCodeAt(0), () => { const m = new CookieMap(); m.set('s', '1', { domain: 'a' + ch + 'b' }); return m.toSetCookieHeaders()[0]; });
  tryit('path_' + ch.charCodeAt(0), () => { const m = new CookieMap(); m.set('s', '1', { path: '/a' + ch + 'b' }); return m.toSetCookieHeaders()[0]; });
}
tryit('name_127', () => { const m = new CookieMap(); m.set('a\x7fb', '1'); return m.toSetCookieHeaders()[0]; });
tryit('maxage_inf', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: Infinity }); return m.toSetCookieHeaders(); });
tryit('maxage_negz', () => { const m = new CookieMap(); m.set('s', '1', { maxAge: -0 }); return m.toSetCookieHeaders(); });
tryit('exp_huge', () => { const m = new CookieMap(); m.set('s', '1', { expires: 1e20 }); return m.toSetCookieHeaders(); });
tryit('exp_frac', () => { const m = new CookieMap(); m.set('s', '1', { expires: 1.5 }); return m.toSetCookieHeaders(); });
tryit('exp_neg', () => { const m = new CookieMap(); m.set('s', '1', { expires: -86400 }); return m.toSetCookieHeaders(); });
tryit('exp_obj', () => { const m = new CookieMap(); m.set('s', '1', { expires: {} }); return m.toSetCookieHeaders(); });
tryit('exp_null', () => { const m = new CookieMap(); m.set('s', '1', { expires: null }); return m.toSetCookieHeaders(); });
tryit('exp_str2', () => { const m = new CookieMap(); m.set('s', '1', { expires: '2 Jan 2030 03:04:05' }); return m.toSetCookieHeaders(); });
tryit('exp_str3', () => { const m = new CookieMap(); m.set('s', '1', { expires: 'garbage' }); return m.toSetCookieHeaders(); });
tryit('exp_str4', () => { const m = new CookieMap(); m.set('s', '1', { expires: 'Wed Jan 02 2030' }); return m.toSetCookieHeaders(); });
tryit('exp_str5', () => { const m = new CookieMap(); m.set('s', '1', { expires: 'Sun, 06 Nov 94 08:49:37 GMT' }); return m.toSetCookieHeaders(); });
tryit('exp_str6', () => { const m = new CookieMap(); m.set('s', '1', { expires: '' }); return m.toSetCookieHeaders(); });
tryit('secure_truthy', () => { const m = new CookieMap(); m.set('s', '1', { secure: 1, httpOnly: 'yes', partitioned: 0 }); return m.toSetCookieHeaders(); });
tryit('domain_empty', () => { const m = new CookieMap(); m.set('s', '1', { domain: '' }); return m.toSetCookieHeaders(); });
tryit('domain_num', () => { const m = new CookieMap(); m.set('s', '1', { domain: 5 }); return m.toSetCookieHeaders(); });
tryit('path_undef', () => { const m = new CookieMap(); m.set('s', '1', { path: undefined }); return m.toSetCookieHeaders(); });
tryit('path_null', () => { const m = new CookieMap(); m.set('s', '1', { path: null }); return m.toSetCookieHeaders(); });
tryit('set_obj_opts', () => { const m = new CookieMap(); m.set({ name: 'a', value: 'b', path: '/x' }, { path: '/y' }); return m.toSetCookieHeaders(); });
tryit('set_name_nonstr', () => { const m = new CookieMap(); m.set(5, 'b'); return m.toSetCookieHeaders(); });
tryit('props', () => { const c = new Cookie('n', 'v'); return [typeof c.expires, c.expires === null, typeof c.domain, c.domain === null, typeof c.maxAge, Object.keys(c)]; });
tryit('cookie_setters', () => { const c = new Cookie('n', 'v'); c.path = '/q'; c.domain = 'x.y'; c.maxAge = 9; c.httpOnly = 1; c.partitioned = true; c.expires = new Date(0); return c.serialize(); });
tryit('cookie_bad_samesite_set', () => { const c = new Cookie('n', 'v'); c.sameSite = 'bogus'; return c.serialize(); });
tryit('cookie_bad_name', () => new Cookie('a b', 'v').serialize());
tryit('cookie_parse_attrs', () => { const c = Cookie.parse('n=v; path=/lower; DOMAIN=UP.com; max-age=7; samesite=none; HTTPONLY; Partitioned; Unknown=1; Expires=garbage'); return c.toJSON(); });
tryit('cookie_parse_quoted', () => Cookie.parse('n="v"').value);
tryit('cookie_parse_spaces', () => { const c = Cookie.parse('  n = v ;  Path = /a '); return [c.name, c.value, c.path]; });
tryit('cookie_parse_empty_name', () => Cookie.parse('=v').name);
tryit('cookie_from_nonstr', () => Cookie.from('a', 5).serialize());
tryit('map_set_after_cookie_change', () => { const m = new CookieMap(); const c = new Cookie('k', 'v'); m.set(c); c.path = '/z'; return m.toSetCookieHeaders(); });
tryit('cm_proto', () => Object.getOwnPropertyNames(CookieMap.prototype).sort());
tryit('c_proto', () => Object.getOwnPropertyNames(Cookie.prototype).sort());
const server3 = serve({
  port: 0,
  routes: {
    '/ws': (req, srv) => { req.cookies.set('wsc', '1'); srv.upgrade(req); return undefined; },
    '/m': { GET: (req) => { req.cookies.set('m', '1'); return new Response('m'); } },
    '/redir': (req) => { req.cookies.set('r', '1'); return Response.redirect('http://127.0.0.1/x', 302); },
    '/ro': (req) => { out.ro_size = req.cookies.size; return new Response('x'); },
    '/clone': (req) => { const c = req.clone(); out.clone_cookies = typeof c.cookies; return new Response('x'); },
    '/same': (req) => { out.same = req.cookies === req.cookies; return new Response('x'); },
    '/throw': (req) => { req.cookies.set('t', '1'); throw new Error('x'); },
  },
  websocket: { open(ws) {}, message() {} },
  error() { return new Response('err', { status: 500 }); },
});
const port = server3.port;
async function raw(reqText) {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(reqText));
    let buf = '';
    s.on('data', (d) => { buf += d; if (buf.includes('\r\n\r\n')) { s.destroy(); res(buf.split('\r\n\r\n')[0].split('\r\n').filter((l) => /^set-cookie/i.test(l)).map((l) => l.replace(/^set-cookie/i, 'set-cookie'))); } });
  });
}
out.ws_101 = await raw('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: a=1\r\n\r\n');
const base3 = `http://127.0.0.1:${port}`;
for (const p of ['/m', '/redir', '/ro', '/clone', '/same', '/throw']) {
  const r = await fetch(base3 + p, { redirect: 'manual', headers: { cookie: 'q=1' } });
  out['sc' + p] = [r.status, r.headers.getSetCookie()];
  await r.text();
}
server3.stop(true);

console.log(JSON.stringify(out));
