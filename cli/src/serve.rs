//! `volley serve`: the demo server on the embedded defaults.
//!
//! Endpoints (also the convention `benches/compare` drives every server by):
//! - `GET /echo`: echoes every message with its opcode.
//! - `GET /sub`: subscribes to topic `t`; whatever it sends is published to `t`.
//! - `GET /pub`: publishes whatever it sends to `t`, without subscribing.
//! - `GET /chat/:room`: every message is published to the room (others get it).
//! - `GET /events` with `Accept: text/event-stream`: Server-Sent Events of
//!   topic `t` and of `events`.
//! - `GET /` a page that talks to `/echo`; `GET /health` answers `ok`;
//!   `GET /stats` the server's counters as JSON.
//!
//! `--pubsub-bridge redis://HOST:PORT[/prefix]` carries the topics across
//! every process bridged to the same Redis.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use volley::{
    Deflate, DeflateMode, Fetch, Handler, Message, Options, Request, Response, SendStatus, Server,
    ServerHandle, Stats, Upgrade, WebSocket,
};

const PAGE: &str = include_str!("page.html");

/// Which endpoint a connection came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Echo,
    Sub,
    Pub,
    Chat(String),
}

struct Demo {
    /// Set once the server runs, for `/stats`.
    server: Arc<OnceLock<ServerHandle>>,
}

impl Handler for Demo {
    type Data = Route;

    fn upgrade(&self, req: &Request<'_>) -> Upgrade<Route> {
        let route = match req.route() {
            Some("/sub") => Route::Sub,
            Some("/pub") => Route::Pub,
            Some("/chat/:room") => Route::Chat(format!("chat/{}", req.param("room").unwrap_or(""))),
            _ => Route::Echo,
        };
        Upgrade::accept(route)
    }

    fn open(&self, ws: &mut WebSocket<'_, Route>) {
        match ws.data().clone() {
            Route::Sub => {
                ws.subscribe("t");
            }
            Route::Chat(room) => {
                ws.subscribe(&room);
            }
            _ => {}
        }
    }

    fn message(&self, ws: &mut WebSocket<'_, Route>, msg: Message<'_>) {
        match ws.data() {
            Route::Echo => {
                // A client that sends faster than it reads is slowed down,
                // not dropped from: stop reading it until its echoes drain.
                if ws.send(msg) == SendStatus::Backpressure {
                    ws.pause_reading();
                }
            }
            Route::Sub | Route::Pub => {
                ws.publish("t", msg);
            }
            Route::Chat(room) => {
                let room = room.clone();
                ws.publish(room, msg);
            }
        }
    }

    fn drain(&self, ws: &mut WebSocket<'_, Route>) {
        ws.resume_reading();
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        match req.path() {
            "/" => Response::new(200, PAGE)
                .header("Content-Type", "text/html; charset=utf-8")
                .into(),
            "/health" => Response::new(200, "ok\n").into(),
            "/stats" => match self.server.get() {
                Some(s) => Response::new(200, stats_json(s.stats()))
                    .header("Content-Type", "application/json")
                    .into(),
                None => Response::new(503, "starting\n").into(),
            },
            "/events" if req.wants_event_stream() => Response::event_stream(["t", "events"]).into(),
            _ => Fetch::Pass,
        }
    }
}

/// The counters as one JSON object.
fn stats_json(s: &Stats) -> String {
    let fields = [
        ("connections", s.connections.load(Ordering::Relaxed) as u64),
        ("opened", s.opened.load(Ordering::Relaxed)),
        ("messages_in", s.messages_in.load(Ordering::Relaxed)),
        ("publishes", s.publishes.load(Ordering::Relaxed)),
        ("delivered", s.delivered.load(Ordering::Relaxed)),
        ("dropped", s.dropped.load(Ordering::Relaxed)),
        ("bytes_out", s.bytes_out.load(Ordering::Relaxed)),
        ("bridged_out", s.bridged_out.load(Ordering::Relaxed)),
        ("bridged_in", s.bridged_in.load(Ordering::Relaxed)),
        ("bridge_lost", s.bridge_lost.load(Ordering::Relaxed)),
    ];
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}\n", body.join(","))
}

pub fn main(args: &[String]) -> ExitCode {
    let flags = match crate::flags_with_switches(args, &["deflate", "reuse-port"]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("volley serve: {e}");
            return ExitCode::from(2);
        }
    };
    let mut host = "127.0.0.1".to_string();
    let mut port = "9001".to_string();
    let mut opts = Options::default();
    let (mut cert, mut key) = (None, None);
    for (n, v) in flags {
        match n.as_str() {
            "host" => host = v,
            "port" => port = v,
            "workers" => match v.parse() {
                Ok(w) => opts.workers = w,
                Err(_) => {
                    eprintln!("volley serve: --workers takes a number");
                    return ExitCode::from(2);
                }
            },
            "reuse-port" => opts.reuse_port = true,
            "tls-cert" => cert = Some(v),
            "pubsub-bridge" => opts.pubsub_bridge = Some(v),
            "tls-key" => key = Some(v),
            "deflate" => {
                let mode = match v.as_str() {
                    "" | "shared" => DeflateMode::Shared,
                    "dedicated" => DeflateMode::Dedicated,
                    _ => {
                        eprintln!("volley serve: --deflate takes shared or dedicated");
                        return ExitCode::from(2);
                    }
                };
                // The bench convention: every outgoing message compressed.
                opts.per_message_deflate = Some(Deflate {
                    compress: mode,
                    decompress: mode,
                    threshold: 0,
                    ..Deflate::default()
                });
            }
            other => {
                eprintln!("volley serve: unknown option --{other}");
                return ExitCode::from(2);
            }
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => match volley::tls::server_config_from_files(&c, &k) {
            Ok(cfg) => opts.tls = Some(cfg),
            Err(e) => {
                eprintln!("volley serve: TLS: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => {}
        _ => {
            eprintln!("volley serve: --tls-cert and --tls-key go together");
            return ExitCode::from(2);
        }
    }
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let handle = Arc::new(OnceLock::new());
    let server = match Server::builder()
        .bind(addr)
        .options(opts)
        .route("/echo")
        .route("/sub")
        .route("/pub")
        .route("/chat/:room")
        .route("/events")
        .serve(Demo {
            server: handle.clone(),
        }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("volley serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = handle.set(server.handle());
    let a = server.local_addr();
    let ws = if scheme == "https" { "wss" } else { "ws" };
    println!("volley: listening on {scheme}://{a}/ (WebSocket echo at {ws}://{a}/echo)");
    server.join();
    ExitCode::SUCCESS
}
