//! The engine's layers stay one-directional (docs/ARCHITECTURE.md): the
//! sans-IO core (`proto/`, `pubsub/`, `id`, `options`, `route`) imports
//! nothing from the loop or above it, and the loop (`io/`) imports nothing
//! from what is built on it (`server`, `queue`, `bridge`, `harness`). Read
//! from the sources: every `crate::` path outside comments and test
//! modules, with the names the crate root re-exports resolved to the file
//! that defines them. `scripts/import_graph.py` prints the whole graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn layer(module: &str) -> u8 {
    match module.split('/').next().unwrap_or("") {
        "io" => 1,
        "server" | "queue" | "bridge" | "harness" | "" => 2,
        _ => 0,
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            // Test modules in their own files (`#[cfg(test)] mod x_tests;`)
            // drive the whole server, as integration tests do.
            && !p.to_string_lossy().ends_with("_tests.rs")
        {
            out.push(p);
        }
    }
}

/// The source without comments and without a trailing `#[cfg(test)]` module.
fn code(src: &str) -> String {
    let body = match src.find("#[cfg(test)]\nmod ") {
        Some(i) => &src[..i],
        None => src,
    };
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each file's module (`io/conn`, `""` for lib.rs) and the modules it names
/// through `crate::` or `super::` paths.
fn graph() -> BTreeMap<String, BTreeSet<(String, String)>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let module = |p: &Path| {
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let m = rel.to_string_lossy().replace('\\', "/");
        match m.as_str() {
            "lib" => String::new(),
            _ => m.strip_suffix("/mod").unwrap_or(&m).to_string(),
        }
    };
    let modules: Vec<String> = all.iter().map(|p| module(p)).collect();
    // `pub use a::b::{X, Y};` in lib.rs: X and Y live in a/b.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut reexports = BTreeMap::new();
    for line in lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub use "))
    {
        let line = line.trim_end_matches(';');
        let (path, names) = match line.split_once("::{") {
            Some((p, n)) => (p.to_string(), n.trim_end_matches('}').to_string()),
            None => match line.rsplit_once("::") {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => continue,
            },
        };
        for n in names.split(',') {
            let n = n.trim();
            let name = n.rsplit(" as ").next().unwrap_or(n).trim();
            reexports.insert(name.to_string(), path.replace("::", "/"));
        }
    }
    let resolve = |segs: &[&str]| -> Option<String> {
        if let Some(m) = segs.first().and_then(|s| reexports.get(*s)) {
            return Some(m.clone());
        }
        (1..=segs.len())
            .rev()
            .map(|k| segs[..k].join("/"))
            .find(|m| modules.contains(m))
    };
    let mut graph = BTreeMap::new();
    for p in &all {
        let from = module(p);
        // `super::` in `a/b.rs` is `a`; in `a/b/mod.rs` it is `a` too.
        let parent = match from.rsplit_once('/') {
            Some((dir, _)) => dir.to_string(),
            None => String::new(),
        };
        let text = code(&std::fs::read_to_string(p).unwrap());
        let mut out = BTreeSet::new();
        for (prefix, base) in [("crate::", ""), ("super::", parent.as_str())] {
            for (i, _) in text.match_indices(prefix) {
                // `crate::` inside a longer path (`super::super::`) is not ours.
                if text[..i].ends_with("::")
                    || text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                {
                    continue;
                }
                let rest = &text[i + prefix.len()..];
                let mut paths = Vec::new();
                let head: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let head = head.trim_end_matches(':');
                if rest[head.len()..].starts_with("::{") || rest[head.len()..].starts_with('{') {
                    let inner = rest[head.len()..]
                        .trim_start_matches("::")
                        .trim_start_matches('{');
                    let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
                    for item in inner.split(',') {
                        let item = item.trim().trim_start_matches("self");
                        let full = [head, item.trim_start_matches("::")]
                            .iter()
                            .filter(|s| !s.is_empty())
                            .copied()
                            .collect::<Vec<_>>()
                            .join("::");
                        paths.push(full);
                    }
                } else {
                    paths.push(head.to_string());
                }
                for path in paths {
                    let mut segs: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
                    if !base.is_empty() && segs.is_empty() {
                        continue;
                    }
                    let top = segs.len();
                    segs.extend(path.split("::").filter(|s| !s.is_empty()));
                    // A re-exported name resolves only from the crate root.
                    let to = if top == 0 {
                        resolve(&segs)
                    } else {
                        (1..=segs.len())
                            .rev()
                            .map(|k| segs[..k].join("/"))
                            .find(|m| modules.contains(m))
                    };
                    if let Some(to) = to.filter(|t| *t != from && !t.is_empty()) {
                        out.insert((to, path));
                    }
                }
            }
        }
        graph.insert(from, out);
    }
    graph
}

#[test]
fn no_file_imports_from_a_layer_above_its_own() {
    let mut upward = Vec::new();
    for (from, to) in graph() {
        for (to, path) in to {
            if layer(&to) > layer(&from) {
                upward.push(format!("{from} -> {to} ({path})"));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports from a higher layer (core < io < server/queue/bridge):\n  {}",
        upward.join("\n  ")
    );
}

/// No two files import each other, directly or through others: every file
/// can be read knowing only the files below it. (A module's `mod.rs` naming
/// its own children is not an import of them: `pub(crate) mod x;` is not a
/// path, so it is not counted.)
#[test]
fn no_files_import_each_other_in_a_circle() {
    let g: BTreeMap<String, BTreeSet<String>> = graph()
        .into_iter()
        .map(|(f, to)| (f, to.into_iter().map(|(t, _)| t).collect()))
        .collect();
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for t in g.get(&m).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        seen
    };
    let mut circles = Vec::new();
    for (a, to) in &g {
        for b in to {
            // a -> b, and b reaches a again.
            if reach(b).contains(a) {
                circles.push(format!("{a} -> {b} -> ... -> {a}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "files that import each other:\n  {}",
        circles.join("\n  ")
    );
}
