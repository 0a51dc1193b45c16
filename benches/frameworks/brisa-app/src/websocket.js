// One src/websocket for both sides of the Brisa benchmark: the real Brisa
// on Bun builds it (`brisa build`), and the Volley example's Brisa layer
// imports it. Paths follow volley bench's convention:
//   /echo  every message back          (bench echo)
//   /sub   joins the group chat        (bench fanout subscribers)
//   /pub   publishes to the group chat (bench fanout publisher)
export function attach(request) {
  return { path: new URL(request.url).pathname };
}

export function open(ws) {
  if (ws.data.path === "/sub") ws.subscribe("the-group-chat");
}

export function message(ws, message) {
  if (ws.data.path === "/echo") ws.send(message);
  else if (ws.data.path === "/pub") ws.publish("the-group-chat", message);
}

export function close(ws) {
  if (ws.data.path === "/sub") ws.unsubscribe("the-group-chat");
}
