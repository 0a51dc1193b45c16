//! include/volley.h is what cbindgen makes of this crate today: drift fails.
//! `VOLLEY_BLESS=1 cargo test -p volley-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn the_checked_in_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    let path = dir.join("../include/volley.h");
    if std::env::var_os("VOLLEY_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/volley.h is stale: run VOLLEY_BLESS=1 cargo test -p volley-ffi --test header"
    );
}

#[test]
fn the_abi_version_macro_matches_the_library() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let h = std::fs::read_to_string(dir.join("../include/volley.h")).unwrap();
    let line = h
        .lines()
        .find(|l| l.starts_with("#define VOLLEY_ABI_VERSION "))
        .expect("VOLLEY_ABI_VERSION in the header");
    let v: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let src = std::fs::read_to_string(dir.join("src/types.rs")).unwrap();
    assert!(src.contains(&format!("pub const VOLLEY_ABI_VERSION: u32 = {v};")));
    // Every exported function is documented with the three conventions:
    // look at the comment block right above each declaration.
    let lines: Vec<&str> = h.lines().collect();
    let mut fns = 0;
    for (i, l) in lines.iter().enumerate() {
        let decl = !l.starts_with(' ') && !l.starts_with("typedef") && !l.starts_with('#');
        let Some(name) = l
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .find(|w| w.starts_with("volley_") && l.contains(&format!("{w}(")))
        else {
            continue;
        };
        if !decl {
            continue;
        }
        fns += 1;
        let start = (0..i).rev().find(|&j| lines[j].starts_with("/**")).unwrap();
        let doc = lines[start..i].join("\n");
        for word in ["Ownership:", "Threads:", "Returns:"] {
            assert!(
                doc.contains(word),
                "{word} missing in the comment of {name}"
            );
        }
    }
    assert!(fns > 40, "{fns} functions");
}
