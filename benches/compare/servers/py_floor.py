"""The floor of each Python layer (issue 21, section 4): the server CPU a
message costs with an empty handler, against the same layer's echo.
FLOOR_LAYER: bun (volley.serve), asyncio (volley.asyncio.serve), picows;
FLOOR_HANDLER: empty or echo. Counts the messages and, at the
FLOOR_MESSAGES-th, prints the process CPU seconds since the first and
exits. Run by benches/compare/floor.py."""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bindings", "python"))

LAYER = os.environ["FLOOR_LAYER"]
ECHO = os.environ["FLOOR_HANDLER"] == "echo"
N = int(os.environ["FLOOR_MESSAGES"])
PORT = int(os.environ.get("PORT", "9001"))
seen = 0
t0 = 0.0
done = None


def count():
    global seen, t0
    seen += 1
    if seen == 1:
        t0 = time.process_time()
    elif seen == N:
        print(f"cpu {time.process_time() - t0:.6f}", flush=True)
        done.set_result(None)


async def bun():
    import volley

    def message(ws, m):
        if ECHO:
            ws.send(m)
        count()

    server = await volley.serve(port=PORT, message=message)
    print("listening", flush=True)
    await done
    await server.stop()


async def ws_layer():
    from volley.asyncio import serve

    async def handler(ws):
        async for m in ws:
            if ECHO:
                await ws.send(m)
            count()

    async with serve(handler, "127.0.0.1", PORT, compression=None, ping_interval=None):
        print("listening", flush=True)
        await done


async def picows():
    from picows import WSListener, WSMsgType, ws_create_server

    class L(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if ECHO:
                    transport.send(frame.msg_type, frame.get_payload_as_memoryview())
                count()

    server = await ws_create_server(lambda _: L(), "127.0.0.1", PORT)
    print("listening", flush=True)
    await done
    server.close()


async def main():
    global done
    done = asyncio.get_running_loop().create_future()
    await {"bun": bun, "asyncio": ws_layer, "picows": picows}[LAYER]()


if LAYER == "picows" and os.environ.get("PICOWS_LOOP", "uvloop") == "uvloop":
    import uvloop

    uvloop.run(main())
else:
    asyncio.run(main())
