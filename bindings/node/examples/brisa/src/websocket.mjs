// src/websocket.mjs, as Brisa's WebSocket documentation writes it: handlers
// declared once per server. Group chat over pub/sub, per-message
// compression, and send's return codes acted upon (-1: wait for drain,
// 0: dropped, n: sent).

/** Messages kept for `/history` (exported for the tests to reset). */
export const history = [];

function parseCookies(header) {
  return Object.fromEntries(
    (header || '')
      .split(';')
      .map((p) => p.trim().split('='))
      .filter(([k]) => k)
      .map(([k, ...v]) => [k, decodeURIComponent(v.join('='))]),
  );
}

export function attach(request) {
  // attach contextual data to the ws.data
  const cookies = parseCookies(request.headers.get('Cookie'));
  const url = new URL(request.url);
  return {
    createdAt: Date.now(),
    channelId: url.searchParams.get('channelId'),
    authToken: cookies['X-Token'],
    username: url.searchParams.get('username') ?? 'anonymous',
    outbox: [],
    stats: { sent: 0, backpressured: 0, dropped: 0, drains: 0 },
  };
}

export function open(ws) {
  const msg = `${ws.data.username} has entered the chat`;
  ws.subscribe('the-group-chat');
  ws.publish('the-group-chat', msg);
}

export function message(ws, message) {
  const text = String(message);
  if (text.startsWith('/zip ')) {
    // Compressed for this message only (permessage-deflate must be agreed).
    ws.publish('the-group-chat', `${ws.data.username}: ${text.slice(5)}`, true);
    ws.send(`sent compressed: ${text.slice(5)}`, true);
    return;
  }
  if (text.startsWith('/history')) {
    // Replay the history, honouring backpressure.
    const times = Number(text.split(' ')[1] ?? 1);
    for (let i = 0; i < times; i++) ws.data.outbox.push(...history);
    ws.data.outbox.push(JSON.stringify({ end: true }));
    flush(ws);
    return;
  }
  if (text === '/stats') {
    ws.send(JSON.stringify(ws.data.stats));
    return;
  }
  // this is a group chat
  // so the server re-broadcasts incoming message to everyone
  const line = `${ws.data.username}: ${text}`;
  history.push(line);
  ws.publish('the-group-chat', line);
}

export function close(ws) {
  const msg = `${ws.data.username} has left the chat`;
  ws.unsubscribe('the-group-chat');
  ws.publish('the-group-chat', msg);
}

export function drain(ws) {
  // the socket is ready to receive more data
  ws.data.stats.drains++;
  flush(ws);
}

/** Send the outbox until the socket pushes back. */
function flush(ws) {
  const { outbox, stats } = ws.data;
  while (outbox.length > 0) {
    const r = ws.send(outbox[0]);
    if (r === 0) {
      // Dropped (past the backpressure limit): keep it, retry on drain.
      stats.dropped++;
      return;
    }
    outbox.shift();
    if (r === -1) {
      // Enqueued behind a backlog: wait for drain before the next one.
      stats.backpressured++;
      return;
    }
    stats.sent++;
  }
}
