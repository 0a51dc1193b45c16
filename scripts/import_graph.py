#!/usr/bin/env python3
"""The import graph of engine/src, for docs/ARCHITECTURE.md and issue 23:
each file -> the files it names through `crate::` or `super::` paths
(outside comments; names the crate root re-exports count as their
defining file). Prints the imports that point to a higher layer
(core < io < server/queue/bridge) and the groups of files that import
each other in a circle.

    scripts/import_graph.py [ENGINE_SRC]      # default: this tree's engine/src

engine/tests/layers.rs enforces the first count (zero outside test files)."""
import re
import sys
from pathlib import Path
root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "engine" / "src")
files = {}
for p in root.rglob("*.rs"):
    rel = p.relative_to(root).as_posix()
    mod = rel[:-3]
    if mod.endswith("/mod"): mod = mod[:-4]
    if mod == "lib": mod = ""
    files[mod] = p
# Names the crate root re-exports (`pub use io::handler::{Handler, ..}`):
# `crate::Handler` is an import of the file that defines it.
reexports = {}
librs = (root / "lib.rs").read_text()
for m in re.finditer(r"pub use ((?:\w+::)*)(?:\{([^}]*)\}|(\w+)(?: as (\w+))?);", librs):
    path = m.group(1).rstrip(":").split("::") if m.group(1) else []
    names = [x.strip() for x in m.group(2).split(",")] if m.group(2) else [m.group(3) + (f" as {m.group(4)}" if m.group(4) else "")]
    for n in names:
        if not n: continue
        src, _, alias = n.partition(" as ")
        reexports[(alias or src).strip()] = path + [src.strip()]
def resolve(cur, path):
    # path: list of segments after crate:: or relative
    if path and path[0] in reexports:
        path = reexports[path[0]] + path[1:]
    segs = path
    # longest prefix that is a module
    for k in range(len(segs), 0, -1):
        m = "/".join(segs[:k])
        if m in files: return m
    return None
edges = {}
for mod, p in files.items():
    src = p.read_text()
    src = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("//"))
    src = re.sub(r"#\[cfg\(test\)\]\s*mod \w+ \{.*", "", src, flags=re.S)  # drop inline test modules (approx)
    out = set()
    parent = mod.rsplit("/", 1)[0] if "/" in mod else ""
    is_dir = p.name == "mod.rs" or p.name == "lib.rs"
    base_for_super = parent if not is_dir else (mod.rsplit("/",1)[0] if "/" in mod else "")
    for m in re.finditer(r"\bcrate::((?:\w+::)*\w+)", src):
        t = resolve(mod, m.group(1).split("::"))
        if t is not None and t != mod and t != "": out.add(t)
    for m in re.finditer(r"\bcrate::\{([^}]*)\}", src):
        for part in m.group(1).split(","):
            part = part.strip().split("::")
            t = resolve(mod, [x for x in part if x and x != "self"])
            if t and t != mod: out.add(t)
    for m in re.finditer(r"\bsuper::((?:\w+::)*\w+)", src):
        segs = m.group(1).split("::")
        b = base_for_super
        t = resolve(mod, ([b] if b else []) + segs) if b else resolve(mod, segs)
        if t and t != mod and t != "": out.add(t)
    for m in re.finditer(r"\bsuper::\{([^}]*)\}", src):
        for part in m.group(1).split(","):
            part = [x for x in part.strip().split("::") if x and x != "self"]
            b = base_for_super
            t = resolve(mod, ([b] if b else []) + part)
            if t and t != mod: out.add(t)
    edges[mod] = out
# Layers, bottom up: 0 the sans-IO core and plain data (proto/, pubsub/,
# id, options, route), 1 the loop (io/), 2 what is built on it (server,
# queue, bridge, harness, the crate root).
# (handler, http and websocket: their top-level places before issue 23, to
# compare with older trees.)
API = {"server", "queue", "bridge", "harness", "handler", "http", "websocket"}
def layer(m):
    top = m.split("/")[0]
    if top == "io": return 1
    if top in API: return 2
    return 0
up = [(a, b) for a, bs in edges.items() for b in bs if layer(b) > layer(a)]
# Tarjan SCC
idx, low, st, on, sccs, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in edges:
    if v not in idx: sc(v)
big = [sorted(s) for s in sccs if len(s) > 1]
print(f"files {len(files)}, edges {sum(len(v) for v in edges.values())}")
print(f"upward imports (to a higher layer: core < io < api): {len(up)}")
for a, b in sorted(up): print(f"  {a} -> {b}")
print(f"import circles (strongly connected groups of files): {len(big)}")
for s in big: print(f"  {len(s)} files: {' '.join(s)}")
