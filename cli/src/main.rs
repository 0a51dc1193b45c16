//! `volley`: the demo server (`volley serve`).

mod bench;
mod serve;
mod tcp;

use std::process::ExitCode;

const USAGE: &str = "\
volley — a WebSocket server engine

USAGE:
    volley serve [--host 127.0.0.1] [--port 9001] [--workers N] [--deflate[=shared|dedicated]]
                 [--tls-cert cert.pem --tls-key key.pem]
                 [--pubsub-bridge redis://[:password@]HOST:PORT[/prefix]]
        Demo server: / (a page that talks to /echo), /echo (echoes every message
        with its opcode), /sub and /pub (topic t), /chat/:room, /events (SSE),
        /health, /stats (counters as JSON).

    volley bench echo|fanout|connect --url ws://HOST:PORT/PATH [options]
        Load generator for any WebSocket server (volley bench --help).

    volley tcp-echo [--port 9001]
        Plain TCP echo: the baseline `volley bench tcp` measures against.
";

/// The engine's log lines on stderr: warnings and errors, or the level
/// `VOLLEY_LOG` names (error, warn, info, debug, trace).
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {}", r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    let level = std::env::var("VOLLEY_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Warn);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        Some("tcp-echo") => tcp::serve(&args[1..]),
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

/// Parse `--name value` / `--name=value` flags.
pub(crate) fn flags(args: &[String]) -> Result<Vec<(String, String)>, String> {
    flags_with_switches(args, &[])
}

/// Parse flags; names in `switches` take no value.
pub(crate) fn flags_with_switches(
    args: &[String],
    switches: &[&str],
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}"));
        };
        let (n, v) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None if switches.contains(&name) => (name.to_string(), String::new()),
            None => match it.next() {
                Some(v) if !v.starts_with("--") => (name.to_string(), v.clone()),
                _ => return Err(format!("--{name} needs a value")),
            },
        };
        out.push((n, v));
    }
    Ok(out)
}
