"""Both Python layers driven by a client nobody here wrote (Python
`websockets`; Node `ws` for one test): echo 0 B to 16 MiB, pub/sub, close
codes, upgrade rejection, backpressure and drain, compression, raising
handlers, stop with live connections. Where a test applies to both layers
it runs against each (the `layer` fixture)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

import volley
import volley.asyncio as vws

ROOT = Path(__file__).resolve().parents[3]
BIG = 16 * 1024 * 1024


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


# ---- the two layers, serving the same behaviour ---------------------------
#   /echo          echo; "bye" closes with 4000 "bye"
#   /room?user=U   a room: joins announced, messages published as "U: text"
#   /private       refused with 403 "private"


async def callback_server(**extra):
    async def upgrade(req):
        if req.path == "/private":
            return volley.Response("private\n", 403)
        user = req.query.partition("user=")[2] or "anon"
        return {"path": req.path, "user": user}

    def open_(ws):
        if ws.data["path"] == "/room":
            ws.subscribe("room")
            ws.publish("room", f"{ws.data['user']} joined")

    async def message(ws, m):  # a coroutine handler, on purpose
        if ws.data["path"] == "/room":
            ws.publish("room", f"{ws.data['user']}: {m}")
        elif m == "bye":
            ws.close(4000, "bye")
        else:
            ws.send(m)

    return await volley.serve(port=0, upgrade=upgrade, open=open_, message=message,
                              max_payload_length=32 * 1024 * 1024, **extra)


class WsLayer:
    """The websockets-style layer behind the same routes."""

    def __init__(self, **extra):
        self.rooms: set = set()

        def process_request(_conn, req):
            if req.path == "/private":
                return volley.Response("private\n", 403)
            return None

        async def handler(ws):
            # websockets' request.path keeps the query string.
            path, _, query = ws.request.path.partition("?")
            user = query.partition("user=")[2] or "anon"
            if path == "/room":
                for other in list(self.rooms):
                    await other.send(f"{user} joined")
                self.rooms.add(ws)
                try:
                    async for m in ws:
                        for other in list(self.rooms):
                            if other is not ws:
                                await other.send(f"{user}: {m}")
                finally:
                    self.rooms.discard(ws)
                return
            async for m in ws:
                if m == "bye":
                    await ws.close(4000, "bye")
                    return
                await ws.send(m)

        self.server = vws.serve(handler, "127.0.0.1", 0, process_request=process_request, max_size=32 * 1024 * 1024,
                                **extra)

    async def __aenter__(self):
        await self.server.start()
        self.port = self.server.port
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


class CallbackLayer:
    def __init__(self, **extra):
        self.extra = extra

    async def __aenter__(self):
        self.server = await callback_server(**self.extra)
        self.port = self.server.port
        return self

    async def __aexit__(self, *exc):
        await self.server.stop()


@pytest.fixture(params=["callbacks", "websockets-style"])
def layer(request):
    return CallbackLayer if request.param == "callbacks" else WsLayer


def test_echo_text_and_binary_up_to_16_mib(layer):
    async def go():
        async with layer() as s:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/echo", max_size=None) as ws:
                for size in [0, 1, 125, 126, 65535, 65536, 1 << 20, BIG]:
                    text = "é" * (size // 2) + "x" * (size % 2)
                    await ws.send(text)
                    assert await ws.recv() == text, size
                    data = bytes([7]) * size
                    await ws.send(data)
                    assert await ws.recv() == data, size
    run(go())


def test_pub_sub_across_connections(layer):
    async def go():
        async with layer() as s:
            url = f"ws://127.0.0.1:{s.port}/room"
            async with websockets.connect(url + "?user=ann") as a:
                async with websockets.connect(url + "?user=bob") as b:
                    assert await a.recv() == "bob joined"
                    await a.send("hi")
                    assert await b.recv() == "ann: hi"
                    await b.send("yo")
                    assert await a.recv() == "bob: yo"
                    with pytest.raises(asyncio.TimeoutError):
                        await asyncio.wait_for(b.recv(), 0.3)
    run(go())


def test_close_codes(layer):
    async def go():
        async with layer() as s:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/echo") as ws:
                await ws.send("bye")
                with pytest.raises(ConnectionClosed) as e:
                    await ws.recv()
                assert (e.value.rcvd.code, e.value.rcvd.reason) == (4000, "bye")
            ws = await websockets.connect(f"ws://127.0.0.1:{s.port}/echo")
            await ws.close(4002, "client bye")
            assert ws.close_code == 4002
    run(go())


def test_upgrade_rejected_with_a_status(layer):
    async def go():
        async with layer() as s:
            with pytest.raises(InvalidStatus) as e:
                async with websockets.connect(f"ws://127.0.0.1:{s.port}/private"):
                    pass
            assert e.value.response.status_code == 403
            assert e.value.response.body == b"private\n"
    run(go())


def test_compression_is_negotiated(layer):
    async def go():
        extra = {"per_message_deflate": True} if layer is CallbackLayer else {"compression": "deflate"}
        async with layer(**extra) as s:
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/echo", compression="deflate") as ws:
                assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
                text = "compress me " * 5000
                await ws.send(text)
                assert await ws.recv() == text
    run(go())


def test_stop_with_live_connections_closes_them_with_1001(layer):
    async def go():
        s = layer()
        await s.__aenter__()
        clients = [await websockets.connect(f"ws://127.0.0.1:{s.port}/echo") for _ in range(3)]
        for c in clients:
            await c.send("x")
            assert await c.recv() == "x"
        stop = asyncio.create_task(s.__aexit__(None, None, None))
        for c in clients:
            with pytest.raises(ConnectionClosed) as e:
                await c.recv()
            assert e.value.rcvd.code == 1001
        await stop
    run(go())


def test_a_raising_handler_closes_only_its_connection_with_1011(layer):
    async def go():
        if layer is CallbackLayer:
            def message(ws, m):
                if m == "raise":
                    raise RuntimeError("handler bug (expected by the test)")
                ws.send(m)

            server = await volley.serve(port=0, message=message)
            port, stop = server.port, server.stop
        else:
            async def handler(ws):
                async for m in ws:
                    if m == "raise":
                        raise RuntimeError("handler bug (expected by the test)")
                    await ws.send(m)

            srv = await vws.serve(handler, "127.0.0.1", 0).start()
            port = srv.port

            async def stop():
                srv.close()
                await srv.wait_closed()
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as canary:
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as bad:
                await bad.send("raise")
                with pytest.raises(ConnectionClosed) as e:
                    await bad.recv()
                assert e.value.rcvd.code == 1011
            await canary.send("still here")
            assert await canary.recv() == "still here"
        await stop()
    run(go())


# ---- what only one layer has ---------------------------------------------


def test_backpressure_minus_one_then_drain_then_zero():
    async def go():
        statuses = []
        drained = asyncio.Event()

        def message(ws, m):
            chunk = bytes(256 * 1024)
            for _ in range(8):
                statuses.append(ws.send(chunk))

        server = await volley.serve(port=0, message=message, drain=lambda ws: drained.set(),
                                    backpressure_limit=1 << 20)
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/", max_size=None, max_queue=1)
        ws.transport.pause_reading()  # the server's queue fills
        await ws.send("go")
        while len(statuses) < 8:
            await asyncio.sleep(0.01)
        assert statuses[0] > 256 * 1024, statuses
        assert -1 in statuses, statuses
        assert statuses[-1] == 0, statuses
        ws.transport.resume_reading()
        accepted = sum(1 for s in statuses if s != 0)
        for _ in range(accepted):
            assert len(await ws.recv()) == 256 * 1024
        await asyncio.wait_for(drained.wait(), 10)
        await ws.close()
        await server.stop()
    run(go())


def test_send_waits_while_backpressured_in_the_websockets_layer():
    async def go():
        sent = []

        async def handler(ws):
            for i in range(100):
                await ws.send(bytes([i]) * (1 << 20))  # 100 MiB, past every kernel buffer here
                sent.append(i)

        srv = await vws.serve(handler, "127.0.0.1", 0).start()
        # A plain TCP client that upgrades and then reads nothing for a while.
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, limit=1 << 22)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.transport.pause_reading()
        await asyncio.sleep(0.5)
        assert len(sent) < 100, "send did not wait for the client"
        writer.transport.resume_reading()
        for i in range(100):
            head = await reader.readexactly(10)
            assert head[:2] == b"\x82\x7f" and int.from_bytes(head[2:], "big") == 1 << 20
            body = await reader.readexactly(1 << 20)
            assert body[:1] == bytes([i]), i  # nothing dropped, in order
        writer.close()
        srv.close()
        await srv.wait_closed()
    run(go())


def test_fetch_and_event_streams():
    async def go():
        async def fetch(req):
            if req.path == "/events":
                return volley.event_stream("news")
            if req.method == "POST":
                return volley.Response.json({"got": req.json()})
            return "plain"

        server = await volley.serve(port=0, fetch=fetch)
        url = f"http://127.0.0.1:{server.port}"

        def post():
            r = urllib.request.urlopen(urllib.request.Request(url + "/x", data=b'{"a": 1}', method="POST"))
            return json.loads(r.read())

        assert await asyncio.to_thread(post) == {"got": {"a": 1}}
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"text/event-stream" in head
        while server.subscriber_count("news") == 0:
            await asyncio.sleep(0.01)
        server.publish("news", "fresh")
        got = b""
        while b"data: fresh" not in got:
            got += await reader.read(100)
        writer.close()
        await server.stop()
    run(go())


def test_the_websockets_example_runs_unchanged_on_both_libraries():
    """examples/websockets_echo.py, written for `websockets`, served by
    `websockets` and by Volley (one import apart), gives the same answers."""
    example = Path(__file__).resolve().parents[1] / "examples" / "websockets_echo.py"

    async def drive(port):
        out = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/path") as ws:
            out.append(await ws.recv())
            await ws.send("ping")
            out.append(await ws.recv())
            await ws.send("bye")
            with pytest.raises(ConnectionClosed) as e:
                await ws.recv()
            out.append((e.value.rcvd.code, e.value.rcvd.reason))
        with pytest.raises(InvalidStatus) as e:
            async with websockets.connect(f"ws://127.0.0.1:{port}/private"):
                pass
        out.append(e.value.response.status_code)
        return out

    results = {}
    for impl, port in [("websockets", 18761), ("volley", 18762)]:
        env = dict(os.environ, VOLLEY_IMPL=impl)
        p = subprocess.Popen([sys.executable, str(example), str(port)], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().startswith("listening")
            results[impl] = run(drive(port))
        finally:
            p.terminate()
            p.wait(10)
    assert results["volley"] == results["websockets"] == [
        "hello /path", "ping", (4000, "bye"), 403]


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_a_node_ws_client():
    node_ws = ROOT / "tests" / "interop" / "node" / "node_modules" / "ws"
    if not node_ws.exists():
        pytest.skip("tests/interop/node has no node_modules (npm ci there)")

    async def go():
        server = await callback_server()
        script = f"""
            const WebSocket = require({json.dumps(str(node_ws))});
            const ws = new WebSocket('ws://127.0.0.1:{server.port}/echo');
            ws.on('open', () => ws.send(Buffer.from([1, 2, 3])));
            ws.on('message', (d, bin) => {{ console.log(bin, [...d].join(',')); ws.close(4001); }});
            ws.on('close', (code) => console.log('closed', code));
        """
        p = await asyncio.create_subprocess_exec("node", "-e", script, stdout=subprocess.PIPE)
        out, _ = await p.communicate()
        await server.stop()
        return out.decode().split("\n")

    lines = run(go())
    assert lines[0] == "true 1,2,3"
    assert lines[1] == "closed 4001"


def test_keyboard_interrupt_stops_serve_forever_with_1001():
    example = Path(__file__).resolve().parents[1] / "examples" / "echo.py"
    import signal

    # Ctrl-C's SIGINT must reach the example as at a terminal: a parent that
    # ignores SIGINT (a background job, nohup) would hand that on, and Python
    # then never raises KeyboardInterrupt.
    p = subprocess.Popen([sys.executable, str(example), "18763"], stdout=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert p.stdout.readline().startswith("listening")

        async def go():
            async with websockets.connect("ws://127.0.0.1:18763/") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                p.send_signal(2)  # SIGINT: KeyboardInterrupt
                with pytest.raises(ConnectionClosed) as e:
                    await ws.recv()
                return e.value.rcvd.code

        assert run(go()) == 1001
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()


# ---- pubsub_bridge: topics across processes through a real redis-server ----

def test_pubsub_bridge_carries_topics_between_python_and_volley_serve(tmp_path):
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            raise RuntimeError("redis-server is missing (CI installs the redis-server package)")
        pytest.skip("redis-server is not installed")
    volley_bin = os.environ.get("VOLLEY_BIN", str(ROOT / "target" / "release" / "volley"))

    async def until(check, what):
        for _ in range(250):
            if check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def cli(port, *args):
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()

    async def go():
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            rport = s.getsockname()[1]
        redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        other = None
        server = None
        try:
            await until(lambda: cli(rport, "PING") == "PONG", "redis-server")
            url = f"redis://127.0.0.1:{rport}/pytest"
            server = await volley.serve(port=0, pubsub_bridge=url,
                                        open=lambda ws: ws.subscribe("t"),
                                        message=lambda ws, m: ws.publish("t", m))
            other = subprocess.Popen([volley_bin, "serve", "--port", "0", "--pubsub-bridge", url],
                                     stdout=subprocess.PIPE, text=True)
            line = await asyncio.get_running_loop().run_in_executor(None, other.stdout.readline)
            oport = line.split("127.0.0.1:")[1].split("/")[0]
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/") as here, \
                    websockets.connect(f"ws://127.0.0.1:{server.port}/") as sender, \
                    websockets.connect(f"ws://127.0.0.1:{oport}/sub") as there, \
                    websockets.connect(f"ws://127.0.0.1:{oport}/pub") as pub:
                await until(lambda: cli(rport, "PUBSUB", "NUMSUB", "pytest:t").endswith("\n2"), "two subscribers")
                await sender.send("from python")
                assert await there.recv() == "from python"
                assert await here.recv() == "from python"
                server.publish("t", b"\x00\xff")
                assert await there.recv() == b"\x00\xff"
                assert await here.recv() == b"\x00\xff"
                for i in range(100):
                    await pub.send(f"m{i}")
                want = [f"m{i}" for i in range(100)]
                assert [await here.recv() for _ in range(100)] == want
                assert await sender.recv() == b"\x00\xff"
                assert [await sender.recv() for _ in range(100)] == want
                assert [await there.recv() for _ in range(100)] == want
                # The bridge thread counts a publish after handing it to Redis,
                # which can be after the other side has it: wait for the count.
                await until(lambda: server.stats()["bridged_out"] >= 2, "bridged_out to count both publishes")
                st = server.stats()
                assert st["bridged_in"] == 100 and st["bridged_out"] >= 2 and st["bridge_lost"] == 0, st
            with pytest.raises(OSError, match="argument"):
                await volley.serve(port=0, pubsub_bridge="http://nope")
        finally:
            if server is not None:
                await server.stop()
            if other is not None:
                other.terminate()
                other.wait(10)
            redis.kill()
            redis.wait(10)

    run(go())


# ---- no lost wake-up: a busy host keeps being woken -------------------------

STRESS_SECS = os.environ.get("VOLLEY_STRESS_SECS", "5")


def test_a_busy_server_is_never_left_without_a_wake_up(layer):
    """2 workers, 8 connections of `volley bench echo` as fast as they go:
    the host's loop (woken through the queue's fd by `add_reader`) never
    goes a second without serving. A lost wake-up stalled it for good."""
    volley_bin = os.environ.get("VOLLEY_BIN", str(ROOT / "target" / "release" / "volley"))

    async def go():
        async with layer(workers=2) as srv:
            proc = await asyncio.create_subprocess_exec(
                volley_bin, "bench", "echo", "--url", f"ws://127.0.0.1:{srv.port}/echo", "--conns", "8",
                "--inflight", "64", "--size", "16", "--warmup", "0.5", "--duration", STRESS_SECS, "--json", "--quiet",
                stdout=subprocess.PIPE)
            out, _ = await proc.communicate()
            assert proc.returncode == 0, out
            r = json.loads(out)
            assert r["errors"] == 0, r
            assert r["longest_stall_ms"] < 1000, r
            assert r["msgs_per_sec"] > 1000, r

    asyncio.run(asyncio.wait_for(go(), 60 + int(STRESS_SECS)))


def test_stop_without_closing_active_connections_lets_them_finish_and_then_sends_return_0():
    """Bun's stop(false): no new connections, the open ones go on until they
    end; once stopped, send and publish return 0 (Bun's) instead of raising."""
    async def go():
        opened: list = []
        server = await volley.serve(port=0, open=opened.append, message=lambda ws, m: ws.send(m))
        url = f"ws://127.0.0.1:{server.port}/"
        async with websockets.connect(url) as c:
            stopping = asyncio.ensure_future(server.stop(close_active_connections=False))
            await asyncio.sleep(0.2)
            assert not stopping.done(), "stop(False) returned with a connection open"
            await c.send("still here")
            assert await c.recv() == "still here", "the open connection was closed"
            with pytest.raises(OSError):
                async with websockets.connect(url, open_timeout=2):
                    pass
        await asyncio.wait_for(stopping, 10)
        ws = opened[0]
        assert ws.send("late") == 0
        assert ws.publish("t", "late") == 0
        ws.subscribe("t")
        ws.close()

    run(go())


def test_the_echo_example_loses_nothing_to_a_client_that_reads_late():
    """examples/echo.py pauses a client at -1 and resumes it on drain: 2,000
    messages of 16 KiB (twice the backpressure limit) sent before reading
    all come back (an echo that ignored send's answer dropped the rest)."""
    example = Path(__file__).resolve().parents[1] / "examples" / "echo.py"

    async def go():
        proc = await asyncio.create_subprocess_exec(sys.executable, str(example), "0", stdout=subprocess.PIPE)
        try:
            line = (await proc.stdout.readline()).decode()
            port = int(line.split()[1])
            # max_queue=1: the client stops reading from the socket while
            # nobody calls recv, so the server meets real backpressure.
            async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None, max_queue=1) as c:
                msg = b"\x07" * 16384

                async def send_all():
                    for _ in range(2000):
                        await c.send(msg)

                sender = asyncio.ensure_future(send_all())
                await asyncio.sleep(1)
                got = 0
                while got < 2000:
                    assert await asyncio.wait_for(c.recv(), 30) == msg
                    got += 1
                await sender
        finally:
            proc.terminate()
            await proc.wait()

    asyncio.run(asyncio.wait_for(go(), 90))


