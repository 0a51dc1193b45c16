//! HTTP beside WebSocket: request bodies (Content-Length and chunked, capped
//! with 413), keep-alive and pipelining, answers later from another thread
//! (by closure or by id), event streams answered later, timeouts.

mod common;

use common::Client;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use volley::{
    ConnId, Fetch, Handler, Message, Options, Request, Response, SendStatus, Server, ServerHandle,
    Upgrade,
};

struct Web {
    server: Arc<OnceLock<ServerHandle>>,
    ids: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for Web {
    type Data = ();

    fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        self.ids.lock().unwrap().push(req.id());
        let body = req.body().to_vec();
        let method = req.method().to_string();
        match req.path() {
            "/echo" => Response::new(200, [method.as_bytes(), b" ", &body].concat())
                .header("X-Id", format!("{:?}", req.id()))
                .into(),
            "/defer" => Fetch::defer(move |pending| {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    pending.respond(Response::new(201, [b"later ", &body[..]].concat()));
                });
            }),
            "/later" => {
                let server = self.server.get().unwrap().clone();
                let id = req.id();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(30));
                    assert!(server.respond(id, Response::new(202, "by id")));
                });
                Fetch::Later
            }
            "/events-later" => {
                let server = self.server.get().unwrap().clone();
                let id = req.id();
                std::thread::spawn(move || {
                    server.respond(id, Response::event_stream(["news"]));
                });
                Fetch::Later
            }
            "/stream-later" => {
                // An event stream answered from another thread and written
                // to by id at once: text as events, binary as given, then
                // ended with close.
                let server = self.server.get().unwrap().clone();
                let id = req.id();
                std::thread::spawn(move || {
                    server.respond(id, Response::event_stream(Vec::<&str>::new()));
                    let raw = Message::Binary(b"event: raw\ndata: as given\n\n");
                    assert!(server.send(id, "one\ntwo\rthree", None).as_bun() > 0);
                    assert!(server.send(id, raw, None).as_bun() != 0);
                    assert!(server.ws(id).close(1000, ""));
                    // Ended: later sends are dropped.
                    std::thread::sleep(Duration::from_millis(100));
                    assert_eq!(server.send(id, "late", None), SendStatus::Dropped);
                });
                Fetch::Later
            }
            "/body-later" => {
                // A streamed body (Bun's ReadableStream response): its head
                // at once, then bytes by id as they come, ended by close.
                let server = self.server.get().unwrap().clone();
                let id = req.id();
                std::thread::spawn(move || {
                    let head =
                        Response::stream(200).header("Content-Type", "text/plain; charset=utf-8");
                    assert!(server.respond(id, head));
                    assert!(server.send(id, "first line\n", None).as_bun() > 0);
                    std::thread::sleep(Duration::from_millis(200));
                    assert!(server.send(id, Message::Binary(b"second\n"), None).as_bun() > 0);
                    assert!(server.ws(id).close(1000, ""));
                });
                Fetch::Later
            }
            "/never" => Fetch::Later,
            _ => Fetch::Pass,
        }
    }
}

fn start(opts: Options) -> Server {
    start_with_ids(opts).0
}

fn start_with_ids(opts: Options) -> (Server, Arc<Mutex<Vec<ConnId>>>) {
    let cell = Arc::new(OnceLock::new());
    let ids = Arc::new(Mutex::new(Vec::new()));
    let s = Server::builder()
        .options(opts)
        .route("/ws")
        .route("/echo")
        .route("/defer")
        .route("/later")
        .route("/events-later")
        .route("/stream-later")
        .route("/body-later")
        .route("/never")
        .serve(Web {
            server: cell.clone(),
            ids: ids.clone(),
        })
        .unwrap();
    cell.set(s.handle()).unwrap();
    (s, ids)
}

#[test]
fn bodies_by_length_and_chunked_on_one_keep_alive_connection() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    let a = c.read_http_response();
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    assert!(a.contains("Connection: keep-alive\r\n"));
    assert!(a.ends_with("\r\n\r\nPOST hello"), "{a}");
    c.write(b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n");
    let b = c.read_http_response();
    assert!(b.ends_with("\r\n\r\nPUT abcdefg"), "{b}");
    // Each request had its own id.
    let id = |r: &str| {
        r.lines()
            .find(|l| l.starts_with("X-Id"))
            .unwrap()
            .to_string()
    };
    assert_ne!(id(&a), id(&b));
    c.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let last = c.read_http_response();
    assert!(last.contains("Connection: close\r\n"));
    c.expect_eof();
}

