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

/// How the request's body is framed, or why it cannot be read: RFC 9112
/// §6.1 and §6.3, strictly (anything a strict parser would refuse is
/// refused, since two parsers that disagree on where a body ends are what
/// request smuggling behind a proxy is made of).
///
/// - `Transfer-Encoding` present (even empty): with `Content-Length` too,
///   in HTTP/1.0, with no coding, with an element that is not a plain
///   token (bytes outside tchar, parameters), with `chunked` not last or
///   more than once: 400. `chunked` last after other codings: 501 (we
///   decode none of them).
/// - `Content-Length`: 1*DIGIT with no sign, no leading zero and no list;
///   repeated only with the same value; past `max_body`: 413.
pub fn framing(req: &Request<'_>, max_body: usize) -> Result<Framing, Refusal> {
    let bad = |reason| Refusal {
        status: 400,
        reason,
    };
    let mut te = false;
    let (mut codings, mut chunked_last, mut chunked_before) = (0usize, false, false);
    for (_, v) in req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
    {
        te = true;
        for e in v.split(|&b| b == b',').map(trim_ows) {
            if e.is_empty() {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            if !e.iter().all(|&b| is_tchar(b)) {
                return Err(bad("malformed Transfer-Encoding"));
            }
            chunked_before |= chunked_last;
            chunked_last = e.eq_ignore_ascii_case(b"chunked");
            codings += 1;
        }
    }
    let mut lengths = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| trim_ows(v))
        .peekable();
    if te {
        if lengths.peek().is_some() {
            return Err(bad("both Transfer-Encoding and Content-Length"));
        }
        if req.version == 0 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if codings == 0 {
            return Err(bad("empty Transfer-Encoding"));
        }
        if !chunked_last || chunked_before {
            return Err(bad("chunked is not the final transfer coding, once"));
        }
        if codings > 1 {
            return Err(Refusal {
                status: 501,
                reason: "unsupported Transfer-Encoding",
            });
        }
        return Ok(Framing::Chunked);
    }
    let mut len: Option<u64> = None;
    for v in lengths {
        let malformed = bad("malformed Content-Length");
        let digits = !v.is_empty() && v.iter().all(u8::is_ascii_digit);
        if !digits || (v.len() > 1 && v[0] == b'0') {
            return Err(malformed);
        }
        let n = v
            .iter()
            .try_fold(0u64, |n, &d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or(malformed)?;
        if len.is_some_and(|l| l != n) {
            return Err(malformed);
        }
        len = Some(n);
    }
    match len {
        None | Some(0) => Ok(Framing::None),
        Some(n) if n > max_body as u64 => Err(TOO_LARGE),
        Some(n) => Ok(Framing::Length(n)),
    }
}

/// Without leading and trailing OWS (SP and HTAB only: RFC 9110 §5.6.3).
fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// A token character (RFC 9110 §5.6.2).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte of a field value or quoted text: VCHAR, obs-text, SP or HTAB.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
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

/// Where a chunked body is (RFC 9112 §7.1):
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-ext    = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
/// trailer-section = *( field-name ":" OWS field-value OWS CRLF )
/// ```
///
/// Every line ends with CRLF (a bare LF, or CR followed by anything but
/// LF, is refused); lines are capped at 4 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// In a chunk-size line.
    Size {
        /// The size read so far.
        size: u64,
        /// Hex digits seen.
        digits: u8,
        /// Where in the line.
        at: SizeLine,
        /// Bytes of this line.
        line: u16,
    },
    /// Chunk data still to come.
    Data(u64),
    /// The CRLF after a chunk's data (bytes of it seen).
    DataEnd(u8),
    /// In the trailer section.
    Trailer {
        /// Where in the current line.
        at: TrailerLine,
        /// Bytes of this line.
        line: u16,
    },
}

/// Where a chunk-size line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLine {
    /// Hex digits.
    Digits,
    /// BWS after the size or an extension, before `;` or CRLF.
    Space,
    /// After `;`: BWS, then an extension name.
    Semi,
    /// In an extension name.
    Name,
    /// BWS after a name, before `=`, `;` or CRLF.
    AfterName,
    /// After `=`: BWS, then a token or a quoted string.
    Equals,
    /// In a token value.
    Token,
    /// In a quoted-string value.
    Quoted,
    /// After a backslash in a quoted string.
    Escape,
    /// After the CR: LF must follow.
    Cr,
}

/// Where a trailer line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailerLine {
    /// At the start of a line: a field name, or the CRLF that ends the body.
    Start,
    /// In a field name.
    Name,
    /// In the value (after the colon).
    Value,
    /// After a field line's CR.
    Cr,
    /// After the final CR.
    End,
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
            Framing::Chunked => Some(BodyReader::Chunked(SIZE_LINE)),
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

const SIZE_LINE: Chunk = Chunk::Size {
    size: 0,
    digits: 0,
    at: SizeLine::Digits,
    line: 0,
};

