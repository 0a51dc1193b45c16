#!/usr/bin/env python3
"""Two of the seed frameworks, the real one on Bun against the Volley
example on Node, in one run, under the same load.

    benches/frameworks/run.py [--runs 3] [--duration 4]

Scenarios (servers take turns inside each run; medians reported):
  ws-kit echo        the seed's createBunHandler + a zod ECHO message,
                     100 connections x 16 in flight, the ECHO envelope
  Brisa echo         one src/websocket (brisa-app/) built by `brisa build`
                     for Bun, and loaded by the example's Brisa layer
  Brisa fan-out      the same module's group chat: 500 subscribers on /sub,
                     a publisher on /pub

Each server is pinned to CPU 0, `volley bench` to CPU 1; the figure is
messages per server CPU-second (utime+stime of the server process over the
measured window), the one that separates servers when the generator
saturates on this 2-core machine. Installs what it needs: npm packages here
and in ../compare (a real Bun binary), the Node binding's, a release build.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VOLLEY = ROOT / "target" / "release" / "volley"
BUN = ROOT / "benches" / "compare" / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"
SERVER_CPU, GEN_CPU = "0", "1"
ECHO = json.dumps({"type": "ECHO", "meta": {}, "payload": {"text": "hello from volley bench"}}, separators=(",", ":"))


def sh(cmd, **kw):
    print("+", " ".join(map(str, cmd)), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def install():
    sh(["cargo", "build", "--release", "-q", "-p", "volley-cli", "-p", "volley-ffi"], cwd=ROOT)
    for d in (HERE, ROOT / "benches" / "compare", ROOT / "bindings" / "node"):
        if not (d / "node_modules").exists():
            sh(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=d)
    env = {**os.environ, "PATH": f"{BUN.parent}:{os.environ['PATH']}"}
    sh([str(BUN), str(HERE / "node_modules" / "brisa" / "index.js"), "build"], cwd=HERE / "brisa-app", env=env,
       stdout=subprocess.DEVNULL)


def servers():
    return {
        "ws-kit on Bun": [str(BUN), str(HERE / "wskit-bun.ts")],
        "ws-kit on Volley": ["node", str(HERE / "wskit-volley.mjs")],
        "Brisa on Bun": [str(BUN), str(HERE / "brisa-app" / "build" / "server.js"), "{port}", "PROD"],
        "Brisa on Volley": ["node", str(HERE / "brisa-volley.mjs")],
    }


SCENARIOS = [
    ("ws-kit echo", ["ws-kit on Bun", "ws-kit on Volley"], "/ws?token=bench",
     ["echo", "--conns", "100", "--inflight", "16", "--message", ECHO]),
    ("Brisa echo", ["Brisa on Bun", "Brisa on Volley"], "/echo",
     ["echo", "--conns", "100", "--inflight", "16", "--size", "32"]),
    ("Brisa group-chat fan-out", ["Brisa on Bun", "Brisa on Volley"], "/echo",
     ["fanout", "--subscribers", "500", "--inflight", "64", "--size", "32"]),
]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(name, cmd, path, bench, duration):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "NODE_ENV": "production"}
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, *[c.replace("{port}", str(port)) for c in cmd]],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=HERE)
    try:
        import socket
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.time() > deadline or p.poll() is not None:
                    raise RuntimeError(f"{name} did not start")
                time.sleep(0.05)
        out = subprocess.run(["taskset", "-c", GEN_CPU, str(VOLLEY), "bench", *bench, "--url", f"ws://127.0.0.1:{port}{path}",
                              "--duration", str(duration), "--warmup", "1", "--json", "--quiet", "--pid", str(p.pid)],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{name}: {out.stderr.strip()}")
        return json.loads(out.stdout)
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--no-install", action="store_true")
    args = ap.parse_args()
    if not args.no_install:
        install()
    spec = servers()
    results = {}
    for i in range(args.runs):
        for scenario, names, path, bench in SCENARIOS:
            for name in names:
                r = measure(name, spec[name], path, bench, args.duration)
                results.setdefault((scenario, name), []).append(r)
                print(f"run {i + 1} {scenario:26} {name:18} {r['msgs_per_sec']:>12,.0f} msg/s "
                      f"{r.get('msgs_per_server_cpu_sec', 0):>12,.0f} msg/CPU-s", file=sys.stderr)
    med = lambda k, key: statistics.median(r.get(key, 0) for r in results[k])
    print(f"\nmedians of {args.runs} runs, messages per server CPU-second (msg/s in brackets)")
    print("| scenario | real framework on Bun | Volley example on Node | Volley ÷ Bun |")
    print("|---|---:|---:|---:|")
    for scenario, (bun, vol), _, _ in [(s, n, p, b) for s, n, p, b in SCENARIOS]:
        a, b = med((scenario, bun), "msgs_per_server_cpu_sec"), med((scenario, vol), "msgs_per_server_cpu_sec")
        ra, rb = med((scenario, bun), "msgs_per_sec"), med((scenario, vol), "msgs_per_sec")
        print(f"| {scenario} | {a:,.0f} ({ra:,.0f}) | {b:,.0f} ({rb:,.0f}) | {b / a:.2f} |")
    (HERE / "latest.json").write_text(json.dumps({f"{k[0]} / {k[1]}": v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
