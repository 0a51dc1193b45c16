"""Volley's websockets-style layer for benches/compare: py_websockets.py
with its import changed (bindings/python: volley.asyncio)."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bindings", "python"))
from volley.asyncio import broadcast, serve  # noqa: E402

SUBS = set()


async def handler(ws):
    path = ws.request.path.split("?")[0]
    if path == "/sub":
        SUBS.add(ws)
    try:
        async for msg in ws:
            if path == "/echo":
                await ws.send(msg)
            else:
                broadcast([s for s in SUBS if s is not ws], msg)
    finally:
        SUBS.discard(ws)


async def main():
    port = int(os.environ.get("PORT", "9001"))
    compression = "deflate" if os.environ.get("WS_DEFLATE") == "1" else None
    async with serve(handler, "127.0.0.1", port, max_size=16 * 1024 * 1024, compression=compression,
                     ping_interval=None, workers=int(os.environ.get("VOLLEY_WORKERS", "1"))):
        print(f"py-volley-ws: listening on http://127.0.0.1:{port}/", flush=True)
        await asyncio.Future()


asyncio.run(main())
