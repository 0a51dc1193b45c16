#!/usr/bin/env python3
"""How Volley scales with workers, against Bun and tokio-tungstenite in the
same run (issue 22).

    benches/scaling/run.py [--workers 1,2,4,8] [--runs 3] [--duration 4]
                           [--servers volley,bun,tungstenite]
                           [--cells echo,fanout,handshake,memory]

For each W the server gets cores 0..W-1 (`volley serve --workers W`; Bun as
W processes sharing the port with `reusePort`; tokio-tungstenite on a
W-thread runtime) and `volley bench` processes run pinned one per core on
the other half of the machine. W is capped at half the cores: on a 2-core
machine only W=1 runs, and the script says so. Each cell prints msg/s (or
handshakes/s), the server's CPU-seconds per million (from /proc, over the
measured window) and, per server, the W/1 ratio of CPU per message: the
figure issue 22's targets use, since at high W the generators near their
own ceiling and msg/s flattens for reasons of theirs.

The memory cell needs no cores and runs every W asked for: a fresh
`volley serve --workers W` holds N1 then (fresh again) N2 idle connections;
the slope (RSS2 - RSS1) / (N2 - N1) is the cost of one idle connection, the
intercept the server's fixed cost at W, and the intercepts' growth with W
the fixed cost per worker.

Needs benches/compare's install (Bun from npm, the Rust peers): run
`benches/compare/run.py --cells idle --runs 1` once first.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COMPARE = ROOT / "benches" / "compare"
VOLLEY = ROOT / "target" / "release" / "volley"
BUN = COMPARE / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"
TUNGSTENITE = COMPARE / "rust-peers" / "target" / "release" / "tungstenite"

# name: (what, volley bench arguments per generator process, key of its rate)
CELLS = {
    "echo": ("echo 100×16×32 B per generator", ["echo", "--conns", "100", "--inflight", "16", "--size", "32"],
             "msgs_per_sec"),
    "fanout": ("fan-out 2,000 subscribers × 32 B", ["fanout", "--subscribers", "2000", "--inflight", "64",
                                                   "--size", "32"], "msgs_per_sec"),
    "handshake": ("sustained handshakes (50 in flight per generator)", ["connect", "--conns", "50", "--idle", "0"],
                  "handshakes_per_sec"),
}


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return total


def rss_kb(pids):
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def start(server, w, port):
    """The server on cores 0..w-1: its processes."""
    cores = f"0-{w - 1}" if w > 1 else "0"
    env = dict(os.environ, PORT=str(port))
    if server == "volley":
        cmds = [[str(VOLLEY), "serve", "--port", str(port), "--workers", str(w)]]
    elif server == "bun":
        env["REUSE_PORT"] = "1"
        cmds = [[str(BUN), str(COMPARE / "servers" / "bun.js")] for _ in range(w)]
    elif server == "tungstenite":
        env["TOKIO_WORKERS"] = str(w)
        cmds = [[str(TUNGSTENITE)]]
    else:
        raise SystemExit(f"unknown server {server}")
    procs = []
    for i, cmd in enumerate(cmds):
        # Bun: one process per core, each pinned to its own.
        pin = str(i) if server == "bun" else cores
        p = subprocess.Popen(["taskset", "-c", pin, *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=env)
        line = p.stdout.readline()
        if "listening" not in line:
            for q in procs + [p]:
                q.kill()
            raise RuntimeError(f"{server} did not start: {line!r}")
        procs.append(p)
    return procs


def stop(procs):
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def measure(server, w, cell, gens, gen_cores, duration, port):
    what, args, key = CELLS[cell]
    procs = start(server, w, port)
    pids = [p.pid for p in procs]
    warmup = 1.0
    try:
        benches = [subprocess.Popen(["taskset", "-c", str(gen_cores[i % len(gen_cores)]), str(VOLLEY), "bench", *args,
                                     "--url", f"ws://127.0.0.1:{port}/echo", "--duration", str(duration),
                                     "--warmup", str(warmup), "--json", "--quiet"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for i in range(gens)]
        time.sleep(warmup + 0.2)
        c0, t0 = cpu_seconds(pids), time.monotonic()
        time.sleep(max(duration - 0.4, 0.5))
        c1, t1 = cpu_seconds(pids), time.monotonic()
        rate = 0.0
        for b in benches:
            out, err = b.communicate(timeout=duration + 120)
            if b.returncode != 0:
                print(f"  {server} W={w} {cell}: bench failed: {err.strip()[-200:]}", file=sys.stderr)
                return None
            rate += json.loads(out)[key]
        cpu = (c1 - c0) / (t1 - t0)  # server cores busy, on average
        return {"rate": rate, "cpu_cores": cpu, "cpu_s_per_million": cpu / rate * 1e6 if rate else None}
    finally:
        stop(procs)


def hold(w, n, port):
    """RSS (KiB) of a fresh `volley serve --workers w` holding n idle connections."""
    procs = start("volley", w, port)
    try:
        out = subprocess.run([str(VOLLEY), "bench", "connect", "--url", f"ws://127.0.0.1:{port}/echo",
                              "--conns", "10", "--idle", str(n), "--duration", "0.5", "--warmup", "0.2",
                              "--pid", str(procs[0].pid), "--json", "--quiet"],
                             capture_output=True, text=True, timeout=300)
        r = json.loads(out.stdout)
        if int(r.get("idle_connections", 0)) != n:
            raise RuntimeError(f"W={w}: held {r.get('idle_connections')} of {n} connections: {out.stderr[-200:]}")
        return r["server_rss_after_kb"]
    finally:
        stop(procs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--servers", default="volley,bun,tungstenite")
    ap.add_argument("--cells", default="echo,fanout,handshake,memory")
    ap.add_argument("--idle", default="2000,16000", help="the two idle-connection counts of the memory cell")
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    asked = [int(x) for x in a.workers.split(",")]
    half = max(cores // 2, 1)
    ws = [w for w in asked if w <= half]
    gen_cores = list(range(half, cores)) or [0]
    cells = a.cells.split(",")
    servers = a.servers.split(",")
    port = 9400
    when = time.strftime("%Y-%m-%d")
    print(f"# benches/scaling, {when}: {cores} cores; servers on cores 0..W-1, generators on {gen_cores[0]}.."
          f"{gen_cores[-1]}; medians of {a.runs} × {a.duration:g} s")
    if ws != asked:
        print(f"# {cores} cores: CPU cells run W ≤ {half} only (the generators need the other half); "
              f"W = {', '.join(str(w) for w in asked if w > half)} need a larger machine")
    for cell in [c for c in cells if c in CELLS]:
        print(f"\n## {CELLS[cell][0]}\n")
        print("| server | W | rate/s | server CPU-s per M | CPU per msg vs W=1 |")
        print("|---|---|---|---|---|")
        for server in servers:
            base = None
            for w in ws:
                if cell == "fanout" and server == "bun" and w > 1:
                    print(f"| bun | {w} | – | – | not comparable: topics are per process, and W reusePort "
                          "processes do not share subscribers |")
                    continue
                runs = []
                for _ in range(a.runs):
                    port += 1
                    r = measure(server, w, cell, len(gen_cores) if w > 1 else 1, gen_cores, a.duration, port)
                    if r:
                        runs.append(r)
                if not runs:
                    print(f"| {server} | {w} | failed | | |")
                    continue
                rate = statistics.median(r["rate"] for r in runs)
                per_m = statistics.median(r["cpu_s_per_million"] for r in runs)
                base = base or per_m
                print(f"| {server} | {w} | {rate / 1e6:.2f} M | {per_m:.3f} | {per_m / base:.2f}× |"
                      if rate >= 1e5 else
                      f"| {server} | {w} | {rate / 1e3:.1f} k | {per_m:.1f} | {per_m / base:.2f}× |", flush=True)
    if "memory" in cells:
        n1, n2 = (int(x) for x in a.idle.split(","))
        print(f"\n## memory: volley serve --workers W holding {n1:,} and {n2:,} idle connections\n")
        print("| W | RSS at N1 (KiB) | RSS at N2 (KiB) | slope (B / idle conn) | fixed (KiB) | fixed per worker (KiB) |")
        print("|---|---|---|---|---|---|")
        fixed1 = None
        for w in asked:
            r1s, r2s = [], []
            for _ in range(a.runs):
                port += 1
                r1s.append(hold(w, n1, port))
                port += 1
                r2s.append(hold(w, n2, port))
            r1, r2 = statistics.median(r1s), statistics.median(r2s)
            slope = (r2 - r1) * 1024 / (n2 - n1)
            fixed = r1 - slope * n1 / 1024
            fixed1 = fixed if fixed1 is None else fixed1
            per = "–" if w == asked[0] else f"{(fixed - fixed1) / (w - asked[0]):,.0f}"
            print(f"| {w} | {r1:,.0f} | {r2:,.0f} | {slope:,.0f} | {fixed:,.0f} | {per} |", flush=True)


if __name__ == "__main__":
    main()
