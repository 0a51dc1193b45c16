// bunWay's WebSocket documentation, example by example, on Volley.
//   node examples/bunway/app.mjs [port]
//
//   /chat              Quick Start: welcome and `Echo: …`
//   /room/:roomId      route parameters (ws.data.params)
//   /protected         session + auth middleware before the upgrade (401)
//   /user              ws.data.req: the session and request headers
//   /chat/:room        chat rooms (a Map of Sets, broadcast without the sender)
//   /notifications     one user's socket, notified from POST /api/order
//   /stream            heartbeat: {"type":"ping"} every interval, pong ignored
//   /scaled/:room      chat rooms on engine topics: with REDIS_URL set, across processes
//   POST /login        puts { userId } in the session (for the examples above)
//   GET /              a page that logs in and talks to /chat/:room and /notifications
import { fileURLToPath } from 'node:url';
import { bunway, session } from './bunway.mjs';

export const log = [];

const PAGE = `<!doctype html><meta charset="utf-8"><title>bunWay on volley</title><script>
window.result = (async () => {
  await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"userId":"page-user"}' });
  const base = location.origin.replace(/^http/, 'ws');
  // Each socket queues what it receives; next() takes in order.
  const open = (path) => new Promise((r) => {
    const ws = new WebSocket(base + path);
    const inbox = [];
    let wake = null;
    ws.onmessage = (e) => { inbox.push(e.data); if (wake) { wake(); wake = null; } };
    ws.next = async () => { while (!inbox.length) await new Promise((w) => (wake = w)); return inbox.shift(); };
    ws.onopen = () => r(ws);
  });
  const next = (ws) => ws.next();
  const notes = await open('/notifications');
  const a = await open('/chat/general');
  const b = await open('/chat/general');
  const out = { joined: await next(a) };
  a.send('Hello!');
  out.chat = await next(b);
  const note = next(notes);
  const order = await (await fetch('/api/order', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":"book"}' })).json();
  out.note = JSON.parse(await note);
  out.order = order;
  return out;
})();
</script>`;

/**
 * The example app (not listening yet). `heartbeatMs`: the /stream ping
 * interval (the seed's 30 s by default).
 */
export function createApp({ heartbeatMs = 30000 } = {}) {
  const app = bunway();
  app.use(session({ secret: 'my-secret' }));

  // Middleware runs before upgrade
  const authMiddleware = (req, res, next) => {
    if (!req.session.userId) {
      return res.status(401).json({ error: 'Unauthorized' });
    }
    next();
  };

  app.post('/login', (req, res) => {
    req.session.userId = String(req.body?.userId ?? '');
    res.json({ ok: true });
  });

  app.ws('/chat', {
    open(ws) {
      log.push('Client connected');
      ws.send('Welcome to the chat!');
    },
    message(ws, message) {
      log.push(`Received: ${message}`);
      ws.send(`Echo: ${message}`);
    },
    close(ws, code, reason) {
      log.push(`Client disconnected: ${code} ${reason}`);
    },
  });

  app.ws('/room/:roomId', {
    open(ws) {
      const roomId = ws.data.params.roomId;
      ws.send(`joined room: ${roomId}`);
    },
    message(ws, message) {
      ws.send(`${ws.data.params.roomId}: ${message}`);
    },
  });

  app.ws('/protected', authMiddleware, {
    open(ws) {
      // User is authenticated
      ws.send(`hello ${ws.data.req.session.userId}`);
    },
    message(ws, message) {
      ws.send(`protected: ${message}`);
    },
  });

  app.ws('/user', {
    open(ws) {
      // Access the original request
      const userId = ws.data.req.session?.userId;
      const userAgent = ws.data.req.get('user-agent');
      ws.send(JSON.stringify({ userId: userId ?? null, userAgent, routePath: ws.data.routePath }));
    },
  });

  // Chat Room
  const rooms = new Map();
  function broadcast(room, message, exclude) {
    for (const client of rooms.get(room) || []) {
      if (client !== exclude) {
        client.send(message);
      }
    }
  }
  app.ws('/chat/:room', {
    open(ws) {
      const room = ws.data.params.room;
      if (!rooms.has(room)) {
        rooms.set(room, new Set());
      }
      rooms.get(room).add(ws);
      // Notify others
      broadcast(room, 'User joined', ws);
    },
    message(ws, message) {
      broadcast(ws.data.params.room, message.toString(), ws);
    },
    close(ws) {
      const room = ws.data.params.room;
      rooms.get(room)?.delete(ws);
      broadcast(room, 'User left');
    },
  });

  // Real-time Notifications
  const userConnections = new Map();
  app.ws('/notifications', authMiddleware, {
    open(ws) {
      userConnections.set(ws.data.req.session.userId, ws);
    },
    close(ws) {
      userConnections.delete(ws.data.req.session.userId);
    },
  });
  function notifyUser(userId, notification) {
    const ws = userConnections.get(userId);
    if (ws) {
      ws.send(JSON.stringify(notification));
    }
  }
  let orders = 0;
  const createOrder = async (body) => ({ id: `order-${++orders}`, ...body });
  app.post('/api/order', authMiddleware, async (req, res) => {
    const order = await createOrder(req.body);
    notifyUser(req.session.userId, { type: 'order_created', orderId: order.id });
    res.json(order);
  });

  // Heartbeat / Keep-alive
  const pingIntervals = new Map();
  app.ws('/stream', {
    open(ws) {
      const interval = setInterval(() => {
        if (ws.readyState === 1) {
          ws.send(JSON.stringify({ type: 'ping' }));
        } else {
          clearInterval(interval);
        }
      }, heartbeatMs);
      pingIntervals.set(ws, interval);
    },
    message(ws, message) {
      const data = JSON.parse(message.toString());
      if (data.type === 'pong') {
        log.push('pong'); // Client is alive
        return;
      }
      ws.send(JSON.stringify({ type: 'ack', bufferedAmount: ws.bufferedAmount }));
    },
    close(ws) {
      clearInterval(pingIntervals.get(ws));
      pingIntervals.delete(ws);
      log.push('heartbeat stopped');
    },
  });

  // Scale-out: the same rooms on engine topics, which the Redis bridge
  // carries to every process (listen(port, { pubsubBridge })).
  app.ws('/scaled/:room', {
    open(ws) {
      ws.subscribe(`room:${ws.data.params.room}`);
      ws.publish(`room:${ws.data.params.room}`, 'User joined');
    },
    message(ws, message) {
      ws.publish(`room:${ws.data.params.room}`, message.toString());
    },
  });

  app.get('/', (req, res) => res.html(PAGE));
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = createApp();
  app.printRoutes();
  app.listen(Number(process.argv[2] ?? 3000), { pubsubBridge: process.env.REDIS_URL });
  console.log(`bunWay example on http://127.0.0.1:${app.port}/`);
}
