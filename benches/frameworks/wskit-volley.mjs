// The Volley example's ws-kit (bindings/node/examples/ws-kit) on Node.
import { start } from '../../bindings/node/examples/ws-kit/app.mjs';

// One engine thread: the server is pinned to one CPU, like Bun's one thread.
const server = start({ port: Number(process.env.PORT ?? 3001), maxPayloadLength: 16 * 1024 * 1024, workers: 1 });
console.log(`ws-kit on volley listening on ${server.port}`);
