//! Pub/sub: topics across workers, ordering under concurrency, one encoding
//! per publish, slow-consumer policies, cross-thread handles, SSE.

mod common;

use common::Client;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use volley::proto::frame::OpCode;
use volley::{
    Fetch, Handler, Message, Options, Request, Response, SendStatus, Server, SlowConsumer, Upgrade,
    WebSocket, WsHandle,
};

/// Commands arrive as text: `sub:T`, `unsub:T`, `pub:T:MSG`, `flood:T:N:SIZE`,
/// `subs` (lists subscriptions). Routes: `/auto` subscribes to `t0..t3` on open.
struct PubSub {
    seq: std::sync::atomic::AtomicUsize,
    events: Mutex<Sender<String>>,
    handles: Mutex<Sender<WsHandle>>,
}

impl PubSub {
    fn ev(&self, s: String) {
        let _ = self.events.lock().unwrap().send(s);
    }
}

impl Handler for PubSub {
    type Data = String;

    fn upgrade(&self, req: &Request<'_>) -> Upgrade<String> {
        Upgrade::accept(req.path().to_string())
    }

    fn open(&self, ws: &mut WebSocket<'_, String>) {
        if ws.data() == "/auto" {
            for t in ["t0", "t1", "t2", "t3"] {
                assert!(ws.subscribe(t));
            }
        }
        if ws.data() == "/late" {
            // A slow open: whatever it does must be in place before the
            // client sees the 101.
            std::thread::sleep(Duration::from_millis(150));
            assert!(ws.subscribe("late"));
            ws.send_text("hello");
        }
        let _ = self.handles.lock().unwrap().send(ws.handle());
    }

    fn message(&self, ws: &mut WebSocket<'_, String>, msg: Message<'_>) {
        let Message::Text(t) = msg else { return };
        let mut parts = t.splitn(4, ':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("sub"), Some(topic), None, None) => {
                let ok = ws.subscribe(topic);
                assert!(ws.is_subscribed(topic));
                ws.send_text(&format!("subscribed {topic} {ok}"));
            }
            (Some("unsub"), Some(topic), None, None) => {
                let ok = ws.unsubscribe(topic);
                ws.send_text(&format!("unsubscribed {topic} {ok}"));
            }
            (Some("subs"), None, None, None) => {
                let mut v: Vec<String> = ws
                    .subscriptions()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                v.sort();
                ws.send_text(&v.join(","));
            }
            (Some("pub"), Some(topic), Some(m), None) => {
                let r = ws.publish_text(topic, m);
                self.ev(format!("published {r:?}"));
            }
            (Some("flood"), Some(topic), Some(n), Some(size)) => {
                let body = vec![b'x'; size.parse().unwrap()];
                let (mut d, mut b, mut x) = (0, 0, 0);
                let mut last = 0;
                for _ in 0..n.parse::<usize>().unwrap() {
                    last = self.seq.fetch_add(1, Ordering::Relaxed);
                    let mut m = format!("{last:08}").into_bytes();
                    m.extend_from_slice(&body);
                    let r = ws.publish_binary(topic, &m);
                    d += r.delivered;
                    b += r.backpressured;
                    x += r.dropped;
                }
                self.ev(format!(
                    "flood delivered={d} backpressured={b} dropped={x} last={last}"
                ));
            }
            _ => {
                ws.send_text("?");
            }
        }
    }

    fn dropped(&self, _ws: &mut WebSocket<'_, String>, topic: &[u8], msg: Message<'_>) {
        self.ev(format!(
            "dropped {} {}",
            String::from_utf8_lossy(topic),
            msg.as_bytes().len()
        ));
    }

    fn topic(&self, topic: &[u8], active: bool) {
        self.ev(format!("topic {} {active}", String::from_utf8_lossy(topic)));
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        (req.path() == "/events" && req.wants_event_stream())
            .then(|| Response::event_stream(["news"]))
            .into()
    }
}

struct Rig {
    server: Server,
    events: Receiver<String>,
    handles: Receiver<WsHandle>,
}

fn start(opts: Options) -> Rig {
    let (tx, events) = channel();
    let (htx, handles) = channel();
    let server = Server::builder()
        .options(opts)
        .serve(PubSub {
            seq: Default::default(),
            events: Mutex::new(tx),
            handles: Mutex::new(htx),
        })
        .unwrap();
    Rig {
        server,
        events,
        handles,
    }
}

fn text(c: &mut Client) -> String {
    let f = c.read_frame().expect("frame");
    String::from_utf8(f.payload).unwrap()
}