def test_the_port_is_the_servers_alone_unless_reuse_port_is_asked_for():
    """As Bun's reusePort and websockets' reuse_port: without it a second
    server (Python, or a `volley serve` process) on a taken port fails."""
    volley_bin = os.environ.get("VOLLEY_BIN", str(ROOT / "target" / "release" / "volley"))

    async def go():
        a = await volley.serve(port=0)
        try:
            with pytest.raises(OSError, match="in use"):
                await volley.serve(port=a.port)
            with pytest.raises(OSError, match="in use"):
                await volley.serve(port=a.port, reuse_port=True)
            r = subprocess.run([volley_bin, "serve", "--port", str(a.port)], capture_output=True, text=True,
                               timeout=10)
            assert r.returncode == 1 and "in use" in r.stderr, r
        finally:
            await a.stop()
        b = await volley.serve(port=0, reuse_port=True)
        c = await volley.serve(port=b.port, reuse_port=True)
        assert c.port == b.port
        await c.stop()
        await b.stop()
        async with vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as s:
            with pytest.raises(OSError, match="in use"):
                async with vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", s.port):
                    pass

    run(go())


def test_an_upgrade_whose_client_leaves_before_it_opens_frees_its_slot():
    """upgrade() waits 100 ms; every client is gone by then. The late
    accepts each get a terminal event and the binding frees the socket it
    made (before, every one leaked); close never runs for them (Bun's)."""
    async def go():
        closes = []
        accepted = []

        async def upgrade(req):
            await asyncio.sleep(0.1)
            accepted.append(1)
            return {}

        server = await volley.serve(port=0, upgrade=upgrade, close=lambda ws, c, r: closes.append(c))
        try:
            req = ("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
            for _ in range(20):
                _, w = await asyncio.open_connection("127.0.0.1", server.port)
                w.write(req)
                await w.drain()
                w.close()
            for _ in range(250):
                if len(accepted) == 20 and not any(server._sockets):
                    break
                await asyncio.sleep(0.02)
            assert len(accepted) == 20
            assert not any(server._sockets), "socket slots left behind"
            assert closes == []
        finally:
            await server.stop()

    run(go())


def test_a_server_freed_while_corked_leaves_the_threads_sends_to_others_working():
    """The cork depth is the thread's: a server freed before its deferred
    uncork ran used to leave it raised, and from then on this thread's sends
    to any server waited for something else to wake their worker (an echo
    on a second server never came)."""
    from volley._server import STOP_NOW

    async def go():
        a = await volley.serve(port=0)
        n = volley._native
        n.server_stop(a._srv, STOP_NOW)  # stopped: stop() below frees at once
        a._ensure_cork()  # a send outside a batch corks until the next loop turn
        await a.stop()
        b = await volley.serve(port=0, message=lambda ws, m: ws.send(m))
        try:
            async with websockets.connect(f"ws://127.0.0.1:{b.port}/") as c:
                await c.send("ping")
                assert await asyncio.wait_for(c.recv(), 2) == "ping"
        finally:
            await b.stop()

    run(go())


def test_the_librarys_log_records_reach_the_volley_logger(caplog):
    """A refused TLS configuration says why through logging.getLogger("volley")
    (the records are taken on the loop's thread, not by a worker callback)."""
    bad = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"

    async def go():
        with caplog.at_level("WARNING", logger="volley"):
            with pytest.raises(OSError):
                await volley.serve(port=0, tls={"cert": bad, "key": bad})
        assert any(r.name == "volley" and "TLS" in r.getMessage() and r.levelname == "ERROR"
                   for r in caplog.records), caplog.records

    run(go())


# ---- volley.asyncio never fails open ----------------------------------------

def test_process_request_refusals_are_never_upgraded():
    """Whatever process_request returns that is not None refuses the upgrade
    (websockets' contract): connection.respond(401, ...), a websockets
    Response, a Volley Response. A websockets Response used to be ignored
    and the upgrade accepted."""
    from websockets.datastructures import Headers as WsHeaders
    from websockets.http11 import Response as WsResponse

    def process_request(connection, request):
        if request.path == "/respond":
            return connection.respond(401, "who are you\n")
        if request.path == "/websockets":
            return WsResponse(401, "Unauthorized", WsHeaders([("X-Why", "token")]), b"no token\n")
        if request.path == "/volley":
            return volley.Response("private\n", 403)
        return None

    async def go():
        async with vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=process_request) as s:
            for path, status in [("/respond", 401), ("/websockets", 401), ("/volley", 403)]:
                with pytest.raises(InvalidStatus) as e:
                    async with websockets.connect(f"ws://127.0.0.1:{s.port}{path}"):
                        pass
                assert e.value.response.status_code == status, path
            async with websockets.connect(f"ws://127.0.0.1:{s.port}/ok"):
                pass

    run(go())


