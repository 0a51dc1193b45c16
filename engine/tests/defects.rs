//! Regression tests for the defects found in review (issue 14): each
//! failed on the engine before its fix.

mod common;

use common::Client;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use volley::proto::deflate::Inflater;
use volley::proto::frame::OpCode;
use volley::{
    Deflate, DeflateMode, Fetch, Handler, Message, Options, Request, Response, SendStatus, Server,
    ServerHandle, SlowConsumer, Upgrade, WebSocket, WsHandle,
};

/// Subscribes every WebSocket to `feed` and hands its handle to the test;
/// `sleep` blocks the worker for 300 ms, `pause` pauses reading, anything
/// else is published to `t` through the server handle (a command to the
/// worker's own mailbox). `/events` streams topic `t`.
struct Rig {
    handles: Mutex<Sender<WsHandle>>,
    server: Arc<OnceLock<ServerHandle>>,
}

impl Handler for Rig {
    type Data = ();

    fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }

    fn open(&self, ws: &mut WebSocket<'_, ()>) {
        ws.subscribe("feed");
        let _ = self.handles.lock().unwrap().send(ws.handle());
    }

    fn message(&self, ws: &mut WebSocket<'_, ()>, msg: Message<'_>) {
        match msg {
            Message::Text("sleep") => std::thread::sleep(Duration::from_millis(300)),
            Message::Text("pause") => ws.pause_reading(),
            m => {
                self.server.get().unwrap().publish("t", m);
            }
        }
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        if req.path() == "/events" {
            return Response::event_stream(["t"]).into();
        }
        Fetch::Pass
    }
}

fn rig(opts: Options) -> (Server, std::sync::mpsc::Receiver<WsHandle>) {
    let (tx, rx) = channel();
    let handle = Arc::new(OnceLock::new());
    let rig = Rig {
        handles: Mutex::new(tx),
        server: handle.clone(),
    };
    let s = Server::builder().options(opts).serve(rig).unwrap();
    handle.set(s.handle()).unwrap();
    (s, rx)
}

fn handle(rx: &std::sync::mpsc::Receiver<WsHandle>) -> WsHandle {
    rx.recv_timeout(Duration::from_secs(5)).expect("open")
}

