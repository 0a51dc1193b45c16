//! Client bytes through a connection's input stage (`proto::inbound`: the
//! frame decoder, permessage-deflate under the size cap, text and close
//! checks), split at fuzzer-chosen points: no panic; messages never larger
//! than the limit; text always UTF-8; every error maps to a close code a
//! server may send for a peer's error (1002, 1007, 1008 for too many
//! fragments, 1009); and the events, and the error that ends them, are the
//! same whether the input comes whole or in pieces. Each event then goes
//! to a `Session` (opened, or closing after its first message), whose
//! reactions are checked too: messages only while open, a pong only for an
//! open connection's ping and never past the unread-pong limit, the close
//! echoed with the peer's code, and nothing decoded after it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::decoder::{Decoder, Limits};
use volley::proto::deflate::Inflater;
use volley::proto::inbound::{self, Received};
use volley::proto::session::{Reaction, Session, Stamp, Timeouts};
use std::time::Duration;

const CAP: usize = 4096;
/// Pong bytes a peer may leave unread (small, so that floods happen).
const PONG_LIMIT: usize = 300;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits = Limits {
        max_message: CAP,
        rsv1_allowed: data[0] & 1 == 1,
        max_fragments: 64,
    };
    let takeover = data[0] & 2 == 2;
    let close_early = data[0] & 4 == 4;
    let chunk = usize::from(data[1]).max(1);
    let wire = &data[2..];
    let whole = run(wire, wire.len().max(1), &limits, takeover, close_early);
    let pieces = run(wire, chunk, &limits, takeover, close_early);
    assert_eq!(whole, pieces, "events depend on how the input is cut");
});

/// Every event, as owned bytes, and the close code of the error that ended
/// them (0: none).
fn run(
    wire: &[u8],
    chunk: usize,
    limits: &Limits,
    takeover: bool,
    close_early: bool,
) -> (Vec<(u8, Vec<u8>)>, u16) {
    let t = Timeouts {
        close: Duration::from_secs(1),
        ..Timeouts::only(Duration::from_secs(10))
    };
    let mut s = Session::new(Stamp::from_ms(0));
    s.open(Stamp::from_ms(0));
    let mut pongs = 0;
    let mut d = Decoder::new();
    let mut inf = Inflater::new(15, !takeover);
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for piece in wire.chunks(chunk) {
        let mut piece = piece.to_vec();
        let mut pos = 0;
        loop {
            let mut held = Vec::new();
            let (used, ev) = match inbound::next(&mut d, &mut piece[pos..], limits, &mut held) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => return (seen, code(e.close_code())),
            };
            let ev = match ev {
                Received::Compressed { text, deflated } => {
                    assert!(limits.rsv1_allowed, "RSV1 without the extension");
                    inbound::inflate(text, deflated, &mut inf, CAP, &mut out)
                }
                ev => Ok(ev),
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => return (seen, code(e.close_code())),
            };
            seen.push(check(ev));
            let open = s.phase() == volley::proto::session::Phase::Open;
            match s.received(ev, PONG_LIMIT) {
                Reaction::Message(m) => {
                    assert!(open, "a message delivered after our close frame");
                    assert_eq!(m.as_bytes(), &seen.last().unwrap().1[..]);
                    if close_early {
                        assert!(s.send_close() && s.closing(Stamp::from_ms(1), &t));
                    }
                }
                Reaction::Discard => {
                    assert!(!open && matches!(ev, Received::Text(_) | Received::Binary(_)))
                }
                Reaction::Ping { payload, pong } => {
                    assert_eq!(pong, open, "a pong exactly while open");
                    if pong {
                        pongs += 2 + payload.len();
                        assert!(pongs <= PONG_LIMIT, "pongs past the limit");
                    }
                }
                Reaction::Pong(p) => assert!(matches!(ev, Received::Pong(q) if q == p)),
                Reaction::Close { code, .. } => {
                    assert!(matches!(ev, Received::Close { code: c, .. } if c == code));
                    // The connection decodes nothing after the peer's close.
                    seen.push((0, Vec::new()));
                    return (seen, 0);
                }
                Reaction::Fail(e) => {
                    assert!(open && matches!(ev, Received::Ping(_)), "{e:?}");
                    assert!(pongs + 2 + ev_len(ev) > PONG_LIMIT, "a flood under the limit");
                    return (seen, code(e.close_code()));
                }
            }
            pos += used;
            assert!(pos <= piece.len());
            assert!(d.buffered() <= 2 * limits.max_message + 4096, "buffer bounded");
        }
    }
    (seen, 0)
}

fn ev_len(ev: Received<'_>) -> usize {
    match ev {
        Received::Ping(p) => p.len(),
        _ => 0,
    }
}

fn code(c: u16) -> u16 {
    assert!(matches!(c, 1002 | 1007 | 1008 | 1009), "close code {c}");
    c
}

fn check(ev: Received<'_>) -> (u8, Vec<u8>) {
    match ev {
        Received::Text(t) => {
            assert!(t.len() <= CAP);
            assert!(std::str::from_utf8(t.as_bytes()).is_ok());
            (1, t.as_bytes().to_vec())
        }
        Received::Binary(b) => {
            assert!(b.len() <= CAP);
            (2, b.to_vec())
        }
        Received::Ping(p) => {
            assert!(p.len() <= 125);
            (9, p.to_vec())
        }
        Received::Pong(p) => {
            assert!(p.len() <= 125);
            (10, p.to_vec())
        }
        Received::Close { code, reason } => {
            assert!(volley::proto::close::is_valid_received(code) || code == 1005);
            assert!(reason.len() <= 123);
            let mut v = code.to_be_bytes().to_vec();
            v.extend_from_slice(reason.as_bytes());
            (8, v)
        }
        Received::Compressed { .. } => panic!("inflate gave a compressed message"),
    }
}
