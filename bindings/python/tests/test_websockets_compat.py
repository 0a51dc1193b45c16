"""volley.asyncio against websockets itself: each test runs twice, once on
``websockets.asyncio.server.serve`` (the reference: what the test states is
what websockets does) and once on ``volley.asyncio.serve``, driven by
websockets clients (or a raw socket where a client must misbehave)."""

from __future__ import annotations

import asyncio
import os
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
            def added(connection, request, response):
                response.headers["X-Added"] = "1"
            async with vws.serve(handler, "127.0.0.1", 0, subprotocols=["chat"], process_response=added) as server:
                r, w = await asyncio.open_connection("127.0.0.1", server.port)
                w.write(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                        b"Sec-WebSocket-Protocol: chat\\r\\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")
                head = await r.readuntil(b"\\r\\n\\r\\n")
                assert b"\\r\\nSec-WebSocket-Protocol: chat\\r\\n" in head and b"\\r\\nX-Added: 1\\r\\n" in head, head
                r2, w2 = await asyncio.open_connection("127.0.0.1", server.port)
                w2.write(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")
                assert (await r2.readuntil(b"\\r\\n\\r\\n")).startswith(b"HTTP/1.1 400 ")  # no subprotocol
                w2.close()
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


@pytest.fixture(params=["websockets", "volley"])
def impl(request):
    """The module: websockets' server (the reference) or volley.asyncio."""
    return ws_server if request.param == "websockets" else vws


def test_subprotocols_are_chosen_as_websockets_chooses_them(impl):
    # The server's order wins; a client offering none (or none in common)
    # gets 400; select_subprotocol(connection, offered) overrides the rule.
    from websockets.asyncio.client import connect

    async def go():
        async def handler(ws):
            await ws.send(f"sub={ws.subprotocol}")

        async with impl.serve(handler, "127.0.0.1", 0, subprotocols=["chat", "superchat"]) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}/"
            async with connect(uri, subprotocols=["superchat", "chat"]) as c:
                assert c.subprotocol == "chat"
                assert await c.recv() == "sub=chat"
            for offer in (None, ["other"]):
                with pytest.raises(wse.InvalidStatus) as e:
                    async with connect(uri, subprotocols=offer):
                        pass
                assert e.value.response.status_code == 400
                assert b"subprotocol" in e.value.response.body

        def pick(connection, offered):
            assert connection.request.path == "/"
            return "chat" if "chat" in offered else None

        async with impl.serve(handler, "127.0.0.1", 0, select_subprotocol=pick) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}/"
            async with connect(uri) as c:
                assert c.subprotocol is None and await c.recv() == "sub=None"
            async with connect(uri, subprotocols=["x", "chat"]) as c:
                assert c.subprotocol == "chat" and await c.recv() == "sub=chat"

    run(go())


def test_process_response_changes_or_replaces_every_answer(impl):
    # It sees the 101 (added headers reach the client, connection.response
    # is it) and refusals (a 401 from process_request), and a response it
    # returns replaces the 101: the upgrade is refused.
    from websockets.asyncio.client import connect

    async def go():
        seen = []

        def process_request(connection, request):
            if request.path == "/private":
                return connection.respond(401, "no\n")
            return None

        def process_response(connection, request, response):
            seen.append((request.path, response.status_code))
            response.headers["X-Checked"] = "yes"
            if request.path == "/refuse":
                return connection.respond(403, "refused late\n")
            return None

        async def handler(ws):
            await ws.send(f"{ws.response.status_code} {ws.response.headers['X-Checked']}")

        async with impl.serve(handler, "127.0.0.1", 0, process_request=process_request,
                              process_response=process_response) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}"
            async with connect(uri + "/") as c:
                assert c.response.headers["X-Checked"] == "yes"
                assert await c.recv() == "101 yes"
            with pytest.raises(wse.InvalidStatus) as e:
                async with connect(uri + "/private"):
                    pass
            assert e.value.response.status_code == 401
            assert e.value.response.headers["X-Checked"] == "yes"
            with pytest.raises(wse.InvalidStatus) as e:
                async with connect(uri + "/refuse"):
                    pass
            assert e.value.response.status_code == 403 and e.value.response.body == b"refused late\n"
        assert seen == [("/", 101), ("/private", 401), ("/refuse", 101)]

    run(go())


def test_open_timeout_closes_a_client_that_sends_no_request(impl):
    async def go():
        async def handler(ws):
            pass

        async with impl.serve(handler, "127.0.0.1", 0, open_timeout=1) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            writer.write(b"GET / HTTP/1.1\r\n")  # and nothing more
            t0 = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without an answer
            took = time.monotonic() - t0
            writer.close()
        assert 0.5 < took < 3, took

    run(go())


def test_close_timeout_bounds_a_close_the_peer_never_answers(impl):
    async def go():
        took = {}

        async def handler(ws):
            t0 = time.monotonic()
            await ws.close()
            took["close"] = time.monotonic() - t0

        async with impl.serve(handler, "127.0.0.1", 0, close_timeout=1, ping_interval=None) as server:
            reader, writer = await raw_client(port_of(server))
            for _ in range(1000):
                if took:
                    break
                await asyncio.sleep(0.01)
            writer.close()
        assert 0.5 < took["close"] < 3, took

    run(go())


