//! A whole server connection, sans IO: an upgrade request (with a
//! permessage-deflate offer the fuzzer may mangle), then client frames split
//! at fuzzer-chosen points, decoded, inflated under the cap when compressed,
//! close frames parsed. Invariants: no panic; nothing buffered or inflated
//! beyond the limits; every close the server would send carries a legal code;
//! text delivered to handlers is UTF-8.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::close;
use volley::proto::decoder::{Decoder, Kind, Limits, Step};
use volley::proto::deflate::{Config, Inflater, negotiate};
use volley::proto::handshake::{HeadLimits, parse_request, validate_upgrade};

const MAX: usize = 8192;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let chunk = usize::from(data[0]).max(1);
    let body = &data[1..];
    let head = HeadLimits { max_bytes: 2048, max_headers: 16 };
    let Ok(Some(req)) = parse_request(body, head) else { return };
    if validate_upgrade(&req).is_err() {
        return;
    }
    let offers = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok());
    let pmd = negotiate(offers, &Config::default()).map(|n| n.agreed);
    let limits = Limits { max_message: MAX, rsv1_allowed: pmd.is_some(), max_fragments: 256 };
    let mut inflater = pmd.map(|a| Inflater::new(a.client_window_bits, a.client_no_context_takeover));
    let mut dec = Decoder::new();
    let frames = &body[req.head_len..];
    for piece in frames.chunks(chunk) {
        let mut piece = piece.to_vec();
        let mut pos = 0;
        loop {
            let (consumed, kind, compressed, payload) = match dec.decode(&mut piece[pos..], &limits) {
                Ok(Step::NeedMore) => break,
                Ok(Step::InPlace { consumed, kind, range, compressed }) => {
                    (consumed, kind, compressed, piece[pos..][range].to_vec())
                }
                Ok(Step::Buffered { consumed, kind, compressed }) => (consumed, kind, compressed, dec.take_buffer(kind)),
                Err(e) => {
                    assert!(close::is_sendable(e.close_code()));
                    return;
                }
            };
            pos += consumed;
            let msg = if compressed {
                let inf = inflater.as_mut().expect("RSV1 only when negotiated");
                let mut out = Vec::new();
                match inf.inflate(&payload, &mut out, MAX) {
                    Ok(()) => out,
                    Err(_) => return, // closes with 1009 or 1007
                }
            } else {
                payload
            };
            assert!(msg.len() <= MAX);
            match kind {
                Kind::Text if !compressed => assert!(std::str::from_utf8(&msg).is_ok()),
                Kind::Close => match close::parse(&msg) {
                    Ok((code, _)) => assert!(code == close::NO_STATUS || close::is_sendable(code)),
                    Err(b) => {
                        assert!(close::is_sendable(b.close_code()));
                        return;
                    }
                },
                _ => {}
            }
        }
    }
});
