// harpia's WebSocket documentation, example by example, on Volley.
//   node examples/harpia/app.mjs [port]      (TLS: TLS_CERT=… TLS_KEY=…)
//
//   /chat            typed ws.data, welcome, error handler
//   /game            ws.data set in open (playerId, gameId, score)
//   /notifications   broadcast over app.websocket.connections
//   /room/:roomId    rooms from the path (ws.data.url), pub/sub per room
//   /secure          close(1008, "Invalid token") without a valid token
//   /reliable        "Error processing message" + close(1011) on bad input
//   /high-volume     a producer that stops at backpressure and resumes on drain
//   /                a page that uses /chat and /room/lobby
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { harpia } from './harpia.mjs';

/** What the handlers logged (the seed logs to the console; tests read this). */
export const log = [];

const VALID_TOKENS = new Set(['let-me-in']);
const isValidToken = (t) => typeof t === 'string' && VALID_TOKENS.has(t);
const generateId = () => randomUUID();

const PAGE = `<!doctype html><meta charset="utf-8"><title>harpia on volley</title><pre id="out"></pre><script>
window.result = new Promise((done) => {
  const base = location.origin.replace(/^http/, 'ws');
  const chat = new WebSocket(base + '/chat?name=page');
  const got = [];
  chat.onmessage = (e) => {
    got.push(e.data);
    if (got.length === 1) {
      const a = new WebSocket(base + '/room/lobby');
      const b = new WebSocket(base + '/room/lobby');
      let open = 0;
      const start = () => { if (++open === 2) a.send('hi from a'); };
      a.onopen = start;
      b.onopen = start;
      b.onmessage = (m) => { got.push(m.data); done(got); };
    }
  };
});
window.result.then((r) => (document.getElementById('out').textContent = JSON.stringify(r)));
</script>`;

export function createApp() {
  const app = harpia();

  app.ws('/chat', {
    open(ws) {
      ws.data.userId = '123'; // Set custom data
      ws.data.username = ws.data.query.name ?? 'anonymous';
      ws.data.sessionId = generateId();
      ws.send('Welcome to the chat!');
    },
    message(ws, message) {
      if (message === 'throw') throw new Error('the handler failed');
      log.push(`Message from ${ws.data.username}: ${message}`);
    },
    close(ws) {
      log.push(`${ws.data.username} disconnected`);
    },
    error(ws, error) {
      log.push(`WebSocket error: ${error.message}`);
      ws.send(`error: ${error.message}`);
    },
  });

  app.ws('/game', {
    open(ws) {
      ws.data.playerId = generateId(); // Type-safe data assignment
      ws.data.gameId = ws.data.query.game ?? 'default';
      ws.data.score = 0;
      ws.send(JSON.stringify({ playerId: ws.data.playerId, gameId: ws.data.gameId, score: ws.data.score }));
    },
    message(ws, message) {
      ws.data.score += Number(message) || 0;
      ws.send(JSON.stringify({ score: ws.data.score }));
    },
  });

  app.ws('/notifications', {
    message(ws, message) {
      // Broadcast to all connected clients
      app.websocket.connections.forEach((client) => {
        if (client.readyState === 1) {
          // 1 = OPEN
          client.send(message);
        }
      });
    },
  });

  app.ws('/room/:roomId', {
    open(ws) {
      const roomId = new URL(ws.data.url).pathname.split('/')[2];
      ws.data.roomId = roomId; // Store dynamic parameter
      ws.subscribe(`room:${roomId}`);
    },
    message(ws, message) {
      ws.publish(`room:${ws.data.roomId}`, message);
    },
  });

  app.ws('/secure', {
    open(ws) {
      if (!isValidToken(ws.data.token)) {
        ws.close(1008, 'Invalid token');
        return;
      }
      ws.send('authorized');
    },
    message(ws, message) {
      ws.send(`secure: ${message}`);
    },
  });

  app.ws('/reliable', {
    message(ws, message) {
      try {
        const { n } = JSON.parse(String(message)); // Process message
        ws.send(JSON.stringify({ doubled: n * 2 }));
      } catch {
        ws.send('Error processing message');
        ws.close(1011, 'Processing error');
      }
    },
  });

  app.ws('/high-volume', {
    message(ws, message) {
      // "burst COUNT SIZE": send COUNT messages of SIZE bytes, pausing at backpressure.
      const [, count, size] = String(message).split(' ').map(Number);
      ws.data.todo = { left: count, chunk: Buffer.alloc(size, 120), drains: 0 };
      pump(ws);
    },
    drain(ws) {
      // Handle backpressure when send buffer is full
      log.push('Client receive buffer full');
      ws.data.todo.drains++;
      pump(ws);
    },
  });

  app.get('/', () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } }));
  return app;
}

/** Send until the queue pushes back (-1) or refuses (0); drain resumes. */
function pump(ws) {
  const t = ws.data.todo;
  while (t.left > 0) {
    const r = ws.send(t.chunk);
    if (r === 0) return; // dropped: resend it on drain
    t.left--;
    if (r === -1) return;
  }
  ws.send(JSON.stringify({ done: true, drains: t.drains }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = createApp();
  const tls = process.env.TLS_CERT ? { cert: process.env.TLS_CERT, key: process.env.TLS_KEY } : undefined;
  app.listen({ port: Number(process.argv[2] ?? 3000), tls });
  console.log(`harpia example on ${tls ? 'https' : 'http'}://127.0.0.1:${app.port}/`);
}