def test_logger_gets_the_records_websockets_logs(impl):
    import logging

    async def go():
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        logger = logging.getLogger(f"compat-test-{impl.__name__}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(Keep())
        from websockets.asyncio.client import connect

        async def handler(ws):
            raise RuntimeError("boom")

        def process_request(connection, request):
            return connection.respond(403, "no\n") if request.path == "/no" else None

        async with impl.serve(handler, "127.0.0.1", 0, logger=logger, process_request=process_request) as server:
            uri = f"ws://127.0.0.1:{port_of(server)}"
            async with connect(uri + "/") as c:
                with pytest.raises(wse.ConnectionClosedError):
                    await c.recv()
            with pytest.raises(wse.InvalidStatus):
                async with connect(uri + "/no"):
                    pass
        return records

    records = run(go())
    assert any(r.startswith("server listening on ") for r in records), records
    for want in ("connection open", "connection handler failed", "connection rejected (403 Forbidden)",
                 "server closing", "server closed"):
        assert want in records, (want, records)


def test_basic_auth_refuses_without_the_right_credentials(impl):
    from websockets.asyncio.client import connect

    async def go():
        async def handler(ws):
            await ws.send(ws.username)

        auth = impl.basic_auth(realm="volley test", credentials=[("alice", "s3cret"), ("bob", "pw")])
        async with impl.serve(handler, "127.0.0.1", 0, process_request=auth) as server:
            port = port_of(server)
            async with connect(f"ws://alice:s3cret@127.0.0.1:{port}/") as c:
                assert await c.recv() == "alice"
            for uri, why in ((f"ws://127.0.0.1:{port}/", b"Missing credentials\n"),
                             (f"ws://alice:wrong@127.0.0.1:{port}/", b"Invalid credentials\n"),
                             (f"ws://nobody:s3cret@127.0.0.1:{port}/", b"Invalid credentials\n")):
                with pytest.raises(wse.InvalidStatus) as e:
                    async with connect(uri):
                        pass
                r = e.value.response
                assert (r.status_code, r.body) == (401, why)
                assert r.headers["WWW-Authenticate"] == 'Basic realm="volley test", charset="UTF-8"'
            with pytest.raises(wse.InvalidStatus) as e:
                async with connect(f"ws://127.0.0.1:{port}/", additional_headers={"Authorization": "Bearer x"}):
                    pass
            assert e.value.response.body == b"Unsupported credentials\n"

        async def check(user, password):
            return (user, password) == ("carol", "pw")

        async with impl.serve(handler, "127.0.0.1", 0,
                              process_request=impl.basic_auth(check_credentials=check)) as server:
            async with connect(f"ws://carol:pw@127.0.0.1:{port_of(server)}/") as c:
                assert await c.recv() == "carol"
        with pytest.raises(ValueError):
            impl.basic_auth()

    run(go())


def test_server_header_is_sent_or_left_out(serve):
    from websockets.asyncio.client import connect

    async def go():
        async def handler(ws):
            await ws.send("hi")

        for header in ("Test/1.0", None):
            async with serve(handler, "127.0.0.1", 0, server_header=header) as server:
                async with connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
                    assert c.response.headers.get("Server") == header
                    assert await c.recv() == "hi"
                status, _ = await asyncio.to_thread(http_get, port_of(server), "/")
                assert status == 426

    run(go())


def test_unix_serve_behind_a_local_proxy(impl, tmp_path):
    # websockets' nginx deployment: unix_serve on a path. A socket file left
    # by an earlier run is replaced; server.sockets lists the path (AF_UNIX);
    # the peer's address is "" and the local one the path; plain requests
    # reach process_request; any other file at the path is "address
    # already in use"; no path is a ValueError. The file stays after close
    # before Python 3.13 (asyncio's cleanup_socket removes it from 3.13 on).
    import errno
    import socket
    import sys

    from websockets.asyncio.client import unix_connect

    path = str(tmp_path / "ws.sock")

    async def go():
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()

        async def handler(ws):
            await ws.send(repr((ws.remote_address, ws.local_address, ws.request.path)))
            await ws.send(await ws.recv())

        def health(connection, request):
            if request.path == "/healthz":
                return connection.respond(200, "OK\n")

        async with impl.unix_serve(handler, path, process_request=health) as server:
            assert [(s.family, s.getsockname()) for s in server.sockets] == [(socket.AF_UNIX, path)]
            async with unix_connect(path, uri="ws://localhost/chat?x=1") as c:
                assert await c.recv() == repr(("", path, "/chat?x=1"))
                await c.send("over the socket")
                assert await c.recv() == "over the socket"
            r, w = await asyncio.open_unix_connection(path)
            w.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = await r.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
            w.close()
            assert os.path.exists(path)
        assert os.path.exists(path) == (sys.version_info < (3, 13))
        if os.path.exists(path):
            os.remove(path)

        with open(path, "w") as f:
            f.write("not a socket")
        with pytest.raises(OSError) as e:
            async with impl.unix_serve(handler, path):
                pass
        assert e.value.errno == errno.EADDRINUSE
        with open(path) as f:
            assert f.read() == "not a socket"
        with pytest.raises(ValueError, match="path was not specified"):
            async with impl.unix_serve(handler):
                pass

    run(go())
