// ws-kit's recipe as its docs write it for Bun (createBunHandler, zod
// messages and an RPC, topics through bunPubSub and router.publish), used
// unchanged by test/frameworks.test.mjs on Node through `volley/bun`.
import { createBunHandler, bunPubSub } from '@ws-kit/bun';
import { createRouter, message, rpc, withZod, z } from '@ws-kit/zod';
import { withPubSub } from '@ws-kit/pubsub';

const Join = message('JOIN', { room: z.string() });
const Say = message('SAY', { room: z.string(), text: z.string().min(1) });
const Said = message('SAID', { text: z.string() });
const GetUser = rpc('GET_USER', { id: z.string() }, 'USER', { id: z.string(), name: z.string() });

export const errors = [];

export function start() {
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('starting'), websocket: {} });
  // router.publish, as ws-kit's Bun docs do (ctx.publish excludes the
  // sender, which bunPubSub refuses as UNSUPPORTED on Bun too).
  const router = createRouter()
    .plugin(withZod())
    .plugin(withPubSub({ adapter: bunPubSub(server) }))
    .on(Join, async (ctx) => {
      // ws-kit 0.10's ctx.topics.subscribe goes through the adapter, and
      // bunPubSub has no subscribe (a no-op on Bun too): subscribe the
      // socket itself, Bun's way.
      ctx.ws.subscribe(`room:${ctx.payload.room}`);
      ctx.send(Said, { text: `joined ${ctx.payload.room}` });
    })
    .on(Say, async (ctx) => {
      await router.publish(`room:${ctx.payload.room}`, Said, { text: ctx.payload.text });
    })
    .rpc(GetUser, (ctx) => {
      ctx.reply({ id: ctx.payload.id, name: `user ${ctx.payload.id}` });
    });
  router.onError((err) => {
    errors.push(String(err.code ?? err.name));
  });
  const { fetch, websocket } = createBunHandler(router);
  server.reload({ fetch, websocket });
  return server;
}
