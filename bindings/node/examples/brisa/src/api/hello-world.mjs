// src/api/hello-world.mjs: an API route that sends on the caller's WebSocket.
export function GET({ ws, i18n }) {
  const message = i18n.t('hello-world');
  // Sending a WebSocket message from an API route
  ws?.send(message);
  return new Response(message, {
    headers: { 'content-type': 'text/plain' },
  });
}
