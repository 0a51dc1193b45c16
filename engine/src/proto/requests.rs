//! A connection's HTTP/1.1 input before any upgrade, sans IO: request heads
//! and bodies, one request after another (RFC 9112). [`read`] takes the
//! bytes at the start of a request and says what they hold; a body that
//! goes on past them is read on by [`Body`]. What the worker does with a
//! request (the handler's `fetch` or `upgrade`, the answer, keep-alive) is
//! `io/http_phase.rs`; the rules of the bytes are here.

use super::handshake::{self, HeadLimits, Refusal, Request};
use super::http::{self, BodyReader, Fed, Framing};

/// The limits a request is read under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The request head's.
    pub head: HeadLimits,
    /// Largest request body, in bytes (after chunked decoding).
    pub max_body: usize,
}

/// What the bytes at the start of a request hold.
#[derive(Debug)]
pub enum Read<'a> {
    /// The head is not complete: keep the bytes and read more.
    Incomplete,
    /// The request broke a rule: answer with this and close (the rest of the
    /// input is not read).
    Refused(Refusal),
    /// An upgrade request. It has no body: the bytes after `head_len` are
    /// the peer's first frames.
    Upgrade(Request<'a>),
    /// A whole request: its head, its body (empty when it has none) and how
    /// many bytes of the input it took; the bytes after them are the next
    /// request.
    Whole {
        /// The head.
        head: Request<'a>,
        /// The body, decoded when chunked.
        body: &'a [u8],
        /// Bytes of the input used.
        used: usize,
    },
    /// The head and the start of a body that goes on: the whole input is
    /// used, and [`Body::feed`] takes the next bytes.
    Started {
        /// The request so far.
        body: Box<Body>,
        /// The client waits for `100 Continue` before it sends the rest
        /// (RFC 9110 §10.1.1).
        send_continue: bool,
    },
}

/// A request whose body is still arriving.
#[derive(Debug)]
pub struct Body {
    /// The head, then the body as it arrives (decoded when chunked).
    buf: Vec<u8>,
    head_len: usize,
    reader: BodyReader,
    max: usize,
}

/// What the bytes at the start of a request hold. `scratch` is an empty
/// buffer the body may be decoded into; a [`Read::Started`] takes it (the
/// caller gets an empty vector back), any other answer leaves it to be
/// reused once the request is handled.
pub fn read<'a>(input: &'a [u8], limits: Limits, scratch: &'a mut Vec<u8>) -> Read<'a> {
    let head = match handshake::parse_request(input, limits.head) {
        Err(r) => return Read::Refused(r),
        Ok(None) => return Read::Incomplete,
        Ok(Some(head)) => head,
    };
    if head.wants_websocket() {
        // Bytes after the head are frames: one that declares a body is
        // refused, never read as frames.
        return match http::framing(&head, usize::MAX) {
            Ok(Framing::None) => Read::Upgrade(head),
            _ => Read::Refused(Refusal {
                status: 400,
                reason: "an upgrade request with a body",
            }),
        };
    }
    let head_len = head.head_len;
    let framing = match http::framing(&head, limits.max_body) {
        Ok(f) => f,
        Err(r) => return Read::Refused(r),
    };
    let Some(mut reader) = BodyReader::new(framing) else {
        return Read::Whole {
            head,
            body: &[],
            used: head_len,
        };
    };
    let rest = &input[head_len..];
    if let BodyReader::Length(n) = reader {
        // Already whole in the input: taken where it lies, not copied.
        if let Ok(n) = usize::try_from(n) {
            if n <= rest.len() {
                return Read::Whole {
                    head,
                    body: &rest[..n],
                    used: head_len + n,
                };
            }
        }
    }
    scratch.clear();
    scratch.extend_from_slice(&input[..head_len]);
    let max = head_len + limits.max_body;
    match reader.feed(rest, scratch, max) {
        Err(r) => Read::Refused(r),
        Ok(Fed::Done(n)) => Read::Whole {
            head,
            body: &scratch[head_len..],
            used: head_len + n,
        },
        Ok(Fed::More) => Read::Started {
            send_continue: http::expects_continue(&head),
            body: Box::new(Body {
                buf: std::mem::take(scratch),
                head_len,
                reader,
                max,
            }),
        },
    }
}

