// The same src/websocket on Node through the Volley example's Brisa layer.
import { createServer } from '../../bindings/node/examples/brisa/brisa.mjs';
import * as websocket from './brisa-app/src/websocket.js';

// One engine thread: the server is pinned to one CPU, like Bun's one thread.
const server = createServer({ websocket, port: Number(process.env.PORT ?? 3000), workers: 1 });
console.log(`brisa on volley listening on ${server.port}`);
