// src/api/announce.mjs: publish to every subscriber from outside a handler.
export async function POST(request) {
  const msg = `announcement: ${await request.text()}`;
  const server = globalThis.brisaServer;
  server.publish('the-group-chat', msg);
  return new Response(null, { status: 204 });
}
