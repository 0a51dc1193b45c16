"""permessage-deflate interop: Python `websockets` against `volley serve --deflate`."""

import asyncio

import pytest
import websockets

from test_websockets_client import SIZES, echo_once, payload, run


def agreed(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions", "")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("fragmented", [False, True], ids=["whole", "fragmented"])
def test_compressed_echo(deflate_url, size, binary, fragmented):
    msg = payload(size, binary)

    async def go():
        async with websockets.connect(deflate_url + "/echo", max_size=None, compression="deflate") as ws:
            assert "permessage-deflate" in agreed(ws)
            await echo_once(ws, msg, fragmented)

    run(go())


def test_many_compressed_messages_keep_context_in_order(deflate_url):
    async def go():
        async with websockets.connect(deflate_url + "/echo", compression="deflate") as ws:
            msgs = [f'{{"id": {i}, "text": "hello hello hello"}}' for i in range(500)]
            for m in msgs:
                await ws.send(m)
            assert [await ws.recv() for _ in msgs] == msgs

    run(go())


def test_publish_reaches_compressed_subscribers(deflate_url):
    async def go():
        subs = [await websockets.connect(deflate_url + "/sub", compression="deflate") for _ in range(5)]
        pub = await websockets.connect(deflate_url + "/pub", compression="deflate")
        text = "market data " * 100
        for i in range(20):
            await pub.send(f"{i}:{text}")
        for s in subs:
            assert [await s.recv() for _ in range(20)] == [f"{i}:{text}" for i in range(20)]
        for w in subs + [pub]:
            await w.close()

    run(go())
