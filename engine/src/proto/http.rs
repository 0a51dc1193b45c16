//! HTTP/1.1 beside WebSocket, sans IO: how a request's body is framed
//! (`Content-Length` or `chunked`, RFC 9112 §6), an incremental body reader
//! capped at a limit, whether the connection stays open (§9.3), and the
//! response head.

use super::handshake::{Refusal, Request, is_safe_header, status_text};
use std::io::Write as _;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// How the request's body is framed, or why it cannot be read (400 for a
/// malformed or conflicting length, 501 for a transfer coding we do not
/// decode, 413 past `max_body`).
pub fn framing(req: &Request<'_>, max_body: usize) -> Result<Framing, Refusal> {
    let te: Vec<&str> = req.tokens("transfer-encoding").collect();
    let mut lengths = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v);
    if !te.is_empty() {
        if lengths.next().is_some() {
            // RFC 9112 §6.3: both present is a smuggling attempt; refuse.
            return Err(Refusal {
                status: 400,
                reason: "both Transfer-Encoding and Content-Length",
            });
        }
        return match te.as_slice() {
            [c] if c.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(Refusal {
                status: 501,
                reason: "unsupported Transfer-Encoding",
            }),
        };
    }
    let mut len: Option<u64> = None;
    for v in lengths {
        let bad = Refusal {
            status: 400,
            reason: "malformed Content-Length",
        };
        let s = std::str::from_utf8(v).map_err(|_| bad)?.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        let n: u64 = s.parse().map_err(|_| bad)?;
        if len.is_some_and(|l| l != n) {
            return Err(bad);
        }
        len = Some(n);
    }
    match len {
        None | Some(0) => Ok(Framing::None),
        Some(n) if n > max_body as u64 => Err(TOO_LARGE),
        Some(n) => Ok(Framing::Length(n)),
    }
}

const TOO_LARGE: Refusal = Refusal {
    status: 413,
    reason: "request body too large",
};

/// Does the connection stay open after this request (HTTP/1.1 unless
/// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`)?
pub fn keep_alive(req: &Request<'_>) -> bool {
    let mut close = false;
    let mut keep = false;
    for t in req.tokens("connection") {
        close |= t.eq_ignore_ascii_case("close");
        keep |= t.eq_ignore_ascii_case("keep-alive");
    }
    if req.version >= 1 {
        !close
    } else {
        keep && !close
    }
}

/// Does the client wait for `100 Continue` before sending its body?
pub fn expects_continue(req: &Request<'_>) -> bool {
    req.tokens("expect")
        .any(|t| t.eq_ignore_ascii_case("100-continue"))
}

/// Reads a body as it arrives, appending the payload to a buffer.
#[derive(Debug)]
pub enum BodyReader {
    /// Bytes still to come.
    Length(u64),
    /// A chunked body, at this point of its grammar.
    Chunked(Chunk),
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy)]
pub enum Chunk {
    /// Reading a chunk-size line (size so far, digits seen, in extensions, line length).
    Size {
        /// The size read so far.
        size: u64,
        /// Hex digits seen.
        digits: u8,
        /// Past the digits (extensions or whitespace).
        ext: bool,
        /// Bytes of this line.
        line: u16,
    },
    /// Chunk data still to come.
    Data(u64),
    /// The CRLF after a chunk's data (bytes of it seen).
    DataEnd(u8),
    /// Trailer lines (bytes of the current line).
    Trailer(u16),
}

/// What [`BodyReader::feed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// All input used; the body goes on.
    More,
    /// The body ended after this many bytes of the input.
    Done(usize),
}

const MAX_LINE: u16 = 4096;

impl BodyReader {
    /// A reader for this framing (`None` for no body).
    pub fn new(f: Framing) -> Option<BodyReader> {
        match f {
            Framing::None => None,
            Framing::Length(n) => Some(BodyReader::Length(n)),
            Framing::Chunked => Some(BodyReader::Chunked(Chunk::Size {
                size: 0,
                digits: 0,
                ext: false,
                line: 0,
            })),
        }
    }