/// A client whose receive buffer is tiny, so the server's writes block early.
fn slow_client(addr: std::net::SocketAddr, extra: &str) -> Client {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut c = Client::from_stream(sock.into());
    c.write(common::upgrade_request("/", extra).as_bytes());
    let head = c.read_head();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    c
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn noise(i: usize, n: usize) -> Vec<u8> {
    // Incompressible enough: a xorshift stream.
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn conflated_messages_never_follow_our_close_frame() {
    let (s, rx) = rig(Options {
        workers: 1,
        backpressure_limit: 16 * 1024,
        slow_consumer: SlowConsumer::Conflate,
        ..Options::default()
    });
    let mut c = slow_client(s.local_addr(), "");
    let h = handle(&rx);
    // 13 MB for a reader of 4 KiB: far past what the kernel buffers, so
    // the last publishes are held (conflated) when the close comes.
    let msg = vec![b'x'; 64 * 1024];
    for _ in 0..200 {
        s.publish("feed", &msg[..]);
    }
    // The worker has taken every publish when a later command runs.
    assert!(h.close(4000, "bye"));
    let mut frames = 0;
    loop {
        let f = c.read_frame().expect("a close frame");
        if f.opcode == OpCode::Close {
            assert_eq!(&f.payload[..2], &4000u16.to_be_bytes());
            break;
        }
        frames += 1;
    }
    assert!(frames < 200, "the queue was never full ({frames} frames)");
    c.frame(true, OpCode::Close, &4000u16.to_be_bytes());
    assert!(
        c.read_frame().is_none(),
        "a held message went out after the close frame"
    );
}

fn deflate_rig(policy: SlowConsumer) -> (Server, Client) {
    let (s, rx) = rig(Options {
        workers: 1,
        backpressure_limit: 64 * 1024,
        slow_consumer: policy,
        per_message_deflate: Some(Deflate {
            compress: DeflateMode::Dedicated,
            decompress: DeflateMode::Dedicated,
            threshold: 0,
            ..Deflate::default()
        }),
        ..Options::default()
    });
    let c = slow_client(
        s.local_addr(),
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    handle(&rx);
    (s, c)
}

#[test]
fn drop_oldest_with_dedicated_compression_stays_bounded_and_decodable() {
    let (s, mut c) = deflate_rig(SlowConsumer::DropOldest);
    let msgs: Vec<Vec<u8>> = (0..1500).map(|i| noise(i, 4096)).collect();
    for m in &msgs {
        s.publish("feed", &m[..]);
    }
    wait_for("every publish delivered or dropped", || {
        let st = s.stats();
        st.delivered.load(std::sync::atomic::Ordering::Relaxed) >= 1500
    });
    std::thread::sleep(Duration::from_millis(100));
    let queued = s
        .stats()
        .buffered
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        queued <= 64 * 1024 + 8 * 1024,
        "{queued} bytes queued past a 64 KiB limit"
    );
    assert!(s.stats().dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // What arrives decodes with one context-keeping inflater, in order.
    let mut inf = Inflater::new(15, false);
    let mut last = None;
    c.sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Some(f) = c.try_read_frame() {
        let mut out = Vec::new();
        inf.inflate(&f.payload, &mut out, 1 << 20)
            .expect("inflates");
        let i = msgs
            .iter()
            .position(|m| *m == out)
            .expect("a published message");
        assert!(last.is_none_or(|l| i > l), "out of order");
        last = Some(i);
    }
    assert_eq!(last, Some(1499), "the newest message arrives");
}

/// Conflate with a dedicated (context-keeping) deflater: a held message
/// is compressed only when it is written, so replacing it never leaves a
/// gap in the peer's inflate context. What arrives decodes with one
/// context-keeping inflater, in order, ends with the latest value, and
/// some values were conflated away.
#[test]
fn conflate_with_dedicated_compression_stays_decodable_and_ends_with_the_latest() {
    let (s, mut c) = deflate_rig(SlowConsumer::Conflate);
    let msgs: Vec<Vec<u8>> = (0..1520).map(|i| noise(i, 4096)).collect();
    let mut inf = Inflater::new(15, false);
    c.sock
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    // Read until message `last`: every frame in order, a whole published
    // message, compressed ones inflating in the connection's context.
    let mut read_until = |last: usize, seen: &mut Vec<usize>, compressed: &mut usize| {
        while let Some(f) = c.try_read_frame() {
            assert_eq!(f.opcode, OpCode::Binary);
            // A held message may go out uncompressed (RSV1 clear), which
            // the extension allows.
            let out = if f.rsv1 {
                *compressed += 1;
                let mut out = Vec::new();
                inf.inflate(&f.payload, &mut out, 1 << 20)
                    .expect("inflates with the connection's context");
                out
            } else {
                f.payload
            };
            let i = msgs
                .iter()
                .position(|m| *m == out)
                .expect("a published message, whole");
            assert!(seen.last().is_none_or(|&l| i > l), "out of order");
            seen.push(i);
            if i == last {
                return;
            }
        }
        panic!("message {last} never came (got {seen:?})");
    };
    // A burst far past the limit: values are conflated.
    for m in &msgs[..1500] {
        s.publish("feed", &m[..]);
    }
    let (mut seen, mut compressed) = (Vec::new(), 0);
    read_until(1499, &mut seen, &mut compressed);
    assert!(
        seen.len() < 1500,
        "nothing was conflated: the reader kept up ({} of 1500)",
        seen.len()
    );
    // Then a reader that keeps up: these are compressed in the same
    // context, so a held message that touched it without reaching the
    // peer would break them.
    let before = compressed;
    for (i, m) in msgs.iter().enumerate().skip(1500) {
        s.publish("feed", &m[..]);
        read_until(i, &mut seen, &mut compressed);
    }
    assert!(compressed - before >= 10, "the tail went out uncompressed");
}

#[test]
fn close_policy_with_dedicated_compression_closes() {
    let (s, mut c) = deflate_rig(SlowConsumer::Close(1013));
    for i in 0..1500 {
        s.publish("feed", &noise(i, 4096)[..]);
    }
    c.expect_close(1013);
}

#[test]
fn a_full_mailbox_refuses_sends_and_loses_none_it_accepted() {
    let (s, rx) = rig(Options {
        workers: 1,
        mailbox_bytes: 64 * 1024,
        ..Options::default()
    });
    let mut c = Client::connect(s.local_addr(), "/");
    let h = handle(&rx);
    c.text("sleep");
    std::thread::sleep(Duration::from_millis(50));
    let msg = vec![b'm'; 1000];
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..1000 {
        match h.send(&msg[..]) {
            SendStatus::Sent(_) | SendStatus::Backpressure => accepted += 1,
            SendStatus::Dropped => refused += 1,
        }
    }
    assert!(refused > 0, "1 MB into a 64 KiB mailbox was all accepted");
    assert!(accepted > 0);
    assert_eq!(
        s.publish("feed", &msg[..]),
        0,
        "a publish into a full mailbox"
    );
    assert!(
        s.stats()
            .mailbox_full
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    for _ in 0..accepted {
        assert_eq!(c.read_frame().unwrap().payload, msg);
    }
    c.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(c.try_read_frame().is_none(), "more than was accepted");
}

/// An SSE client of topic `t`, its head read.
fn sse(addr: std::net::SocketAddr) -> TcpStream {
    let mut t = TcpStream::connect(addr).unwrap();
    t.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !got.ends_with(b": volley\n\n") {
        let n = t.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    t
}

#[test]
fn a_command_to_the_own_worker_runs_before_the_loop_sleeps() {
    // No timers at all: no idle timeout, no SSE keep-alive, and the
    // handshake timers long expired. A resumed read runs a handler that
    // publishes through the server handle: a command to the worker's own
    // mailbox, queued after this turn's commands ran.
    let (s, rx) = rig(Options {
        workers: 1,
        idle_timeout: Duration::ZERO,
        send_pings: false,
        sse_keepalive: Duration::ZERO,
        handshake_timeout: Duration::from_millis(100),
        ..Options::default()
    });
    let mut events = sse(s.local_addr());
    let mut c = Client::connect(s.local_addr(), "/");
    let h = handle(&rx);
    c.text("pause");
    c.text("go");
    std::thread::sleep(Duration::from_millis(400));
    assert!(h.resume_reading());
    let mut b = [0u8; 4096];
    let n = events
        .read(&mut b)
        .expect("the publish arrives (the worker slept on it)");
    assert_eq!(&b[..n], b"data: go\n\n");
}

#[test]
fn connections_finished_inside_commands_are_reaped_at_once() {
    let (s, rx) = rig(Options {
        workers: 1,
        backpressure_limit: 16 * 1024,
        slow_consumer: SlowConsumer::Close(1013),
        ..Options::default()
    });
    // An SSE subscriber that stops reading: closed by the policy from a
    // publish that came through the mailbox.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&s.local_addr().into()).unwrap();
    let mut t: TcpStream = sock.into();
    t.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    wait_for("the SSE subscription", || s.subscriber_count("t") == 1);
    // The first publish fills the queue (a message always fits an empty
    // one); the second, in a later loop turn, closes the subscriber.
    let msg = vec![b'y'; 8 << 20];
    s.publish("t", &msg[..]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.connections(), 1);
    s.publish("t", &msg[..]);
    wait_for("the SSE connection to be reaped", || s.connections() == 0);
    // And a WebSocket terminated from another thread.
    let _c = Client::connect(s.local_addr(), "/");
    let h = handle(&rx);
    assert!(h.terminate());
    wait_for("the terminated connection to be reaped", || {
        s.connections() == 0
    });
}

#[test]
fn a_stale_handle_never_reaches_the_next_connection_in_its_slot() {
    let (s, rx) = rig(Options {
        workers: 1,
        ..Options::default()
    });
    let mut a = Client::connect(s.local_addr(), "/");
    let old = handle(&rx);
    a.frame(true, OpCode::Close, &1000u16.to_be_bytes());
    a.expect_close(1000);
    drop(a);
    wait_for("the first connection to go", || s.connections() == 0);
    let mut b = Client::connect(s.local_addr(), "/");
    let new = handle(&rx);
    assert_eq!(old.id().worker(), new.id().worker());
    assert_ne!(old.id(), new.id());
    assert_eq!(old.send("stale"), SendStatus::Dropped);
    assert!(!old.close(1000, "stale"));
    assert!(!old.terminate());
    assert_eq!(new.send("fresh"), SendStatus::Sent(7));
    assert_eq!(b.read_frame().unwrap().payload, b"fresh");
}

#[test]
fn stop_from_any_thread_while_another_joins() {
    let (s, rx) = rig(Options::default());
    let s = Arc::new(s);
    let mut c = Client::connect(s.local_addr(), "/");
    handle(&rx);
    let joiner = {
        let s = s.clone();
        std::thread::spawn(move || s.join())
    };
    let waiter = {
        let s = s.clone();
        std::thread::spawn(move || s.join())
    };
    std::thread::sleep(Duration::from_millis(50));
    let stopper = {
        let s = s.clone();
        std::thread::spawn(move || s.stop())
    };
    let f = c.read_frame().unwrap();
    assert_eq!(&f.payload[..2], &1001u16.to_be_bytes());
    c.frame(true, OpCode::Close, &f.payload[..2]);
    for t in [joiner, waiter, stopper] {
        t.join().unwrap();
    }
    assert!(s.is_stopped());
}

/// Drops the server it holds, on its worker thread, when told to.
struct Dropper {
    server: Mutex<Option<Server>>,
}

static DROPPER: OnceLock<Arc<Dropper>> = OnceLock::new();

struct DropOnMessage;

impl Handler for DropOnMessage {
    type Data = ();
    fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn message(&self, ws: &mut WebSocket<'_, ()>, _msg: Message<'_>) {
        let s = DROPPER.get().unwrap().server.lock().unwrap().take();
        drop(s); // on the worker thread: must not wait for itself
        ws.send_text("dropped");
    }
}

#[test]
fn dropping_the_server_on_its_own_worker_thread_does_not_deadlock() {
    let s = Server::builder()
        .options(Options {
            workers: 1,
            ..Options::default()
        })
        .serve(DropOnMessage)
        .unwrap();
    let addr = s.local_addr();
    DROPPER
        .set(Arc::new(Dropper {
            server: Mutex::new(Some(s)),
        }))
        .ok();
    let mut c = Client::connect(addr, "/");
    c.text("now");
    assert_eq!(c.read_frame().unwrap().payload, b"dropped");
    // The drop asked the server to stop: 1001, then the worker exits.
    c.expect_close(1001);
}

/// Counts drains; "burst" sends 16 KiB messages from the handler until one
/// is dropped, and reports every status it got.
struct Drains {
    drains: Arc<std::sync::atomic::AtomicUsize>,
    statuses: Arc<Mutex<Vec<SendStatus>>>,
    handles: Mutex<Sender<WsHandle>>,
}

impl Handler for Drains {
    type Data = ();
    fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn open(&self, ws: &mut WebSocket<'_, ()>) {
        let _ = self.handles.lock().unwrap().send(ws.handle());
    }
    fn message(&self, ws: &mut WebSocket<'_, ()>, _msg: Message<'_>) {
        let chunk = vec![7u8; 16 * 1024];
        let mut statuses = self.statuses.lock().unwrap();
        for _ in 0..4096 {
            let s = ws.send(Message::Binary(&chunk));
            statuses.push(s);
            if s == SendStatus::Dropped {
                break;
            }
        }
    }
    fn drain(&self, _ws: &mut WebSocket<'_, ()>) {
        self.drains
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_dropped_send_is_followed_by_a_drain_on_the_worker_and_from_other_threads() {
    // Bun's contract: 0 means dropped past the limit, and `drain` follows
    // once the queue empties. Sends queued within one handler all said `n`
    // (nothing was written yet), and cross-thread sends said `n` while
    // their bytes were in flight: before the fix, the drop that followed
    // had no drain behind it and a host waiting for one waited forever.
    let drains = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = channel();
    let s = Server::builder()
        .options(Options {
            backpressure_limit: 100 * 1024,
            workers: 1,
            ..Options::default()
        })
        .serve(Drains {
            drains: drains.clone(),
            statuses: statuses.clone(),
            handles: Mutex::new(tx),
        })
        .unwrap();
    let mut c = slow_client(s.local_addr(), "");
    let h = handle(&rx);
    c.frame(true, OpCode::Text, b"burst");
    wait_for("a drop on the worker", || {
        statuses.lock().unwrap().last() == Some(&SendStatus::Dropped)
    });
    let mut got = 0;
    while got < statuses.lock().unwrap().len() - 1 {
        c.read_frame().expect("a queued message");
        got += 1;
    }
    wait_for("the drain after the drop", || {
        drains.load(std::sync::atomic::Ordering::SeqCst) >= 1
    });
    // From another thread: send until refused, without reading.
    let before = drains.load(std::sync::atomic::Ordering::SeqCst);
    let chunk = vec![9u8; 30 * 1024];
    let mut sent = 0;
    loop {
        match h.send(Message::Binary(&chunk)) {
            SendStatus::Dropped => break,
            _ => sent += 1,
        }
        assert!(sent < 1000, "never refused");
    }
    for _ in 0..sent {
        c.read_frame().expect("a queued message");
    }
    wait_for("the drain after the cross-thread drop", || {
        drains.load(std::sync::atomic::Ordering::SeqCst) > before
    });
}
