//! An in-process harness for fuzzing the real connection path: one worker,
//! run turn by turn on the caller's thread, fed a loopback TCP connection
//! whose client side writes the fuzzer's bytes in pieces. Everything the
//! worker does for a real client runs: reads, the HTTP and upgrade code,
//! frames, inflation, pub/sub, queues, writes, timers, closing.
//! Not part of the API.

use crate::io::worker::Worker;
use crate::{
    Deflate, DeflateMode, Fetch, Handler, Message, Options, Request, Response, ServerBuilder,
    Upgrade, WebSocket,
};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

/// Echoes messages (with their opcode), publishes each to topic `t`, which
/// every connection subscribes to, and answers plain requests with their
/// body. `close:` closes with a code and reason from the message, `pause`
/// pauses reading for one message.
struct Fuzzee;

impl Handler for Fuzzee {
    type Data = u32;

    fn upgrade(&self, req: &Request<'_>) -> Upgrade<u32> {
        if req.query() == "no" {
            return Upgrade::reject(403, "no\n");
        }
        Upgrade::accept(0)
    }

    fn open(&self, ws: &mut WebSocket<'_, u32>) {
        ws.subscribe("t");
    }

    fn message(&self, ws: &mut WebSocket<'_, u32>, msg: Message<'_>) {
        *ws.data_mut() += 1;
        match msg {
            Message::Text(t) if t.starts_with("close:") => {
                let code = t.len() as u16 % 5000;
                ws.close(code, &t[6..]);
            }
            Message::Text("pause") => ws.pause_reading(),
            m => {
                ws.resume_reading();
                ws.send(m);
                ws.publish("t", m);
                ws.send_compressed(m, true);
            }
        }
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        if req.path() == "/events" {
            return Response::event_stream(["t"]).into();
        }
        Response::new(200, req.body().to_vec()).into()
    }
}

/// A worker and a listener to make client connections with.
pub struct Harness {
    worker: Worker<Fuzzee>,
    listener: TcpListener,
}

/// The limits the harness server runs with.
pub const MAX_MESSAGE: usize = 8192;

impl Harness {
    /// A worker with small limits and permessage-deflate on.
    pub fn new() -> io::Result<Harness> {
        let opts = Options {
            workers: 1,
            max_payload_length: MAX_MESSAGE,
            max_fragments: 256,
            max_body_bytes: 4096,
            max_header_bytes: 4096,
            backpressure_limit: 64 * 1024,
            per_message_deflate: Some(Deflate {
                compress: DeflateMode::Shared,
                decompress: DeflateMode::Shared,
                threshold: 0,
                ..Deflate::default()
            }),
            ..Options::default()
        };
        let (_, _hub, mut workers) = ServerBuilder::default()
            .options(opts)
            .build(Fuzzee, false, None)?;
        let worker = workers.pop().ok_or_else(|| io::Error::other("no worker"))?;
        Ok(Harness {
            worker,
            listener: TcpListener::bind("127.0.0.1:0")?,
        })
    }

    /// A new client connection: write `input` in pieces of `split` bytes,
    /// turning the worker between pieces, then end the stream and run the
    /// worker until the server has closed. Returns everything the server
    /// wrote. Every connection is gone again when it returns.
    pub fn exchange(&mut self, input: &[u8], split: usize) -> io::Result<Vec<u8>> {
        let mut client = TcpStream::connect(self.listener.local_addr()?)?;
        let (server, _) = self.listener.accept()?;
        server.set_nonblocking(true)?;
        client.set_nonblocking(true)?;
        let _ = server.set_nodelay(true);
        self.worker
            .adopt(mio::net::TcpStream::from_std(server).into())?;
        let mut out = Vec::new();
        let mut writable = true;
        for piece in input.chunks(split.max(1)) {
            let mut rest = piece;
            while writable && !rest.is_empty() {
                match client.write(rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.turn();
                        drain(&mut client, &mut out);
                    }
                    Err(_) => writable = false,
                }
            }
            self.turn();
            drain(&mut client, &mut out);
        }
        let _ = client.shutdown(Shutdown::Write);
        let mut quiet = 0;
        while quiet < 200 {
            self.turn();
            match drain(&mut client, &mut out) {
                Drained::Eof => break,
                Drained::Some => quiet = 0,
                Drained::Nothing => quiet += 1,
            }
        }
        drop(client);
        // The server side sees the end and is reaped.
        for _ in 0..50 {
            if self.worker.connection_count() == 0 {
                break;
            }
            self.turn();
        }
        Ok(out)
    }

    fn turn(&mut self) {
        self.worker.turn(Some(Duration::ZERO));
    }

    /// Connections the worker holds.
    pub fn connections(&self) -> usize {
        self.worker.connection_count()
    }
}