    /// Take body bytes from `input` into `out`, never letting `out` pass
    /// `max` bytes (413) and refusing malformed chunking (400).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<Fed, Refusal> {
        match self {
            BodyReader::Length(left) => {
                let n = (*left).min(input.len() as u64) as usize;
                out.extend_from_slice(&input[..n]);
                *left -= n as u64;
                Ok(if *left == 0 { Fed::Done(n) } else { Fed::More })
            }
            BodyReader::Chunked(state) => chunked(state, input, out, max),
        }
    }
}

fn chunked(state: &mut Chunk, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<Fed, Refusal> {
    const BAD: Refusal = Refusal {
        status: 400,
        reason: "malformed chunked body",
    };
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match state {
            Chunk::Size {
                size,
                digits,
                ext,
                line,
            } => {
                *line += 1;
                if *line > MAX_LINE {
                    return Err(BAD);
                }
                i += 1;
                match b {
                    b'\n' => {
                        if *digits == 0 {
                            return Err(BAD);
                        }
                        *state = if *size == 0 {
                            Chunk::Trailer(0)
                        } else {
                            if out.len() as u64 + *size > max as u64 {
                                return Err(TOO_LARGE);
                            }
                            Chunk::Data(*size)
                        };
                    }
                    _ if *ext => {}
                    b'\r' | b';' | b' ' | b'\t' => *ext = true,
                    _ => {
                        let d = (b as char).to_digit(16).ok_or(BAD)?;
                        *digits += 1;
                        if *digits > 15 {
                            return Err(TOO_LARGE);
                        }
                        *size = *size * 16 + u64::from(d);
                    }
                }
            }
            Chunk::Data(left) => {
                let n = (*left).min((input.len() - i) as u64) as usize;
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                *left -= n as u64;
                if *left == 0 {
                    *state = Chunk::DataEnd(0);
                }
            }
            Chunk::DataEnd(seen) => {
                i += 1;
                match (*seen, b) {
                    (0, b'\r') => *seen = 1,
                    (_, b'\n') => {
                        *state = Chunk::Size {
                            size: 0,
                            digits: 0,
                            ext: false,
                            line: 0,
                        }
                    }
                    _ => return Err(BAD),
                }
            }
            Chunk::Trailer(line) => {
                i += 1;
                match b {
                    b'\n' if *line == 0 => return Ok(Fed::Done(i)),
                    b'\n' => *line = 0,
                    b'\r' if *line == 0 => {}
                    _ => {
                        *line += 1;
                        if *line > MAX_LINE {
                            return Err(BAD);
                        }
                    }
                }
            }
        }
    }
    Ok(Fed::More)
}

