"""volley.asyncio against websockets itself: each test runs twice, once on
``websockets.asyncio.server.serve`` (the reference: what the test states is
what websockets does) and once on ``volley.asyncio.serve``, driven by
websockets clients (or a raw socket where a client must misbehave)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import websockets
import websockets.asyncio.server as ws_server
import websockets.exceptions as wse
from websockets.protocol import State

import volley.asyncio as vws


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture(params=["websockets", "volley"])
def serve(request):
    return ws_server.serve if request.param == "websockets" else vws.serve


async def raw_client(port: int, path: str = "/") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client that completes the handshake and then answers nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


def http_get(port: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_process_request_answers_plain_http_health_checks(serve):
    # websockets' FAQ: process_request returns connection.respond(...) for
    # /healthz; any other plain request gets 426.
    def health_check(connection, request):
        if request.path == "/healthz":
            return connection.respond(200, "OK\n")
        return None

    async def go():
        async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=health_check) as server:
            port = port_of(server)
            assert await asyncio.to_thread(http_get, port, "/healthz") == (200, "OK\n")
            status, _ = await asyncio.to_thread(http_get, port, "/")
            assert status == 426

    run(go())


def test_request_path_keeps_the_query_string(serve):
    async def go():
        paths = []

        async def handler(ws):
            paths.append(ws.request.path)
            await ws.send("ok")

        async with serve(handler, "127.0.0.1", 0) as server:
            async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}/room?user=ann") as c:
                assert await c.recv() == "ok"
        assert paths == ["/room?user=ann"]

    run(go())


def test_send_of_an_iterable_is_one_message_and_a_dict_is_a_type_error(serve):
    async def go():
        errors = []

        async def parts():
            for p in ["as", "ync"]:
                yield p

        async def handler(ws):
            await ws.send(["frag", "mented"])
            await ws.send([b"by", b"tes"])
            await ws.send(parts())
            # (A list mixing str and bytes fails mid-message on websockets,
            # which then closes 1011; volley refuses it whole, TypeError.)
            try:
                await ws.send({"a": 1})
            except TypeError as e:
                errors.append(type(e).__name__)
            await ws.send("done")

        async with serve(handler, "127.0.0.1", 0) as server:
            async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
                assert [await c.recv() for _ in range(4)] == ["fragmented", b"bytes", "async", "done"]
        assert errors == ["TypeError"]

    run(go())


def test_text_and_decode_arguments(serve):
    async def go():
        async def handler(ws):
            m = await ws.recv(decode=False)  # a text message, as bytes
            await ws.send(m, text=True)  # bytes sent as a text frame
            m = await ws.recv(decode=True)  # a binary message, as str
            await ws.send(m, text=False)  # str sent as a binary frame

        async with serve(handler, "127.0.0.1", 0) as server:
            async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
                await c.send("héllo")
                assert await c.recv() == "héllo"
                await c.send("bïnary".encode())
                assert await c.recv() == "bïnary".encode()

    run(go())


def test_ping_resolves_with_the_latency_and_a_closed_connection_refuses_it(serve):
    async def go():
        seen = {}

        async def handler(ws):
            waiter = await ws.ping()
            latency = await asyncio.wait_for(waiter, 5)
            seen["latency"] = (latency, ws.latency)
            seen["id"] = ws.id
            seen["state"] = ws.state
            await ws.send("pinged")
            await ws.wait_closed()
            seen["closed_state"] = ws.state
            try:
                await ws.ping()
            except wse.ConnectionClosed as e:
                seen["ping_closed"] = type(e).__name__

        async with serve(handler, "127.0.0.1", 0) as server:
            async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
                assert await c.recv() == "pinged"
            for _ in range(200):
                if "ping_closed" in seen:
                    break
                await asyncio.sleep(0.01)
        latency, kept = seen["latency"]
        assert isinstance(latency, float) and 0 < latency < 5 and kept == latency
        assert isinstance(seen["id"], uuid.UUID)
        assert seen["state"] is State.OPEN and seen["closed_state"] is State.CLOSED
        assert seen["ping_closed"] == "ConnectionClosedOK"

    run(go())


def test_keepalive_drops_a_peer_that_stops_answering_pings(serve):
    # websockets with ping_interval=1, ping_timeout=1 drops it at about 2 s.
    async def go():
        ended = {}

        async def handler(ws):
            t0 = time.monotonic()
            await ws.wait_closed()
            ended["after"] = time.monotonic() - t0
            ended["code"] = ws.close_code

        async with serve(handler, "127.0.0.1", 0, ping_interval=1, ping_timeout=1) as server:
            reader, writer = await raw_client(port_of(server))
            for _ in range(600):
                if "after" in ended:
                    break
                await asyncio.sleep(0.01)
            writer.close()
        # websockets 15: the keepalive gives up at 2 s (1011), then waits
        # for a closing handshake that never comes: closed at about 6 s.
        # (Volley answered at 31 s before.)
        assert 1.5 < ended["after"] < 9, ended
        assert ended["code"] in (1006, 1011), ended

    run(go())


def test_exceptions_are_websockets_own_classes(serve):
    async def go():
        caught = []

        async def handler(ws):
            try:
                await ws.recv()
            except wse.ConnectionClosed as e:
                caught.append((type(e).__name__, e.rcvd.code if e.rcvd else None))

        async with serve(handler, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{port_of(server)}/"
            async with websockets.connect(url):
                pass  # closes with 1000
            c = await websockets.connect(url)
            await c.close(4000, "app says no")
            for _ in range(200):
                if len(caught) == 2:
                    break
                await asyncio.sleep(0.01)
        assert sorted(caught) == [("ConnectionClosedError", 4000), ("ConnectionClosedOK", 1000)]

    run(go())


def test_two_concurrent_recv_raise_concurrency_error(serve):
    async def go():
        got = []

        async def handler(ws):
            first = asyncio.ensure_future(ws.recv())
            await asyncio.sleep(0.05)
            try:
                await ws.recv()
            except wse.ConcurrencyError:
                got.append("ConcurrencyError")
            got.append(await first)

        async with serve(handler, "127.0.0.1", 0) as server:
            async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
                await asyncio.sleep(0.1)
                await c.send("m")
                for _ in range(200):
                    if len(got) == 2:
                        break
                    await asyncio.sleep(0.01)
        assert got == ["ConcurrencyError", "m"]

    run(go())


@pytest.mark.parametrize("max_queue", [None, (4, 1), 1])
def test_max_queue_unbounded_or_high_low_loses_nothing(serve, max_queue):
    async def go():
        async def handler(ws):
            await asyncio.sleep(0.3)  # let messages pile up
            got = [await ws.recv() for _ in range(50)]
            await ws.send(str(got == [str(i) for i in range(50)]))

        async with serve(handler, "127.0.0.1", 0, max_queue=max_queue) as server:
            async with websockets.connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
                for i in range(50):
                    await c.send(str(i))
                assert await c.recv() == "True"

    run(go())


def test_server_close_sends_1001_without_a_reason_and_ends_serve_forever(serve):
    async def go():
        async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as server:
            port = port_of(server)
            forever = asyncio.ensure_future(server.serve_forever())
            c = await websockets.connect(f"ws://127.0.0.1:{port}/")
            for _ in range(200):
                if server.connections:
                    break
                await asyncio.sleep(0.01)
            assert len(server.connections) == 1
            server.close()
            await server.wait_closed()
            # close() ends serve_forever with CancelledError (asyncio.Server's).
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(forever, 10)
            await c.wait_closed()
            assert (c.close_code, c.close_reason) == (1001, "")

    run(go())


def test_host_none_binds_every_interface(serve):
    async def go():
        async def echo(ws):
            async for m in ws:
                await ws.send(m)

        # A free port (websockets binds IPv6 and IPv4 on it; with 0 each
        # family would get its own).
        import socket
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        async with serve(echo, None, port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as c:
                await c.send("v4")
                assert await c.recv() == "v4"

    run(go())


def test_compression_must_be_known(serve):
    with pytest.raises(ValueError):
        serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, compression="zstd")


def test_without_websockets_installed_the_same_names_and_attributes_exist():
    """With websockets absent (its import blocked in a child), volley.asyncio
    still serves and raises its own ConnectionClosedOK / ConnectionClosedError
    / ConcurrencyError with rcvd and sent close frames."""
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent('''
        import sys
        sys.modules["websockets"] = None  # as if not installed
        import asyncio, volley.asyncio as vws

        async def main():
            caught = []
            async def handler(ws):
                try:
                    await ws.recv()
                except vws.ConnectionClosed as e:
                    caught.append((type(e).__name__, e.rcvd.code, e.sent.code, e.code))
            async with vws.serve(handler, "127.0.0.1", 0) as server:
                r, w = await asyncio.open_connection("127.0.0.1", server.port)
                w.write(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")
                await r.readuntil(b"\\r\\n\\r\\n")
                w.write(bytes([0x88, 0x82, 0, 0, 0, 0, 0x0f, 0xa0]))  # close 4000, mask 0
                await r.read()
                for _ in range(200):
                    if caught:
                        break
                    await asyncio.sleep(0.01)
            assert issubclass(vws.ConcurrencyError, RuntimeError)
            print(caught)

        asyncio.run(main())
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('ConnectionClosedError', 4000, 4000, 4000)]"