def test_origins_are_checked_as_websockets_does():
    import re

    async def go():
        origins = ["https://good.example", re.compile(r"https://[a-z]+\.trusted\.example")]
        async with vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, origins=origins) as s:
            url = f"ws://127.0.0.1:{s.port}/"
            for ok in ["https://good.example", "https://app.trusted.example"]:
                async with websockets.connect(url, origin=ok):
                    pass
            for bad in ["https://evil.example", None]:
                with pytest.raises(InvalidStatus) as e:
                    async with websockets.connect(url, origin=bad):
                        pass
                assert e.value.response.status_code == 403, bad

    run(go())


def test_unsupported_options_and_an_sslcontext_are_refused_by_name(tmp_path):
    import ssl as ssl_mod

    # websockets options this layer does not have: refused by name, never ignored.
    with pytest.raises(TypeError, match="extensions"):
        vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, extensions=[])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="write_limit"):
        vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, write_limit=2**16)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unsupported compression"):
        vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, compression="zstd")
    with pytest.raises(TypeError, match="TLS\\(certfile, keyfile\\)"):
        vws.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, ssl=ssl_mod.create_default_context())
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (the TLS half of this test makes its certificate with it)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=localhost", "-days", "1"], check=True, capture_output=True)

    async def go():
        async def echo(ws):
            async for m in ws:
                await ws.send(m)

        async with vws.serve(echo, "127.0.0.1", 0, ssl=vws.TLS(str(cert), str(key))) as s:
            client_ctx = ssl_mod.create_default_context(cafile=str(cert))
            client_ctx.check_hostname = False
            async with websockets.connect(f"wss://127.0.0.1:{s.port}/", ssl=client_ctx) as c:
                await c.send("over tls")
                assert await c.recv() == "over tls"
            # Never plaintext when TLS was asked for.
            with pytest.raises(Exception):
                async with websockets.connect(f"ws://127.0.0.1:{s.port}/", open_timeout=3):
                    pass

    run(go())


