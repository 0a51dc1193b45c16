//! A WebSocket connection's protocol, sans IO: its [`Session`] (phase, time
//! limits, close handshake, pong account, the permessage-deflate
//! agreement) and the decoder of its peer's frames, in one value that reads
//! the peer's bytes, decides what each frame asks and writes its own
//! control frames (pongs, the close frame, keep-alive pings).
//!
//! The loop hands it bytes ([`Connection::next_event`]) and time (the
//! session's transitions take `now`), and gives it a [`Link`]: where its
//! frames go (the loop's write queue) and which inflater it may use (its
//! own for context takeover, or the worker's shared one). What comes back
//! is what the handler is to be told ([`Event`]); nothing the handler is
//! not told needs the loop (a ping's pong, the echo of a close, a refused
//! flood, data dropped after our close frame are done here).
//!
//! The HTTP half of a connection (request heads and bodies, their bounds,
//! what a request asks of the reply) is [`super::requests`]; the loop still
//! holds its state between reads (see docs/ARCHITECTURE.md, "Not yet").

use super::ProtocolError;
use super::close;
use super::decoder::{Decoder, Limits};
use super::deflate::{Agreed, Inflater};
use super::frame::OpCode;
use super::inbound::{self, Received};
use super::message::Message;
use super::session::{Reaction, Session, Stamp, Timeouts};

/// What a connection needs from the loop that carries it.
pub trait Link {
    /// Queue a control frame (ping or pong; `payload` is at most 125
    /// bytes) after whatever is queued.
    fn control(&mut self, op: OpCode, payload: &[u8]);
    /// Queue our close frame (`payload` as [`close::payload`] makes it);
    /// called once per connection. Nothing may be queued after it.
    fn close_frame(&mut self, payload: &[u8]);
    /// The inflater for the client's messages: a dedicated one (context
    /// takeover) or, when `shared`, one the loop shares between
    /// connections (reset after each message).
    fn inflater(&mut self, window_bits: u8, shared: bool) -> &mut Inflater;
    /// An empty buffer with room for `len` bytes (for an inflated message).
    fn buffer(&mut self, len: usize) -> Vec<u8>;
}

/// The limits a connection's input is read under.
#[derive(Debug, Clone)]
pub struct Config {
    /// Frame limits without permessage-deflate (RSV1 refused).
    pub plain: Limits,
    /// Frame limits with permessage-deflate agreed.
    pub deflate: Limits,
    /// The largest message, inflated (a bomb stops here, 1009).
    pub max_message: usize,
    /// Pong bytes a peer may leave unread before its pings are refused.
    pub max_control_backlog: usize,
}

/// What the handler is to be told of the peer's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A message.
    Message(Message<'a>),
    /// Nothing to tell: data after our close frame, read and dropped.
    Dropped,
    /// A ping; its pong is queued (unless our close frame went first).
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame; ours, echoing its code, is queued (unless
    /// it went before). The connection decodes nothing more: write out,
    /// then shut down.
    Closed {
        /// The peer's code (1005 when its frame had none).
        code: u16,
        /// The peer's reason.
        reason: &'a str,
    },
    /// The peer broke a rule; our close frame with `code` is queued
    /// (unless one went before). The connection decodes nothing more.
    Failed {
        /// The close code for the error (1002, 1007, 1008, 1009).
        code: u16,
        /// Why, for the handler's close callback.
        reason: &'static str,
    },
}

impl Event<'_> {
    /// The connection decodes nothing after this event.
    pub fn ends_input(&self) -> bool {
        matches!(self, Event::Closed { .. } | Event::Failed { .. })
    }
}

/// A connection's protocol state (see the module's text).
#[derive(Debug)]
pub struct Connection {
    /// Its phase, clock and control frames.
    pub sess: Session,
    dec: Decoder,
}

impl Connection {
    /// An accepted connection: reading its first request head.
    pub fn new(now: Stamp) -> Connection {
        Connection {
            sess: Session::new(now),
            dec: Decoder::new(),
        }
    }

    /// The upgrade went out (with permessage-deflate when `pmd`): messages
    /// flow from now.
    pub fn open(&mut self, pmd: Option<Agreed>, now: Stamp) {
        self.sess.agree(pmd);
        self.sess.open(now);
    }

    /// permessage-deflate, when agreed.
    #[inline]
    pub fn deflate(&self) -> Option<Agreed> {
        self.sess.deflate()
    }

    /// Bytes the decoder holds for a message that spans reads.
    pub fn buffered(&self) -> usize {
        self.dec.buffered()
    }

    /// Queue our close frame, once: true the first time (the caller then
    /// stops sending), false when it went before.
    pub fn send_close(&mut self, code: u16, reason: &str, link: &mut impl Link) -> bool {
        if !self.sess.send_close() {
            return false;
        }
        let (p, n) = close::payload(code, reason);
        link.close_frame(&p[..n]);
        true
    }

