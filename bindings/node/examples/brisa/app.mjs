// Brisa's WebSocket documentation on Volley.
//   node examples/brisa/app.mjs [port]
//   ws://HOST:PORT/?username=NAME   the group chat (src/websocket.mjs)
//   GET /api/hello-world            i18n text, also sent on the caller's WebSocket
//   POST /api/announce              server.publish from outside a handler
//   GET /                           a page that joins the chat
import { fileURLToPath } from 'node:url';
import { createServer } from './brisa.mjs';
import * as websocket from './src/websocket.mjs';
import * as helloWorld from './src/api/hello-world.mjs';
import * as announce from './src/api/announce.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><title>Brisa on volley</title><script>
window.result = (async () => {
  const base = location.origin.replace(/^http/, 'ws');
  const open = (name) => new Promise((r) => {
    const ws = new WebSocket(base + '/?username=' + name);
    const inbox = [];
    let wake = null;
    ws.onmessage = (e) => { inbox.push(e.data); if (wake) { wake(); wake = null; } };
    ws.next = async () => { while (!inbox.length) await new Promise((w) => (wake = w)); return inbox.shift(); };
    ws.onopen = () => r(ws);
  });
  const ann = await open('ann');
  const bob = await open('bob');
  const out = { joined: await ann.next() };
  bob.send('hi all');
  out.chat = await ann.next();
  // The API route reaches this page's own socket (the cookie set on the 101).
  out.api = await (await fetch('/api/hello-world')).text();
  out.viaSocket = await bob.next();
  out.extensions = ann.extensions;
  return out;
})();
</script>`;

export function start(options = {}) {
  return createServer({
    websocket,
    api: { '/api/hello-world': helloWorld, '/api/announce': announce },
    pages: { '/': () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } }) },
    i18n: { defaultLocale: 'en', messages: { en: { 'hello-world': 'Hello world!' }, es: { 'hello-world': '¡Hola mundo!' } } },
    perMessageDeflate: true,
    ...options,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = start({ port: Number(process.argv[2] ?? 3000) });
  console.log(`Brisa example on http://127.0.0.1:${server.port}/`);
}
