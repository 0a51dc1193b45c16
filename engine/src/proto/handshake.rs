//! The opening handshake (RFC 6455 §4.2): parse an HTTP/1.1 request with
//! `httparse`, decide whether it is a valid WebSocket upgrade, compute the
//! accept key, and write the 101 or the refusal.
//!
//! Requests may arrive across many reads: [`parse_request`] returns `Ok(None)`
//! until the header block is complete, and refuses one that grows past the
//! configured byte or header-count limits.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::{Digest, Sha1};
use std::io::Write as _;
use std::mem::MaybeUninit;

/// The GUID of RFC 6455 §1.3.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Limits on the request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Largest request head (request line and headers), in bytes.
    pub max_bytes: usize,
    /// Most header lines.
    pub max_headers: usize,
}

/// Why a request is refused before any WebSocket exists; carries the HTTP
/// status and a reason for the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status: 400, 405, 426, 431, …
    pub status: u16,
    /// One line for the body, naming the rule.
    pub reason: &'static str,
}

impl Refusal {
    const fn new(status: u16, reason: &'static str) -> Self {
        Refusal { status, reason }
    }
}

/// A parsed request head, borrowing the bytes it was read from.
#[derive(Debug)]
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string without `?` (empty when absent).
    pub query: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header lines in order; names as sent.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// Bytes of the head, including the final blank line.
    pub head_len: usize,
}

impl<'a> Request<'a> {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Every comma-separated token of every header with this name, trimmed.
    pub fn tokens<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Is `token` one of the comma-separated tokens of a header `name`?
    /// Compared as bytes: an ASCII token matches where it stands, whatever
    /// other bytes the value holds (no UTF-8 pass over each value).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Does the request ask for a WebSocket (`Upgrade: websocket`)?
    pub fn wants_websocket(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }
}

/// Parse a request head from `buf`. `Ok(None)`: incomplete, read more.
pub fn parse_request(buf: &[u8], limits: HeadLimits) -> Result<Option<Request<'_>>, Refusal> {
    const TOO_LARGE: Refusal = Refusal::new(431, "request header fields too large");
    // Header slots: on the stack for the usual bound (64 slots of 32
    // bytes), left uninitialised for httparse to fill; on the heap above.
    const ON_STACK: usize = 64;
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; ON_STACK];
    let mut heap = Vec::new();
    let storage = if limits.max_headers <= ON_STACK {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    // Only the first `max_bytes` are looked at: which limit a long head
    // breaks (too many fields, too many bytes) must not depend on how much
    // of it has arrived.
    let buf = &buf[..buf.len().min(limits.max_bytes)];
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, storage) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(431, "too many header fields"));
        }
        Err(_) => return Err(Refusal::new(400, "malformed HTTP request")),
    };
    let head_len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            return if buf.len() >= limits.max_bytes {
                Err(TOO_LARGE)
            } else {
                Ok(None)
            };
        }
    };
    if head_len > limits.max_bytes {
        return Err(TOO_LARGE);
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let headers = req.headers.iter().map(|h| (h.name, h.value)).collect();
    Ok(Some(Request {
        method: req.method.unwrap_or(""),
        path,
        query,
        version: req.version.unwrap_or(1),
        headers,
        head_len,
    }))
}

/// What a valid upgrade request offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
}

/// Check an `Upgrade: websocket` request against RFC 6455 §4.2.1.
pub fn validate_upgrade(req: &Request<'_>) -> Result<Upgrade, Refusal> {
    if req.method != "GET" {
        return Err(Refusal::new(400, "WebSocket upgrade requires GET"));
    }
    if req.version < 1 {
        return Err(Refusal::new(400, "WebSocket upgrade requires HTTP/1.1"));
    }
    if req.header("host").is_none() {
        return Err(Refusal::new(400, "missing Host header"));
    }
    if !req.has_token("connection", "upgrade") {
        return Err(Refusal::new(400, "Connection header must include Upgrade"));
    }
    if !req.tokens("sec-websocket-version").eq(["13"]) {
        return Err(Refusal::new(426, "unsupported Sec-WebSocket-Version"));
    }
    let mut keys = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key"));
    let key = match (keys.next(), keys.next()) {
        (Some((_, k)), None) => k.trim_ascii(),
        (None, _) => return Err(Refusal::new(400, "missing Sec-WebSocket-Key")),
        _ => return Err(Refusal::new(400, "duplicate Sec-WebSocket-Key")),
    };
    // 16 bytes are 24 characters; a longer key fails to fit and is refused.
    let mut raw = [0u8; 24];
    match B64.decode_slice(key, &mut raw) {
        Ok(16) => {}
        _ => {
            return Err(Refusal::new(
                400,
                "Sec-WebSocket-Key must be 16 bytes in base64",
            ));
        }
    }
    Ok(Upgrade {
        accept: accept_key(key),
    })
}