fn wait_for(rx: &Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("event not seen within 10 s");
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_closed_socket_stops_counting_at_its_close_not_at_its_fin() {
    // Bun (uWebSockets) ends a socket's subscriptions with its close
    // handler. A client that completes the closing handshake but is slow to
    // close TCP (its FIN comes when its event loop gets to it) must not
    // keep counting as a subscriber meanwhile: frameworks read
    // subscriberCount right after "has left" reaches the others. (The
    // close timeout, which would reap b anyway, is out of the way.)
    let rig = start(Options {
        close_timeout: Duration::from_secs(60),
        ..Options::default()
    });
    let addr = rig.server.local_addr();
    let mut a = Client::connect(addr, "/");
    let mut b = Client::connect(addr, "/");
    for x in [&mut a, &mut b] {
        x.text("sub:room");
        assert_eq!(text(x), "subscribed room true");
    }
    assert_eq!(rig.server.subscriber_count("room"), 2);
    b.frame(true, OpCode::Close, &1000u16.to_be_bytes());
    b.expect_close(1000); // the server's close frame, then its FIN
    // b's socket stays open (no FIN from this side).
    wait_until("b no longer counted", || {
        rig.server.subscriber_count("room") == 1
    });
    a.text("pub:room:still here");
    let mut c = Client::connect(addr, "/");
    c.text("sub:room");
    assert_eq!(text(&mut c), "subscribed room true");
    assert_eq!(rig.server.subscriber_count("room"), 2);
    drop(b);
}

#[test]
fn publish_reaches_other_subscribers_not_the_sender() {
    let rig = start(Options::default());
    let addr = rig.server.local_addr();
    let mut a = Client::connect(addr, "/");
    let mut b = Client::connect(addr, "/");
    let mut c = Client::connect(addr, "/");
    for x in [&mut a, &mut b] {
        x.text("sub:room");
        assert_eq!(text(x), "subscribed room true");
    }
    a.text("sub:room");
    assert_eq!(text(&mut a), "subscribed room false");
    assert_eq!(rig.server.subscriber_count("room"), 2);
    a.text("pub:room:hello");
    assert_eq!(text(&mut b), "hello");
    // The sender does not get its own publish; a non-subscriber gets nothing.
    a.text("subs");
    assert_eq!(text(&mut a), "room");
    c.text("subs");
    assert_eq!(text(&mut c), "");
    // Unsubscribe and disconnect both end subscriptions.
    b.text("unsub:room");
    assert_eq!(text(&mut b), "unsubscribed room true");
    assert_eq!(rig.server.subscriber_count("room"), 1);
    drop(a);
    wait_until("subscriber count 0", || {
        rig.server.subscriber_count("room") == 0
    });
}

#[test]
fn the_101_goes_out_after_open_so_its_subscriptions_are_in_place() {
    let rig = start(Options {
        workers: 2,
        ..Options::default()
    });
    let mut c = Client::connect(rig.server.local_addr(), "/late");
    // Published the moment the handshake is back: before the fix the 101 went
    // out ahead of `open`, this found no subscriber, and the message was lost.
    assert_eq!(rig.server.publish("late", "news"), 1, "handed to no worker");
    assert_eq!(text(&mut c), "hello");
    assert_eq!(text(&mut c), "news");
}

#[test]
fn publish_to_self_when_asked() {
    let rig = start(Options {
        publish_to_self: true,
        ..Options::default()
    });
    let mut a = Client::connect(rig.server.local_addr(), "/");
    a.text("sub:me");
    text(&mut a);
    a.text("pub:me:echoed");
    assert_eq!(text(&mut a), "echoed");
}

#[test]
fn server_publish_from_any_thread_crosses_workers_with_one_encoding() {
    let rig = start(Options {
        workers: 2,
        ..Options::default()
    });
    let addr = rig.server.local_addr();
    let mut subs: Vec<Client> = (0..40).map(|_| Client::connect(addr, "/auto")).collect();
    wait_until("40 subscribers", || rig.server.subscriber_count("t1") == 40);
    let before = rig.server.stats().frames_encoded.load(Ordering::Relaxed);
    let publisher = rig.server.publisher();
    let t = std::thread::spawn(move || {
        for i in 0..50 {
            publisher.publish("t1", format!("m{i}").as_str());
        }
    });
    t.join().unwrap();
    for s in &mut subs {
        for i in 0..50 {
            assert_eq!(text(s), format!("m{i}"));
        }
    }
    let st = rig.server.stats();
    // One encoding per publish, however many subscribers and workers.
    assert_eq!(st.frames_encoded.load(Ordering::Relaxed) - before, 50);
    assert!(st.delivered.load(Ordering::Relaxed) >= 50 * 40);
}

#[test]
fn topic_edges_fire_on_first_and_last_subscriber() {
    let rig = start(Options::default());
    let addr = rig.server.local_addr();
    let mut a = Client::connect(addr, "/");
    let mut b = Client::connect(addr, "/");
    a.text("sub:edge");
    text(&mut a);
    wait_for(&rig.events, |e| e == "topic edge true");
    b.text("sub:edge");
    text(&mut b);
    a.text("unsub:edge");
    text(&mut a);
    drop(b);
    wait_for(&rig.events, |e| e == "topic edge false");
}

#[test]
fn handle_subscribe_then_publish_from_the_same_thread_is_seen() {
    let rig = start(Options::default());
    let mut c = Client::connect(rig.server.local_addr(), "/");
    let h = rig.handles.recv_timeout(Duration::from_secs(5)).unwrap();
    for i in 0..20 {
        let topic = format!("x{i}");
        assert!(h.subscribe(&topic));
        rig.server
            .publish(&topic, format!("after subscribe {i}").as_str());
        assert_eq!(text(&mut c), format!("after subscribe {i}"));
    }
    assert_eq!(h.send("direct"), SendStatus::Sent(8));
    assert_eq!(text(&mut c), "direct");
    assert!(h.unsubscribe("x0"));
    h.close(4002, "bye");
    let f = c.read_frame().unwrap();
    assert_eq!(f.opcode, OpCode::Close);
    assert_eq!(&f.payload[..2], &4002u16.to_be_bytes());
}

/// A subscriber that does not read, a publisher that floods: the policy decides.
fn slow_consumer(policy: SlowConsumer) -> (Rig, Client, Client, String) {
    let rig = start(Options {
        workers: 1,
        backpressure_limit: 64 * 1024,
        slow_consumer: policy,
        ..Options::default()
    });
    let addr = rig.server.local_addr();
    let mut slow = Client::connect(addr, "/");
    slow.sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A tiny receive buffer makes the server's writes block early.
    socket2::SockRef::from(&slow.sock)
        .set_recv_buffer_size(4096)
        .unwrap();
    slow.text("sub:feed");
    assert_eq!(text(&mut slow), "subscribed feed true");
    let mut publisher = Client::connect(addr, "/");
    // Flood until the policy has had to act (bounded).
    let acted = |s: &str| match policy {
        SlowConsumer::DropNewest | SlowConsumer::Close(_) => !s.contains("dropped=0"),
        _ => !s.contains("backpressured=0"),
    };
    let mut summary = String::new();
    for _ in 0..50 {
        publisher.text("flood:feed:200:1000");
        summary = wait_for(&rig.events, |e| e.starts_with("flood "));
        if acted(&summary) {
            break;
        }
    }
    assert!(acted(&summary), "policy never acted: {summary}");
    let last = summary.rsplit("last=").next().unwrap().to_string();
    (rig, slow, publisher, last)
}

/// Read published binary messages (8-digit sequence prefix) until `last`.
fn read_seqs(c: &mut Client, last: usize) -> Vec<usize> {
    let mut seqs = Vec::new();
    while let Some(f) = c.read_frame() {
        if f.opcode != OpCode::Binary {
            continue;
        }
        let n: usize = std::str::from_utf8(&f.payload[..8])
            .unwrap()
            .parse()
            .unwrap();
        seqs.push(n);
        if n == last {
            break;
        }
    }
    seqs
}

#[test]
fn drop_newest_reports_drops_and_calls_dropped() {
    let (rig, _slow, _p, _last) = slow_consumer(SlowConsumer::DropNewest);
    wait_for(&rig.events, |e| e.starts_with("dropped feed 1008"));
    assert!(rig.server.stats().dropped.load(Ordering::Relaxed) > 0);
    // Memory stays bounded by the limit (plus one message).
    assert!(rig.server.stats().buffered.load(Ordering::Relaxed) < 64 * 1024 + 2048);
}

#[test]
fn close_policy_closes_the_slow_subscriber_with_1013() {
    let (_rig, mut slow, _p, _last) = slow_consumer(SlowConsumer::CLOSE);
    loop {
        let f = slow.read_frame().expect("close frame");
        if f.opcode == OpCode::Close {
            assert_eq!(&f.payload[..2], &1013u16.to_be_bytes());
            break;
        }
    }
}

#[test]
fn drop_oldest_keeps_the_newest() {
    let (rig, mut slow, _p, last) = slow_consumer(SlowConsumer::DropOldest);
    let last: usize = last.parse().unwrap();
    let seqs = read_seqs(&mut slow, last);
    assert_eq!(*seqs.last().unwrap(), last, "the newest message arrives");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(seqs.len() < last + 1, "older ones were evicted");
    assert!(rig.server.stats().dropped.load(Ordering::Relaxed) > 0);
}

#[test]
fn conflate_delivers_the_latest_after_the_backlog() {
    let (rig, mut slow, _p, last) = slow_consumer(SlowConsumer::Conflate);
    let last: usize = last.parse().unwrap();
    let seqs = read_seqs(&mut slow, last);
    assert_eq!(*seqs.last().unwrap(), last, "the latest value arrives");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
    wait_for(&rig.events, |e| e.starts_with("dropped feed"));
}

#[test]
fn sse_receives_publishes_and_is_cleaned_up() {
    let rig = start(Options::default());
    let addr = rig.server.local_addr();
    let mut c = Client::raw(addr);
    c.write(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    let head = c.read_head();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream\r\n"));
    wait_until("SSE subscriber", || {
        rig.server.subscriber_count("news") == 1
    });
    rig.server.publish("news", "line one\nline two");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("line two\n\n") {
        use std::io::Read;
        let n = c.sock.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let s = String::from_utf8(got).unwrap();
    assert!(s.ends_with("data: line one\ndata: line two\n\n"), "{s:?}");
    drop(c);
    wait_until("SSE cleanup", || rig.server.subscriber_count("news") == 0);
    // Without the Accept header, the same path is no event stream.
    let mut p = Client::raw(addr);
    p.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    // (This server has no routes, so every path speaks WebSocket: 426.)
    assert!(p.read_http_response().starts_with("HTTP/1.1 426 "));
}

/// Many publisher threads on many topics while connections subscribe,
/// unsubscribe and disconnect: every stable subscriber gets every message of
/// every publisher, in that publisher's order; nothing deadlocks.
#[test]
fn concurrent_publishers_and_churn_keep_per_publisher_order() {
    const TOPICS: usize = 4;
    const PUBLISHERS: usize = 4;
    const PER: usize = 400;
    const STABLE: usize = 12;
    let rig = start(Options {
        workers: 2,
        ..Options::default()
    });
    let addr = rig.server.local_addr();
    let stable: Vec<Client> = (0..STABLE)
        .map(|_| Client::connect(addr, "/auto"))
        .collect();
    wait_until("stable subscribers", || {
        (0..TOPICS).all(|t| rig.server.subscriber_count(format!("t{t}")) >= STABLE)
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Churn: connections that subscribe (on open), toggle, and vanish.
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut c = Client::connect(addr, "/auto");
                c.text("unsub:t1");
                c.text("sub:t1");
                if n % 2 == 0 {
                    c.frame(true, OpCode::Close, &1000u16.to_be_bytes());
                }
                drop(c); // half close cleanly, half just vanish
                n += 1;
            }
            n
        })
    };
    // Readers for the stable subscribers.
    let readers: Vec<_> = stable
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let mut last: HashMap<(usize, usize), usize> = HashMap::new();
                let mut count = 0;
                while count < TOPICS * PUBLISHERS * PER {
                    let f = c.read_frame().expect("subscriber gets everything");
                    let s = String::from_utf8(f.payload).unwrap();
                    let v: Vec<usize> = s.split('|').map(|x| x.parse().unwrap()).collect();
                    let (topic, publisher, seq) = (v[0], v[1], v[2]);
                    let prev = last.insert((topic, publisher), seq);
                    assert_eq!(
                        seq,
                        prev.map_or(0, |p| p + 1),
                        "order of publisher {publisher} on t{topic}"
                    );
                    count += 1;
                }
                count
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let publisher = rig.server.publisher();
            std::thread::spawn(move || {
                for seq in 0..PER {
                    for t in 0..TOPICS {
                        publisher.publish(format!("t{t}"), format!("{t}|{p}|{seq}").as_str());
                    }
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    for r in readers {
        assert_eq!(r.join().unwrap(), TOPICS * PUBLISHERS * PER);
    }
    stop.store(true, Ordering::Relaxed);
    let churned = churn.join().unwrap();
    assert!(churned > 0);
    let st = rig.server.stats();
    assert_eq!(
        st.frames_encoded.load(Ordering::Relaxed),
        (TOPICS * PUBLISHERS * PER) as u64
    );
    // Readers dropped the stable connections, churn ended: nothing is left.
    wait_until("every subscription and connection gone", || {
        (0..TOPICS).all(|t| rig.server.subscriber_count(format!("t{t}")) == 0)
            && rig.server.connections() == 0
    });
}
