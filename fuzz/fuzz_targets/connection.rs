//! Client bytes straight into a connection's protocol state
//! (`proto::connection::Connection`: HTTP requests and the upgrade, then
//! frames, permessage-deflate, its own answers and control frames), no
//! socket and no worker, split at fuzzer-chosen points and fed the way the
//! loop feeds it (bytes it cannot take yet come again in front of the
//! next piece). Upgrades are accepted when valid (refused with the
//! handshake's status when not), requests answered 200 with their body.
//!
//! Checked: no panic; the events and everything the connection writes are
//! the same whether the input comes whole or in pieces; HTTP bytes go out
//! only before the upgrade (answers, refusals, `100 Continue`, the 101),
//! frames only after it; the frames are unmasked and final: a pong for
//! each ping heard while open, carrying its payload, never more pong
//! bytes than the backlog allows, at most one close frame, last, carrying
//! the error's code, our own or the peer's echoed; no message after our
//! close frame; nothing read after the input ends (a refusal, a close, an
//! error); a message that spans reads never holds more than the limits
//! allow. Then time passes with the peer silent (`Connection::on_timeout`):
//! the same checks hold with its pings and its close frames.
//!
//! Input: byte 0 chooses permessage-deflate (bit 0), context takeover
//! (bit 1), a close of ours after the first message (bit 2) and whether
//! the connection starts open (bit 3 clear: the bytes are frames; the
//! `frame_decoder` seeds fit) or at its first byte (set: HTTP first), and
//! whether it has a lifetime (bit 4: closed when it passes, not pinged);
//! byte 1 is the chunk size; the rest is the wire.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use volley::proto::connection::{Answer, Carrier, Config, Connection, Expired, Incoming};
use volley::proto::decoder::Limits;
use volley::proto::deflate::{self, Agreed, Inflater};
use volley::proto::handshake::{self, HeadLimits};
use volley::proto::requests::{self, Body, ReplyMode};
use volley::proto::session::{Phase, Stamp, Timeouts};

const CAP: usize = 4096;
/// Pong bytes a peer may leave unread (small, so that floods happen).
const PONG_LIMIT: usize = 300;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let how = How {
        pmd: data[0] & 1 == 1,
        takeover: data[0] & 2 == 2,
        close_early: data[0] & 4 == 4,
        http: data[0] & 8 == 8,
        lifetime: data[0] & 16 == 16,
    };
    let chunk = usize::from(data[1]).max(1);
    let wire = &data[2..];
    let whole = run(wire, wire.len().max(1), how);
    let pieces = run(wire, chunk, how);
    check_output(&whole.0, &whole.1);
    check_output(&pieces.0, &pieces.1);
    // A body that came with its head needs no `100 Continue` (RFC 9110
    // §10.1.1 lets a server leave it out): it depends on the cut, the rest
    // does not.
    assert_eq!(
        (&whole.0, answers(&whole.1)),
        (&pieces.0, answers(&pieces.1)),
        "the connection depends on how its input is cut"
    );
});

#[derive(Clone, Copy)]
struct How {
    pmd: bool,
    takeover: bool,
    close_early: bool,
    http: bool,
    lifetime: bool,
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The output without interim `100 Continue`s.
fn answers(out: &[Out]) -> Vec<&Out> {
    out.iter().filter(|o| !matches!(o, Out::Http(b) if b == CONTINUE)).collect()
}

/// What the connection wrote, in order.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Http(Vec<u8>),
    Frame(u8, Vec<u8>),
}

/// The loop's side, kept in order.
struct Wire {
    out: Vec<Out>,
    closes: usize,
    inflater: Option<Inflater>,
    body: Option<Box<Body>>,
}

impl Carrier for Wire {
    fn control(&mut self, op: volley::proto::frame::OpCode, payload: &[u8]) {
        assert!(payload.len() <= 125, "a control frame of {} bytes", payload.len());
        self.out.push(Out::Frame(op as u8, payload.to_vec()));
    }
    fn close_frame(&mut self, payload: &[u8]) {
        self.closes += 1;
        assert_eq!(self.closes, 1, "a second close frame");
        self.out.push(Out::Frame(0x8, payload.to_vec()));
    }
    fn inflater(&mut self, bits: u8, shared: bool) -> &mut Inflater {
        // One inflater either way: a shared one is reset after each message.
        self.inflater.get_or_insert_with(|| Inflater::new(bits, shared))
    }
    fn bytes(&mut self, b: &[u8]) {
        self.out.push(Out::Http(b.to_vec()));
    }
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        Vec::with_capacity(len)
    }
    fn recycle(&mut self, _: Vec<u8>) {}
    fn keep_body(&mut self, body: Box<Body>) {
        assert!(self.body.replace(body).is_none(), "two bodies kept");
    }
    fn take_body(&mut self) -> Option<Box<Body>> {
        self.body.take()
    }
}