#[test]
fn pipelined_requests_are_answered_in_order_even_when_deferred() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"POST /defer HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nAGET /later HTTP/1.1\r\nHost: x\r\n\r\nHEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    let a = c.read_http_response();
    assert!(
        a.starts_with("HTTP/1.1 201 ") && a.ends_with("later A"),
        "{a}"
    );
    let b = c.read_http_response();
    assert!(
        b.starts_with("HTTP/1.1 202 ") && b.ends_with("by id"),
        "{b}"
    );
    let head = c.read_head();
    assert!(
        head.starts_with("HTTP/1.1 200 ") && head.contains("Content-Length: 5\r\n"),
        "{head}"
    );
    // HEAD: the length of the body, not the body; then an upgrade on the same connection.
    c.write(common::upgrade_request("/ws", "").as_bytes());
    assert!(c.read_head().starts_with("HTTP/1.1 101 "));
    c.text("x");
}

#[test]
fn a_body_past_the_limit_is_refused_with_413() {
    let s = start(Options {
        max_body_bytes: 1000,
        ..Options::default()
    });
    let mut c = Client::raw(s.local_addr());
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n");
    assert!(c.read_http_response().starts_with("HTTP/1.1 413 "));
    let mut c = Client::raw(s.local_addr());
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n");
    c.write(&[b'z'; 1000]);
    c.write(b"\r\n1\r\nz\r\n0\r\n\r\n");
    assert!(c.read_http_response().starts_with("HTTP/1.1 413 "));
    let mut c = Client::raw(s.local_addr());
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(c.read_http_response().starts_with("HTTP/1.1 400 "));
}

#[test]
fn expect_100_continue_gets_its_interim_answer() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(c.read_head(), "HTTP/1.1 100 Continue\r\n\r\n");
    c.write(b"ok");
    assert!(c.read_http_response().ends_with("POST ok"));
}

#[test]
fn http_1_0_closes_after_its_answer() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /echo HTTP/1.0\r\n\r\n");
    assert!(c.read_http_response().contains("Connection: close\r\n"));
    c.expect_eof();
}

#[test]
fn an_unanswered_request_gets_503_at_the_request_timeout() {
    let s = start(Options {
        request_timeout: Duration::from_millis(200),
        ..Options::default()
    });
    let mut c = Client::raw(s.local_addr());
    let t = std::time::Instant::now();
    c.write(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.read_http_response().starts_with("HTTP/1.1 503 "));
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[test]
fn an_event_stream_answered_later_receives_publishes() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /events-later HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    let head = c.read_head();
    assert!(head.contains("Content-Type: text/event-stream"), "{head}");
    let t = std::time::Instant::now();
    while s.subscriber_count("news") == 0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    s.publish("news", "fresh");
    let mut got = String::new();
    while !got.contains("data: fresh\n\n") {
        let mut b = [0u8; 256];
        let n = std::io::Read::read(&mut c.sock, &mut b).unwrap();
        assert!(n > 0);
        got.push_str(&String::from_utf8_lossy(&b[..n]));
    }
}

#[test]
fn an_event_stream_takes_sends_by_id_right_after_the_answer_and_ends_on_close() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /stream-later HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    // No length: the response is read to EOF, which the close gives.
    let r = c.read_http_response();
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Type: text/event-stream"), "{head}");
    assert_eq!(
        body,
        ": volley\n\ndata: one\ndata: two\ndata: three\n\nevent: raw\ndata: as given\n\n"
    );
}

#[test]
fn a_streamed_body_goes_out_as_it_is_sent_and_ends_on_close() {
    let s = start(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /body-later HTTP/1.1\r\nHost: x\r\n\r\n");
    // The head and the first chunk arrive while the body is still being
    // written (the second comes 200 ms later).
    let t = std::time::Instant::now();
    let mut got = Vec::new();
    while !got.ends_with(b"first line\n") {
        let mut b = [0u8; 256];
        let n = std::io::Read::read(&mut c.sock, &mut b).unwrap();
        assert!(
            n > 0,
            "EOF before the first chunk: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&b[..n]);
    }
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "first chunk held back"
    );
    let text = String::from_utf8(got).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(!head.contains("Content-Length"), "{head}");
    // No keep-alive comment or event framing: the bytes as sent, then EOF.
    assert_eq!(body, "first line\n");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut c.sock, &mut rest).unwrap();
    assert_eq!(rest, b"second\n");
}

