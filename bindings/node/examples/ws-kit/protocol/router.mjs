// packages/ws-protocol/router.ts: the handlers.
import { createRouter, withZod } from '../ws-kit.mjs';
import { ChatMessage, Echo, GetMessages, Joined, JoinChannel, Ping, Pong, SlowQuery } from './messages.mjs';

export function createAppRouter() {
  /** Recent chat messages per channel (for GET_MESSAGES). */
  const history = new Map();
  let ids = 0;
  const router = createRouter()
    .plugin(withZod())
    .on(Ping, (ctx) => {
      ctx.send(Pong, {});
    })
    .on(Echo, (ctx) => {
      ctx.send(Echo, { text: ctx.payload.text });
    })
    .on(JoinChannel, (ctx) => {
      ctx.topics.subscribe(`channel:${ctx.payload.channelId}`);
      ctx.send(Joined, { channelId: ctx.payload.channelId });
    })
    .on(ChatMessage, (ctx) => {
      const list = history.get(ctx.payload.channelId) ?? [];
      list.push({ id: String(++ids), text: ctx.payload.text });
      history.set(ctx.payload.channelId, list.slice(-1000));
      // Broadcast to all clients subscribed to this channel
      ctx.publish(`channel:${ctx.payload.channelId}`, ChatMessage, {
        channelId: ctx.payload.channelId,
        text: ctx.payload.text,
        sentAt: ctx.payload.sentAt,
      });
    })
    .rpc(GetMessages, (ctx) => {
      const list = history.get(ctx.payload.channelId) ?? [];
      ctx.reply(GetMessages.response, { messages: list.slice(-ctx.payload.limit) });
    })
    .rpc(SlowQuery, async (ctx) => {
      const started = Date.now();
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, ctx.payload.ms);
        ctx.onCancel(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      ctx.reply(SlowQuery.response, { tookMs: Date.now() - started });
    });
  return router;
}