/// One event, as owned bytes: (kind, payload, close code). Kinds: 0 our
/// close, 1 text, 2 binary, 3 upgrade, 4 request, 5 refused, 7 failed,
/// 8 closed, 9 ping while open, 19 ping after our close, 10 pong, 6 a
/// slow request answered.
type Seen = (u8, Vec<u8>, u16);

fn run(wire: &[u8], chunk: usize, how: How) -> (Vec<Seen>, Vec<Out>) {
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
        http: requests::Limits {
            head: HeadLimits {
                max_bytes: 2048,
                max_headers: 32,
            },
            max_body: 512,
        },
        timeouts: t,
    };
    let pmd_cfg = deflate::Config {
        decompress: if how.takeover {
            deflate::Mode::Dedicated
        } else {
            deflate::Mode::Shared
        },
        ..deflate::Config::default()
    };
    let mut c = Connection::new(Stamp::from_ms(0));
    if !how.http {
        let agreed = how.pmd.then_some(Agreed {
            server_no_context_takeover: !how.takeover,
            client_no_context_takeover: !how.takeover,
            server_window_bits: 15,
            client_window_bits: 15,
        });
        c.open(agreed, Stamp::from_ms(0));
    }
    let mut wire_out = Wire {
        out: Vec::new(),
        closes: 0,
        inflater: None,
        body: None,
    };
    let now = Stamp::from_ms(1);
    let mut seen = Vec::new();
    let mut stash = Vec::new();
    for piece in wire.chunks(chunk) {
        stash.extend_from_slice(piece);
        let mut input = std::mem::take(&mut stash);
        let len = input.len();
        let mut pos = 0;
        while pos < len {
            let open = c.sess.phase() == Phase::Open;
            let (mut held, mut inflated) = (Vec::new(), Vec::new());
            let (used, ev) =
                c.next_event(&mut input[pos..], &cfg, &mut held, &mut inflated, now, &mut wire_out);
            pos += used;
            assert!(pos <= len);
            assert!(c.buffered() <= 2 * CAP + 4096, "buffer bounded");
            let Some(ev) = ev else { break };
            match ev {
                Incoming::Upgrade(head) => {
                    seen.push((3, head.path.as_bytes().to_vec(), 0));
                    match handshake::validate_upgrade(&head) {
                        Ok(up) => {
                            let offers = head
                                .headers
                                .iter()
                                .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
                                .filter_map(|(_, v)| std::str::from_utf8(v).ok());
                            let n = if how.pmd { deflate::negotiate(offers, &pmd_cfg) } else { None };
                            c.accept(&up.accept, None, n.as_ref(), &[], now, &mut wire_out);
                            assert_eq!(c.sess.phase(), Phase::Open);
                        }
                        Err(r) => {
                            assert!(r.status >= 400);
                            c.refuse(r, now, &t, &mut wire_out);
                        }
                    }
                }
                Incoming::Request { head, body } => {
                    assert!(body.len() <= 512, "a body past the limit");
                    seen.push((4, body.to_vec(), 0));
                    let a = Answer {
                        status: 200,
                        headers: &[],
                        body,
                        mode: Some(ReplyMode::of(&head)),
                    };
                    c.respond(a, false, now, &t, &mut wire_out);
                }
                Incoming::Refused => {
                    seen.push((5, Vec::new(), 0));
                    return (seen, wire_out.out);
                }
                Incoming::Message(m) => {
                    assert!(open, "a message after our close frame");
                    assert!(m.as_bytes().len() <= CAP);
                    let text = !m.is_binary();
                    if text {
                        assert!(std::str::from_utf8(m.as_bytes()).is_ok());
                    }
                    seen.push((if text { 1 } else { 2 }, m.as_bytes().to_vec(), 0));
                    if how.close_early {
                        assert!(c.close(1000, "early", now, &t, &mut wire_out));
                        seen.push((0, Vec::new(), 1000));
                    }
                }
                Incoming::Dropped => assert!(!open, "data dropped while open"),
                // A ping is answered while open only (checked on the output).
                Incoming::Ping(p) => seen.push((if open { 9 } else { 19 }, p.to_vec(), 0)),
                Incoming::Pong(p) => seen.push((10, p.to_vec(), 0)),
                Incoming::Closed { code, reason } => {
                    assert!(volley::proto::close::is_valid_received(code) || code == 1005);
                    seen.push((8, reason.as_bytes().to_vec(), code));
                    return (seen, wire_out.out);
                }
                Incoming::Failed { code, .. } => {
                    assert!(matches!(code, 1002 | 1007 | 1008 | 1009), "close code {code}");
                    seen.push((7, Vec::new(), code));
                    return (seen, wire_out.out);
                }
            }
        }
        if c.sess.phase().keeps_input() {
            stash = input.split_off(pos.min(len));
        }
    }
    // Then time passes with the peer silent: a keep-alive ping and the
    // close of an idle peer (or, by bit 4, the lifetime's close and the
    // wait for the peer's), a slow request's end.
    let later = Timeouts {
        ping: Some(Duration::from_millis(100)),
        pong_wait: Some(Duration::from_millis(50)),
        max_lifetime: how.lifetime.then_some(Duration::from_millis(500)),
        ..t
    };
    for s in 1..=4 {
        let open = c.sess.phase() == Phase::Open;
        let at = Stamp::from_ms(s * 20_000);
        match c.on_timeout(at, None, &later, &mut wire_out) {
            Expired::Nothing => {
                if open && c.sess.phase() == Phase::Closing {
                    seen.push((0, Vec::new(), 1001)); // the lifetime's close
                }
            }
            Expired::Idle => {
                seen.push((0, Vec::new(), 1001));
                break;
            }
            Expired::Answered => {
                seen.push((6, Vec::new(), 0));
                break;
            }
            Expired::Drop { report } => {
                assert!(!report, "a send timeout with no stalled bytes");
                break;
            }
        }
    }
    (seen, wire_out.out)
}

