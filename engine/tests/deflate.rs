//! permessage-deflate end to end with a raw client: negotiation, compressed
//! echo, fragmented compressed messages, bombs, corrupt data, RSV1 rules,
//! and one compression per publish for a group of subscribers.

mod common;

use common::Client;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use volley::proto::deflate::{Deflater, Inflater};
use volley::proto::frame::OpCode;
use volley::{
    Deflate, DeflateMode, Handler, Message, Options, Request, Server, Upgrade, WebSocket,
};

struct Echo;
impl Handler for Echo {
    type Data = ();
    fn upgrade(&self, _r: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn open(&self, ws: &mut WebSocket<'_, ()>) {
        ws.subscribe("room");
    }
    fn message(&self, ws: &mut WebSocket<'_, ()>, m: Message<'_>) {
        ws.send(m);
    }
}

const MAX: usize = 1 << 20;

fn server(mode: DeflateMode) -> Server {
    server_with(mode, Options::default().workers)
}

fn server_with(mode: DeflateMode, workers: usize) -> Server {
    Server::builder()
        .options(Options {
            workers,
            max_payload_length: MAX,
            per_message_deflate: Some(Deflate {
                compress: mode,
                decompress: mode,
                threshold: 0,
                ..Deflate::default()
            }),
            ..Options::default()
        })
        .serve(Echo)
        .unwrap()
}

fn ext(offer: &str) -> String {
    format!("Sec-WebSocket-Extensions: {offer}\r\n")
}

fn agreed_header(head: &str) -> Option<String> {
    head.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-extensions:")
        })
        .map(|l| l.split_once(':').unwrap().1.trim().to_string())
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut z = Vec::new();
    Deflater::new(6, 15, true).compress(data, &mut z);
    z
}

fn inflate(z: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Inflater::new(15, true)
        .inflate(z, &mut out, 64 << 20)
        .unwrap();
    out
}

#[test]
fn negotiation_answers_each_offer() {
    let s = server(DeflateMode::Shared);
    let a = s.local_addr();
    let cases = [
        (
            "permessage-deflate",
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; client_max_window_bits",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15",
            ),
        ),
        (
            "permessage-deflate; server_max_window_bits=11, permessage-deflate",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11",
            ),
        ),
        // Malformed or unknown: declined, the upgrade still succeeds without it.
        ("permessage-deflate; server_max_window_bits=99", None),
        ("permessage-deflate; nope=1", None),
        (
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            None,
        ),
        ("x-unknown-extension", None),
    ];
    for (offer, want) in cases {
        let (_c, head) = Client::connect_with(a, "/", &ext(offer));
        assert_eq!(agreed_header(&head).as_deref(), want, "offer {offer:?}");
    }
    // A server without the option never agrees.
    let plain = Server::builder().serve(Echo).unwrap();
    let (_c, head) = Client::connect_with(plain.local_addr(), "/", &ext("permessage-deflate"));
    assert_eq!(agreed_header(&head), None);
}

#[test]
fn compressed_echo_whole_and_fragmented() {
    for mode in [DeflateMode::Shared, DeflateMode::Dedicated] {
        let s = server(mode);
        let (mut c, head) = Client::connect_with(s.local_addr(), "/", &ext("permessage-deflate"));
        assert!(agreed_header(&head).is_some());
        // One inflater for the connection: dedicated mode keeps context.
        let mut inf = Inflater::new(15, false);
        let mut inflate = |z: &[u8]| {
            let mut out = Vec::new();
            inf.inflate(z, &mut out, 64 << 20).unwrap();
            out
        };
        for msg in ["", "hello", &"volley ".repeat(5000), "hello", "hello"] {
            let z = compress(msg.as_bytes());
            c.frame_ext(true, true, OpCode::Text, &z, true);
            let f = c.read_frame().unwrap();
            assert_eq!(f.opcode, OpCode::Text);
            assert_eq!(inflate(&f.payload), msg.as_bytes(), "{mode:?}");
        }
        // Fragmented: RSV1 on the first frame only.
        let z = compress("fragmented message ".repeat(100).as_bytes());
        let (a, b) = z.split_at(z.len() / 2);
        c.frame_ext(false, true, OpCode::Binary, a, true);
        c.frame(true, OpCode::Continuation, b);
        let f = c.read_frame().unwrap();
        assert_eq!(
            inflate(&f.payload),
            "fragmented message ".repeat(100).as_bytes()
        );
    }
}

