//! Hostile and malformed input: every rule gives its close code or HTTP
//! status, nothing panics, and a canary connection on the same server keeps
//! working throughout.

mod common;

use common::Echo;
use common::{Client, upgrade_request};
use std::net::SocketAddr;
use volley::proto::frame::OpCode;
use volley::{Options, Server};

const MAX: usize = 64 * 1024;

fn server() -> Server {
    let opts = Options {
        max_payload_length: MAX,
        max_header_bytes: 4096,
        max_headers: 16,
        ..Options::default()
    };
    Server::builder()
        .options(opts)
        .route("/echo")
        .serve(Echo)
        .unwrap()
}

/// Run `bad` against a fresh server while a canary connection stays open,
/// then check the canary still echoes.
fn with_canary(bad: impl FnOnce(SocketAddr)) {
    let s = server();
    let addr = s.local_addr();
    let mut canary = Client::connect(addr, "/echo");
    canary.text("before");
    assert_eq!(canary.read_frame().unwrap().payload, b"before");
    bad(addr);
    canary.text("after");
    let f = canary.read_frame().expect("canary still served");
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (OpCode::Text, &b"after"[..])
    );
}

fn frame_case(expect: u16, send: impl FnOnce(&mut Client)) {
    with_canary(|addr| {
        let mut c = Client::connect(addr, "/echo");
        send(&mut c);
        c.expect_close(expect);
    });
}

#[test]
fn unmasked_frame_closes_1002() {
    frame_case(1002, |c| {
        c.frame_ext(true, false, OpCode::Text, b"hi", false)
    });
}

#[test]
fn rsv1_without_extension_closes_1002() {
    frame_case(1002, |c| c.frame_ext(true, true, OpCode::Text, b"hi", true));
}

#[test]
fn rsv2_rsv3_close_1002() {
    // Hand-made header: FIN|RSV2|Text, masked, len 0.
    frame_case(1002, |c| c.write(&[0x80 | 0x20 | 0x1, 0x80, 1, 2, 3, 4]));
    frame_case(1002, |c| c.write(&[0x80 | 0x10 | 0x2, 0x80, 1, 2, 3, 4]));
}

#[test]
fn reserved_opcodes_close_1002() {
    for op in [3u8, 7, 0xB, 0xF] {
        frame_case(1002, |c| c.write(&[0x80 | op, 0x80, 1, 2, 3, 4]));
    }
}

#[test]
fn control_frame_over_125_closes_1002() {
    frame_case(1002, |c| c.frame(true, OpCode::Ping, &[0u8; 126]));
}

#[test]
fn fragmented_control_frame_closes_1002() {
    frame_case(1002, |c| c.frame(false, OpCode::Ping, b"x"));
}

#[test]
fn continuation_without_message_closes_1002() {
    frame_case(1002, |c| c.frame(true, OpCode::Continuation, b"x"));
}

#[test]
fn new_message_inside_fragmented_one_closes_1002() {
    frame_case(1002, |c| {
        c.frame(false, OpCode::Text, b"a");
        c.frame(true, OpCode::Binary, b"b");
    });
}

#[test]
fn length_with_top_bit_closes_1002() {
    frame_case(1002, |c| {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        c.write(&h);
    });
}

#[test]
fn non_minimal_length_closes_1002() {
    frame_case(1002, |c| {
        c.write(&[0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4, 0, 0, 0, 0, 0])
    });
}

#[test]
fn oversized_header_closes_1009_before_payload() {
    // Only the header of a 2^62-byte frame is sent: the close comes anyway.
    frame_case(1009, |c| {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&(1u64 << 62).to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        c.write(&h);
    });
}

#[test]
fn fragments_over_the_limit_close_1009() {
    frame_case(1009, |c| {
        c.frame(false, OpCode::Binary, &vec![0u8; MAX / 2]);
        c.frame(false, OpCode::Continuation, &vec![0u8; MAX / 2]);
        c.frame(true, OpCode::Continuation, b"x");
    });
}

#[test]
fn message_at_the_limit_is_echoed() {
    with_canary(|addr| {
        let mut c = Client::connect(addr, "/echo");
        c.frame(true, OpCode::Binary, &vec![7u8; MAX]);
        assert_eq!(c.read_frame().unwrap().payload.len(), MAX);
    });
}

#[test]
fn invalid_utf8_closes_1007() {
    frame_case(1007, |c| c.frame(true, OpCode::Text, b"ok\xc3\x28"));
}

#[test]
fn invalid_utf8_across_fragments_closes_1007() {
    frame_case(1007, |c| {
        c.frame(false, OpCode::Text, b"\xf0\x9f");
        c.frame(true, OpCode::Continuation, b"\x98x");
    });
}

