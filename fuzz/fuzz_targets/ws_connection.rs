//! Client bytes straight into a WebSocket connection's protocol state
//! (`proto::connection::Connection`: session, decoder, permessage-deflate,
//! its own control frames), no socket and no worker, split at
//! fuzzer-chosen points. Checked: no panic; the events and the bytes the
//! connection writes are the same whether the input comes whole or in
//! pieces; what it writes parses as unmasked, final server frames: a pong
//! for each ping while open, carrying its payload, never more pong bytes
//! than the backlog allows, and at most one close frame, last, carrying the
//! error's code or echoing the peer's; no message after our close frame;
//! nothing decoded after the input ends (a close or an error); a message
//! that spans reads never holds more than the limits allow.
//!
//! Input: byte 0 chooses permessage-deflate (bit 0), context takeover
//! (bit 1) and a close of ours after the first message (bit 2); byte 1 is
//! the chunk size; the rest is the wire (the `frame_decoder` seeds fit).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use volley::proto::connection::{Config, Connection, Event, Link};
use volley::proto::decoder::Limits;
use volley::proto::deflate::{Agreed, Inflater};
use volley::proto::frame::{MAX_HEADER, OpCode, encode_header};
use volley::proto::session::{Phase, Stamp, Timeouts};

const CAP: usize = 4096;
/// Pong bytes a peer may leave unread (small, so that floods happen).
const PONG_LIMIT: usize = 300;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let pmd = data[0] & 1 == 1;
    let takeover = data[0] & 2 == 2;
    let close_early = data[0] & 4 == 4;
    let chunk = usize::from(data[1]).max(1);
    let wire = &data[2..];
    let whole = run(wire, wire.len().max(1), pmd, takeover, close_early);
    let pieces = run(wire, chunk, pmd, takeover, close_early);
    assert_eq!(whole, pieces, "the connection depends on how its input is cut");
    check_output(&whole.0, &whole.1);
});

/// The loop's side, kept as bytes: frames as a server writes them.
struct Wire {
    out: Vec<u8>,
    closes: usize,
    inflater: Option<Inflater>,
}

impl Link for Wire {
    fn control(&mut self, op: OpCode, payload: &[u8]) {
        assert!(payload.len() <= 125, "a control frame of {} bytes", payload.len());
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, false, op, payload.len() as u64, None);
        self.out.extend_from_slice(&h[..n]);
        self.out.extend_from_slice(payload);
    }
    fn close_frame(&mut self, payload: &[u8]) {
        self.closes += 1;
        assert_eq!(self.closes, 1, "a second close frame");
        self.control(OpCode::Close, payload);
    }
    fn inflater(&mut self, bits: u8, shared: bool) -> &mut Inflater {
        // One inflater either way: a shared one is reset after each message.
        self.inflater.get_or_insert_with(|| Inflater::new(bits, shared))
    }
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        Vec::with_capacity(len)
    }
}

/// One event, as owned bytes: (kind, payload, close code).
type Seen = (u8, Vec<u8>, u16);

