//! The Rust API against a raw client: upgrade hook, deferred answers,
//! subprotocols, close paths, timers, backpressure and drain.

mod common;

use common::Client;
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};
use volley::proto::frame::OpCode;
use volley::{
    Accept, Fetch, Handler, Message, Options, Request, Response, SendStatus, Server, Upgrade,
    WebSocket,
};

#[derive(Debug, Default, Clone)]
struct Data {
    room: String,
    user: String,
    count: usize,
}

/// Records events; upgrade behaviour chosen by path.
struct App {
    events: Mutex<Sender<String>>,
}

impl App {
    fn ev(&self, s: String) {
        let _ = self.events.lock().unwrap().send(s);
    }
}

impl Handler for App {
    type Data = Data;

    fn upgrade(&self, req: &Request<'_>) -> Upgrade<Data> {
        match req.route() {
            Some("/room/:room_id") => {
                let Some(user) = req.query().strip_prefix("token=") else {
                    return Upgrade::reject(401, "missing token\n");
                };
                let data = Data {
                    room: req.param("room_id").unwrap().to_string(),
                    user: user.to_string(),
                    count: 0,
                };
                let mut a = Accept::new(data).header("X-Room", req.param("room_id").unwrap());
                if req.protocols().any(|p| p == "chat.v2") {
                    a = a.protocol("chat.v2");
                }
                Upgrade::Accept(a)
            }
            Some("/deferred/:verdict") => {
                let verdict = req.param("verdict").unwrap().to_string();
                Upgrade::defer(move |pending| {
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        match verdict.as_str() {
                            "yes" => pending.accept(Accept::new(Data {
                                user: "late".into(),
                                ..Data::default()
                            })),
                            "no" => pending.reject(Response::new(403, "denied after lookup\n")),
                            "drop" => drop(pending),
                            _ => std::thread::sleep(Duration::from_secs(2)), // never in time
                        }
                    });
                })
            }
            Some("/panic") => panic!("upgrade hook bug (expected by a test)"),
            _ => Upgrade::accept(Data::default()),
        }
    }

    fn open(&self, ws: &mut WebSocket<'_, Data>) {
        let d = ws.data().clone();
        self.ev(format!("open {} {} {:?}", d.room, d.user, ws.ready_state()));
        assert!(ws.remote_address().unwrap().ip().is_loopback());
        if !d.user.is_empty() {
            ws.send_text(&format!("welcome {}", d.user));
        }
    }

    fn message(&self, ws: &mut WebSocket<'_, Data>, msg: Message<'_>) {
        ws.data_mut().count += 1;
        match msg {
            Message::Text("close-me") => ws.close(4000, "as you wish"),
            Message::Text("terminate") => ws.terminate(),
            Message::Text("panic") => panic!("handler bug (expected by a test)"),
            Message::Text("busy") => {
                // Hold the worker (a slow handler) for a while.
                std::thread::sleep(Duration::from_millis(300));
                ws.send_text("was busy");
            }
            Message::Text("count") => {
                let n = ws.data().count;
                ws.send_text(&n.to_string());
            }
            Message::Text("flood") => {
                // Queue 1 MiB messages until the limit pushes back.
                let chunk = vec![b'x'; 1 << 20];
                let mut statuses = Vec::new();
                for _ in 0..64 {
                    let s = ws.send_binary(&chunk);
                    statuses.push(s);
                    if s == SendStatus::Dropped {
                        break;
                    }
                }
                self.ev(format!(
                    "flood {statuses:?} buffered={}",
                    ws.buffered_amount()
                ));
            }
            Message::Text("pause") => {
                ws.pause_reading();
                assert!(ws.is_paused());
                let h = ws.handle();
                // Resumed from another thread, 300 ms later.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    assert!(h.resume_reading());
                });
                self.ev("paused".into());
            }
            m => {
                ws.send(m);
            }
        }
    }

    fn close(&self, ws: &mut WebSocket<'_, Data>, code: u16, reason: &str) {
        assert_eq!(ws.send_text("too late"), SendStatus::Dropped);
        self.ev(format!("close {code} {reason}"));
    }

    fn drain(&self, _ws: &mut WebSocket<'_, Data>) {
        self.ev("drain".into());
    }

    fn ping(&self, _ws: &mut WebSocket<'_, Data>, data: &[u8]) {
        self.ev(format!("ping {}", String::from_utf8_lossy(data)));
    }

    fn pong(&self, _ws: &mut WebSocket<'_, Data>, data: &[u8]) {
        self.ev(format!("pong {}", String::from_utf8_lossy(data)));
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        (req.path() == "/hello")
            .then(|| {
                Response::new(200, format!("hi {}", req.header("x-name").unwrap_or("?")))
                    .header("X-Served-By", "volley")
            })
            .into()
    }
}

