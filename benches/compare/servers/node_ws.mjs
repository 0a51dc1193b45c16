// Node `ws` peer for benches/compare (same convention as bun.js).
import { WebSocketServer } from 'ws';
import http from 'node:http';

const deflate = process.env.WS_DEFLATE === '1';
const port = Number(process.env.PORT ?? 9001);
const server = http.createServer((req, res) => {
  res.writeHead(426);
  res.end('upgrade required');
});
const wss = new WebSocketServer({ server, maxPayload: 16 * 1024 * 1024, perMessageDeflate: deflate });
const subs = new Set();
const publish = (from, data, isBinary) => {
  for (const s of subs) if (s !== from) s.send(data, { binary: isBinary, compress: deflate });
};
wss.on('connection', (ws, req) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/sub') {
    subs.add(ws);
    ws.on('close', () => subs.delete(ws));
  }
  ws.on('message', (data, isBinary) => {
    if (path === '/echo') ws.send(data, { binary: isBinary, compress: deflate });
    else publish(ws, data, isBinary);
  });
});
server.listen(port, '127.0.0.1', () => console.log(`node-ws: listening on http://127.0.0.1:${port}/`));