#[test]
fn invalid_utf8_fails_fast_mid_frame() {
    // A 1000-byte text frame of which only the bad start is sent.
    frame_case(1007, |c| {
        let key = [1u8, 2, 3, 4];
        let mut h = vec![0x81, 0x80 | 126];
        h.extend_from_slice(&1000u16.to_be_bytes());
        h.extend_from_slice(&key);
        let mut p = b"abc\xed\xa0\x80".to_vec();
        volley::proto::mask::apply_mask(&mut p, key, 0);
        h.extend_from_slice(&p);
        c.write(&h);
    });
}

#[test]
fn unfinished_code_point_at_message_end_closes_1007() {
    frame_case(1007, |c| c.frame(true, OpCode::Text, b"ab\xe2\x82"));
}

#[test]
fn close_with_one_byte_closes_1002() {
    frame_case(1002, |c| c.frame(true, OpCode::Close, b"\x03"));
}

#[test]
fn close_with_illegal_codes_closes_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        frame_case(1002, |c| c.frame(true, OpCode::Close, &code.to_be_bytes()));
    }
}

#[test]
fn close_with_invalid_utf8_reason_closes_1007() {
    frame_case(1007, |c| c.frame(true, OpCode::Close, b"\x03\xe8\xff\xfe"));
}

#[test]
fn valid_close_codes_are_echoed() {
    for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
        frame_case(code, |c| c.frame(true, OpCode::Close, &code.to_be_bytes()));
    }
}

#[test]
fn empty_close_gets_an_empty_close() {
    with_canary(|addr| {
        let mut c = Client::connect(addr, "/echo");
        c.frame(true, OpCode::Close, b"");
        let f = c.read_frame().unwrap();
        assert_eq!((f.opcode, f.payload.len()), (OpCode::Close, 0));
        c.expect_eof();
    });
}

// ---- bad upgrades ---------------------------------------------------------

fn http_case(req: &str, status: u16) -> String {
    let mut out = String::new();
    with_canary(|addr| {
        let mut c = Client::raw(addr);
        c.write(req.as_bytes());
        out = c.read_http_response();
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status} ")),
            "wanted {status} for {req:?}, got {out:?}"
        );
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        assert!(
            !body.trim().is_empty() || status == 431,
            "a reason in the body: {out:?}"
        );
    });
    out
}

fn good() -> String {
    upgrade_request("/echo", "")
}

#[test]
fn upgrade_with_post_is_400() {
    http_case(&good().replacen("GET", "POST", 1), 400);
}

#[test]
fn upgrade_over_http10_is_400() {
    http_case(&good().replacen("HTTP/1.1", "HTTP/1.0", 1), 400);
}

#[test]
fn upgrade_without_host_is_400() {
    http_case(&good().replacen("Host: localhost\r\n", "", 1), 400);
}

#[test]
fn upgrade_without_connection_upgrade_is_400() {
    http_case(
        &good().replacen("Connection: Upgrade", "Connection: keep-alive", 1),
        400,
    );
}

#[test]
fn upgrade_with_tokens_in_any_case_and_list_is_accepted() {
    with_canary(|addr| {
        let req = good()
            .replacen("Upgrade: websocket", "UPGRADE: WebSocket", 1)
            .replacen("Connection: Upgrade", "connection: keep-alive, UPGRADE", 1);
        let mut c = Client::raw(addr);
        c.write(req.as_bytes());
        assert!(c.read_head().starts_with("HTTP/1.1 101 "));
    });
}

#[test]
fn bad_keys_are_400() {
    http_case(&good().replacen(common::KEY, "c2hvcnQ=", 1), 400);
    http_case(&good().replacen(common::KEY, "@@@@", 1), 400);
    http_case(
        &good().replacen(&format!("Sec-WebSocket-Key: {}\r\n", common::KEY), "", 1),
        400,
    );
}

#[test]
fn wrong_version_is_426_naming_13() {
    let out = http_case(&good().replacen("Version: 13", "Version: 8", 1), 426);
    assert!(out.contains("Sec-WebSocket-Version: 13\r\n"), "{out}");
    http_case(
        &good().replacen("Sec-WebSocket-Version: 13\r\n", "", 1),
        426,
    );
}

#[test]
fn oversized_head_is_431() {
    let req = good().replacen(
        "\r\n\r\n",
        &format!("\r\nX-Big: {}\r\n\r\n", "a".repeat(5000)),
        1,
    );
    http_case(&req, 431);
}