#[test]
fn a_late_answer_never_lands_on_the_next_request() {
    // The connection's first request was answered and it moved on to its
    // next: an answer with the first request's id is refused there.
    let (s, ids) = start_with_ids(Options::default());
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.read_http_response().starts_with("HTTP/1.1 200 "));
    c.write(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
    let t = std::time::Instant::now();
    while ids.lock().unwrap().len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (first, second) = {
        let ids = ids.lock().unwrap();
        (ids[0], ids[1])
    };
    assert_ne!(first, second);
    s.respond(first, Response::new(200, "stale"));
    s.respond(second, Response::new(200, "fresh"));
    let r = c.read_http_response();
    assert!(r.ends_with("\r\n\r\nfresh"), "{r}");
}

/// The framing table (RFC 9112 §6.1, §6.3, §7.1, and the well-known request
/// smuggling variants): each request goes to a fresh keep-alive connection
/// with a second request right behind it in the same write. An accepted
/// body is echoed exactly and the next request is answered on its own (the
/// body ended where the server said); a refused one gets its status and the
/// connection closes, so nothing behind it is ever read as a request.
pub const FRAMING_CASES: &[(&str, &[u8], u16, &str)] = &[
    // Accepted.
    (
        "Content-Length",
        b"Content-Length: 5\r\n\r\nhello",
        200,
        "hello",
    ),
    (
        "Content-Length twice, same value",
        b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        200,
        "hello",
    ),
    (
        "Content-Length with OWS",
        b"Content-Length:  5 \r\n\r\nhello",
        200,
        "hello",
    ),
    (
        "chunked",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        200,
        "hello",
    ),
    (
        "chunked, any case",
        b"Transfer-Encoding: ChUnKeD\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        200,
        "hello",
    ),
    (
        "chunked after an empty list element",
        b"Transfer-Encoding: , chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        200,
        "hello",
    ),
    (
        "chunk extensions, token and quoted",
        b"Transfer-Encoding: chunked\r\n\r\n5 ; a=b ;c=\"x;\\\"y\"\r\nhello\r\n0;z\r\n\r\n",
        200,
        "hello",
    ),
    (
        "upper-case hex size",
        b"Transfer-Encoding: chunked\r\n\r\nA\r\nhelloworld\r\n0\r\n\r\n",
        200,
        "helloworld",
    ),
    (
        "a trailer",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Empty:\r\n\r\n",
        200,
        "hello",
    ),
    // CL.TE / TE.CL: both framings at once.
    (
        "Content-Length and chunked (CL.TE)",
        b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
        400,
        "",
    ),
    (
        "chunked and Content-Length (TE.CL)",
        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        400,
        "",
    ),
    // TE.TE: obfuscated Transfer-Encoding values.
    (
        "Transfer-Encoding not UTF-8, with Content-Length",
        b"Transfer-Encoding: \xffchunked\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "",
    ),
    (
        "Transfer-Encoding not a token",
        b"Transfer-Encoding: \xffchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "Transfer-Encoding empty",
        b"Transfer-Encoding: \r\nContent-Length: 0\r\n\r\n",
        400,
        "",
    ),
    (
        "Transfer-Encoding empty, alone",
        b"Transfer-Encoding: \r\n\r\n",
        400,
        "",
    ),
    (
        "Transfer-Encoding only commas",
        b"Transfer-Encoding: , ,\r\n\r\n",
        400,
        "",
    ),
    (
        "Transfer-Encoding xchunked",
        b"Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "Transfer-Encoding chunked;param",
        b"Transfer-Encoding: chunked;q=1\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunked not last",
        b"Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunked twice",
        b"Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunked then a second header",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunked with a vertical tab",
        b"Transfer-Encoding: chunked\x0b\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "a coding before chunked",
        b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        501,
        "",
    ),
    // Content-Length variants.
    (
        "Content-Length with a plus",
        b"Content-Length: +5\r\n\r\nhello",
        400,
        "",
    ),
    (
        "Content-Length negative",
        b"Content-Length: -5\r\n\r\nhello",
        400,
        "",
    ),
    (
        "Content-Length with leading zeros",
        b"Content-Length: 005\r\n\r\nhello",
        400,
        "",
    ),
    (
        "Content-Length as a list",
        b"Content-Length: 5, 5\r\n\r\nhello",
        400,
        "",
    ),
    (
        "Content-Length hex",
        b"Content-Length: 0x5\r\n\r\nhello",
        400,
        "",
    ),
    (
        "Content-Length with inner space",
        b"Content-Length: 5 5\r\n\r\nhello",
        400,
        "",
    ),
    (
        "two different Content-Lengths",
        b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        "",
    ),
    (
        "Content-Length past 64 bits",
        b"Content-Length: 99999999999999999999999\r\n\r\n",
        400,
        "",
    ),
    // Chunked body grammar.
    (
        "chunk size line ends at a bare LF",
        b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk size CR then junk",
        b"Transfer-Encoding: chunked\r\n\r\n5\rX\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk size with inner space",
        b"Transfer-Encoding: chunked\r\n\r\n1 2\r\nx\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk size 0x prefix",
        b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk size empty",
        b"Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk extension without a name",
        b"Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk extension name with a space",
        b"Transfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk extension unterminated quote",
        b"Transfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk data longer than its size",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "chunk data ends at a bare LF",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
        400,
        "",
    ),
    (
        "trailer folded (obs-fold)",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: a\r\n b\r\n\r\n",
        400,
        "",
    ),
    (
        "trailer without a colon",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\nXYZ\r\n\r\n",
        400,
        "",
    ),
    (
        "trailer line ends at a bare LF",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: a\n\r\n",
        400,
        "",
    ),
    (
        "body ends at a bare LF",
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\n",
        400,
        "",
    ),
    // Header lines (already refused by the head parser; kept in the table).
    (
        "whitespace before the colon (TE.TE)",
        b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "",
    ),
    (
        "obs-fold in a header",
        b"X-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello",
        400,
        "",
    ),
    (
        "Transfer-Encoding folded onto a second line",
        b"Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
        "",
    ),
];

