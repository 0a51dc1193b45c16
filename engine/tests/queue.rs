//! Event-queue mode: a host thread drains events and answers by id.

mod common;

use common::Client;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use volley::proto::frame::OpCode;
use volley::queue::{Event, EventQueue};
use volley::{Accept, Message, Options, Response, Server, ServerHandle};

/// A host loop: accept upgrades on `/ws` (user value 7) and `/late` (8: a
/// slow `open` that subscribes to `late` and says hello), reject others
/// with 403, echo messages, answer requests with their body; counts drains.
fn host(server: ServerHandle, mut q: EventQueue, stop: Arc<AtomicBool>, slow: Duration) -> usize {
    let mut events = 0;
    while !stop.load(Ordering::Relaxed) || !q.is_finished() {
        if !q.wait(Some(Duration::from_millis(20))) {
            if stop.load(Ordering::Relaxed) && q.is_finished() {
                break;
            }
            continue;
        }
        std::thread::sleep(slow);
        server.cork();
        for ev in q.drain() {
            events += 1;
            match ev {
                Event::Upgrade { id, request } => {
                    if request.path() == "/ws" {
                        assert!(
                            server.accept_upgrade(id, Accept::new(7u64).header("X-Host", "queue"))
                        );
                    } else if request.path() == "/late" {
                        assert!(server.accept_upgrade(id, Accept::new(8u64)));
                    } else {
                        server.reject_upgrade(id, Response::new(403, "no\n"));
                    }
                }
                Event::Request { id, request } => {
                    let body = [request.method().as_bytes(), b" ", request.body()].concat();
                    server.respond(id, Response::new(200, body));
                }
                Event::Message {
                    id,
                    user,
                    data,
                    binary,
                } => {
                    assert_eq!(user, 7);
                    let ws = server.ws(id);
                    if binary {
                        ws.send(Message::Binary(data));
                    } else {
                        ws.send(Message::Text(std::str::from_utf8(data).unwrap()));
                    }
                }
                Event::Open { id, user: 8 } => {
                    std::thread::sleep(Duration::from_millis(150));
                    let ws = server.ws(id);
                    assert!(ws.subscribe("late"));
                    ws.send(Message::Text("hello"));
                }
                _ => {}
            }
        }
        server.uncork();
    }
    events
}

fn start(
    opts: Options,
    slow: Duration,
) -> (Server, Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let (s, q) = Server::builder().options(opts).serve_queue().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let h = s.handle();
    let st = stop.clone();
    let t = std::thread::spawn(move || host(h, q, st, slow));
    (s, stop, t)
}

