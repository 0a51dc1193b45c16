//! `volley`: the demo server (`volley serve`).

mod bench;
mod serve;
mod tcp;

use std::process::ExitCode;

const SERVE_USAGE: &str = "\
    volley serve [--host 127.0.0.1] [--port 9001] [--workers N] [--reuse-port]
                 [--deflate[=shared|dedicated]] [--tls-cert cert.pem --tls-key key.pem]
                 [--pubsub-bridge redis://[:password@]HOST:PORT[/prefix]]
        Demo server: / (a page that talks to /echo), /echo (echoes every message
        with its opcode), /sub and /pub (topic t), /chat/:room, /events (SSE),
        /health, /stats (counters as JSON). The port is the server's alone
        (\"address in use\" if taken); --reuse-port shares it with other
        processes that ask for the same (SO_REUSEPORT).
";

const TCP_USAGE: &str = "\
    volley tcp-echo [--port 9001]
        Plain TCP echo: the baseline `volley bench tcp` measures against.
";

/// Does a subcommand's argument list ask for its usage?
pub(crate) fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "--help" || a == "-h")
}

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
    let usage = format!(
        "volley — a WebSocket server engine\n\nUSAGE:\n{SERVE_USAGE}\n    \
         volley bench echo|fanout|connect --url ws://HOST:PORT/PATH [options]\n        \
         Load generator for any WebSocket server (volley bench --help).\n\n{TCP_USAGE}"
    );
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        Some("serve") if wants_help(rest) => help(&format!("USAGE:\n{SERVE_USAGE}")),
        Some("bench") if wants_help(rest) => help(&format!("USAGE:\n{}", bench::USAGE)),
        Some("tcp-echo") if wants_help(rest) => help(&format!("USAGE:\n{TCP_USAGE}")),
        Some("serve") => serve::main(rest),
        Some("bench") => bench::main(rest),
        Some("tcp-echo") => tcp::serve(rest),
        Some("-h" | "--help" | "help") | None => help(&usage),
        Some(other) => {
            eprintln!("volley: unknown command {other:?}\n\n{usage}");
            ExitCode::from(2)
        }
    }
}

fn help(text: &str) -> ExitCode {
    print!("{text}");
    ExitCode::SUCCESS
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