fn start(opts: Options) -> (Server, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = channel();
    let s = Server::builder()
        .options(opts)
        .route("/room/:room_id")
        .route("/deferred/:verdict")
        .route("/echo")
        .route("/hello")
        .route("/panic")
        .serve(App {
            events: Mutex::new(tx),
        })
        .unwrap();
    (s, rx)
}

/// Wait (bounded) for an event, skipping others.
fn wait_for(rx: &std::sync::mpsc::Receiver<String>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) if e == want => return,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no {want:?} event within 5 s");
}

fn next(rx: &std::sync::mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(5)).expect("event")
}

#[test]
fn upgrade_sees_route_params_query_and_chooses_protocol() {
    let (s, rx) = start(Options::default());
    let (mut c, head) = Client::connect_with(
        s.local_addr(),
        "/room/lobby?token=ann",
        "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n",
    );
    assert!(
        head.contains("Sec-WebSocket-Protocol: chat.v2\r\n"),
        "{head}"
    );
    assert!(head.contains("X-Room: lobby\r\n"), "{head}");
    assert_eq!(next(&rx), "open lobby ann Open");
    assert_eq!(c.read_frame().unwrap().payload, b"welcome ann");
    c.text("a");
    c.text("count");
    assert_eq!(c.read_frame().unwrap().payload, b"a");
    assert_eq!(c.read_frame().unwrap().payload, b"2");
}

#[test]
fn offered_protocol_is_never_echoed_by_default() {
    let (s, _rx) = start(Options::default());
    let (_c, head) =
        Client::connect_with(s.local_addr(), "/echo", "Sec-WebSocket-Protocol: x, y\r\n");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
}