#[test]
fn head_that_never_ends_is_431_once_over_the_limit() {
    with_canary(|addr| {
        let mut c = Client::raw(addr);
        c.write(b"GET /echo HTTP/1.1\r\n");
        for _ in 0..300 {
            if c.sock
                .write_all(b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n")
                .is_err()
            {
                break;
            }
        }
        let out = c.read_http_response();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    });
}

#[test]
fn too_many_headers_is_431() {
    let many: String = (0..20).map(|i| format!("X-{i}: v\r\n")).collect();
    http_case(
        &good().replacen("\r\n\r\n", &format!("\r\n{many}\r\n"), 1),
        431,
    );
}

#[test]
fn garbage_is_400() {
    http_case(
        "\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03garbage\r\n\r\n",
        400,
    );
}

#[test]
fn unknown_path_is_404_and_plain_get_on_ws_route_is_426() {
    http_case(&upgrade_request("/nope", ""), 404);
    let out = http_case("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", 426);
    assert!(out.contains("Sec-WebSocket-Version: 13"));
    http_case("GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 404);
}

#[test]
fn request_split_byte_by_byte_upgrades() {
    with_canary(|addr| {
        let mut c = Client::raw(addr);
        for b in good().as_bytes() {
            c.write(&[*b]);
        }
        assert!(c.read_head().starts_with("HTTP/1.1 101 "));
        c.text("split");
        assert_eq!(c.read_frame().unwrap().payload, b"split");
    });
}

#[test]
fn frames_pipelined_behind_the_request_are_read() {
    with_canary(|addr| {
        let mut c = Client::raw(addr);
        let mut bytes = good().into_bytes();
        // A masked "hi" text frame right behind the head.
        bytes.extend_from_slice(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']);
        c.write(&bytes);
        assert!(c.read_head().starts_with("HTTP/1.1 101 "));
        assert_eq!(c.read_frame().unwrap().payload, b"hi");
    });
}

use std::io::Write as _;

// ---- floods (issue 4's attack list) -----------------------------------------

/// Write `batch` up to `times` times from another thread (stopping at the
/// first error: the server may stop reading once it has decided), while
/// this thread waits a moment and then reads: the close frame must come,
/// with `code`, whatever happened to the writes.
fn flood_expect_close(c: &mut Client, batch: Vec<u8>, times: usize, code: u16) {
    let mut w = c.sock.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..times {
            if w.write_all(&batch).is_err() {
                return;
            }
        }
    });
    // Let the flood build up before reading anything.
    let t = std::time::Instant::now();
    while !writer.is_finished() && t.elapsed() < std::time::Duration::from_millis(1500) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    loop {
        let f = c.read_frame().expect("a close frame before EOF");
        if f.opcode == OpCode::Close {
            assert_eq!(
                u16::from_be_bytes([f.payload[0], f.payload[1]]),
                code,
                "{}",
                String::from_utf8_lossy(&f.payload[2..])
            );
            break;
        }
        assert_eq!(f.opcode, OpCode::Pong, "only pongs before the close");
    }
    drop(c.sock.shutdown(std::net::Shutdown::Both));
    writer.join().unwrap();
}

#[test]
fn unread_ping_flood_is_closed_with_1008_and_stays_bounded() {
    // 100,000 pings of 125 bytes, none of the pongs read while they come:
    // closed once the unsent pongs pass 64 KiB, while the canary keeps working.
    with_canary(|addr| {
        let mut c = Client::connect(addr, "/echo");
        socket2::SockRef::from(&c.sock)
            .set_recv_buffer_size(4096)
            .unwrap();
        let mut ping = Vec::new();
        let key = [9u8, 8, 7, 6];
        ping.extend_from_slice(&[0x89, 0x80 | 125]);
        ping.extend_from_slice(&key);
        ping.extend_from_slice(&[0u8; 125]);
        flood_expect_close(&mut c, ping.repeat(1000), 100, 1008);
    });
}

#[test]
fn a_million_one_byte_fragments_are_refused_with_1008() {
    // Default limits: 16 MiB messages, so the fragment cap (131,072) acts
    // first. (The 64 KiB test server would close at its size limit, 1009.)
    let s = Server::builder().route("/echo").serve(Echo).unwrap();
    let addr = s.local_addr();
    let mut canary = Client::connect(addr, "/echo");
    {
        let mut c = Client::connect(addr, "/echo");
        let key = [1u8, 2, 3, 4];
        let mut frag = vec![0x00, 0x81];
        frag.extend_from_slice(&key);
        frag.push(b'a' ^ key[0]);
        let mut first = frag.clone();
        first[0] = 0x02; // binary, not final
        c.write(&first);
        flood_expect_close(&mut c, frag.repeat(10_000), 100, 1008);
    }
    canary.text("after");
    assert_eq!(canary.read_frame().unwrap().payload, b"after");
}

#[test]
fn a_one_mib_header_block_is_refused_with_431() {
    with_canary(|addr| {
        let mut c = Client::raw(addr);
        let mut req = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1 << 20));
        // The server answers (and closes) long before the megabyte is in.
        let _ = c.sock.write_all(&req);
        let out = c.read_http_response();
        assert!(
            out.starts_with("HTTP/1.1 431 "),
            "{}",
            &out[..out.len().min(80)]
        );
    });
}
