//! The fuzzing harness drives a real worker: check it on known inputs, so
//! the fuzz target's oracle is itself tested.

use volley::harness::{Harness, check_output};

const UP: &str = "GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn masked(op: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | op, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

#[test]
fn an_echo_and_a_close_at_every_split() {
    let mut h = Harness::new().unwrap();
    let mut input = UP.as_bytes().to_vec();
    input.extend(masked(1, b"hello"));
    input.extend(masked(8, &[3, 232]));
    for split in [1, 3, 7, 64, 4096] {
        let out = h.exchange(&input, split).unwrap();
        check_output(&out).unwrap();
        let s = String::from_utf8_lossy(&out);
        assert!(s.starts_with("HTTP/1.1 101 "), "{s}");
        assert!(s.contains("hello"), "{s}");
        assert!(out.ends_with(&[0x88, 2, 3, 232]), "{s}");
        assert_eq!(h.connections(), 0);
    }
}

#[test]
fn the_oracle_catches_illegal_output() {
    assert!(
        check_output(b"HTTP/1.1 101 S\r\n\r\n\x88\x02\x03\xed").is_err(),
        "1005"
    );
    assert!(
        check_output(b"HTTP/1.1 101 S\r\n\r\n\x88\x00\x81\x00").is_err(),
        "after close"
    );
    assert!(
        check_output(b"HTTP/1.1 101 S\r\n\r\n\x81\x01\xff").is_err(),
        "bad UTF-8"
    );
    assert!(check_output(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").is_ok());
}

#[test]
fn keep_alive_requests_and_bad_frames() {
    let mut h = Harness::new().unwrap();
    let two = "POST /a HTTP/1.1\r\nHost: f\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n";
    let out = h.exchange(two.as_bytes(), 5).unwrap();
    check_output(&out).unwrap();
    let s = String::from_utf8_lossy(&out);
    assert_eq!(s.matches("HTTP/1.1 200 OK").count(), 2, "{s}");
    assert!(s.contains("\r\n\r\nabc"));
    // An unmasked frame: 1002, and the output stays legal.
    let mut input = UP.as_bytes().to_vec();
    input.extend_from_slice(&[0x81, 0x01, b'x']);
    let out = h.exchange(&input, 9).unwrap();
    check_output(&out).unwrap();
    assert!(out.ends_with(b"client frame not masked"));
}