fn chunked(state: &mut Chunk, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<Fed, Refusal> {
    const BAD: Refusal = Refusal {
        status: 400,
        reason: "malformed chunked body",
    };
    let bws = |b: u8| b == b' ' || b == b'\t';
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match state {
            Chunk::Data(left) => {
                let n = (*left).min((input.len() - i) as u64) as usize;
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                *left -= n as u64;
                if *left == 0 {
                    *state = Chunk::DataEnd(0);
                }
                continue;
            }
            Chunk::DataEnd(seen) => {
                match (*seen, b) {
                    (0, b'\r') => *seen = 1,
                    (1, b'\n') => *state = SIZE_LINE,
                    _ => return Err(BAD),
                }
                i += 1;
                continue;
            }
            Chunk::Size {
                size,
                digits,
                at,
                line,
            } => {
                *line += 1;
                if *line > MAX_LINE {
                    return Err(BAD);
                }
                use SizeLine::*;
                *at = match (*at, b) {
                    (Digits, _) if b.is_ascii_hexdigit() => {
                        *digits += 1;
                        if *digits > 15 {
                            return Err(TOO_LARGE);
                        }
                        *size = *size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                        Digits
                    }
                    (Digits, _) if *digits == 0 => return Err(BAD),
                    (Digits | Space | Name | AfterName | Token, b'\r') => Cr,
                    (Digits | Space | Name | AfterName | Token, b';') => Semi,
                    (Digits | Space | Token, _) if bws(b) => Space,
                    (Name | AfterName, _) if bws(b) => AfterName,
                    (Semi, _) if bws(b) => Semi,
                    (Semi | Name, _) if is_tchar(b) => Name,
                    (Name | AfterName, b'=') => Equals,
                    (Equals, _) if bws(b) => Equals,
                    (Equals, b'"') => Quoted,
                    (Equals | Token, _) if is_tchar(b) => Token,
                    (Quoted, b'"') => Space,
                    (Quoted, b'\\') => Escape,
                    (Quoted | Escape, _) if is_field_byte(b) => Quoted,
                    (Cr, b'\n') => {
                        i += 1;
                        *state = if *size == 0 {
                            Chunk::Trailer {
                                at: TrailerLine::Start,
                                line: 0,
                            }
                        } else {
                            if out.len() as u64 + *size > max as u64 {
                                return Err(TOO_LARGE);
                            }
                            Chunk::Data(*size)
                        };
                        continue;
                    }
                    _ => return Err(BAD),
                };
                i += 1;
            }
            Chunk::Trailer { at, line } => {
                *line += 1;
                if *line > MAX_LINE {
                    return Err(BAD);
                }
                use TrailerLine::*;
                *at = match (*at, b) {
                    (Start, b'\r') => End,
                    (End, b'\n') => return Ok(Fed::Done(i + 1)),
                    (Start | Name, _) if is_tchar(b) => Name,
                    (Name, b':') => Value,
                    (Value, b'\r') => Cr,
                    (Value, _) if is_field_byte(b) => Value,
                    (Cr, b'\n') => {
                        *line = 0;
                        Start
                    }
                    // Bare LF, obs-fold (a line starting with SP/HTAB), a
                    // name with other bytes or without a colon, CTLs.
                    _ => return Err(BAD),
                };
                i += 1;
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

/// Write the response for a [`Refusal`] (426 carries `Sec-WebSocket-Version: 13`).
pub fn write_refusal(out: &mut Vec<u8>, r: Refusal) {
    let mut headers = Vec::new();
    if r.status == 426 {
        headers.push(("Sec-WebSocket-Version".to_string(), "13".to_string()));
        headers.push(("Upgrade".to_string(), "websocket".to_string()));
    }
    let body = format!("{}\n", r.reason);
    write_response(out, r.status, &headers, body.as_bytes(), false, false);
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

/// The incremental reader against the reference model of RFC 9112's
/// grammar, on mutations of valid bodies (the fuzz target `http_framing`
/// does the same at length).
#[cfg(test)]
mod model_tests {
    use super::*;
    use crate::proto::http_model::{ModelBody, chunked_body};

    fn reader(input: &[u8], split: usize) -> Option<Result<(Vec<u8>, usize), u16>> {
        let mut r = BodyReader::new(Framing::Chunked).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        for piece in input.chunks(split) {
            match r.feed(piece, &mut out, 1000) {
                Ok(Fed::More) => pos += piece.len(),
                Ok(Fed::Done(n)) => return Some(Ok((out, pos + n))),
                Err(e) => return Some(Err(e.status)),
            }
        }
        None
    }

    #[test]
    fn the_reader_agrees_with_the_model() {
        let seeds: [&[u8]; 4] = [
            b"5\r\nhello\r\n0\r\n\r\nGET",
            b"5 ; a=b ;c=\"x;\\\"y\"\r\nhello\r\n0;z\r\n\r\n",
            b"A\r\nhelloworld\r\n0\r\nX-Sum: 1\r\nX-E:\r\n\r\nrest",
            b"1\r\nx\r\n2\r\nyz\r\n0\r\n\r\n",
        ];
        let alphabet = b"0123456789aAfF \t;=\"\\\r\n:xX-\x00\xff";
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..20_000 {
            let mut input = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % (input.len() + 1);
                let b = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if at < input.len() => input[at] = b,
                    1 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.insert(at, b),
                }
            }
            let split = 1 + (next() as usize) % 7;
            let got = reader(&input, split);
            let want = chunked_body(&input, 1000);
            let ok = match (&got, &want) {
                (Some(Ok((b, e))), ModelBody::Done(mb, me)) => b == mb && e == me,
                (Some(Err(_)), ModelBody::Refused(_) | ModelBody::Incomplete) => true,
                (None, ModelBody::Incomplete) => true,
                _ => false,
            };
            assert!(
                ok,
                "{:?} (split {split}): reader {got:?}, model {want:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