def test_a_send_refused_by_a_full_mailbox_waits_for_drain_and_is_sent_again():
    """Ten handlers each send 3 × 8 MiB, woken in the same loop turn: the
    host is corked for the turn, so 80 MiB meet one worker's 64 MiB
    mailbox and some sends get 0 on open connections (counted in
    ``mailbox_full``). A 0 there is not a close: ``send`` waits for the
    drain that follows and sends again, and every client gets every
    message, whole and in order. (It raised ConnectionClosed(1006).)"""
    size, n, per = 8 << 20, 10, 3

    async def go():
        joined: set = set()
        everyone = asyncio.Event()

        async def handler(ws):
            joined.add(ws)
            if len(joined) == n:
                everyone.set()
            await everyone.wait()
            me = int(ws.request.query.partition("i=")[2])
            for k in range(per):
                await ws.send(bytes([me * per + k]) * size)
            await ws.wait_closed()

        async with vws.serve(handler, "127.0.0.1", 0) as srv:
            clients = [await websockets.connect(f"ws://127.0.0.1:{srv.port}/?i={i}", max_size=None,
                                                compression=None) for i in range(n)]

            async def read(i, c):
                for k in range(per):
                    m = await c.recv()
                    assert len(m) == size and m[0] == m[-1] == i * per + k, (i, k)
                await c.close()

            await asyncio.gather(*(read(i, c) for i, c in enumerate(clients)))
            assert srv.server.stats()["mailbox_full"] > 0, "the mailbox never filled: the test proves nothing"
    run(go())