impl Body {
    /// More of the body. `Ok(None)`: all of `input` used, the body goes on;
    /// `Ok(Some(n))`: the body ended after `n` bytes of it (the rest is the
    /// next request); then [`Body::finish`] gives the request.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<usize>, Refusal> {
        match self.reader.feed(input, &mut self.buf, self.max)? {
            Fed::More => Ok(None),
            Fed::Done(n) => Ok(Some(n)),
        }
    }

    /// The request and its body, once [`Body::feed`] has said it ended,
    /// moved into `into` (which should be empty: what it held is dropped),
    /// so that they outlive the body.
    pub fn finish<'a>(
        self,
        limits: HeadLimits,
        into: &'a mut Vec<u8>,
    ) -> Result<(Request<'a>, &'a [u8]), Refusal> {
        let head_len = self.head_len;
        *into = self.buf;
        let (head, body) = into.split_at(head_len);
        match handshake::parse_request(head, limits) {
            Ok(Some(req)) => Ok((req, body)),
            // The same bytes parsed when the request started.
            _ => Err(Refusal {
                status: 400,
                reason: "malformed HTTP request",
            }),
        }
    }

    /// The buffer, for reuse.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}

/// How an HTTP answer goes out: whether the connection stays open after it
/// (RFC 9112 §9.3) and whether the body is left out (`HEAD`). Not the
/// request body's framing (that is [`http::Framing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyMode {
    /// The connection waits for another request after the answer.
    pub keep_alive: bool,
    /// The answer is to a `HEAD`: its head only.
    pub head_only: bool,
}