#[test]
fn upgrade_echo_and_http_through_the_host() {
    let (s, stop, t) = start(Options::default(), Duration::ZERO);
    let (mut c, head) = Client::connect_with(s.local_addr(), "/ws", "");
    assert!(head.contains("X-Host: queue\r\n"), "{head}");
    for i in 0..100 {
        c.text(&format!("m{i}"));
    }
    for i in 0..100 {
        assert_eq!(c.read_frame().unwrap().payload, format!("m{i}").as_bytes());
    }
    let mut r = Client::raw(s.local_addr());
    r.write(common::upgrade_request("/other", "").as_bytes());
    assert!(r.read_http_response().starts_with("HTTP/1.1 403 "));
    let mut h = Client::raw(s.local_addr());
    h.write(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    assert!(h.read_http_response().ends_with("POST abc"));
    drop((r, h));
    stop.store(true, Ordering::Relaxed);
    let st = std::thread::spawn(move || s.stop());
    let f = c.read_frame().unwrap();
    assert_eq!(f.opcode, OpCode::Close);
    c.frame(true, OpCode::Close, &f.payload[..2]);
    c.expect_eof();
    drop(c);
    st.join().unwrap();
    // Upgrade, open, 100 messages, the refused upgrade, the request, close.
    assert!(t.join().unwrap() >= 105);
}

#[test]
fn a_slow_host_throttles_reading_and_loses_nothing() {
    // The host sleeps 20 ms per drain and may hold 256 KiB of events: the
    // workers stop reading in between, and every message comes back.
    let (s, stop, t) = start(
        Options {
            queue_bytes: 256 * 1024,
            workers: 1,
            ..Options::default()
        },
        Duration::from_millis(20),
    );
    let (mut c, _) = Client::connect_with(s.local_addr(), "/ws", "");
    let mut w = c.sock.try_clone().unwrap();
    const N: usize = 3000;
    let writer = std::thread::spawn(move || {
        let x = "x".repeat(1000);
        let frames = Client::raw_frames(&[x.as_str(); 10]);
        for _ in 0..N / 10 {
            std::io::Write::write_all(&mut w, &frames).unwrap();
        }
    });
    let t0 = Instant::now();
    for _ in 0..N {
        assert_eq!(c.read_frame().unwrap().payload.len(), 1000);
    }
    writer.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    drop(c);
    s.stop();
    t.join().unwrap();
}

#[test]
fn the_101_waits_for_the_hosts_open_so_its_subscriptions_are_in_place() {
    let (s, stop, t) = start(
        Options {
            workers: 2,
            ..Options::default()
        },
        Duration::ZERO,
    );
    let mut c = Client::connect(s.local_addr(), "/late");
    // Published the moment the handshake is back: with the 101 written at
    // the accept, the host was still in its slow `open`, this found no
    // subscriber, and the message was lost.
    assert_eq!(s.publish("late", "news"), 1, "handed to no worker");
    assert_eq!(c.read_frame().expect("hello").payload, b"hello");
    assert_eq!(c.read_frame().expect("news").payload, b"news");
    stop.store(true, Ordering::Relaxed);
    s.stop_now();
    t.join().unwrap();
}

/// Seconds of a stress run: `VOLLEY_STRESS_SECS` (the long run), else 5.
fn stress_secs() -> u64 {
    std::env::var("VOLLEY_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// A host that blocks on the queue's fd keeps being woken while 8 clients
/// send small messages as fast as they can to 2 workers: no gap of a
/// second without events. (A lost wake-up used to stall such a host for
/// good within seconds; `queue.rs`' unit test forces that interleaving.)
#[test]
fn a_host_blocked_on_the_fd_never_misses_a_wake_up_under_load() {
    let (s, mut q) = Server::builder()
        .options(Options {
            workers: 2,
            ..Options::default()
        })
        .serve_queue()
        .unwrap();
    let h = s.handle();
    let addr = s.local_addr();
    let sending = Arc::new(AtomicBool::new(true));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let sending = sending.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr, "/ws");
                let mut sent = 0u64;
                while sending.load(Ordering::Relaxed) {
                    c.text("x");
                    sent += 1;
                    std::thread::sleep(Duration::from_micros(20));
                }
                sent
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(stress_secs());
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    let mut messages = 0u64;
    while Instant::now() < deadline {
        // A long timeout: a lost wake-up shows as a gap, not as a pause.
        q.wait(Some(Duration::from_secs(3)));
        let mut n = 0;
        h.cork();
        for ev in q.drain() {
            n += 1;
            match ev {
                Event::Upgrade { id, .. } => {
                    assert!(h.accept_upgrade(id, Accept::new(1u64)));
                }
                Event::Message { .. } => messages += 1,
                _ => {}
            }
        }
        h.uncork();
        let now = Instant::now();
        if n > 0 {
            worst = worst.max(now - last);
            last = now;
        } else {
            worst = worst.max(now - last);
        }
    }
    sending.store(false, Ordering::Relaxed);
    let sent: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(
        worst < Duration::from_secs(1),
        "the host went {worst:?} without events ({messages} of {sent} messages seen)"
    );
    assert!(messages > 1000, "only {messages} messages in the run");
    s.stop_now();
}

/// An upgrade the host accepts after its client left never opens: the host
/// gets one Close (1006 "upgrade failed") carrying the user value it gave,
/// and no Open, so it can free what it keeps per connection.
#[test]
fn a_late_accept_of_a_departed_client_ends_with_one_close_and_no_open() {
    let (s, mut q) = Server::builder().serve_queue().unwrap();
    let h = s.handle();
    let mut c = Client::raw(s.local_addr());
    c.write(common::upgrade_request("/", "").as_bytes());
    let id = loop {
        q.wait(Some(Duration::from_secs(5)));
        let up = q.drain().find_map(|ev| match ev {
            Event::Upgrade { id, .. } => Some(id),
            _ => None,
        });
        if let Some(id) = up {
            break id;
        }
    };
    drop(c);
    std::thread::sleep(Duration::from_millis(100));
    h.accept_upgrade(id, Accept::new(9u64));
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < Duration::from_secs(5) && seen.is_empty() {
        q.wait(Some(Duration::from_millis(100)));
        for ev in q.drain() {
            match ev {
                Event::Open { .. } => seen.push("open".to_string()),
                Event::Close {
                    id: cid,
                    user,
                    code,
                    reason,
                } => {
                    assert_eq!(cid, id);
                    seen.push(format!(
                        "close {user} {code} {}",
                        String::from_utf8_lossy(reason)
                    ));
                }
                _ => {}
            }
        }
    }
    assert_eq!(seen, ["close 9 1006 upgrade failed"]);
    s.stop_now();
}