#[test]
fn upgrade_rejects_with_status_and_body() {
    let (s, _rx) = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(common::upgrade_request("/room/lobby", "").as_bytes());
    let out = c.read_http_response();
    assert!(out.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{out}");
    assert!(out.ends_with("missing token\n"));
}

#[test]
fn deferred_upgrade_accepts_rejects_and_times_out() {
    let opts = Options {
        handshake_timeout: Duration::from_millis(400),
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let addr = s.local_addr();
    let mut yes = Client::connect(addr, "/deferred/yes");
    assert_eq!(next(&rx), "open  late Open");
    assert_eq!(yes.read_frame().unwrap().payload, b"welcome late");

    let mut no = Client::raw(addr);
    no.write(common::upgrade_request("/deferred/no", "").as_bytes());
    assert!(no.read_http_response().starts_with("HTTP/1.1 403 "));

    let mut dropped = Client::raw(addr);
    dropped.write(common::upgrade_request("/deferred/drop", "").as_bytes());
    assert!(dropped.read_http_response().starts_with("HTTP/1.1 500 "));

    let t = Instant::now();
    let mut slow = Client::raw(addr);
    slow.write(common::upgrade_request("/deferred/slow", "").as_bytes());
    assert!(slow.read_http_response().starts_with("HTTP/1.1 503 "));
    assert!(t.elapsed() < Duration::from_secs(2));
    // The accepted one still works.
    yes.text("still here");
    assert_eq!(yes.read_frame().unwrap().payload, b"still here");
}

#[test]
fn fetch_answers_plain_http() {
    let (s, _rx) = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Name: bob\r\n\r\n");
    let out = c.read_http_response();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("X-Served-By: volley\r\n"));
    assert!(out.ends_with("\r\n\r\nhi bob"));
}

#[test]
fn client_close_code_and_reason_reach_the_handler() {
    let (s, rx) = start(Options::default());
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    let mut p = 4321u16.to_be_bytes().to_vec();
    p.extend_from_slice("ciao ✓".as_bytes());
    c.frame(true, OpCode::Close, &p);
    assert_eq!(c.expect_close(4321), "");
    assert_eq!(next(&rx), "close 4321 ciao ✓");
}

#[test]
fn server_close_waits_for_the_echo() {
    let (s, rx) = start(Options::default());
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    c.text("close-me");
    let f = c.read_frame().unwrap();
    assert_eq!(f.opcode, OpCode::Close);
    assert_eq!(&f.payload[..2], &4000u16.to_be_bytes());
    assert_eq!(&f.payload[2..], b"as you wish");
    // Data sent after the server's close is dropped, not echoed.
    c.text("ignored");
    c.frame(true, OpCode::Close, &f.payload[..2]);
    c.expect_eof();
    assert_eq!(next(&rx), "close 4000 ");
}

#[test]
fn close_timeout_drops_a_peer_that_never_answers() {
    let opts = Options {
        close_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    let t = Instant::now();
    c.text("close-me");
    assert_eq!(c.read_frame().unwrap().opcode, OpCode::Close);
    c.expect_eof();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(next(&rx), "close 1006 ");
}

#[test]
fn eof_and_terminate_report_1006() {
    let (s, rx) = start(Options::default());
    let c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    drop(c);
    assert_eq!(next(&rx), "close 1006 ");
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    c.text("terminate");
    c.expect_eof();
    assert_eq!(next(&rx), "close 1006 ");
}

#[test]
fn ping_gets_its_pong_and_reaches_the_handler() {
    let (s, rx) = start(Options::default());
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    c.frame(true, OpCode::Ping, b"are you there");
    let f = c.read_frame().unwrap();
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (OpCode::Pong, &b"are you there"[..])
    );
    assert_eq!(next(&rx), "ping are you there");
    c.frame(true, OpCode::Pong, b"unsolicited");
    assert_eq!(next(&rx), "pong unsolicited");
}

#[test]
fn idle_without_pings_closes_at_idle_timeout() {
    let opts = Options {
        idle_timeout: Duration::from_millis(300),
        send_pings: false,
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    let t = Instant::now();
    c.expect_close(1001);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(280) && e < Duration::from_secs(2),
        "{e:?}"
    );
    assert_eq!(next(&rx), "close 1006 idle timeout");
}

#[test]
fn idle_peer_is_pinged_and_kept_when_it_answers() {
    let opts = Options {
        idle_timeout: Duration::from_millis(200),
        pong_timeout: Duration::from_millis(200),
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    // Answer three pings: the connection stays open well past idle + pong timeouts.
    for _ in 0..3 {
        let f = c.read_frame().unwrap();
        assert_eq!(f.opcode, OpCode::Ping);
        c.frame(true, OpCode::Pong, &f.payload);
    }
    c.text("alive");
    assert_eq!(c.read_frame().unwrap().payload, b"alive");
    // Now stay silent: ping, then close after the pong timeout.
    assert_eq!(c.read_frame().unwrap().opcode, OpCode::Ping);
    c.expect_close(1001);
    wait_for(&rx, "close 1006 idle timeout");
}

#[test]
fn idle_counts_only_inbound_silence() {
    // Outbound traffic (here the server's own pings, sent every 100 ms) never
    // resets the idle timer: a peer that sends nothing is closed at 300 ms.
    let opts = Options {
        idle_timeout: Duration::from_millis(300),
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout: Duration::from_secs(10),
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    // Pings arrive every 100 ms; the client ignores them and the server keeps
    // writing, yet the connection is closed at the 300 ms idle limit.
    let t = Instant::now();
    let mut pings = 0;
    loop {
        let f = c.read_frame().expect("frame");
        match f.opcode {
            OpCode::Ping => pings += 1,
            OpCode::Close => break,
            op => panic!("unexpected {op:?}"),
        }
    }
    c.expect_eof();
    assert!(pings >= 1, "pinged");
    assert!(t.elapsed() < Duration::from_secs(2));
    wait_for(&rx, "close 1006 idle timeout");
}

#[test]
fn max_lifetime_closes_with_1001() {
    let opts = Options {
        max_lifetime: Some(Duration::from_millis(200)),
        ..Options::default()
    };
    let (s, _rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    let f = loop {
        let f = c.read_frame().unwrap();
        if f.opcode == OpCode::Close {
            break f;
        }
    };
    assert_eq!(&f.payload[..2], &1001u16.to_be_bytes());
    c.frame(true, OpCode::Close, &f.payload[..2]);
    c.expect_eof();
}

#[test]
fn slowloris_is_dropped_at_handshake_timeout() {
    let opts = Options {
        handshake_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let (s, _rx) = start(opts);
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n");
    let t = Instant::now();
    c.expect_eof();
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(2));
    assert_eq!(s.connections(), 0);
}

#[test]
fn backpressure_then_dropped_then_drain() {
    let opts = Options {
        backpressure_limit: 8 << 20,
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    // Ask for floods without reading until the socket is full and a flood
    // sees the backlog: its sends report Backpressure, then Dropped.
    let mut saw_backpressure = false;
    for _ in 0..20 {
        c.text("flood");
        let ev = next(&rx);
        assert!(
            ev.contains("Dropped"),
            "every flood ends at the limit: {ev}"
        );
        let buffered: usize = ev.rsplit('=').next().unwrap().parse().unwrap();
        assert!(buffered <= 8 << 20, "never queues past the limit: {ev}");
        if ev.contains("Backpressure") {
            saw_backpressure = true;
            break;
        }
    }
    assert!(saw_backpressure, "a full socket reports backpressure");
    // Reading everything lets the queue empty: drain fires.
    c.text("after drain");
    loop {
        let f = c.read_frame().unwrap();
        if f.payload == b"after drain" {
            break;
        }
    }
    wait_for(&rx, "drain");
}

#[test]
fn paused_reading_holds_pipelined_messages_until_resumed() {
    let (s, rx) = start(Options::default());
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    // Three messages in one write: the first pauses reading.
    let mut burst = Client::raw_frames(&["pause", "one", "two"]);
    c.write(&std::mem::take(&mut burst));
    assert_eq!(next(&rx), "paused");
    let t = Instant::now();
    c.sock
        .set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    assert!(
        c.try_read_frame().is_none(),
        "a message was read while paused"
    );
    c.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(c.read_frame().unwrap().payload, b"one");
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "delivered before the resume ({:?})",
        t.elapsed()
    );
    assert_eq!(c.read_frame().unwrap().payload, b"two");
}

/// `stop()` on another thread: the open WebSocket gets 1001, answers it,
/// and the stop returns.
fn stop_expecting_1001(s: Server, mut c: Client) {
    let t = std::thread::spawn(move || s.stop());
    let f = c.read_frame().unwrap();
    assert_eq!(f.opcode, OpCode::Close);
    assert_eq!(&f.payload[..2], &1001u16.to_be_bytes());
    c.frame(true, OpCode::Close, &f.payload[..2]);
    c.expect_eof();
    t.join().unwrap();
}

#[test]
fn stop_closes_open_sockets_with_1001() {
    let (s, _rx) = start(Options::default());
    let c = Client::connect(s.local_addr(), "/echo");
    stop_expecting_1001(s, c);
}

#[test]
fn stop_listening_refuses_new_connections_and_lets_open_ones_finish() {
    let (s, _rx) = start(Options {
        workers: 1,
        ..Options::default()
    });
    let addr = s.local_addr();
    let mut c = Client::connect(addr, "/echo");
    // With the worker held in a handler, the stop cannot act at once: it
    // returns only once no worker accepts, so a connection made right after
    // is refused (the kernel would otherwise still complete it).
    c.text("busy");
    std::thread::sleep(Duration::from_millis(50));
    s.stop_listening();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "accepted after stop_listening returned"
    );
    assert_eq!(c.read_frame().unwrap().payload, b"was busy");
    // The open WebSocket is not closed: it carries on as before.
    c.text("still here");
    assert_eq!(c.read_frame().unwrap().payload, b"still here");
    let s = std::sync::Arc::new(s);
    let joiner = {
        let s = s.clone();
        std::thread::spawn(move || s.join())
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !joiner.is_finished(),
        "the server ended with a connection open"
    );
    c.text("and here");
    assert_eq!(c.read_frame().unwrap().payload, b"and here");
    // When the last connection ends, the workers exit and join returns.
    c.frame(true, OpCode::Close, &1000u16.to_be_bytes());
    c.expect_close(1000);
    drop(c);
    let t = Instant::now();
    while !joiner.is_finished() {
        assert!(t.elapsed() < Duration::from_secs(2), "join still waits");
        std::thread::sleep(Duration::from_millis(10));
    }
    joiner.join().unwrap();
}

#[test]
fn stop_listening_closes_idle_keep_alive_connections_at_once() {
    let (s, _rx) = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.read_http_response().starts_with("HTTP/1.1 200 OK\r\n"));
    // The connection is kept alive, idle: it does not hold the stop until
    // the handshake timeout (10 s).
    let t = Instant::now();
    s.stop_listening();
    c.expect_eof();
    s.join();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn stop_after_stop_listening_closes_what_is_left_with_1001() {
    let (s, _rx) = start(Options::default());
    let c = Client::connect(s.local_addr(), "/echo");
    s.stop_listening();
    stop_expecting_1001(s, c);
}

#[test]
fn a_panicking_handler_closes_only_its_connection_with_1011() {
    let (s, rx) = start(Options::default());
    let mut canary = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    c.text("panic");
    c.expect_close(1011);
    wait_for(&rx, "close 1011 internal error");
    let mut bad = Client::raw(s.local_addr());
    bad.write(common::upgrade_request("/panic", "").as_bytes());
    assert!(bad.read_http_response().starts_with("HTTP/1.1 500 "));
    canary.text("still fine");
    assert_eq!(canary.read_frame().unwrap().payload, b"still fine");
}

#[test]
fn the_default_pings_at_half_the_idle_timeout_and_closes_at_it() {
    // Bun's keep-alive: idle 600 ms, a ping after ~300 ms of silence; a
    // peer that answers stays; one that stays silent is closed at ~600 ms
    // of silence (not at idle + pong timeout).
    let opts = Options {
        idle_timeout: Duration::from_millis(600),
        ..Options::default()
    };
    let (s, rx) = start(opts);
    let mut c = Client::connect(s.local_addr(), "/echo");
    next(&rx);
    let t = Instant::now();
    let f = c.read_frame().unwrap();
    assert_eq!(f.opcode, OpCode::Ping);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(250) && e < Duration::from_millis(500),
        "first ping after {e:?}"
    );
    c.frame(true, OpCode::Pong, &f.payload);
    // Answered: the next ping comes, and no close.
    let f = c.read_frame().unwrap();
    assert_eq!(f.opcode, OpCode::Ping);
    // Silent from here: closed at the idle timeout after the last read.
    let t = Instant::now();
    c.expect_close(1001);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(200) && e < Duration::from_millis(600),
        "closed {e:?} after the unanswered ping"
    );
    wait_for(&rx, "close 1006 idle timeout");
}

#[test]
fn a_peer_that_never_reads_is_dropped_after_send_timeout() {
    // An echo to a client that sends and never reads: the server's queue
    // stops moving once the socket buffers are full, and after
    // `send_timeout` without progress the connection is dropped (a
    // half-open peer looks the same). Before, it was held for ever.
    let s = Server::builder()
        .options(Options {
            send_timeout: Duration::from_millis(500),
            backpressure_limit: 64 << 20,
            ..Options::default()
        })
        .serve(common::Echo)
        .unwrap();
    let c = Client::connect(s.local_addr(), "/");
    let mut w = c.sock.try_clone().unwrap();
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || {
        let frame = Client::raw_frames(&[&"x".repeat(60_000)]);
        while t0.elapsed() < Duration::from_secs(20) {
            if std::io::Write::write_all(&mut w, &frame).is_err() {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    });
    let dropped = writer.join().unwrap();
    assert!(
        dropped.is_some(),
        "the server kept a peer that never reads for 20 s"
    );
    let t = Instant::now();
    while s.connections() > 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "still counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(c);
}

#[test]
fn the_port_is_exclusive_unless_reuse_port_is_asked_for() {
    let opts = |reuse_port| Options {
        workers: 2,
        reuse_port,
        ..Options::default()
    };
    let serve = |addr: String, reuse_port| {
        Server::builder()
            .bind(addr)
            .options(opts(reuse_port))
            .serve(common::Echo)
    };
    // Default: a second server on the port fails, with or without reuse_port.
    let a = serve("127.0.0.1:0".into(), false).unwrap();
    let port = a.local_addr().port();
    for reuse in [false, true] {
        let e = serve(format!("127.0.0.1:{port}"), reuse).unwrap_err();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::AddrInUse,
            "reuse_port {reuse}: {e}"
        );
    }
    // Both workers of the one server serve (the shared listener wakes each).
    let mut clients: Vec<Client> = (0..8)
        .map(|_| Client::connect(a.local_addr(), "/"))
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.text(&format!("m{i}"));
        assert_eq!(c.read_frame().unwrap().payload, format!("m{i}").as_bytes());
    }
    drop(clients);
    drop(a);
    // reuse_port on both: they share the port; an exclusive one cannot join.
    let b = serve("127.0.0.1:0".into(), true).unwrap();
    let port = b.local_addr().port();
    let c = serve(format!("127.0.0.1:{port}"), true).unwrap();
    let e = serve(format!("127.0.0.1:{port}"), false).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    drop((b, c));
}