impl ReplyMode {
    /// How the answer to this request goes out.
    pub fn of(head: &Request<'_>) -> ReplyMode {
        ReplyMode {
            keep_alive: http::keep_alive(head),
            head_only: head.method == "HEAD",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        head: HeadLimits {
            max_bytes: 1024,
            max_headers: 16,
        },
        max_body: 64,
    };

    /// One request as (method, path, body), or the status that refused it.
    type Got = Result<(String, String, Vec<u8>), u16>;

    /// What a stream of requests holds when it arrives cut at `cuts`: each
    /// request as (method, path, body), or the refusal that ended it. The
    /// caller's side of [`read`] and [`Body`], as a worker runs it.
    fn requests(stream: &[u8], cuts: &[usize]) -> Vec<Got> {
        let mut got = Vec::new();
        let mut held: Vec<u8> = Vec::new();
        let mut body: Option<Box<Body>> = None;
        let mut scratch = Vec::new();
        let mut at = 0;
        let ends = cuts.iter().copied().chain([stream.len()]);
        for end in ends {
            held.extend_from_slice(&stream[at..end]);
            at = end;
            let mut pos = 0;
            while pos < held.len() {
                if let Some(b) = body.as_mut() {
                    match b.feed(&held[pos..]) {
                        Err(r) => {
                            got.push(Err(r.status));
                            return got;
                        }
                        Ok(None) => pos = held.len(),
                        Ok(Some(n)) => {
                            let b = body.take().unwrap();
                            let mut whole = Vec::new();
                            let (h, data) = b.finish(LIMITS.head, &mut whole).unwrap();
                            got.push(Ok((h.method.into(), h.path.into(), data.to_vec())));
                            pos += n;
                        }
                    }
                    continue;
                }
                match read(&held[pos..], LIMITS, &mut scratch) {
                    Read::Incomplete => break,
                    Read::Refused(r) => {
                        got.push(Err(r.status));
                        return got;
                    }
                    Read::Upgrade(h) => {
                        got.push(Ok(("UPGRADE".into(), h.path.into(), Vec::new())));
                        return got;
                    }
                    Read::Whole { head, body, used } => {
                        got.push(Ok((head.method.into(), head.path.into(), body.to_vec())));
                        pos += used;
                    }
                    Read::Started { body: b, .. } => {
                        body = Some(b);
                        pos = held.len();
                    }
                }
            }
            held.drain(..pos);
        }
        got
    }

    const PIPELINE: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
        POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
        3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n\
        HEAD /d HTTP/1.1\r\nHost: x\r\n\r\n";

    fn pipeline() -> Vec<Got> {
        let r = |m: &str, p: &str, b: &[u8]| Ok((m.to_string(), p.to_string(), b.to_vec()));
        vec![
            r("GET", "/a", b""),
            r("POST", "/b", b"hello"),
            r("POST", "/c", b"abcde"),
            r("HEAD", "/d", b""),
        ]
    }

    #[test]
    fn pipelined_requests_whole() {
        assert_eq!(requests(PIPELINE, &[]), pipeline());
    }

    #[test]
    fn the_same_requests_at_every_cut() {
        for cut in 1..PIPELINE.len() {
            assert_eq!(requests(PIPELINE, &[cut]), pipeline(), "cut at {cut}");
        }
        let bytes: Vec<usize> = (1..PIPELINE.len()).collect();
        assert_eq!(requests(PIPELINE, &bytes), pipeline(), "a byte at a time");
    }

    #[test]
    fn a_body_whole_in_the_input_is_not_copied() {
        let input = b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
        let mut scratch = Vec::new();
        match read(input, LIMITS, &mut scratch) {
            Read::Whole { body, used, .. } => {
                assert_eq!(body, b"abc");
                assert_eq!(used, input.len() - 3);
                assert!(std::ptr::eq(body.as_ptr(), input[used - 3..].as_ptr()));
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn continue_is_asked_for_only_with_expect() {
        let mut scratch = Vec::new();
        let with = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        match read(with, LIMITS, &mut scratch) {
            Read::Started { send_continue, .. } => assert!(send_continue),
            r => panic!("{r:?}"),
        }
        let without = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab";
        match read(without, LIMITS, &mut scratch) {
            Read::Started {
                body,
                send_continue,
            } => {
                assert!(!send_continue);
                let mut body = body;
                assert_eq!(body.feed(b"cdGET"), Ok(Some(2)));
                let mut whole = Vec::new();
                let (h, data) = body.finish(LIMITS.head, &mut whole).unwrap();
                assert_eq!((h.method, data), ("POST", &b"abcd"[..]));
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn an_upgrade_is_never_read_past_its_head() {
        let up = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x80";
        let mut scratch = Vec::new();
        match read(up, LIMITS, &mut scratch) {
            Read::Upgrade(h) => assert_eq!(h.head_len, up.len() - 2),
            r => panic!("{r:?}"),
        }
        let with_body =
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n\x81\x80";
        match read(with_body, LIMITS, &mut scratch) {
            Read::Refused(r) => assert_eq!(r.status, 400),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn bodies_past_the_limit_are_refused_as_they_come() {
        // Declared too long: 413 at the head.
        let long = b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
        assert_eq!(requests(long, &[]), vec![Err(413)]);
        // Chunked: 413 once the decoded body passes the limit, at any cut.
        let mut chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..5 {
            chunked.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        for cut in [0, 50, 70, 100] {
            assert_eq!(requests(&chunked, &[cut]), vec![Err(413)], "cut at {cut}");
        }
        // At the limit exactly: read.
        let mut at_limit = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        at_limit.extend_from_slice(b"40\r\n");
        at_limit.extend_from_slice(&[b'x'; 64]);
        at_limit.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(
            requests(&at_limit, &[60]),
            vec![Ok(("POST".into(), "/".into(), vec![b'x'; 64]))]
        );
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
        ] {
            assert_eq!(
                requests(bad, &[]),
                vec![Err(400)],
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn reply_mode_follows_version_connection_and_method() {
        let mode = |raw: &[u8]| {
            let h = handshake::parse_request(raw, LIMITS.head).unwrap().unwrap();
            ReplyMode::of(&h)
        };
        let m = mode(b"GET / HTTP/1.1\r\n\r\n");
        assert!(m.keep_alive && !m.head_only);
        assert!(!mode(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!mode(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(mode(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(mode(b"HEAD / HTTP/1.1\r\n\r\n").head_only);
    }
}
