"""Topics across processes: three `volley serve --pubsub-bridge` processes
and a real `redis-server`, driven by Python `websockets` clients."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
import websockets

from conftest import start

if shutil.which("redis-server") is None:
    if os.environ.get("CI"):
        raise RuntimeError("redis-server is missing (CI installs the redis-server package)")
    pytest.skip("redis-server is not installed", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A throwaway redis-server on a loopback port, restartable on that port."""

    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def cli(self, *args) -> str:
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return r.stdout.strip()

    def channels(self, pattern="*") -> set:
        out = self.cli("PUBSUB", "CHANNELS", pattern)
        return set(out.split("\n")) - {""}

    def numsub(self, channel) -> int:
        return int(self.cli("PUBSUB", "NUMSUB", channel).split("\n")[1])


class Cluster:
    """Redis and `n` volley processes bridged through it under `prefix`."""

    def __init__(self, n=3, prefix="itest"):
        self.redis = Redis()
        self.prefix = prefix
        self.procs, self.urls = [], []
        for _ in range(n):
            proc, url = start("--workers", "2", "--pubsub-bridge",
                              f"redis://127.0.0.1:{self.redis.port}/{prefix}")
            self.procs.append(proc)
            self.urls.append(url)

    def stats(self, i) -> dict:
        http = self.urls[i].replace("ws://", "http://")
        return json.loads(urllib.request.urlopen(f"{http}/stats", timeout=5).read())

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            assert p.wait(timeout=10) is not None
        self.redis.kill()


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


async def until(check, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def quiet(ws, seconds=0.3):
    """Nothing more arrives."""
    with pytest.raises(asyncio.TimeoutError):
        extra = await asyncio.wait_for(ws.recv(), seconds)
        print("unexpected", extra)


def test_publishes_reach_every_process_in_order_and_once(cluster):
    async def main():
        a, b, c = cluster.urls
        subs = [await websockets.connect(f"{u}/sub") for u in (a, b, b, c)]
        channel = f"{cluster.prefix}:t"
        # One Redis subscription per process, however many local subscribers.
        await until(lambda: cluster.redis.numsub(channel) == 3, "three subscribed processes")
        pub_a = await websockets.connect(f"{a}/pub")
        pub_c = await websockets.connect(f"{c}/pub")
        n = 500

        def msg(who, i):
            return f"{who}{i}" if i % 3 else f"{who}{i}".encode()  # text and binary

        for i in range(n):
            await pub_a.send(msg("a", i))
            await pub_c.send(msg("c", i))
        for ws in subs:
            got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(2 * n)]
            # Per publisher, in order and each exactly once; kinds survive.
            for who in "ac":
                mine = [m for m in got if (m if isinstance(m, str) else m.decode()).startswith(who)]
                assert mine == [msg(who, i) for i in range(n)]
            await quiet(ws)
        sa, sb = cluster.stats(0), cluster.stats(1)
        assert sa["bridged_out"] == n and sb["bridged_in"] == 2 * n
        assert sa["bridge_lost"] == 0
        for ws in subs + [pub_a, pub_c]:
            await ws.close()

    asyncio.run(main())


def test_a_channel_is_left_when_its_last_local_subscriber_leaves(cluster):
    async def main():
        a, b, _ = cluster.urls
        channel = f"{cluster.prefix}:chat/room-9"
        x = await websockets.connect(f"{b}/chat/room-9")
        y = await websockets.connect(f"{b}/chat/room-9")
        z = await websockets.connect(f"{a}/chat/room-9")
        await until(lambda: cluster.redis.numsub(channel) == 2, "both processes subscribed")
        await x.close()
        await asyncio.sleep(0.3)
        assert cluster.redis.numsub(channel) == 2, "B still has a subscriber"
        await y.close()
        await until(lambda: cluster.redis.numsub(channel) == 1, "B unsubscribed")
        assert channel in cluster.redis.channels(f"{cluster.prefix}:*")
        # A chat message from A no longer reaches B (nobody there) and still counts as bridged.
        await z.send("hello")
        await z.close()
        await until(lambda: channel not in cluster.redis.channels(f"{cluster.prefix}:*"), "A unsubscribed")

    asyncio.run(main())


def test_delivery_resumes_after_redis_restarts_and_the_loss_is_counted(cluster):
    async def main():
        a, b, _ = cluster.urls
        pids = [p.pid for p in cluster.procs]
        far = await websockets.connect(f"{b}/sub")
        near = await websockets.connect(f"{a}/sub")
        pub = await websockets.connect(f"{a}/pub")
        await until(lambda: cluster.redis.numsub(f"{cluster.prefix}:t") == 2, "subscribed")
        await pub.send("before")
        assert await asyncio.wait_for(far.recv(), 5) == "before"
        assert await asyncio.wait_for(near.recv(), 5) == "before"

        cluster.redis.kill()
        lost = 200
        for i in range(lost):
            await pub.send(f"down{i}")
        # Local publishing keeps working while Redis is gone.
        assert [await asyncio.wait_for(near.recv(), 5) for _ in range(lost)] == [f"down{i}" for i in range(lost)]
        await asyncio.sleep(0.5)
        cluster.redis.start()

        t0 = time.monotonic()
        i = 0
        while True:
            await pub.send(f"after{i}")
            try:
                m = await asyncio.wait_for(far.recv(), 0.1)
                break
            except asyncio.TimeoutError:
                i += 1
                assert time.monotonic() - t0 < 10, "delivery did not resume within 10 s"
        assert m.startswith("after"), m  # nothing from the outage arrives late
        resumed = time.monotonic() - t0
        print(f"delivery resumed {resumed:.2f} s after Redis came back")
        assert all(p.poll() is None for p in cluster.procs) and [p.pid for p in cluster.procs] == pids
        s = cluster.stats(0)
        assert s["bridge_lost"] >= lost, s
        for ws in (far, near, pub):
            await ws.close()

    asyncio.run(main())