def test_publish_numbers_agree_with_buns():
    """Bun 1.4.5 (bindings/node/testing/bun-probe.mjs checks it on real Bun):
    server.publish with nobody subscribed is 0, else the bytes; ws.publish
    is 0 when only the publisher is subscribed, the bytes when another is."""
    async def go():
        seen = {}
        joined = asyncio.Event()

        def open_(ws):
            ws.subscribe("p")
            if ws.data == "first":
                seen["server_nobody"] = srv.publish("nobody", "hello")
                seen["ws_only_self"] = ws.publish("p", "hello")
                seen["server_one"] = srv.publish("p", "hello")
            else:
                seen["ws_with_another"] = ws.publish("p", "hello")
                joined.set()

        n = {"i": 0}

        def upgrade(req):
            n["i"] += 1
            return "first" if n["i"] == 1 else "second"

        srv = await volley.serve(port=0, upgrade=upgrade, open=open_)
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/") as a:
            await a.recv()  # server_one's message
            async with websockets.connect(f"ws://127.0.0.1:{srv.port}/"):
                await asyncio.wait_for(joined.wait(), 5)
                assert await a.recv() == "hello"
        await srv.stop()
        assert seen == {"server_nobody": 0, "ws_only_self": 0, "server_one": 5, "ws_with_another": 5}
    run(go())


