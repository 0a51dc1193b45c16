//! One wire definition: the packed event records' layout, the event kinds
//! and flags, the send and stop flags and the result codes, as this crate
//! defines them (and include/volley.h states them), written into the files
//! the Node and Python bindings read them from. A binding whose file
//! differs from what the library defines fails here;
//! `VOLLEY_BLESS=1 cargo test -p volley-ffi --test wire` rewrites both.

use std::collections::BTreeMap;
use std::path::Path;
use volley::*;

/// Every constant a binding needs, by its name without `VOLLEY_`.
fn constants() -> Vec<(&'static str, u64)> {
    use volley_event_kind as K;
    use volley_result as R;
    vec![
        ("ABI_VERSION", VOLLEY_ABI_VERSION.into()),
        ("RECORD_KIND", VOLLEY_RECORD_KIND as u64),
        ("RECORD_FLAGS", VOLLEY_RECORD_FLAGS as u64),
        ("RECORD_CODE", VOLLEY_RECORD_CODE as u64),
        ("RECORD_KEY", VOLLEY_RECORD_KEY as u64),
        ("RECORD_GENERATION", VOLLEY_RECORD_GENERATION as u64),
        ("RECORD_USER", VOLLEY_RECORD_USER as u64),
        ("RECORD_DATA_LEN", VOLLEY_RECORD_DATA_LEN as u64),
        ("RECORD_TOPIC_LEN", VOLLEY_RECORD_TOPIC_LEN as u64),
        ("RECORD_HEADER", VOLLEY_RECORD_HEADER as u64),
        ("RECORD_ALIGN", VOLLEY_RECORD_ALIGN as u64),
        ("PACKED_INLINE_MAX", VOLLEY_PACKED_INLINE_MAX as u64),
        ("PACKED_MIN_BUFFER", VOLLEY_PACKED_MIN_BUFFER as u64),
        (
            "PACKED_DATA_BY_ADDRESS",
            VOLLEY_PACKED_DATA_BY_ADDRESS.into(),
        ),
        (
            "PACKED_TOPIC_BY_ADDRESS",
            VOLLEY_PACKED_TOPIC_BY_ADDRESS.into(),
        ),
        ("EVENT_BINARY", VOLLEY_EVENT_BINARY.into()),
        ("EVENT_ACTIVE", VOLLEY_EVENT_ACTIVE.into()),
        ("EVENT_KIND_UPGRADE", K::Upgrade as u64),
        ("EVENT_KIND_REQUEST", K::Request as u64),
        ("EVENT_KIND_OPEN", K::Open as u64),
        ("EVENT_KIND_MESSAGE", K::Message as u64),
        ("EVENT_KIND_CLOSE", K::Close as u64),
        ("EVENT_KIND_DRAIN", K::Drain as u64),
        ("EVENT_KIND_PING", K::Ping as u64),
        ("EVENT_KIND_PONG", K::Pong as u64),
        ("EVENT_KIND_DROPPED", K::Dropped as u64),
        ("EVENT_KIND_TOPIC", K::Topic as u64),
        ("SEND_TEXT", VOLLEY_SEND_TEXT.into()),
        ("SEND_BINARY", VOLLEY_SEND_BINARY.into()),
        ("SEND_COMPRESS", VOLLEY_SEND_COMPRESS.into()),
        ("SEND_NO_COMPRESS", VOLLEY_SEND_NO_COMPRESS.into()),
        ("STOP_GRACEFUL", VOLLEY_STOP_GRACEFUL.into()),
        ("STOP_NOW", VOLLEY_STOP_NOW.into()),
        ("STOP_NO_WAIT", VOLLEY_STOP_NO_WAIT.into()),
        ("STOP_LISTEN_ONLY", VOLLEY_STOP_LISTEN_ONLY.into()),
        ("RESULT_OK", R::Ok as u64),
        ("RESULT_NULL_PARAMETER", R::NullParameter as u64),
        ("RESULT_INVALID_ARGUMENT", R::InvalidArgument as u64),
        ("RESULT_WRONG_THREAD", R::WrongThread as u64),
        ("RESULT_WRONG_MODE", R::WrongMode as u64),
        ("RESULT_ABI_MISMATCH", R::AbiMismatch as u64),
        ("RESULT_CLOSED", R::Closed as u64),
        ("RESULT_NOT_PENDING", R::NotPending as u64),
        ("RESULT_IO", R::Io as u64),
        ("RESULT_TLS", R::Tls as u64),
        ("RESULT_BUSY", R::Busy as u64),
        ("RESULT_STOPPED", R::Stopped as u64),
        ("RESULT_PANIC", R::Panic as u64),
    ]
}

/// The packed request's fields, in order, as `(name, "bytes" | "list")`.
fn request_fields() -> Vec<(&'static str, &'static str)> {
    use engine::queue::{REQUEST_FIELDS, RequestField};
    REQUEST_FIELDS
        .iter()
        .map(|&(name, kind)| {
            let kind = match kind {
                RequestField::Bytes => "bytes",
                RequestField::List => "list",
            };
            (name, kind)
        })
        .collect()
}

