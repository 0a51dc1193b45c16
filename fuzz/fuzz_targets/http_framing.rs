//! HTTP/1.1 body framing against the reference model written from RFC
//! 9112's grammar (volley::proto::http_model): the framing decision for
//! any header set, and the incremental body reader fed in pieces of any
//! size. The reader never reads past the body's declared end, the next
//! request starts exactly where the model says the body ends, and any
//! input the model refuses is refused. `proto::requests::read`, the
//! worker's way in, agrees with the reader: a request whole in the input
//! is read whole, with the same body and end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use volley::proto::handshake::{HeadLimits, parse_request};
use volley::proto::http::{BodyReader, Fed, Framing, framing};
use volley::proto::http_model::{self as model, ModelBody, ModelFraming};
use volley::proto::requests::{self, Limits, Read};

const MAX: usize = 1000;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let split = usize::from(split).max(1);
    let input = [&b"POST / HTTP/1.1\r\n"[..], rest].concat();
    let limits = HeadLimits { max_bytes: 8192, max_headers: 64 };
    let Ok(Some(head)) = parse_request(&input, limits) else { return };
    let body = &input[head.head_len..];
    let got = framing(&head, MAX);
    check_read(&input, &head, got, limits);
    let want = model::framing(&head, MAX);
    match (got, want) {
        (Ok(Framing::None), ModelFraming::None) => {}
        (Ok(Framing::Length(a)), ModelFraming::Length(b)) => {
            assert_eq!(a, b);
            let (out, end) = feed(Framing::Length(a), body, split);
            let n = (a as usize).min(body.len());
            assert_eq!(out, &body[..n], "a length body is its first n bytes");
            assert_eq!(end, (n == a as usize).then_some(n), "and ends exactly there");
        }
        (Ok(Framing::Chunked), ModelFraming::Chunked) => {
            let m = model::chunked_body(body, MAX);
            let mut r = BodyReader::new(Framing::Chunked).unwrap();
            let mut out = Vec::new();
            let mut pos = 0;
            let mut got = None;
            for piece in body.chunks(split) {
                match r.feed(piece, &mut out, MAX) {
                    Ok(Fed::More) => pos += piece.len(),
                    Ok(Fed::Done(n)) => {
                        assert!(n <= piece.len(), "never past the input");
                        got = Some(Ok(pos + n));
                        break;
                    }
                    Err(e) => {
                        assert!(e.status == 400 || e.status == 413, "{e:?}");
                        got = Some(Err(e.status));
                        break;
                    }
                }
            }
            match (got, m) {
                (Some(Ok(end)), ModelBody::Done(b, e)) => {
                    assert_eq!(end, e, "the body ends where the model says");
                    assert_eq!(out, b, "with the model's bytes");
                }
                (Some(Err(_)), ModelBody::Refused(_)) => {}
                // An invalid prefix may be refused before the model, which
                // needs whole lines, can tell.
                (Some(Err(_)), ModelBody::Incomplete) => {}
                (None, ModelBody::Incomplete) => {}
                (g, m) => panic!("reader {g:?}, model {m:?}"),
            }
        }
        (Err(e), ModelFraming::Refused(s)) => assert_eq!(e.status, s),
        (g, m) => panic!("framing {g:?}, model {m:?}"),
    }
});

/// Feed a body in pieces: what was taken, and where it ended (if it did).
fn feed(f: Framing, body: &[u8], split: usize) -> (Vec<u8>, Option<usize>) {
    let mut r = BodyReader::new(f).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    for piece in body.chunks(split) {
        match r.feed(piece, &mut out, MAX).expect("a length body is never refused") {
            Fed::More => pos += piece.len(),
            Fed::Done(n) => return (out, Some(pos + n)),
        }
    }
    (out, None)
}

/// `requests::read` on the whole input against the framing decision and
/// the body reader fed at once.
fn check_read(
    input: &[u8],
    head: &volley::proto::handshake::Request<'_>,
    f: Result<Framing, volley::proto::handshake::Refusal>,
    limits: HeadLimits,
) {
    let mut scratch = Vec::new();
    let read = requests::read(input, Limits { head: limits, max_body: MAX }, &mut scratch);
    if head.wants_websocket() {
        match read {
            Read::Upgrade(h) => {
                assert_eq!(framing(&h, usize::MAX), Ok(Framing::None));
                assert_eq!(h.head_len, head.head_len);
            }
            Read::Refused(r) => {
                assert_eq!(r.status, 400);
                assert_ne!(framing(head, usize::MAX), Ok(Framing::None));
            }
            r => panic!("an upgrade read as {r:?}"),
        }
        return;
    }
    let f = match (f, read) {
        (Err(e), Read::Refused(r)) => return assert_eq!(e, r),
        (Err(e), r) => panic!("framing refused {e:?}, read gave {r:?}"),
        (Ok(f), read) => (f, read),
    };
    let body = &input[head.head_len..];
    let whole = BodyReader::new(f.0).map(|mut r| {
        let mut out = input[..head.head_len].to_vec();
        (r.feed(body, &mut out, head.head_len + MAX), out)
    });
    match (whole, f.1) {
        (None, Read::Whole { body: b, used, .. }) => {
            assert!(b.is_empty());
            assert_eq!(used, head.head_len);
        }
        (Some((Ok(Fed::Done(n)), out)), Read::Whole { body: b, used, .. }) => {
            assert_eq!(b, &out[head.head_len..], "the reader's body");
            assert_eq!(used, head.head_len + n, "ending where the reader ends");
        }
        (Some((Ok(Fed::More), _)), Read::Started { .. }) => {}
        (Some((Err(e), _)), Read::Refused(r)) => assert_eq!(e, r),
        (w, r) => panic!("reader {w:?}, read {r:?}"),
    }
}