/// Write a complete response. `keep_alive` decides the `Connection` header;
/// `head_only` (a `HEAD` request) leaves the body out but keeps its length.
/// Headers with CR, LF or NUL, and `Content-Length`/`Connection`/
/// `Transfer-Encoding` (the server writes those), are left out.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status, status_text(status));
    let mut has_type = false;
    for (n, v) in headers {
        let ours = ["content-length", "connection", "transfer-encoding"]
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h));
        if ours || n.is_empty() || !is_safe_header(n) || !is_safe_header(v) {
            continue;
        }
        has_type |= n.eq_ignore_ascii_case("content-type");
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_type && !body.is_empty() {
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    }
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "Content-Length: {}\r\nConnection: {conn}\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::handshake::{HeadLimits, parse_request};

    const L: HeadLimits = HeadLimits {
        max_bytes: 8192,
        max_headers: 32,
    };

    fn framing_of(head: &str) -> Result<Framing, Refusal> {
        let r = parse_request(head.as_bytes(), L).unwrap().unwrap();
        framing(&r, 1000)
    }

    #[test]
    fn framing_rules() {
        let h = |x: &str| format!("POST / HTTP/1.1\r\nHost: a\r\n{x}\r\n");
        assert_eq!(framing_of(&h("")), Ok(Framing::None));
        assert_eq!(
            framing_of(&h("Content-Length: 5\r\n")),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing_of(&h("Content-Length: 5\r\nContent-Length: 5\r\n")),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing_of(&h("Transfer-Encoding: chunked\r\n")),
            Ok(Framing::Chunked)
        );
        let status = |x: &str| framing_of(&h(x)).unwrap_err().status;
        assert_eq!(status("Content-Length: 5\r\nContent-Length: 6\r\n"), 400);
        assert_eq!(status("Content-Length: -1\r\n"), 400);
        assert_eq!(status("Content-Length: 1e3\r\n"), 400);
        assert_eq!(status("Content-Length: 1001\r\n"), 413);
        assert_eq!(status("Content-Length: 99999999999999999999999\r\n"), 400);
        assert_eq!(
            status("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            400
        );
        assert_eq!(status("Transfer-Encoding: gzip, chunked\r\n"), 501);
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |v: &str, x: &str| {
            let s = format!("GET / HTTP/1.{v}\r\nHost: a\r\n{x}\r\n");
            keep_alive(&parse_request(s.as_bytes(), L).unwrap().unwrap())
        };
        assert!(ka("1", ""));
        assert!(!ka("1", "Connection: close\r\n"));
        assert!(!ka("0", ""));
        assert!(ka("0", "Connection: keep-alive\r\n"));
    }

    fn read_chunked(body: &[u8], split: usize, max: usize) -> Result<(Vec<u8>, usize), Refusal> {
        let mut r = BodyReader::new(Framing::Chunked).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        for piece in body.chunks(split.max(1)) {
            match r.feed(piece, &mut out, max)? {
                Fed::More => pos += piece.len(),
                Fed::Done(n) => return Ok((out, pos + n)),
            }
        }
        Err(Refusal {
            status: 0,
            reason: "incomplete",
        })
    }

    #[test]
    fn chunked_bodies_at_every_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\nGET /next";
        let end = body.len() - b"GET /next".len();
        for split in 1..body.len() {
            let (out, used) = read_chunked(body, split, 100).unwrap();
            assert_eq!(out, b"hello, world");
            assert_eq!(used, end, "split {split}");
        }
        assert_eq!(read_chunked(b"0\r\n\r\n", 3, 0).unwrap().0, b"");
    }

    #[test]
    fn chunked_refusals() {
        assert_eq!(read_chunked(b"zz\r\n", 1, 100).unwrap_err().status, 400);
        assert_eq!(read_chunked(b"\r\n", 1, 100).unwrap_err().status, 400);
        assert_eq!(read_chunked(b"3\r\nabcXX", 1, 100).unwrap_err().status, 400);
        assert_eq!(read_chunked(b"65\r\n", 1, 100).unwrap_err().status, 413);
        assert_eq!(
            read_chunked(b"fffffffffffffffff\r\n", 1, 100)
                .unwrap_err()
                .status,
            413
        );
        let long = format!("1;{}\r\n", "x".repeat(5000));
        assert_eq!(
            read_chunked(long.as_bytes(), 7, 100).unwrap_err().status,
            400
        );
    }

    #[test]
    fn length_bodies_stop_at_their_end() {
        let mut r = BodyReader::new(Framing::Length(5)).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.feed(b"he", &mut out, 10), Ok(Fed::More));
        assert_eq!(r.feed(b"lloGET", &mut out, 10), Ok(Fed::Done(3)));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn responses_say_whether_the_connection_stays() {
        let mut out = Vec::new();
        let h = vec![
            ("Content-Length".to_string(), "9".to_string()),
            ("X-A".into(), "b".into()),
        ];
        write_response(&mut out, 200, &h, b"hi", true, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
        );
        out.clear();
        write_response(&mut out, 204, &[], b"xyz", false, true);
        assert!(out.ends_with(b"Content-Length: 3\r\nConnection: close\r\n\r\n"));
    }
}