/// `base64(sha1(key ++ GUID))` (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    B64.encode(h.finalize())
}

/// A header value or name safe to write into a response (no CR, LF or NUL).
pub fn is_safe_header(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

/// Write the `101 Switching Protocols` response.
pub fn write_switching(
    out: &mut Vec<u8>,
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
    extra: &[(String, String)],
) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = protocol {
        write_header(out, "Sec-WebSocket-Protocol", p);
    }
    if let Some(e) = extensions {
        write_header(out, "Sec-WebSocket-Extensions", e);
    }
    for (n, v) in extra {
        write_header(out, n, v);
    }
    out.extend_from_slice(b"\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for a status code.
pub fn status_text(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Write the head of a streamed response (no length; the connection stays
/// open and closes when the stream ends).
pub fn write_stream_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, String)],
    content_type: &str,
) {
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", status, status_text(status));
    for (n, v) in headers {
        let skip = [
            "content-length",
            "content-type",
            "connection",
            "transfer-encoding",
        ]
        .iter()
        .any(|h| n.eq_ignore_ascii_case(h));
        if !skip && is_safe_header(n) && is_safe_header(v) {
            write_header(out, n, v);
        }
    }
    let _ = write!(
        out,
        "Content-Type: {content_type}\r\nConnection: keep-alive\r\n\r\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 8192,
        max_headers: 32,
    };

    const GOOD: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

    fn check(req: &str) -> Result<Upgrade, Refusal> {
        let r = parse_request(req.as_bytes(), LIMITS)?.expect("complete");
        validate_upgrade(&r)
    }

    #[test]
    fn rfc_example_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let u = check(GOOD).unwrap();
        assert_eq!(u.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn parses_across_every_split() {
        for cut in 0..GOOD.len() {
            assert!(
                parse_request(&GOOD.as_bytes()[..cut], LIMITS)
                    .unwrap()
                    .is_none()
            );
        }
        let r = parse_request(GOOD.as_bytes(), LIMITS).unwrap().unwrap();
        assert_eq!((r.method, r.path, r.query), ("GET", "/chat", "x=1"));
        assert_eq!(r.head_len, GOOD.len());
        assert_eq!(
            r.tokens("sec-websocket-protocol").collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        assert!(r.wants_websocket());
    }

    /// Tokens are found in any header of that name, in any case, between
    /// commas and optional whitespace, and only whole.
    #[test]
    fn finds_whole_tokens() {
        let cases: &[(&[u8], bool)] = &[
            (b"Upgrade: websocket\r\n", true),
            (b"Upgrade: WebSocket\r\n", true),
            (b"Upgrade: h2c ,\t websocket \r\n", true),
            (b"Upgrade: h2c\r\nupgrade: websocket\r\n", true),
            (b"Upgrade: websocket2, web socket, \r\n", false),
            (b"Upgrade: \xff\xfe, websocket\r\n", true),
            (b"X-Upgrade: websocket\r\n", false),
        ];
        for (headers, want) in cases {
            let mut head = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            head.extend_from_slice(headers);
            head.extend_from_slice(b"\r\n");
            let r = parse_request(&head, LIMITS).unwrap().unwrap();
            assert_eq!(r.wants_websocket(), *want, "{}", head.escape_ascii());
        }
    }

    /// More header slots than the stack holds: the limit still applies.
    #[test]
    fn header_slots_above_the_stack() {
        let limits = HeadLimits {
            max_bytes: 1 << 16,
            max_headers: 100,
        };
        let head = |n: usize| {
            let mut h = String::from("GET / HTTP/1.1\r\n");
            for i in 0..n {
                h.push_str(&format!("X-{i}: y\r\n"));
            }
            h + "\r\n"
        };
        let hundred = head(100);
        let r = parse_request(hundred.as_bytes(), limits).unwrap().unwrap();
        assert_eq!(r.headers.len(), 100);
        assert_eq!(r.header("x-99"), Some(&b"y"[..]));
        let e = parse_request(head(101).as_bytes(), limits).unwrap_err();
        assert_eq!(e.status, 431);
    }

    #[test]
    fn each_bad_upgrade_gets_its_status() {
        let cases: &[(&str, &str, u16)] = &[
            ("GET /chat", "POST /chat", 400),
            ("HTTP/1.1\r\n", "HTTP/1.0\r\n", 400),
            ("Host: server.example.com\r\n", "", 400),
            ("keep-alive, Upgrade", "keep-alive", 400),
            ("Version: 13", "Version: 8", 426),
            ("Sec-WebSocket-Version: 13\r\n", "", 426),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dG9vc2hvcnQ=", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "!!!not base64!!!", 400),
            // 15, 17, 18 and 32 bytes: only 16 will do.
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZSE=", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZSEh", 400),
            (
                "dGhlIHNhbXBsZSBub25jZQ==",
                "dGhlIHNhbXBsZSBub25jZXRoZSBzYW1wbGUgbm9uY2U=",
                400,
            ),
            // Non-canonical padding bits.
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", 400),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 400),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                400,
            ),
        ];
        for (from, to, status) in cases {
            let req = GOOD.replacen(from, to, 1);
            assert_ne!(req, GOOD, "{from}");
            assert_eq!(check(&req).unwrap_err().status, *status, "{to}");
        }
    }

    #[test]
    fn head_limits() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
        assert_eq!(
            parse_request(big.as_bytes(), LIMITS).unwrap_err().status,
            431
        );
        let many: String = (0..40).map(|i| format!("X{i}: y\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_request(req.as_bytes(), LIMITS).unwrap_err().status,
            431
        );
        assert_eq!(
            parse_request(b"\x00\x01garbage\r\n\r\n", LIMITS)
                .unwrap_err()
                .status,
            400
        );
    }

    /// Which limit a long head breaks does not depend on how much of it
    /// has arrived (found by the `connection` fuzz target: whole, a head
    /// with too many fields past `max_bytes` was "too many header fields";
    /// read in pieces, "too large" once `max_bytes` had arrived).
    #[test]
    fn a_long_head_breaks_the_same_limit_whatever_has_arrived() {
        let limits = HeadLimits {
            max_bytes: 200,
            max_headers: 8,
        };
        // Eight fields in the first 200 bytes, the ninth after them.
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..8 {
            head.push_str(&format!("X-{i}: {}\r\n", "v".repeat(16)));
        }
        head.push_str(&"Y".repeat(200 - head.len()));
        head.push_str(": 1\r\nZ: 2\r\n\r\n");
        let whole = parse_request(head.as_bytes(), limits).unwrap_err();
        assert_eq!(whole.reason, "request header fields too large");
        for n in 200..head.len() {
            assert_eq!(
                parse_request(&head.as_bytes()[..n], limits).unwrap_err(),
                whole,
                "{n}"
            );
        }
        // A ninth field inside the limit is "too many", whatever follows.
        let many: String = (0..9).map(|i| format!("X{i}: y\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n{}", "z".repeat(300));
        for n in req.find("X8").unwrap() + 8..req.len() {
            let e = parse_request(&req.as_bytes()[..n], limits).unwrap_err();
            assert_eq!(e.reason, "too many header fields", "{n}");
        }
    }

    #[test]
    fn refusal_426_names_the_version() {
        let mut out = Vec::new();
        crate::proto::http::write_refusal(&mut out, Refusal::new(426, "unsupported"));
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(s.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(s.ends_with("\r\n\r\nunsupported\n"));
    }
}
