// A connected `ws` client with a queue of what it receives, for the tests.
import { once } from 'node:events';
import WebSocket from 'ws';

/**
 * Connect and wait for the open; `ws.next()` resolves with the next message
 * (a string for text, a Buffer for binary), `ws.closed` with the close.
 */
export async function client(url, opts = {}) {
  const ws = new WebSocket(url, opts);
  const inbox = [];
  const waiters = [];
  ws.on('message', (data, binary) => {
    const m = binary ? data : data.toString();
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  ws.next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r)));
  ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await once(ws, 'open');
  return ws;
}