fn run(wire: &[u8], chunk: usize, pmd: bool, takeover: bool, close_early: bool) -> (Vec<Seen>, Vec<u8>) {
    let t = Timeouts {
        close: Duration::from_secs(1),
        ..Timeouts::only(Duration::from_secs(10))
    };
    let limits = |rsv1_allowed| Limits {
        max_message: CAP,
        rsv1_allowed,
        max_fragments: 64,
    };
    let cfg = Config {
        plain: limits(false),
        deflate: limits(true),
        max_message: CAP,
        max_control_backlog: PONG_LIMIT,
    };
    let agreed = pmd.then_some(Agreed {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        server_window_bits: 15,
        client_window_bits: 15,
    });
    let mut c = Connection::new(Stamp::from_ms(0));
    c.open(agreed, Stamp::from_ms(0));
    let mut link = Wire {
        out: Vec::new(),
        closes: 0,
        inflater: None,
    };
    let mut seen = Vec::new();
    for piece in wire.chunks(chunk) {
        let mut piece = piece.to_vec();
        let len = piece.len();
        let mut pos = 0;
        while pos < len {
            let open = c.sess.phase() == Phase::Open;
            let (mut held, mut inflated) = (Vec::new(), Vec::new());
            let Some((used, ev)) =
                c.next_event(&mut piece[pos..], &cfg, &mut held, &mut inflated, &mut link)
            else {
                break;
            };
            pos += used;
            assert!(pos <= len);
            assert!(c.buffered() <= 2 * CAP + 4096, "buffer bounded");
            match ev {
                Event::Message(m) => {
                    assert!(open, "a message after our close frame");
                    assert!(m.as_bytes().len() <= CAP);
                    let text = !m.is_binary();
                    if text {
                        assert!(std::str::from_utf8(m.as_bytes()).is_ok());
                    }
                    seen.push((if text { 1 } else { 2 }, m.as_bytes().to_vec(), 0));
                    if close_early {
                        assert!(c.close(1000, "early", Stamp::from_ms(1), &t, &mut link));
                        seen.push((0, Vec::new(), 1000));
                    }
                }
                Event::Dropped => assert!(!open, "data dropped while open"),
                // A ping is answered while open only (checked on the output).
                Event::Ping(p) => seen.push((if open { 9 } else { 19 }, p.to_vec(), 0)),
                Event::Pong(p) => seen.push((10, p.to_vec(), 0)),
                Event::Closed { code, reason } => {
                    assert!(volley::proto::close::is_valid_received(code) || code == 1005);
                    seen.push((8, reason.as_bytes().to_vec(), code));
                    return (seen, link.out);
                }
                Event::Failed { code, .. } => {
                    assert!(matches!(code, 1002 | 1007 | 1008 | 1009), "close code {code}");
                    seen.push((7, Vec::new(), code));
                    return (seen, link.out);
                }
            }
        }
    }
    (seen, link.out)
}

/// The connection's bytes against what it was told: a pong per ping heard
/// while open, in order; one close frame at most, last, with the code the
/// events call for.
fn check_output(seen: &[Seen], mut out: &[u8]) {
    let mut frames = Vec::new();
    while !out.is_empty() {
        assert!(out.len() >= 2);
        let (b0, b1) = (out[0], out[1]);
        assert_eq!(b0 & 0xf0, 0x80, "FIN, no RSV");
        assert_eq!(b1 & 0x80, 0, "a server frame is not masked");
        let len = usize::from(b1 & 0x7f);
        assert!(len <= 125);
        frames.push((b0 & 0x0f, out[2..2 + len].to_vec()));
        out = &out[2 + len..];
    }
    let pings: Vec<&Vec<u8>> = seen.iter().filter(|s| s.0 == 9).map(|s| &s.1).collect();
    let pongs: Vec<&Vec<u8>> = frames.iter().filter(|f| f.0 == 0xA).map(|f| &f.1).collect();
    // (A ping refused as a flood is not heard: the connection fails with
    // 1008 instead, and sends no pong for it.)
    assert_eq!(pongs.len(), pings.len(), "a pong per ping while open");
    assert_eq!(pongs, pings, "pongs carry the pings' payloads");
    let owed: usize = pongs.iter().map(|p| 2 + p.len()).sum();
    assert!(owed <= PONG_LIMIT, "pongs past the limit");
    let closes: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].0 == 0x8).collect();
    assert!(closes.len() <= 1, "more than one close frame");
    if let Some(&i) = closes.first() {
        assert_eq!(i, frames.len() - 1, "a frame after our close frame");
    }
    let close_code = closes.first().map(|&i| &frames[i].1).map(|p| {
        if p.is_empty() {
            1005
        } else {
            u16::from_be_bytes([p[0], p[1]])
        }
    });
    // Which event sent our close frame: the first of ours, a peer's close
    // or a failure.
    let first = seen.iter().find(|s| matches!(s.0, 0 | 7 | 8));
    match first {
        None => assert_eq!(close_code, None, "a close frame nobody asked for"),
        // A peer's code we may not send ourselves is answered with 1000.
        Some(s) => {
            let want = match s.2 {
                1005 => 1005,
                c if volley::proto::close::is_sendable(c) => c,
                _ => 1000,
            };
            assert_eq!(close_code, Some(want), "the close frame's code ({seen:?})");
        }
    }
}
