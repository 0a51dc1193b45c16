#!/usr/bin/env python3
"""Fan-out across processes through the Redis bridge, against the same
fan-out inside one process, in one run.

    benches/bridge/run.py [--runs 3] [--duration 4] [--subscribers 500] [--size 32]

Layouts (each started fresh per run; layouts take turns inside each run):
  one        one `volley serve`, no bridge: publisher and subscribers on it
  one+redis  the same process bridged to Redis (its publishes also cross;
             nobody else listens): what the bridge costs a process
  across     publisher on A; subscribers split over B and C; A, B and C
             bridged through one redis-server

Servers and redis-server share CPU 0, `volley bench fanout` runs on CPU 1.
Reports delivered messages per second, per server CPU-second (volley
processes and redis-server summed) and publish-to-delivery latency at
subscriber 0 (p50/p99). Needs redis-server and target/release/volley.
"""

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VOLLEY = ROOT / "target" / "release" / "volley"
SERVER_CPU, GEN_CPU = "0", "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_start():
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    for _ in range(200):
        r = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return p, port
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def volley_start(*extra):
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(VOLLEY), "serve", "--port", "0", "--workers", "1", *extra],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not m:
        raise RuntimeError(f"volley serve: {line!r}")
    return p, int(m.group(1))


def run_layout(layout, args):
    procs, pids = [], []
    try:
        bench = ["fanout", "--subscribers", str(args.subscribers), "--inflight", "64", "--size", str(args.size)]
        if layout == "one":
            a, pa = volley_start()
            procs.append(a)
            pids = [a.pid]
            bench += ["--url", f"ws://127.0.0.1:{pa}/echo"]
        else:
            r, rport = redis_start()
            procs.append(r)
            bridge = ["--pubsub-bridge", f"redis://127.0.0.1:{rport}/bench"]
            a, pa = volley_start(*bridge)
            procs.append(a)
            pids = [r.pid, a.pid]
            bench += ["--url", f"ws://127.0.0.1:{pa}/echo"]
            if layout == "across":
                b, pb = volley_start(*bridge)
                c, pc = volley_start(*bridge)
                procs += [b, c]
                pids += [b.pid, c.pid]
                bench += ["--sub-urls", f"ws://127.0.0.1:{pb}/,ws://127.0.0.1:{pc}/"]
        # taskset wraps exec: the pid is the server's own.
        out = subprocess.run(["taskset", "-c", GEN_CPU, str(VOLLEY), "bench", *bench, "--duration", str(args.duration),
                              "--warmup", "1", "--json", "--quiet", "--pid", ",".join(map(str, pids))],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{layout}: {out.stderr.strip()}")
        return json.loads(out.stdout)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    if not shutil.which("redis-server") or not VOLLEY.exists():
        sys.exit("needs redis-server and target/release/volley (cargo build --release -p volley-cli)")
    layouts = ["one", "one+redis", "across"]
    results = {k: [] for k in layouts}
    for i in range(args.runs):
        for layout in layouts:
            r = run_layout(layout, args)
            results[layout].append(r)
            print(f"run {i + 1} {layout:10} {r['msgs_per_sec']:>12,.0f} msg/s "
                  f"{r.get('msgs_per_server_cpu_sec', 0):>12,.0f} msg/CPU-s "
                  f"p50 {r['p50_us']:>8,.0f} µs p99 {r['p99_us']:>8,.0f} µs", file=sys.stderr)
    med = lambda k, key: statistics.median(r[key] for r in results[k])
    print(f"\nfan-out, {args.subscribers} subscribers × {args.size} B, medians of {args.runs} runs")
    print(f"| layout | delivered msg/s | msg / server CPU-s | p50 latency | p99 latency |")
    print("|---|---:|---:|---:|---:|")
    for k in layouts:
        print(f"| {k} | {med(k, 'msgs_per_sec'):,.0f} | {med(k, 'msgs_per_server_cpu_sec'):,.0f} | "
              f"{med(k, 'p50_us') / 1000:.2f} ms | {med(k, 'p99_us') / 1000:.2f} ms |")
    one, across = med("one", "msgs_per_sec"), med("across", "msgs_per_sec")
    print(f"\nacross ÷ one (msg/s): {across / one:.2f}; added p50 latency: "
          f"{(med('across', 'p50_us') - med('one', 'p50_us')) / 1000:.2f} ms")
    (Path(__file__).parent / "latest.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
