"""The C, C++ and Zig test servers (tests/c/server.c, server.cpp,
tests/zig/server.zig), each linked with the static library, driven by
Python `websockets`: echo, pub/sub across connections, upgrade rejection
with a status, close codes both ways, a stale handle refused, HTTP beside
WebSocket, and stopping with live connections.

The binaries come from VOLLEY_TEST_SERVERS (name=path,...), which
tests/c/run.sh sets after building them; VOLLEY_WRAP (e.g. valgrind ...)
runs each under a tool."""

import asyncio
import os
import shlex
import signal
import subprocess
import urllib.request

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

SERVERS = dict(
    item.split("=", 1) for item in os.environ.get("VOLLEY_TEST_SERVERS", "").split(",") if item
)
WRAP = shlex.split(os.environ.get("VOLLEY_WRAP", ""))
SLOW = int(os.environ.get("VOLLEY_SLOW", 20 if WRAP else 1))  # timeouts stretch under valgrind


class Running:
    def __init__(self, name, path):
        self.name = name
        self.proc = subprocess.Popen(
            WRAP + [path, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening "), (line, self.proc.stderr.read())
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=60 * SLOW)
        return self.proc.returncode, err


@pytest.fixture(params=sorted(SERVERS) or [pytest.param(None, marks=pytest.mark.skip("no servers built"))])
def server(request):
    s = Running(request.param, SERVERS[request.param])
    yield s
    if s.proc.poll() is None:
        code, err = s.stop(signal.SIGINT)
        assert code == 0, err


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30 * SLOW))


def test_echo_text_and_binary(server):
    async def go():
        async with websockets.connect(server.url + "/echo", max_size=None) as ws:
            for msg in ["", "héllo", "x" * 70_000, b"", b"\x00\xff" * 40_000, bytes(range(256)) * 4096]:
                await ws.send(msg)
                assert await ws.recv() == msg
    run(go())


def test_pub_sub_across_connections(server):
    async def go():
        room = server.url + "/room/lobby"
        async with websockets.connect(room + "?user=ann") as a:
            async with websockets.connect(room + "?user=bob") as b:
                assert await a.recv() == "bob joined"
                await a.send("hi")
                assert await b.recv() == "ann: hi"
                await b.send("yo")
                assert await a.recv() == "bob: yo"
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(b.recv(), 0.3 * SLOW)  # not to itself
            assert await a.recv() == "bob left"
            async with websockets.connect(server.url + "/room/other?user=eve") as c:
                await c.send("elsewhere")
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(a.recv(), 0.3 * SLOW)
    run(go())


def test_upgrade_rejection_carries_status_and_body(server):
    async def go():
        with pytest.raises(InvalidStatus) as e:
            async with websockets.connect(server.url + "/reject"):
                pass
        assert e.value.response.status_code == 403
        assert e.value.response.body == b"go away"
    run(go())


def test_close_codes_both_ways(server):
    async def go():
        async with websockets.connect(server.url + "/echo") as ws:
            await ws.send("close:4001:bye now")
            with pytest.raises(ConnectionClosed) as e:
                await ws.recv()
            assert (e.value.rcvd.code, e.value.rcvd.reason) == (4001, "bye now")
        ws = await websockets.connect(server.url + "/echo")
        await ws.close(4002, "ciao")
        assert (ws.close_code, ws.close_reason) == (4002, "")  # echoed without the reason
    run(go())


def test_a_stale_handle_is_refused(server):
    async def go():
        async with websockets.connect(server.url + "/echo") as first:
            await first.send("ping")
            assert await first.recv() == "ping"
        # The server remembers the last closed connection's id: every call
        # with it is refused, and it never reaches the new connection.
        async with websockets.connect(server.url + "/echo") as second:
            for _ in range(50):
                await second.send("stale?")
                answer = await second.recv()
                if answer != "stale:none":
                    break
                await asyncio.sleep(0.05)
            assert answer == "stale:ok"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(second.recv(), 0.2 * SLOW)  # the "x" never came here
    run(go())


def test_http_beside_websocket(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=10 * SLOW) as r:
        assert (r.status, r.read()) == (200, b"ok")


def test_graceful_stop_closes_live_connections_with_1001(server):
    async def go():
        ws = await websockets.connect(server.url + "/echo")
        await ws.send("x")
        assert await ws.recv() == "x"
        server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as e:
            await ws.recv()
        assert e.value.rcvd.code == 1001
    run(go())
    assert server.proc.wait(timeout=30 * SLOW) == 0


def test_free_with_live_connections_and_pending_upgrades(server):
    """SIGINT: the server is freed at once while clients are connected, an
    upgrade is unanswered (C++: /slow) and events may be undrained."""

    async def go():
        live = [await websockets.connect(server.url + "/echo") for _ in range(5)]
        for i, ws in enumerate(live):
            await ws.send("m" * i)
        pending = asyncio.ensure_future(websockets.connect(server.url + "/slow", open_timeout=60 * SLOW))
        await asyncio.sleep(0.2 * SLOW)
        code, err = server.stop(signal.SIGINT)
        assert code == 0, err
        for ws in live:
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
        with pytest.raises(Exception):
            await pending
    run(go())


@pytest.fixture
def chat():
    path = os.environ.get("VOLLEY_CHAT_BIN")
    if not path:
        pytest.skip("examples/c/chat.c not built")
    s = Running("chat", path)
    yield s
    s.proc.kill()
    s.proc.wait()


def test_the_chat_example(chat):
    async def go():
        room = chat.url + "/chat/general"
        async with websockets.connect(room + "?name=ann") as a:
            assert await a.recv() == "ann joined"
            async with websockets.connect(room + "?name=bob") as b:
                assert await a.recv() == "bob joined"
                assert await b.recv() == "bob joined"
                await b.send("hello")
                assert await a.recv() == "bob says: hello"
                assert await b.recv() == "bob says: hello"
            assert await a.recv() == "bob left"
        with pytest.raises(InvalidStatus) as e:
            async with websockets.connect(chat.url + "/elsewhere"):
                pass
        assert e.value.response.status_code == 404
    run(go())


def test_a_busy_queue_host_is_never_left_without_a_wake_up(server):
    """The C++ server blocks in poll() on the queue's descriptor: with 2
    workers and 8 connections of `volley bench echo` going as fast as they
    can, it never goes a second without serving (a lost wake-up stalled it
    for good). VOLLEY_STRESS_SECS sets the length (5 s here, 20+ for the long run)."""
    if server.name != "cpp":
        pytest.skip("the C++ server is the event-queue host")
    if WRAP:
        pytest.skip("timing under valgrind says nothing about wake-ups")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bench = os.environ.get("VOLLEY_BIN", os.path.join(root, "target", "release", "volley"))
    secs = os.environ.get("VOLLEY_STRESS_SECS", "5")
    out = subprocess.run(
        [bench, "bench", "echo", "--url", f"{server.url}/echo", "--conns", "8", "--inflight", "64", "--size", "16",
         "--warmup", "0.5", "--duration", secs, "--json", "--quiet"],
        capture_output=True, text=True, timeout=60 + int(secs), check=True).stdout
    import json
    r = json.loads(out)
    assert r["errors"] == 0, r
    assert r["longest_stall_ms"] < 1000, r
    assert r["msgs_per_sec"] > 1000, r
