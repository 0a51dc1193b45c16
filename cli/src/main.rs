//! `volley`: the demo server (`volley serve`).

mod serve;

use std::process::ExitCode;

const USAGE: &str = "\
volley — a WebSocket server engine

USAGE:
    volley serve [--host 127.0.0.1] [--port 9001] [--workers N]
        Demo server: GET / (a page that talks to /echo), /echo (echoes every
        message with its opcode), /health.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve::main(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("volley: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Parse `--name value` / `--name=value` flags into a lookup closure.
pub(crate) fn flags(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}"));
        };
        let (n, v) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match it.next() {
                Some(v) if !v.starts_with("--") => (name.to_string(), v.clone()),
                _ => return Err(format!("--{name} needs a value")),
            },
        };
        out.push((n, v));
    }
    Ok(out)
}
