"""Volley from Python, the Bun-shaped callback layer (bindings/python), for
benches/compare: /echo echoes with the opcode; /sub subscribes to "t" and
publishes what it sends to "t"; /pub publishes to "t" without subscribing.
PORT (default 9001); WS_DEFLATE=1 turns permessage-deflate on."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bindings", "python"))
import volley  # noqa: E402

DEFLATE = os.environ.get("WS_DEFLATE") == "1"


def upgrade(req):
    return req.path


def open_(ws):
    if ws.data == "/sub":
        ws.subscribe("t")


def message(ws, msg):
    if ws.data == "/echo":
        ws.send(msg, DEFLATE)
    else:
        ws.publish("t", msg, DEFLATE)


async def main():
    server = await volley.serve(
        port=int(os.environ.get("PORT", "9001")),
        upgrade=upgrade,
        open=open_,
        message=message,
        per_message_deflate=DEFLATE,
        max_payload_length=16 * 1024 * 1024,
        workers=int(os.environ.get("VOLLEY_WORKERS", "1")),
    )
    print(f"py-volley: listening on http://127.0.0.1:{server.port}/", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