fn expect_close_after(send: impl FnOnce(&mut Client), code: u16) {
    let s = server(DeflateMode::Shared);
    let (mut c, _) = Client::connect_with(s.local_addr(), "/", &ext("permessage-deflate"));
    let mut canary = Client::connect_with(s.local_addr(), "/", &ext("permessage-deflate")).0;
    send(&mut c);
    c.expect_close(code);
    canary.text("still here");
    assert_eq!(
        inflate(&canary.read_frame().unwrap().payload),
        b"still here"
    );
}

#[test]
fn a_bomb_is_refused_with_1009_quickly() {
    // 64 MiB of zeros compress to about 64 KB; the limit is 1 MiB.
    let zeros = vec![0u8; 64 << 20];
    let mut z = Vec::new();
    Deflater::new(9, 15, true).compress(&zeros, &mut z);
    drop(zeros);
    assert!(z.len() < MAX, "the bomb itself fits the limit: {}", z.len());
    let t = Instant::now();
    expect_close_after(|c| c.frame_ext(true, true, OpCode::Binary, &z, true), 1009);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn corrupt_compressed_data_closes_1007() {
    expect_close_after(
        |c| c.frame_ext(true, true, OpCode::Binary, &[0xFF; 16], true),
        1007,
    );
}

#[test]
fn compressed_text_that_is_not_utf8_closes_1007() {
    let z = compress(b"bad \xff\xfe text");
    expect_close_after(|c| c.frame_ext(true, true, OpCode::Text, &z, true), 1007);
}

#[test]
fn rsv1_on_continuation_or_control_closes_1002() {
    expect_close_after(
        |c| {
            c.frame_ext(false, true, OpCode::Text, &compress(b"ab"), true);
            c.frame_ext(true, true, OpCode::Continuation, b"x", true);
        },
        1002,
    );
    expect_close_after(|c| c.frame_ext(true, true, OpCode::Ping, b"", true), 1002);
}

#[test]
fn rsv1_without_agreement_closes_1002() {
    let s = server(DeflateMode::Shared);
    let mut c = Client::connect(s.local_addr(), "/"); // no offer
    c.frame_ext(true, true, OpCode::Text, &compress(b"x"), true);
    c.expect_close(1002);
}

#[test]
fn a_publish_is_compressed_once_for_a_group() {
    for mode in [DeflateMode::Shared, DeflateMode::Dedicated] {
        // One worker: all 20 subscribers share it, so the group rule applies
        // to all of them (with several workers each worker groups its own).
        let s = server_with(mode, 1);
        let mut subs: Vec<Client> = (0..20)
            .map(|_| Client::connect_with(s.local_addr(), "/", &ext("permessage-deflate")).0)
            .collect();
        let t = Instant::now();
        while s.subscriber_count("room") < 20 {
            assert!(t.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = s.stats().compressions.load(Ordering::Relaxed);
        let text = "price update ".repeat(80);
        for _ in 0..10 {
            s.publish("room", text.as_str());
        }
        for c in &mut subs {
            let mut inf = Inflater::new(15, false); // the client's own context
            for _ in 0..10 {
                let f = c.read_frame().unwrap();
                let mut out = Vec::new();
                inf.inflate(&f.payload, &mut out, 1 << 20).unwrap();
                assert_eq!(out, text.as_bytes(), "{mode:?}");
            }
        }
        // One deflate per publish, not per subscriber.
        assert_eq!(
            s.stats().compressions.load(Ordering::Relaxed) - before,
            10,
            "{mode:?}"
        );
    }
}
