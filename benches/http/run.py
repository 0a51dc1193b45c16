#!/usr/bin/env python3
"""HTTP keep-alive soak: `volley serve` against Bun's fetch handler, in the
same run, taking turns.

    benches/http/run.py [--runs 3] [--duration 30] [--conns 1000]

Each server is started fresh per run, pinned to CPU 0; `volley bench http`
(keep-alive GET /health, one request in flight per connection, full speed)
runs pinned to CPU 1 with the server's pid, so it reports requests/s,
requests per server CPU-second and the server's RSS at the start, the peak
and the end (RSS flat = the peak and the end near the start). Prints the
medians and Volley's ratio to Bun. Bun comes from npm
(@oven/bun-linux-x64, installed by `npm ci` in benches/compare).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "benches" / "compare"
VOLLEY = ROOT / "target" / "release" / "volley"
BUN = COMPARE / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def servers(port: int) -> dict:
    return {
        "volley": ([str(VOLLEY), "serve", "--port", str(port), "--workers", "1"], {}),
        "bun": ([str(BUN), str(COMPARE / "servers" / "bun.js")], {"PORT": str(port)}),
    }


def one(name: str, a) -> dict:
    port = free_port()
    cmd, env = servers(port)[name]
    p = subprocess.Popen(["taskset", "-c", "0", *cmd], env={**os.environ, **env},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        out = subprocess.run(
            ["taskset", "-c", "1", str(VOLLEY), "bench", "http", "--url", f"http://127.0.0.1:{port}/health",
             "--conns", str(a.conns), "--duration", str(a.duration), "--warmup", "2", "--pid", str(p.pid),
             "--json", "--quiet"], capture_output=True, text=True, check=True).stdout
        return json.loads(out)
    finally:
        p.terminate()
        p.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--conns", type=int, default=1000)
    a = ap.parse_args()
    if not BUN.exists():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=COMPARE, check=True)
    if not VOLLEY.exists():
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "volley-cli"], cwd=ROOT, check=True)
    res: dict = {"volley": [], "bun": []}
    for r in range(a.runs):
        for name in ("volley", "bun") if r % 2 == 0 else ("bun", "volley"):
            x = one(name, a)
            res[name].append(x)
            print(f"run {r + 1} {name}: {x}", file=sys.stderr)
    med = {n: {k: statistics.median(x[k] for x in v) for k in v[0] if k != "mode"} for n, v in res.items()}
    keys = ["requests_per_sec", "requests_per_server_cpu_sec", "server_rss_start_kb", "server_rss_peak_kb",
            "server_rss_end_kb", "errors"]
    print(f"{'median of ' + str(a.runs):>28} {'volley':>12} {'bun':>12} {'volley/bun':>11}")
    for k in keys:
        v, b = med["volley"].get(k, 0), med["bun"].get(k, 0)
        ratio = f"{v / b:.2f}x" if b and k.startswith("requests") else ""
        print(f"{k:>28} {v:>12.0f} {b:>12.0f} {ratio:>11}")


if __name__ == "__main__":
    main()
