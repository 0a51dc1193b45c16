// A connected `ws` client with a queue of what it receives, for the tests.
import { once } from 'node:events';
import WebSocket from 'ws';

/**
 * Connect and wait for the open; `ws.next()` resolves with the next message
 * (a string for text, a Buffer for binary), `ws.closed` with the close,
 * `ws.quiet(ms)` with whether nothing arrived for `ms`; `ws.upgradeHeaders`
 * holds the headers of the 101.
 */
export async function client(url, opts = {}) {
  const ws = new WebSocket(url, opts);
  ws.on('upgrade', (res) => {
    ws.upgradeHeaders = res.headers;
  });
  const inbox = [];
  const waiters = [];
  ws.on('message', (data, binary) => {
    const m = binary ? data : data.toString();
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  ws.next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r)));
  /** After `ms`, true if nothing arrived meanwhile (takes nothing from the queue). */
  ws.quiet = async (ms = 150) => {
    await new Promise((r) => setTimeout(r, ms));
    return inbox.length === 0;
  };
  ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await once(ws, 'open');
  return ws;
}

/** Poll `check` every 10 ms until it holds (5 s at most). */
export async function until(check, what) {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
