#!/usr/bin/env python3
"""Volley against its peers, in one run, on one machine.

    benches/compare/run.py [--runs 3] [--duration 4] [--servers volley,bun,...]
                           [--cells echo,latency,large,fanout,handshake,session,idle]

Every server speaks the same convention (/echo, /sub, /pub; see
servers/bun.js). Each one is started fresh for every cell and run, pinned to
CPU 0, while `volley bench` drives it from CPU 1; servers take turns inside
each cell so machine noise hits them alike. Small-message cells report
messages per *server* CPU-second (utime+stime from /proc/PID/stat over the
measured window): on a 2-core machine the generator saturates near the
fastest servers' rate, so raw msg/s cannot separate them. The table shows
medians; the last column is Volley ÷ Bun. Raw runs go to results/latest.json.

Installs what it needs: npm packages here (a real Bun binary from
@oven/bun-linux-x64, Node ws), a venv with Python websockets, the Rust peers.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VOLLEY = ROOT / "target" / "release" / "volley"
BUN = HERE / "node_modules" / "@oven" / "bun-linux-x64" / "bin" / "bun"
VENV = HERE / ".venv"
PEERS = HERE / "rust-peers" / "target" / "release"
CBIN = HERE / ".c-build"
NODE_BINDING = ROOT / "bindings" / "node"
SERVER_CPU, GEN_CPU = "0", "1"


def servers():
    py = VENV / "bin" / "python"
    return {
        "volley": {"cmd": [str(VOLLEY), "serve", "--port", "{port}", "--workers", "1"], "pubsub": True,
                   "deflate_flag": "--deflate"},
        "bun": {"cmd": [str(BUN), str(HERE / "servers" / "bun.js")], "pubsub": True, "deflate": True},
        "node-ws": {"cmd": ["node", str(HERE / "servers" / "node_ws.mjs")], "pubsub": True, "deflate": True},
        "py-websockets": {"cmd": [str(py), str(HERE / "servers" / "py_websockets.py")], "pubsub": True,
                          "deflate": True},
        "tokio-tungstenite": {"cmd": [str(PEERS / "tungstenite")], "pubsub": True},
        "fastwebsockets": {"cmd": [str(PEERS / "fastws")], "pubsub": False},
        # The C ABI: examples/c/echo.c (callback mode) and the event-queue
        # echo (the host thread drains and answers), one worker each.
        "c-callback": {"cmd": [str(CBIN / "echo"), "{port}", "1"], "pubsub": False},
        "c-queue": {"cmd": [str(CBIN / "queue_echo"), "{port}"], "pubsub": False},
        # Python: the Bun-shaped callbacks, the websockets-style layer (the
        # py-websockets server with its import changed), and picows (Cython).
        "py-volley": {"cmd": [str(py), str(HERE / "servers" / "py_volley.py")], "pubsub": True, "deflate": True},
        "py-volley-ws": {"cmd": [str(py), str(HERE / "servers" / "py_volley_ws.py")], "pubsub": True, "deflate": True},
        # picows as its authors run it (uvloop), and on the stock asyncio
        # loop that the volley layers use.
        "py-picows": {"cmd": [str(py), str(HERE / "servers" / "py_picows.py")], "pubsub": True},
        "py-picows-asyncio": {"cmd": [str(py), str(HERE / "servers" / "py_picows.py")], "pubsub": True,
                              "env": {"PICOWS_LOOP": "asyncio"}},
        # Bun's serve() on Node through the binding, one worker.
        "node-volley": {"cmd": ["node", str(HERE / "servers" / "node_volley.mjs")], "pubsub": True, "deflate": True},
    }


# name, unit, bench args, result key, higher is better
CELLS = {
    "echo": ("echo 100×16×32 B", "msgs / server CPU-s",
             ["echo", "--conns", "100", "--inflight", "16", "--size", "32"], "msgs_per_server_cpu_sec", True),
    "latency": ("echo 100×1×32 B, p99", "µs",
                ["echo", "--conns", "100", "--inflight", "1", "--size", "32"], "p99_us", False),
    "large": ("echo 10×4×64 KiB", "MB/s",
              ["echo", "--conns", "10", "--inflight", "4", "--size", "65536", "--binary"], "mb_per_sec", True),
    "fanout": ("fan-out 500 subs × 32 B", "msgs / server CPU-s",
               ["fanout", "--subscribers", "500", "--inflight", "64", "--size", "32"], "msgs_per_server_cpu_sec",
               True),
    "zecho": ("deflate echo 100×16×1 KiB text", "msgs / server CPU-s",
              ["echo", "--conns", "100", "--inflight", "16", "--size", "1024", "--deflate"],
              "msgs_per_server_cpu_sec", True),
    "zfanout": ("deflate fan-out 500 subs × 1 KiB", "msgs / server CPU-s",
                ["fanout", "--subscribers", "500", "--inflight", "64", "--size", "1024", "--deflate"],
                "msgs_per_server_cpu_sec", True),
    "handshake": ("handshakes", "per server CPU-s", ["connect", "--conns", "50", "--idle", "0"],
                  "handshakes_per_server_cpu_sec", True),
    # Open, one 32-byte message and its echo, reset: 50 sessions in flight.
    "session": ("sessions (open → 1 echo → close)", "per server CPU-s",
                ["connect", "--conns", "50", "--idle", "0", "--size", "32"],
                "handshakes_per_server_cpu_sec", True),
    "idle": ("10,000 idle connections", "bytes RSS / conn",
             ["connect", "--conns", "10", "--idle", "10000", "--duration", "1", "--warmup", "0.5"],
             "bytes_per_idle_connection", False),
}


def sh(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def install():
    if not BUN.exists() or not (HERE / "node_modules" / "ws").exists():
        sh(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=HERE)
    if not (VENV / "bin" / "python").exists():
        sh([sys.executable, "-m", "venv", str(VENV)])
    sh([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "websockets==15.0.1", "picows==2.3.1",
        "uvloop==0.22.1"])
    sh(["cargo", "build", "--release", "-q"], cwd=HERE / "rust-peers")
    sh(["cargo", "build", "--release", "-q", "-p", "volley-cli"], cwd=ROOT)
    prefix = CBIN / "prefix"
    sh([str(ROOT / "scripts" / "install.sh"), "--prefix", str(prefix)])
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "--static", "volley"], capture_output=True, text=True,
                           check=True, env=dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))).stdout.split()
    for src, out in [(ROOT / "examples" / "c" / "echo.c", "echo"), (HERE / "servers" / "c_queue_echo.c", "queue_echo")]:
        sh(["gcc", "-O2", "-std=c99", "-D_POSIX_C_SOURCE=200809L", str(src), "-o", str(CBIN / out), *flags])
    if not (NODE_BINDING / "node_modules" / "koffi").exists():
        sh(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=NODE_BINDING)


def start(name, spec, port, deflate=False):
    cmd = [c.replace("{port}", str(port)) for c in spec["cmd"]]
    env = dict(os.environ, PORT=str(port), **spec.get("env", {}))
    if deflate:
        env["WS_DEFLATE"] = "1"
        if spec.get("deflate_flag"):
            cmd.append(spec["deflate_flag"])
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, *cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    line = p.stdout.readline()
    if "listening" not in line:
        p.kill()
        raise RuntimeError(f"{name} did not start: {line!r}")
    # Keep draining its output: a server that logs every reset connection
    # would otherwise block on a full pipe and measure as dead. The last
    # "stats" line is kept (the queue-mode echo reports its drains there).
    p.stats_line = ""

    def drain():
        for out in p.stdout:
            if out.startswith("stats "):
                p.stats_line = out.strip()
    threading.Thread(target=drain, daemon=True).start()
    return p


def measure(name, spec, cell, args, port):
    p = start(name, spec, port, deflate="--deflate" in cell[2])
    try:
        out = subprocess.run(
            ["taskset", "-c", GEN_CPU, str(VOLLEY), "bench", *cell[2], "--url", f"ws://127.0.0.1:{port}/echo",
             "--pid", str(p.pid), "--duration", str(args.duration), "--json", "--quiet"],
            capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            print(f"  {name}: bench failed: {out.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        r = json.loads(out.stdout)
        time.sleep(1.1)  # one more stats line, after the measured window
        m = re.match(r"stats polls=(\d+) events=(\d+)", p.stats_line)
        if m and int(m.group(1)):
            r["events_per_drain"] = int(m.group(2)) / int(m.group(1))
        return r
    finally:
        p.kill()
        p.wait()


def tcp_baseline(args, port):
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(VOLLEY), "tcp-echo", "--port", str(port)],
                         stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    try:
        out = subprocess.run(["taskset", "-c", GEN_CPU, str(VOLLEY), "bench", "tcp", "--url", f"tcp://127.0.0.1:{port}",
                              "--conns", "1", "--inflight", "4", "--size", "65536", "--duration",
                              str(args.duration), "--json"], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)["mb_per_sec"]
    finally:
        p.kill()
        p.wait()


def versions():
    v = {}
    for name, cmd in [("bun", [str(BUN), "--version"]), ("node", ["node", "--version"]),
                      ("rustc", ["rustc", "--version"])]:
        try:
            v[name] = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    # A peer that is not installed (--no-install on a machine without them)
    # has no version to report; the servers that ran still get their table.
    try:
        v["ws"] = json.load(open(HERE / "node_modules" / "ws" / "package.json"))["version"]
    except OSError:
        pass
    for mod in ["websockets", "picows"]:
        try:
            v[mod] = subprocess.run([str(VENV / "bin" / "python"), "-c", f"import {mod};print({mod}.__version__)"],
                                    capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    lock = (HERE / "rust-peers" / "Cargo.lock").read_text() if (HERE / "rust-peers" / "Cargo.lock").exists() else ""
    for crate in ["tokio-tungstenite", "fastwebsockets"]:
        m = re.search(rf'name = "{crate}"\nversion = "([^"]+)"', lock)
        if m:
            v[crate] = m.group(1)
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    v["machine"] = f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}"
    return v


def fmt(x, unit):
    if x is None:
        return "—"
    if "CPU-s" in unit:
        return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"
    return f"{x:,.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--servers", default=",".join(servers()))
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--no-install", action="store_true")
    args = ap.parse_args()
    if not args.no_install:
        install()
    specs = {k: v for k, v in servers().items() if k in args.servers.split(",")}
    cells = [c for c in args.cells.split(",") if c in CELLS]
    raw = {c: {s: [] for s in specs} for c in cells}
    tcp = []
    port = 19100
    for run in range(args.runs):
        for c in cells:
            cell = CELLS[c]
            for s, spec in specs.items():
                if "fanout" in c and not spec["pubsub"]:
                    continue
                if c.startswith("z") and not (spec.get("deflate") or spec.get("deflate_flag")):
                    continue
                port += 1
                r = measure(s, spec, cell, args, port)
                val = r.get(cell[3]) if r else None
                print(f"run {run + 1} {cell[0]:<26} {s:<18} {fmt(val, cell[1]) if val is not None else 'failed'}",
                      file=sys.stderr)
                if val is not None:
                    raw[c][s].append(r)
        if "large" in cells:
            port += 1
            tcp.append(tcp_baseline(args, port))
    med = {c: {s: (statistics.median(r[CELLS[c][3]] for r in runs) if runs else None)
               for s, runs in raw[c].items()} for c in cells}
    names = list(specs)
    lines = ["| cell | unit | " + " | ".join(names) + " | Volley ÷ Bun |",
             "|---|---|" + "---|" * len(names) + "---|"]
    for c in cells:
        name, unit, _, _, _ = CELLS[c]
        row = [fmt(med[c][s], unit) for s in names]
        v, b = med[c].get("volley"), med[c].get("bun")
        ratio = f"{v / b:.2f}×" if v and b else "—"
        lines.append(f"| {name} | {unit} | " + " | ".join(row) + f" | {ratio} |")
    drains = [r["events_per_drain"] for r in raw.get("echo", {}).get("c-queue", []) if "events_per_drain" in r]
    if drains:
        lines.append(f"\nEvent-queue echo (C host): {statistics.median(drains):,.0f} events per drain call (median).")
    if tcp:
        t = statistics.median(tcp)
        v = med.get("large", {}).get("volley")
        share = f" (Volley: {100 * v / t:.0f} % of it)" if v else ""
        lines.append(f"\nOne loopback TCP connection, same 4 × 64 KiB echo pattern: {t:,.0f} MB/s{share}.")
    meta = versions()
    lines.append(f"\nMedians of {args.runs} runs × {args.duration:g} s; {meta.get('machine', '')}; "
                 + ", ".join(f"{k} {v}" for k, v in meta.items() if k != "machine") + ".")
    table = "\n".join(lines)
    print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"raw": raw, "median": med, "tcp": tcp, "meta": meta,
                                                  "when": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    (out / "latest.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
