"""Interop with the Python `websockets` client against `volley serve`'s /echo."""

import asyncio
import os

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

SIZES = [0, 125, 126, 65535, 65536, 16 * 1024 * 1024]


def payload(size: int, binary: bool):
    if binary:
        return bytes((i * 31 + 7) & 0xFF for i in range(min(size, 4096))) * (size // 4096) + bytes(
            (i * 31 + 7) & 0xFF for i in range(size % 4096)
        )
    base = "volley ✓ κόσμε "  # multi-byte characters, so fragments can split a code point
    text = (base * (size // len(base.encode()) + 1)).encode()[:size]
    return text.decode("utf-8", errors="ignore")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def echo_once(ws, msg, fragmented):
    """Send `msg` (in three fragments if asked) and check the echo is identical."""
    if fragmented and len(msg) >= 3:
        third = len(msg) // 3
        await ws.send(iter([msg[:third], msg[third : 2 * third], msg[2 * third :]]))
    else:
        await ws.send(msg)
    got = await ws.recv()
    assert type(got) is type(msg)
    assert len(got) == len(msg)
    assert got == msg


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("fragmented", [False, True], ids=["whole", "fragmented"])
def test_echo(server_url, size, binary, fragmented):
    msg = payload(size, binary)

    async def go():
        async with websockets.connect(server_url + "/echo", max_size=None, compression=None) as ws:
            await echo_once(ws, msg, fragmented)

    run(go())


@pytest.mark.parametrize("code,reason", [(1000, ""), (1001, "going"), (3000, "app"), (4999, "ünïcode reason")])
def test_close_code_and_reason_echoed(server_url, code, reason):
    async def go():
        ws = await websockets.connect(server_url + "/echo")
        await ws.close(code, reason)
        # The server echoes the code (RFC 6455 §5.5.1).
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == code
        assert ws.protocol.close_sent.code == code

    run(go())


def test_many_messages_in_flight_keep_order(server_url):
    async def go():
        async with websockets.connect(server_url + "/echo") as ws:
            msgs = [f"m{i}" for i in range(2000)]
            for m in msgs:
                await ws.send(m)
            got = [await ws.recv() for _ in msgs]
            assert got == msgs

    run(go())


def test_oversized_message_closes_1009(server_url):
    async def go():
        # No `async with`: its close() after the server's close and FIN can
        # meet websockets 15's own teardown race (transport.abort() on a
        # transport whose loop is already gone); the connection is closed
        # by the server here, and wait_closed() is all the client owes.
        ws = await websockets.connect(server_url + "/echo", max_size=None)
        await ws.send(b"x" * (16 * 1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as e:
            await ws.recv()
        assert e.value.rcvd.code == 1009
        await asyncio.wait_for(ws.wait_closed(), 10)

    run(go())


def test_ping_pong(server_url):
    async def go():
        async with websockets.connect(server_url + "/echo") as ws:
            waiter = await ws.ping(b"hello?")
            latency = await asyncio.wait_for(waiter, 5)
            assert latency >= 0

    run(go())