    /// Close an open connection: our close frame goes out and the peer's
    /// is awaited until the close limit. False (nothing sent) when it was
    /// not open.
    pub fn close(
        &mut self,
        code: u16,
        reason: &str,
        now: Stamp,
        t: &Timeouts,
        link: &mut impl Link,
    ) -> bool {
        if !self.sess.closing(now, t) {
            return false;
        }
        self.send_close(code, reason, link);
        true
    }

    /// The keep-alive ping is due: send it, and wait for any answer.
    pub fn keepalive_ping(&mut self, now: Stamp, link: &mut impl Link) {
        link.control(OpCode::Ping, b"");
        self.sess.pinged(now);
    }

    /// The next thing the handler is to hear from `input` (client bytes,
    /// unmasked in place), with the bytes of input it used; `None` when
    /// every byte was used and more are needed. Go on with the input after
    /// those bytes, unless the event [ends the input](Event::ends_input).
    ///
    /// A message that did not lie whole in `input` is moved into `held`,
    /// an inflated one into `inflated` (both should be empty); the event
    /// borrows them, so take them back (for a pool) once it is handled.
    #[inline(always)]
    pub fn next_event<'a>(
        &mut self,
        input: &'a mut [u8],
        cfg: &Config,
        held: &'a mut Vec<u8>,
        inflated: &'a mut Vec<u8>,
        link: &mut impl Link,
    ) -> Option<(usize, Event<'a>)> {
        let limits = if self.sess.deflate().is_some() {
            &cfg.deflate
        } else {
            &cfg.plain
        };
        let len = input.len();
        let (used, ev) = match inbound::next(&mut self.dec, input, limits, held) {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(e) => return Some((len, self.fail(e, link))),
        };
        let ev = match ev {
            Received::Compressed { text, deflated } => {
                match self.inflate(text, deflated, cfg.max_message, inflated, link) {
                    Ok(ev) => ev,
                    Err(e) => return Some((used, self.fail(e, link))),
                }
            }
            ev => ev,
        };
        let event = match self.sess.received(ev, cfg.max_control_backlog) {
            Reaction::Message(m) => Event::Message(m),
            Reaction::Discard => Event::Dropped,
            Reaction::Ping { payload, pong } => {
                if pong {
                    link.control(OpCode::Pong, payload);
                }
                Event::Ping(payload)
            }
            Reaction::Pong(p) => Event::Pong(p),
            Reaction::Close { code, reason } => {
                self.send_close(code, "", link);
                Event::Closed { code, reason }
            }
            Reaction::Fail(e) => self.fail(e, link),
        };
        Some((used, event))
    }

    /// A compressed message, inflated under the cap with the inflater the
    /// agreement calls for.
    fn inflate<'o>(
        &mut self,
        text: bool,
        deflated: &[u8],
        cap: usize,
        out: &'o mut Vec<u8>,
        link: &mut impl Link,
    ) -> Result<Received<'o>, ProtocolError> {
        // Without the extension, RSV1 was never the peer's to set (the
        // decoder refuses it first; this holds if it did not).
        let a = self.deflate().ok_or(ProtocolError::ReservedBitsSet)?;
        *out = link.buffer(deflated.len().saturating_mul(3).min(cap));
        let inflater = link.inflater(a.client_window_bits, a.client_no_context_takeover);
        inbound::inflate(text, deflated, inflater, cap, out)
    }

    /// The peer broke a rule: our close frame with its code.
    fn fail<'a>(&mut self, e: ProtocolError, link: &mut impl Link) -> Event<'a> {
        let code = e.close_code();
        let reason = e.reason();
        self.send_close(code, reason, link);
        Event::Failed { code, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{MAX_HEADER, encode_header};
    use crate::proto::mask::apply_mask;
    use crate::proto::session::Phase;

    /// A link that keeps what is sent, as frames.
    #[derive(Default)]
    struct Wire {
        frames: Vec<(OpCode, Vec<u8>)>,
        inflater: Option<Inflater>,
    }

    impl Link for Wire {
        fn control(&mut self, op: OpCode, payload: &[u8]) {
            self.frames.push((op, payload.to_vec()));
        }
        fn close_frame(&mut self, payload: &[u8]) {
            self.frames.push((OpCode::Close, payload.to_vec()));
        }
        fn inflater(&mut self, bits: u8, shared: bool) -> &mut Inflater {
            self.inflater
                .get_or_insert_with(|| Inflater::new(bits, shared))
        }
        fn buffer(&mut self, len: usize) -> Vec<u8> {
            Vec::with_capacity(len)
        }
    }

    fn cfg() -> Config {
        let l = |rsv1_allowed| Limits {
            max_message: 1024,
            rsv1_allowed,
            max_fragments: 16,
        };
        Config {
            plain: l(false),
            deflate: l(true),
            max_message: 1024,
            max_control_backlog: 10,
        }
    }

    fn frame(op: OpCode, payload: &[u8]) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, false, op, payload.len() as u64, Some(key));
        let mut f = h[..n].to_vec();
        let mut p = payload.to_vec();
        apply_mask(&mut p, key, 0);
        f.extend_from_slice(&p);
        f
    }

    fn t() -> Timeouts {
        Timeouts::only(std::time::Duration::from_secs(1))
    }

    /// Every event of `input`, as owned values, and what went out.
    fn run(c: &mut Connection, mut input: Vec<u8>) -> (Vec<String>, Vec<(OpCode, Vec<u8>)>) {
        let mut w = Wire::default();
        let mut seen = Vec::new();
        let mut pos = 0;
        loop {
            let (mut held, mut inflated) = (Vec::new(), Vec::new());
            let Some((n, ev)) =
                c.next_event(&mut input[pos..], &cfg(), &mut held, &mut inflated, &mut w)
            else {
                break;
            };
            pos += n;
            seen.push(format!("{ev:?}"));
            if ev.ends_input() {
                break;
            }
        }
        (seen, w.frames)
    }

    fn open() -> Connection {
        let mut c = Connection::new(Stamp::from_ms(1));
        c.open(None, Stamp::from_ms(1));
        c
    }

    #[test]
    fn a_connection_is_a_session_and_a_decoder_in_size() {
        // The agreement lives in the session's spare bytes.
        assert_eq!(
            std::mem::size_of::<Connection>(),
            std::mem::size_of::<Session>() + std::mem::size_of::<Decoder>()
        );
    }

    #[test]
    fn a_ping_is_answered_by_the_connection_and_told_to_the_handler() {
        let mut c = open();
        let mut input = frame(OpCode::Ping, b"hi");
        input.extend(frame(OpCode::Text, b"x"));
        let (seen, out) = run(&mut c, input);
        assert_eq!(seen, ["Ping([104, 105])", "Message(Text(\"x\"))"]);
        assert_eq!(out, [(OpCode::Pong, b"hi".to_vec())]);
    }

    #[test]
    fn the_peers_close_is_echoed_once_with_its_code() {
        let mut c = open();
        let mut p = 4000u16.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        let mut input = frame(OpCode::Close, &p);
        input.extend(frame(OpCode::Text, b"after"));
        let (seen, out) = run(&mut c, input);
        assert_eq!(seen, ["Closed { code: 4000, reason: \"bye\" }"]);
        assert_eq!(out, [(OpCode::Close, 4000u16.to_be_bytes().to_vec())]);
        // Asked to close again (a handler's close): nothing more goes out.
        let mut w = Wire::default();
        assert!(!c.send_close(1000, "", &mut w));
        assert!(w.frames.is_empty());
    }

    #[test]
    fn after_our_close_data_is_dropped_and_pings_get_no_pong() {
        let mut c = open();
        let mut w = Wire::default();
        assert!(c.close(1001, "going", Stamp::from_ms(2), &t(), &mut w));
        assert_eq!(c.sess.phase(), Phase::Closing);
        let mut input = frame(OpCode::Text, b"late");
        input.extend(frame(OpCode::Binary, b"late"));
        input.extend(frame(OpCode::Ping, b"p"));
        let (seen, out) = run(&mut c, input);
        assert_eq!(seen, ["Dropped", "Dropped", "Ping([112])"]);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_broken_rule_closes_with_its_code() {
        let mut c = open();
        let mut input = frame(OpCode::Text, b"ok");
        input.extend(frame(OpCode::Text, &[0xff, 0xfe]));
        let (seen, out) = run(&mut c, input);
        assert_eq!(seen[0], "Message(Text(\"ok\"))");
        assert!(seen[1].starts_with("Failed { code: 1007"), "{seen:?}");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, OpCode::Close);
        assert_eq!(out[0].1[..2], 1007u16.to_be_bytes());
    }

    #[test]
    fn a_ping_flood_is_refused_past_the_backlog() {
        let mut c = open();
        let mut input = Vec::new();
        for _ in 0..4 {
            input.extend(frame(OpCode::Ping, b"abc"));
        }
        let (seen, out) = run(&mut c, input);
        // 2 + 3 bytes a pong: two fit the 10 bytes allowed, the third not.
        assert_eq!(seen.len(), 3);
        assert!(seen[2].starts_with("Failed { code: 1008"), "{seen:?}");
        let ops: Vec<OpCode> = out.iter().map(|f| f.0).collect();
        assert_eq!(ops, [OpCode::Pong, OpCode::Pong, OpCode::Close]);
    }

    #[test]
    fn a_compressed_message_is_inflated_with_the_agreed_window() {
        use crate::proto::deflate::Deflater;
        let mut c = Connection::new(Stamp::from_ms(1));
        let a = Agreed {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_window_bits: 15,
            client_window_bits: 15,
        };
        c.open(Some(a), Stamp::from_ms(1));
        let mut z = Vec::new();
        Deflater::new(1, 15, true).compress(b"hello hello hello", &mut z);
        let key = [9, 8, 7, 6];
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, true, OpCode::Text, z.len() as u64, Some(key));
        let mut input = h[..n].to_vec();
        apply_mask(&mut z, key, 0);
        input.extend(z);
        let (seen, out) = run(&mut c, input);
        assert_eq!(seen, ["Message(Text(\"hello hello hello\"))"]);
        assert!(out.is_empty());
    }
}
