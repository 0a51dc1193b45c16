// packages/ws-protocol/messages.ts, as the seed's recipe defines it, plus the
// PING / ECHO messages its example server answers and a JOIN to subscribe.
import { message, rpc, z } from '../ws-kit.mjs';

export const ChatMessage = message('CHAT_MESSAGE', {
  channelId: z.string(),
  text: z.string().min(1).max(2000),
  sentAt: z.number(),
});

export const GetMessages = rpc(
  'GET_MESSAGES',
  { channelId: z.string(), limit: z.number().default(50) },
  'MESSAGES',
  { messages: z.array(z.object({ id: z.string(), text: z.string() })) },
);

/** An RPC that takes `ms` to answer (for deadlines and cancellation). */
export const SlowQuery = rpc('SLOW_QUERY', { ms: z.number().int().min(0) }, 'SLOW_RESULT', { tookMs: z.number() });

export const JoinChannel = message('JOIN_CHANNEL', { channelId: z.string() });
export const Joined = message('JOINED', { channelId: z.string() });
export const Ping = message('PING');
export const Pong = message('PONG');
export const Echo = message('ECHO', { text: z.string() });
