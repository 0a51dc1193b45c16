//! The real connection path: a worker (run turn by turn in this thread)
//! serves one loopback TCP connection per input. The first byte picks a
//! request head and how the client writes; the rest is the client's bytes,
//! as they are (`raw`) or built into masked frames from
//! (flags, length, payload) records so that the fuzzer reaches deep into
//! the frame, deflate and pub/sub code. Invariants: no panic; everything
//! the server wrote is legal (HTTP responses, then unmasked legal frames,
//! legal close codes, UTF-8 text, nothing after the close frame); the
//! connection is gone afterwards.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use volley::harness::{Harness, check_output};

const HEADS: [&str; 5] = [
    "GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n",
    "",
];

thread_local! {
    static H: RefCell<Harness> = RefCell::new(Harness::new().expect("harness"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let head = HEADS[usize::from(sel) % HEADS.len()];
    let framed = sel & 0x80 != 0;
    let split = usize::from(sel >> 3 & 0x0f) * 7 + 1;
    let mut input = head.as_bytes().to_vec();
    if framed && !head.is_empty() && !head.starts_with("POST") {
        frames(body, &mut input);
    } else {
        input.extend_from_slice(body);
    }
    let out = H.with(|h| {
        let mut h = h.borrow_mut();
        let out = h.exchange(&input, split).expect("loopback");
        assert_eq!(h.connections(), 0, "the connection was not reaped");
        out
    });
    if let Err(e) = check_output(&out) {
        panic!("illegal server output: {e}\n{:?}", String::from_utf8_lossy(&out));
    }
});

/// Masked client frames from (flags, len, payload) records.
fn frames(mut data: &[u8], out: &mut Vec<u8>) {
    let key = [0x11, 0x22, 0x33, 0x44];
    while data.len() >= 2 {
        let (flags, len) = (data[0], usize::from(data[1]));
        data = &data[2..];
        let len = len.min(data.len());
        let (payload, rest) = data.split_at(len);
        data = rest;
        // fin, rsv1 and the opcode from the flags; lengths as the fuzzer says.
        out.push(flags & 0xcf);
        if len < 126 {
            out.push(0x80 | len as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
}
