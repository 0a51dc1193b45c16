"""picows (Cython WebSocket on asyncio) peer for benches/compare: /echo
echoes with the opcode; /sub and /pub publish to the subscribers of /sub.

Configured as picows' authors run it (their README and examples): on
uvloop, the frame's payload echoed as a memoryview. PICOWS_LOOP=asyncio
runs it on the stock asyncio loop instead."""

import asyncio
import os

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

SUBS = set()


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


class Pub(WSListener):
    def __init__(self, subscribe):
        self.subscribe = subscribe
        self.transport = None

    def on_ws_connected(self, transport: WSTransport):
        self.transport = transport
        if self.subscribe:
            SUBS.add(transport)

    def on_ws_disconnected(self, transport: WSTransport):
        SUBS.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            payload = frame.get_payload_as_bytes()
            for s in SUBS:
                if s is not transport:
                    s.send(frame.msg_type, payload)


def listener(request):
    path = request.path
    if isinstance(path, bytes):
        path = path.decode()
    path = path.split("?")[0]
    if path == "/sub":
        return Pub(True)
    if path == "/pub":
        return Pub(False)
    return Echo()


async def main():
    port = int(os.environ.get("PORT", "9001"))
    server = await ws_create_server(listener, "127.0.0.1", port, max_frame_size=16 * 1024 * 1024)
    print(f"py-picows: listening on http://127.0.0.1:{port}/", flush=True)
    await server.serve_forever()


if os.environ.get("PICOWS_LOOP", "uvloop") == "uvloop":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main())
