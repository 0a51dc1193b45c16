// Bun's documentation chat room (docs/guides/websocket/pubsub.mdx in
// bun-types 1.4.5), pasted unchanged but for the import below, and the
// cookie helper the docs leave to the reader. It type-checks against
// bun-types and runs on Node: `import 'volley/bun'` makes Bun.serve
// volley's serve. (test/chat-ts.test.mjs compiles and drives it.)
import 'volley/bun';

function getUsernameFromCookies(cookies: string | null): string {
  const m = /(?:^|;\s*)username=([^;]*)/.exec(cookies ?? '');
  return m ? decodeURIComponent(m[1]) : 'anonymous';
}

const server = Bun.serve({
  fetch(req, server) {
    const cookies = req.headers.get("cookie");
    const username = getUsernameFromCookies(cookies);
    const success = server.upgrade(req, { data: { username } });
    if (success) return undefined;

    return new Response("Hello world");
  },
  websocket: {
    // TypeScript: specify the type of ws.data like this
    data: {} as { username: string },

    open(ws) {
      const msg = `${ws.data.username} has entered the chat`;
      ws.subscribe("the-group-chat");
      server.publish("the-group-chat", msg);
    },
    message(ws, message) {
      // the server re-broadcasts incoming messages to everyone
      server.publish("the-group-chat", `${ws.data.username}: ${message}`);
    },
    close(ws) {
      const msg = `${ws.data.username} has left the chat`;
      server.publish("the-group-chat", msg);
    },
  },
});

console.log(`Listening on ${server.hostname}:${server.port}`);
