#!/usr/bin/env python3
"""The floor of each Python layer (issue 21, section 4): server CPU per
32-byte message with an empty handler, against the same layer's echo, for
volley.serve (Bun-shaped), volley.asyncio and picows (on uvloop, as its
authors run it). The client is cheap by construction: each of --conns
connections sends its share of the messages as pre-masked frames in a few
large writes, and a thread per connection discards what comes back, so
the server's own CPU (measured in the server, from its first message to
its last) is what is compared. Medians of --runs.

    benches/compare/.venv/bin/python benches/compare/floor.py --runs 5
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPGRADE = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def one(layer, handler, n, conns, size):
    port = free_port()
    env = dict(os.environ, FLOOR_LAYER=layer, FLOOR_HANDLER=handler, FLOOR_MESSAGES=str(n), PORT=str(port))
    p = subprocess.Popen([sys.executable, str(HERE / "servers" / "py_floor.py")], env=env,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "listening"
        # A masked text frame, mask 0 (the payload goes as is).
        frame = bytes([0x81, 0x80 | size, 0, 0, 0, 0]) + b"x" * size
        socks = []
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(UPGRADE)
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            assert head.startswith(b"HTTP/1.1 101"), head
            socks.append(s)

        def drain(s):
            try:
                while s.recv(1 << 16):
                    pass
            except OSError:
                pass

        for s in socks:
            threading.Thread(target=drain, args=(s,), daemon=True).start()
        each = n // conns
        chunk = frame * 2000

        def send(s):
            left = each
            while left > 0:
                k = min(left, 2000)
                s.sendall(chunk if k == 2000 else frame * k)
                left -= k

        senders = [threading.Thread(target=send, args=(s,)) for s in socks]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        line = p.stdout.readline().strip()
        assert line.startswith("cpu "), line
        for s in socks:
            s.close()
        return float(line.split()[1]) / (n - 1) * 1e6
    finally:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--layers", default="bun,asyncio,picows")
    a = ap.parse_args()
    print(f"server CPU-µs per {a.size} B message, median of {a.runs} "
          f"({a.messages} messages over {a.conns} connections each)")
    print(f"{'layer':10} {'empty':>8} {'echo':>8}  echo-empty")
    for layer in a.layers.split(","):
        r = {}
        for h in ("empty", "echo"):
            r[h] = statistics.median(one(layer, h, a.messages, a.conns, a.size) for _ in range(a.runs))
        print(f"{layer:10} {r['empty']:8.2f} {r['echo']:8.2f}  {r['echo'] - r['empty']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