def test_bun_layer_serves_a_unix_socket(tmp_path):
    # Bun's `unix` option: the server listens on the path, has no port, and
    # removes its socket file when it stops (Bun 1.4.5 does both); a socket
    # file already there is "address in use" (as in Bun); a port besides
    # `unix` is refused by name (Bun ignores it: never silently dropped
    # here).
    from websockets.asyncio.client import unix_connect

    path = str(tmp_path / "bun.sock")

    async def go():
        def message(ws, m):
            ws.send(f"{ws.remote_address!r} {m}")

        server = await volley.serve(unix=path, message=message)
        try:
            assert server.port == 0 and server.unix == path
            async with unix_connect(path) as c:
                await c.send("hi")
                assert await c.recv() == "'' hi"
        finally:
            await server.stop()
        assert not os.path.exists(path)
        import socket
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()
        with pytest.raises(OSError, match="in use"):
            await volley.serve(unix=path, message=message)
        os.remove(path)
        with pytest.raises(OSError, match="port"):
            await volley.serve(unix=path, port=8080, message=message)

    asyncio.run(asyncio.wait_for(go(), 30))


def test_the_websockets_counter_example_runs_unchanged_on_both_libraries():
    """examples/websockets_counter.py (broadcast of a shared state, JSON
    actions, a /healthz answered by process_request, SIGTERM closing the
    server), served by `websockets` and by Volley, one import apart: the
    same answers from each, and each exits cleanly on SIGTERM."""
    import signal
    import socket as _s

    example = Path(__file__).resolve().parents[1] / "examples" / "websockets_counter.py"

    async def drive(port):
        out = []
        url = f"ws://127.0.0.1:{port}/"
        async with websockets.connect(url) as a:
            out.append(json.loads(await a.recv()))
            async with websockets.connect(url) as b:
                out.append(json.loads(await a.recv()))
                out.append(json.loads(await b.recv()))
                seen = []
                for sender, action in ((a, "+"), (b, "+"), (a, "-")):
                    await sender.send(json.dumps({"action": action}))
                    seen.append(json.loads(await b.recv()))
                    assert json.loads(await a.recv()) == seen[-1]
                out.append(seen)
                await b.send(json.dumps({"action": "x"}))
                out.append(json.loads(await b.recv()))
            out.append(json.loads(await a.recv()))  # b left
        status, body = await asyncio.to_thread(_http_get, port, "/healthz")
        out.append((status, body))
        return out

    results = {}
    for impl in ("websockets", "volley"):
        s = _s.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        env = dict(os.environ, VOLLEY_IMPL=impl)
        p = subprocess.Popen([sys.executable, str(example), str(port)], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().startswith("listening")
            results[impl] = run(drive(port))
            p.send_signal(signal.SIGTERM)
            assert p.stdout.readline().strip() == "closed"
            assert p.wait(10) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert results["volley"] == results["websockets"] == [
        {"value": 0, "users": 1},
        {"value": 0, "users": 2},
        {"value": 0, "users": 2},
        [{"value": 1, "users": 2}, {"value": 2, "users": 2}, {"value": 1, "users": 2}],
        {"error": "unknown action 'x'"},
        {"value": 1, "users": 1},
        (200, "OK\n"),
    ]


def _http_get(port, path):
    import urllib.error
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