#[test]
fn the_framing_table() {
    let s = start(Options::default());
    let next = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut wrong = Vec::new();
    let mut check = |name: &str, req: Vec<u8>, status: u16, body: &str| {
        let mut c = Client::raw(s.local_addr());
        c.write(&[&req[..], next].concat());
        let r = c.read_http_response();
        let got: u16 = r.get(9..12).and_then(|x| x.parse().ok()).unwrap_or(0);
        if got != status {
            wrong.push(format!("{name}: status {got}, want {status}: {r:?}"));
            return;
        }
        if status == 200 {
            if !r.ends_with(&format!("\r\n\r\nPOST {body}")) {
                wrong.push(format!("{name}: body {r:?}, want {body:?}"));
            }
            let after = c.read_http_response();
            if !after.ends_with("\r\n\r\nGET ") {
                wrong.push(format!("{name}: the next request was misread: {after:?}"));
            }
        } else {
            // Refused: the connection closes; what followed is never a request.
            let after = c.read_http_response();
            if !after.is_empty() {
                wrong.push(format!("{name}: answered after the refusal: {after:?}"));
            }
        }
    };
    for &(name, rest, status, body) in FRAMING_CASES {
        check(
            name,
            [&b"POST /echo HTTP/1.1\r\nHost: x\r\n"[..], rest].concat(),
            status,
            body,
        );
    }
    // HTTP/1.0 has no chunked (RFC 9112 §6.1).
    check(
        "chunked in HTTP/1.0",
        b"POST /echo HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
        400,
        "",
    );
    // An upgrade request has no body: one that declares one is refused
    // rather than having its "body" read as WebSocket frames.
    check(
        "an upgrade with a body",
        format!(
            "{}hello",
            common::upgrade_request("/ws", "Content-Length: 5\r\n")
        )
        .into_bytes(),
        400,
        "",
    );
    assert!(
        wrong.is_empty(),
        "{} of the framing cases went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A client that pipelines requests and never reads holds at most about
/// `backpressure_limit` of answers: the connection stops being read (and
/// answered) while its queued output is past the limit, and goes on once
/// the client reads. Before, 30 MB of requests queued 210 MB of answers.
#[test]
fn pipelining_without_reading_holds_bounded_memory() {
    let limit = 1 << 20;
    let s = start(Options {
        backpressure_limit: limit,
        workers: 1,
        ..Options::default()
    });
    let mut c = Client::raw(s.local_addr());
    let mut w = c.sock.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let writer = std::thread::spawn(move || {
        let reqs = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2048);
        let mut sent = 0usize;
        while sent < 40 << 20 {
            match std::io::Write::write(&mut w, &reqs) {
                Ok(n) => sent += n,
                Err(_) => break, // the server stopped reading: TCP pushes back
            }
        }
        sent
    });
    let mut peak = 0;
    let t0 = std::time::Instant::now();
    while !writer.is_finished() || t0.elapsed() < Duration::from_secs(1) {
        peak = peak.max(
            s.stats()
                .buffered
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(t0.elapsed() < Duration::from_secs(60));
    }
    let sent = writer.join().unwrap();
    assert!(
        sent < 40 << 20,
        "the server read all {sent} bytes of requests"
    );
    assert!(
        peak < 2 * limit as u64,
        "{peak} bytes of answers queued for one client (limit {limit})"
    );
    // Reading resumes the answers: far more than the limit comes through.
    let mut got = 0;
    while got < 4 * limit {
        let r = c.read_http_response();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r:?}");
        got += r.len();
    }
}

/// A Server-Sent Events client that stops reading (a half-open peer looks
/// the same) is dropped once its queued events have not moved for
/// `send_timeout`, with `sse_keepalive` off (before, nothing ever timed
/// the stream out).
#[test]
fn an_event_stream_nobody_reads_is_dropped_after_send_timeout() {
    let s = start(Options {
        send_timeout: Duration::from_millis(500),
        sse_keepalive: Duration::ZERO,
        backpressure_limit: 64 << 20,
        ..Options::default()
    });
    let mut c = Client::raw(s.local_addr());
    c.write(b"GET /events-later HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    let head = c.read_head();
    assert!(head.contains("text/event-stream"), "{head}");
    let t = std::time::Instant::now();
    while s.subscriber_count("news") == 0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    // Publish until the client's socket buffers are full and past, then
    // wait: the stream must end (its subscriber gone) without a read.
    let big = "x".repeat(60_000);
    let t = std::time::Instant::now();
    while s.subscriber_count("news") > 0 {
        if t.elapsed() < Duration::from_secs(3) {
            s.publish("news", big.as_str());
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the stream was kept with nobody reading"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(c);
}

/// Bun's `closeIdleConnections` (checked on Bun 1.4.5: three keep-alive
/// connections that had each been answered, and one mid-request: it
/// returned 3 and closed those three): idle keep-alive connections close,
/// a request on its way in, a request waiting for its answer and an open
/// WebSocket are untouched.
#[test]
fn close_idle_connections_closes_only_keep_alive_connections_between_requests() {
    let s = start(Options {
        workers: 2,
        ..Options::default()
    });
    let addr = s.local_addr();
    let mut idle: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::raw(addr);
            c.write(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(c.read_http_response().starts_with("HTTP/1.1 200 "));
            c
        })
        .collect();
    let mut partial = Client::raw(addr);
    partial.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel");
    let mut waiting = Client::raw(addr);
    waiting.write(b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut ws = Client::connect(addr, "/ws");
    let t0 = std::time::Instant::now();
    while s.connections() < 6 {
        assert!(t0.elapsed() < Duration::from_secs(5), "{}", s.connections());
        std::thread::sleep(Duration::from_millis(5));
    }
    // Time for the workers to read what was written (the partial head).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.handle().close_idle_connections(), Some(3));
    for c in &mut idle {
        c.expect_eof();
    }
    partial.write(b"lo");
    assert!(partial.read_http_response().ends_with("\r\n\r\nPOST hello"));
    ws.frame(true, volley::proto::frame::OpCode::Ping, b"still");
    let pong = ws.read_frame().unwrap();
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (volley::proto::frame::OpCode::Pong, &b"still"[..])
    );
    // The waiting request, the partial one (keep-alive again, so idle now)
    // and the WebSocket: only the answered one is idle.
    assert_eq!(s.handle().close_idle_connections(), Some(1));
    partial.expect_eof();
    assert_eq!(s.connections(), 2);
    drop(waiting);
}
