//! A C caller's view from Rust: a server from options, a raw WebSocket
//! client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use volley::*;

pub fn server(h: &volley_handlers) -> *mut volley_server {
    let mut o = std::mem::MaybeUninit::<volley_options>::uninit();
    volley_options_init(o.as_mut_ptr());
    // SAFETY: initialised by volley_options_init.
    let mut o = unsafe { o.assume_init() };
    o.workers = 1;
    let mut s = std::ptr::null_mut();
    assert_eq!(
        volley_server_new(&o, h, std::ptr::null_mut(), &mut s),
        volley_result::Ok
    );
    s
}

pub fn connect(port: u16) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    c
}

/// The next text frame's payload (server frames are unmasked, short here).
pub fn read_text(c: &mut TcpStream) -> Option<String> {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).ok()?;
    assert_eq!(h[0], 0x81);
    let mut p = vec![0u8; (h[1] & 0x7f) as usize];
    c.read_exact(&mut p).unwrap();
    Some(String::from_utf8(p).unwrap())
}

/// Send one masked frame (mask 0: the payload as is; short payloads).
pub fn frame(c: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    c.write_all(&f).unwrap();
}

/// A handler table with no callbacks.
pub fn no_handlers() -> volley_handlers {
    // SAFETY: all-zero is a valid handler table (no callbacks).
    let mut h: volley_handlers = unsafe { std::mem::zeroed() };
    h.struct_size = std::mem::size_of::<volley_handlers>() as u32;
    h
}

/// Wait (bounded) until `f` holds.
pub fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}
