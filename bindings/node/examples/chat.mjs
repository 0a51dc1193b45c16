// @ts-check
// Chat rooms, Bun style: `node examples/chat.mjs [port]`.
//   ws://HOST:PORT/room/ROOM?name=NAME   join ROOM (a topic) as NAME
//   POST /room/ROOM/announce              publish the body to ROOM, from HTTP
//   GET /room/ROOM                        how many are there
import { serve } from 'volley';

/** @typedef {{ name: string, room: string }} Member */

/** @type {import('volley').Server<Member>} */
const server = serve({
  port: Number(process.argv[2] ?? 3000),
  hostname: '127.0.0.1',
  routes: {
    '/room/:room/announce': {
      async POST(req, server) {
        const text = await req.text();
        server.publish(req.params.room, `announcement: ${text}`);
        return new Response('sent\n');
      },
    },
    '/room/:room': (req, server) => {
      const name = new URL(req.url).searchParams.get('name');
      if (name && server.upgrade(req, { data: { name, room: req.params.room } })) return;
      return Response.json({ room: req.params.room, members: server.subscriberCount(req.params.room) });
    },
  },
  fetch() {
    return new Response('not found\n', { status: 404 });
  },
  websocket: {
    open(ws) {
      ws.subscribe(ws.data.room);
      server.publish(ws.data.room, `${ws.data.name} joined`);
    },
    message(ws, message) {
      server.publish(ws.data.room, `${ws.data.name}: ${message}`);
    },
    close(ws) {
      server.publish(ws.data.room, `${ws.data.name} left`);
    },
  },
});
console.log(`listening ${server.port}`);