/// The fixed part of a record as `struct` letters (Python's `<BBHIQQII`),
/// from the offsets: each field runs to the next one.
fn record_format(c: &BTreeMap<&str, u64>) -> String {
    let mut at: Vec<u64> = [
        "RECORD_KIND",
        "RECORD_FLAGS",
        "RECORD_CODE",
        "RECORD_KEY",
        "RECORD_GENERATION",
        "RECORD_USER",
        "RECORD_DATA_LEN",
        "RECORD_TOPIC_LEN",
        "RECORD_HEADER",
    ]
    .iter()
    .map(|n| c[n])
    .collect();
    at.dedup();
    let mut f = String::from("<");
    for w in at.windows(2) {
        f.push(match w[1] - w[0] {
            1 => 'B',
            2 => 'H',
            4 => 'I',
            8 => 'Q',
            n => panic!("a {n}-byte record field"),
        });
    }
    f
}

const NOTE: &str = "Generated from the library's definitions (ffi/src/wire.rs, ffi/src/types.rs, \
ffi/src/error.rs, engine::queue::REQUEST_FIELDS) by ffi/tests/wire.rs; do not edit. \
`VOLLEY_BLESS=1 cargo test -p volley-ffi --test wire` rewrites it.";

fn node_file() -> String {
    let mut s = format!("// {NOTE}\n'use strict';\n\nmodule.exports = Object.freeze({{\n");
    for (k, v) in constants() {
        s += &format!("  {k}: {v},\n");
    }
    s += "  /** The packed request's fields in order: [name, 'bytes' | 'list']. */\n";
    s += "  REQUEST_FIELDS: Object.freeze([\n";
    for (k, v) in request_fields() {
        s += &format!("    Object.freeze(['{k}', '{v}']),\n");
    }
    s += "  ]),\n});\n";
    s
}

fn python_file() -> String {
    let c: BTreeMap<&str, u64> = constants().into_iter().collect();
    let mut s = format!("\"\"\"{NOTE}\"\"\"\n\n");
    for (k, v) in constants() {
        s += &format!("{k} = {v}\n");
    }
    s += &format!(
        "# The fixed part of a record, for struct.Struct.\nRECORD_FORMAT = \"{}\"\n",
        record_format(&c)
    );
    s += "# The packed request's fields in order: (name, \"bytes\" | \"list\").\nREQUEST_FIELDS = (\n";
    for (k, v) in request_fields() {
        s += &format!("    (\"{k}\", \"{v}\"),\n");
    }
    s += ")\n";
    s
}

/// A value as the header writes it: `16`, `(16 * 1024)`, `0x80`.
fn eval(v: &str) -> Option<u64> {
    let v = v.trim().trim_start_matches('(').trim_end_matches(')');
    let one = |t: &str| -> Option<u64> {
        let t = t.trim();
        match t.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => t.parse().ok(),
        }
    };
    v.split('*').map(one).try_fold(1u64, |a, b| Some(a * b?))
}

#[test]
fn every_wire_constant_in_the_header_is_in_the_bindings_files_with_its_value() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let h = std::fs::read_to_string(dir.join("../include/volley.h")).unwrap();
    let ours: BTreeMap<&str, u64> = constants().into_iter().collect();
    let prefixes = [
        "RECORD_",
        "PACKED_",
        "EVENT_",
        "SEND_",
        "STOP_",
        "RESULT_",
        "ABI_VERSION",
    ];
    let mut seen = 0;
    for line in h.lines() {
        let (name, value) = if let Some(d) = line.strip_prefix("#define VOLLEY_") {
            let Some((n, v)) = d.split_once(' ') else {
                continue;
            };
            (n, v)
        } else if let Some(e) = line.trim().strip_prefix("VOLLEY_") {
            let Some((n, v)) = e.split_once(" = ") else {
                continue;
            };
            (n, v.trim_end_matches(','))
        } else {
            continue;
        };
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let v = eval(value).unwrap_or_else(|| panic!("VOLLEY_{name}: {value:?}"));
        assert_eq!(
            ours.get(name),
            Some(&v),
            "VOLLEY_{name} = {v} in the header: the bindings' wire files must carry it"
        );
        seen += 1;
    }
    assert_eq!(
        seen,
        ours.len(),
        "the header and the bindings' wire files list the same constants"
    );
}

#[test]
fn the_bindings_wire_files_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        (dir.join("../bindings/node/lib/wire.cjs"), node_file()),
        (
            dir.join("../bindings/python/volley/_wire.py"),
            python_file(),
        ),
    ];
    for (path, fresh) in files {
        if std::env::var_os("VOLLEY_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == fresh,
            "{} is stale: run VOLLEY_BLESS=1 cargo test -p volley-ffi --test wire",
            path.display()
        );
    }
}
