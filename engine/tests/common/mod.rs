//! A deliberately low-level WebSocket client for tests: it writes whatever
//! bytes a test asks for, legal or not, and reads frames back raw.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use volley::proto::frame::{self, OpCode};
use volley::proto::mask::apply_mask;
use volley::{Handler, Message, Request, Upgrade, WebSocket};

/// A server handler that accepts every upgrade and echoes every message.
pub struct Echo;
impl Handler for Echo {
    type Data = ();
    fn upgrade(&self, _r: &Request<'_>) -> Upgrade<()> {
        Upgrade::accept(())
    }
    fn message(&self, ws: &mut WebSocket<'_, ()>, m: Message<'_>) {
        ws.send(m);
    }
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

pub struct Client {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: compressed, when permessage-deflate was agreed.
    pub rsv1: bool,
    pub opcode: OpCode,
    pub payload: Vec<u8>,
}

impl Client {
    pub fn raw(addr: SocketAddr) -> Client {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        Client {
            sock,
            buf: Vec::new(),
        }
    }

    /// A client over a connected socket.
    pub fn from_stream(sock: TcpStream) -> Client {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.set_nodelay(true).unwrap();
        Client {
            sock,
            buf: Vec::new(),
        }
    }

    /// Connect and complete the handshake on `path`; returns the 101 head.
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        Self::connect_with(addr, path, "").0
    }

    pub fn connect_with(addr: SocketAddr, path: &str, extra: &str) -> (Client, String) {
        let mut c = Client::raw(addr);
        c.write(upgrade_request(path, extra).as_bytes());
        let head = c.read_head();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        (c, head)
    }

    pub fn write(&mut self, b: &[u8]) {
        self.sock.write_all(b).expect("write");
    }

    /// Read an HTTP response head (and return it with any body read so far).
    pub fn read_head(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i + 4]).to_string();
                self.buf.drain(..i + 4);
                return head;
            }
            if self.fill().expect("read head") == 0 {
                panic!(
                    "EOF before response head: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// The whole HTTP response until the server closes.
    /// Read one HTTP response: its head and `Content-Length` bytes of body
    /// (to EOF when there is no length), and return it whole.
    pub fn read_http_response(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i + 4]).to_string();
                let len = head.lines().find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                });
                if let Some(len) = len {
                    while self.buf.len() < i + 4 + len {
                        if self.fill().unwrap_or(0) == 0 {
                            break;
                        }
                    }
                    let end = (i + 4 + len).min(self.buf.len());
                    let out = String::from_utf8_lossy(&self.buf[..end]).to_string();
                    self.buf.drain(..end);
                    return out;
                }
            }
            if self.fill().unwrap_or(0) == 0 {
                let out = String::from_utf8_lossy(&self.buf).to_string();
                self.buf.clear();
                return out;
            }
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = self.sock.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Send one masked frame.
    pub fn frame(&mut self, fin: bool, op: OpCode, payload: &[u8]) {
        self.frame_ext(fin, false, op, payload, true)
    }

    pub fn frame_ext(&mut self, fin: bool, rsv1: bool, op: OpCode, payload: &[u8], masked: bool) {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut h = [0u8; 14];
        let n = frame::encode_header(
            &mut h,
            fin,
            rsv1,
            op,
            payload.len() as u64,
            masked.then_some(key),
        );
        let mut v = h[..n].to_vec();
        let start = v.len();
        v.extend_from_slice(payload);
        if masked {
            apply_mask(&mut v[start..], key, 0);
        }
        self.write(&v);
    }

    /// Masked text frames, concatenated, for one write.
    pub fn raw_frames(texts: &[&str]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = Vec::new();
        for t in texts {
            let mut h = [0u8; 14];
            let n =
                frame::encode_header(&mut h, true, false, OpCode::Text, t.len() as u64, Some(key));
            out.extend_from_slice(&h[..n]);
            let start = out.len();
            out.extend_from_slice(t.as_bytes());
            apply_mask(&mut out[start..], key, 0);
        }
        out
    }

    pub fn text(&mut self, s: &str) {
        self.frame(true, OpCode::Text, s.as_bytes());
    }

    /// Next frame from the server, or `None` at EOF.
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(h) = frame::parse_header(&self.buf).expect("server frame parses") {
                assert!(h.mask.is_none(), "server frames are never masked");
                let total = h.header_len + h.len as usize;
                if self.buf.len() >= total {
                    let payload = self.buf[h.header_len..total].to_vec();
                    self.buf.drain(..total);
                    return Some(Frame {
                        fin: h.fin,
                        rsv1: h.rsv1,
                        opcode: h.opcode,
                        payload,
                    });
                }
            }
            match self.fill() {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Next frame, or `None` at EOF or when the read times out.
    pub fn try_read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(h) = frame::parse_header(&self.buf).expect("server frame parses") {
                let total = h.header_len + h.len as usize;
                if self.buf.len() >= total {
                    return self.read_frame();
                }
            }
            match self.fill() {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return None;
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Expect a close frame with `code` (ignoring data frames before it),
    /// then the server closing TCP. Returns the reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        loop {
            let f = self.read_frame().expect("close frame before EOF");
            if f.opcode == OpCode::Close {
                assert!(f.payload.len() >= 2, "close without code");
                let got = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                assert_eq!(
                    got,
                    code,
                    "close code; reason {:?}",
                    String::from_utf8_lossy(&f.payload[2..])
                );
                let reason = String::from_utf8(f.payload[2..].to_vec()).expect("utf-8 reason");
                self.expect_eof();
                return reason;
            }
        }
    }

    /// The server closes TCP (within the read timeout).
    pub fn expect_eof(&mut self) {
        let t = Instant::now();
        loop {
            match self.fill() {
                Ok(0) => return,
                Ok(_) => self.buf.clear(),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("expected EOF, got {e} after {:?}", t.elapsed()),
            }
        }
    }
}
