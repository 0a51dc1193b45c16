#!/usr/bin/env python3
"""A change against its parent, in one run: the same server built from two
trees, alternated with Bun, for a change too small for run.py's spread.

    benches/compare/ab.py --old /tmp/old [--server node-volley|volley]
                          [--cell echo] [--runs 9] [--duration 3]

`--old` is a checkout of the commit to compare against with its release
build (for example `git worktree add /tmp/old HEAD~1 && cd /tmp/old &&
cargo build --release -p volley-ffi -p volley-cli`); this tree must be
built too. Each run measures old, new and Bun in turn (run.py's measure:
server on CPU 0, generator on CPU 1, per server CPU-second) and the
report gives medians, new/old per run and each against Bun.
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402


def spec(tree, server):
    tree = Path(tree).resolve()
    if server == "node-volley":
        return {"cmd": ["node", str(tree / "benches/compare/servers/node_volley.mjs")],
                "env": {"VOLLEY_LIB": str(tree / "target/release/libvolley.so")}}
    if server == "volley":
        return {"cmd": [str(tree / "target/release/volley"), "serve", "--port", "{port}", "--workers", "1"]}
    sys.exit(f"ab.py: --server {server}: node-volley or volley")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="the tree to compare against (built)")
    ap.add_argument("--server", default="node-volley")
    ap.add_argument("--cell", default="echo", choices=sorted(run.CELLS))
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--duration", type=float, default=3)
    args = ap.parse_args()
    specs = {"old": spec(args.old, args.server), "new": spec(run.ROOT, args.server),
             "bun": {"cmd": [str(run.BUN), str(run.HERE / "servers" / "bun.js")]}}
    cell = run.CELLS[args.cell]
    key = cell[3]
    res = {n: [] for n in specs}
    for i in range(args.runs):
        for n, s in specs.items():
            r = run.measure(n, s, cell, args, 9400 + i)
            if r is None:
                sys.exit(f"ab.py: {n} failed")
            res[n].append(r[key])
            print(f"run {i + 1} {n:4} {r[key]:,.0f}", file=sys.stderr, flush=True)

    def ratios(a, b):
        return [x / y for x, y in zip(res[a], res[b])]

    print(f"{cell[0]}, {cell[1]}, {args.server}, medians of {args.runs} runs × {args.duration:g} s")
    for n in specs:
        print(f"  {n:4} {statistics.median(res[n]):,.0f}")
    for a, b in [("new", "old"), ("old", "bun"), ("new", "bun")]:
        r = ratios(a, b)
        print(f"  {a}/{b}: median {statistics.median(r):.3f} (runs {min(r):.3f}-{max(r):.3f})")


if __name__ == "__main__":
    main()