/// Records opens (with the id) and drains.
struct DrainSpy(Mutex<Sender<(String, volley::ConnId)>>);

impl Handler for DrainSpy {
    type Data = ();
    fn upgrade(&self, _r: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn open(&self, ws: &mut WebSocket<'_, ()>) {
        let _ = self.0.lock().unwrap().send(("open".into(), ws.id()));
    }
    fn drain(&self, ws: &mut WebSocket<'_, ()>) {
        let _ = self.0.lock().unwrap().send(("drain".into(), ws.id()));
    }
}

#[test]
fn a_full_mailbox_is_not_a_close_control_traffic_has_a_reserve_and_a_drain_follows_a_0() {
    // Sends from another thread, corked so the worker is not woken: the
    // 64 KiB mailbox fills and a send gets 0 (dropped) on an open
    // connection. Then a subscription (control traffic) is still taken
    // (it has a reserve of its own; it used to be refused), and after the
    // uncork a drain follows the 0 (Bun's contract: the host that waits
    // for it is not left waiting).
    let (tx, rx) = channel();
    let s = Server::builder()
        .options(Options {
            mailbox_bytes: 64 * 1024,
            workers: 1,
            ..Options::default()
        })
        .serve(DrainSpy(Mutex::new(tx)))
        .unwrap();
    let h = s.handle();
    let mut c = Client::connect(s.local_addr(), "/");
    let (what, id) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(what, "open");
    h.cork();
    let chunk = vec![7u8; 8 * 1024];
    let mut sent = 0;
    let mut sent_small = 0;
    let refused = loop {
        match h.send(id, Message::Binary(&chunk), None) {
            SendStatus::Dropped => break true,
            _ => sent += 1,
        }
        if sent > 100 {
            break false;
        }
    };
    assert!(refused, "the mailbox never filled");
    // To the brim: 1-byte sends until one is refused too.
    while h.send(id, Message::Binary(&[1]), None) != SendStatus::Dropped {
        sent_small += 1;
        assert!(sent_small < 100_000, "tiny sends never filled the mailbox");
    }
    assert!(
        h.ws(id).subscribe("t"),
        "a subscription was refused for data sends"
    );
    h.uncork();
    let t0 = Instant::now();
    loop {
        let (what, got) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("no drain after the 0");
        if what == "drain" {
            assert_eq!(got, id);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
    // Everything accepted arrived, in order, and the connection is open.
    for _ in 0..sent {
        assert_eq!(c.read_frame().unwrap().payload.len(), chunk.len());
    }
    for _ in 0..sent_small {
        assert_eq!(c.read_frame().unwrap().payload, [1]);
    }
    assert_eq!(h.ws(id).ready_state(), volley::ReadyState::Open);
    assert_eq!(s.handle().subscriber_count("t"), 1);
}