/// The connection's output against what it was told: HTTP only before the
/// upgrade, frames only after it; a pong per ping heard while open, in
/// order; one close frame at most, last, with the code the events call for.
fn check_output(seen: &[Seen], out: &[Out]) {
    let upgraded = |o: &Out| matches!(o, Out::Http(b) if b.starts_with(b"HTTP/1.1 101 "));
    let first_frame = out.iter().position(|o| matches!(o, Out::Frame(..)));
    if let Some(i) = first_frame {
        assert!(
            out[..i].iter().any(upgraded) || !seen.iter().any(|s| s.0 == 3),
            "a frame before the 101"
        );
        assert!(
            out[i..].iter().all(|o| matches!(o, Out::Frame(..))),
            "HTTP bytes after the upgrade"
        );
    }
    let frames: Vec<(u8, &Vec<u8>)> = out
        .iter()
        .filter_map(|o| match o {
            Out::Frame(op, p) => Some((*op, p)),
            Out::Http(_) => None,
        })
        .collect();
    let pings: Vec<&Vec<u8>> = seen.iter().filter(|s| s.0 == 9).map(|s| &s.1).collect();
    let pongs: Vec<&Vec<u8>> = frames.iter().filter(|f| f.0 == 0xA).map(|f| f.1).collect();
    // (A ping refused as a flood is not heard: the connection fails with
    // 1008 instead, and sends no pong for it.)
    assert_eq!(pongs, pings, "a pong per ping while open, with its payload");
    let owed: usize = pongs.iter().map(|p| 2 + p.len()).sum();
    assert!(owed <= PONG_LIMIT, "pongs past the limit");
    let closes: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].0 == 0x8).collect();
    assert!(closes.len() <= 1, "more than one close frame");
    if let Some(&i) = closes.first() {
        assert_eq!(i, frames.len() - 1, "a frame after our close frame");
    }
    let close_code = closes.first().map(|&i| frames[i].1).map(|p| {
        if p.is_empty() {
            1005
        } else {
            u16::from_be_bytes([p[0], p[1]])
        }
    });
    // Which event sent our close frame: the first of ours, a peer's close
    // or a failure.
    match seen.iter().find(|s| matches!(s.0, 0 | 7 | 8)) {
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