enum Drained {
    Eof,
    Some,
    Nothing,
}

fn drain(c: &mut TcpStream, out: &mut Vec<u8>) -> Drained {
    let mut buf = [0u8; 65536];
    let mut got = false;
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Drained::Eof,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                got = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return if got { Drained::Some } else { Drained::Nothing };
            }
            Err(_) => return Drained::Eof,
        }
    }
}

/// Check what a server wrote to one client: HTTP responses (`1xx`
/// interim ones, then a final one), and after a `101` only legal server
/// frames — unmasked, no RSV2/RSV3, known opcodes, control frames whole and
/// short, close codes a server may send with UTF-8 reasons, uncompressed
/// text that is UTF-8 — and nothing after the close frame.
pub fn check_output(out: &[u8]) -> Result<(), String> {
    use crate::proto::close;
    use crate::proto::frame::{OpCode, parse_header};
    let mut rest = out;
    loop {
        if rest.is_empty() {
            return Ok(());
        }
        if !rest.starts_with(b"HTTP/1.1 ") {
            return Err(format!(
                "not an HTTP response: {:?}",
                &rest[..rest.len().min(40)]
            ));
        }
        let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Err("incomplete response head".into());
        };
        let head = std::str::from_utf8(&rest[..end]).map_err(|e| e.to_string())?;
        let status = &head[9..12];
        rest = &rest[end + 4..];
        if status == "101" {
            break;
        }
        if status.starts_with('1') {
            continue;
        }
        if head.contains("text/event-stream") {
            return Ok(()); // events until the end
        }
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .ok_or("a response without Content-Length")?
            .parse()
            .map_err(|_| "bad Content-Length")?;
        if rest.len() < len {
            return Err("response body cut short".into());
        }
        rest = &rest[len..];
    }
    let mut closed = false;
    while !rest.is_empty() {
        let h = match parse_header(rest) {
            Ok(Some(h)) => h,
            Ok(None) => return Err("a frame cut short".into()),
            Err(e) => return Err(format!("bad server frame: {e}")),
        };
        if closed {
            return Err("a frame after the close frame".into());
        }
        if h.mask.is_some() || h.rsv23 {
            return Err("masked frame or RSV2/3 from the server".into());
        }
        let total = h.header_len + h.len as usize;
        if rest.len() < total {
            return Err("a frame cut short".into());
        }
        let payload = &rest[h.header_len..total];
        match h.opcode {
            OpCode::Close => {
                closed = true;
                if payload.len() == 1 {
                    return Err("one-byte close payload".into());
                }
                if payload.len() >= 2 {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    if !close::is_sendable(code) {
                        return Err(format!("close code {code} is not sendable"));
                    }
                    std::str::from_utf8(&payload[2..]).map_err(|_| "close reason not UTF-8")?;
                }
            }
            OpCode::Text if !h.rsv1 => {
                std::str::from_utf8(payload).map_err(|_| "text frame not UTF-8")?;
            }
            _ => {}
        }
        if !h.fin {
            return Err("the server fragmented a message".into());
        }
        rest = &rest[total..];
    }
    Ok(())
}
