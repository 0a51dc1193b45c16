//! A connection's protocol, sans IO, from its first byte: its [`Session`]
//! (phase, time limits, close handshake, pong account, the
//! permessage-deflate agreement) and the decoder of its peer's frames, in
//! one value that reads the peer's bytes (request heads and bodies before
//! the upgrade, frames after it), decides what each asks, and writes its
//! own output: refusals, `100 Continue`, the answers' bytes and the 101
//! ([`Connection::respond`], [`Connection::accept`],
//! [`Connection::stream`]), pongs, close frames, keep-alive pings.
//!
//! The loop hands it bytes ([`Connection::next_event`]) and time (the
//! session's transitions take `now`), and gives it a [`Carrier`]: where its
//! output goes (the loop's write queue), which inflater it may use (its own
//! for context takeover, or the worker's shared one), and where a request
//! body still arriving waits (the loop's cold storage, which an idle
//! connection does not pay for). What comes back is what the loop and the
//! handler are to hear ([`Incoming`]): a request or an upgrade to answer,
//! a message, a ping or pong, a close; what needs no one else (a ping's
//! pong, the echo of a close, our close frame for a broken rule, a refused
//! request or ping flood) it has already done. Data after our close frame
//! comes back as [`Incoming::Dropped`].
//!
//! Bytes it does not use (an incomplete request head, input while an
//! answer is awaited) are the caller's to keep and give again, in front of
//! the next ones.

use super::ProtocolError;
use super::close;
use super::decoder::{Decoder, Limits};
use super::deflate::{Agreed, Inflater, Negotiated};
use super::frame::OpCode;
use super::handshake::{self, Refusal, Request};
use super::http;
use super::inbound::{self, Received};
use super::message::Message;
use super::requests::{self, Body, Read, ReplyMode};
use super::session::{Due, Phase, Reaction, Session, Stamp, Timeouts};

/// What a connection needs from the loop that carries it.
pub trait Carrier {
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
    /// Queue raw bytes (an HTTP answer) after whatever is queued.
    fn bytes(&mut self, bytes: &[u8]);
    /// An empty buffer with room for `len` bytes (for an inflated message
    /// or an answer being written).
    fn buffer(&mut self, len: usize) -> Vec<u8>;
    /// A buffer [`Carrier::buffer`] gave, back.
    fn recycle(&mut self, buf: Vec<u8>);
    /// Keep a request body that is still arriving until the next bytes
    /// (the loop holds it where an idle connection pays nothing for it).
    fn keep_body(&mut self, body: Box<Body>);
    /// The body [`Carrier::keep_body`] kept.
    fn take_body(&mut self) -> Option<Box<Body>>;
}

/// An HTTP answer, as [`Connection::respond`] writes it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'r> {
    /// Status code.
    pub status: u16,
    /// Extra headers (the framing ones are the server's).
    pub headers: &'r [(String, String)],
    /// The body (not written for a HEAD request).
    pub body: &'r [u8],
    /// How the request asked to be answered; `None`: close after the
    /// answer, whatever it asked (a refused upgrade, an error).
    pub mode: Option<ReplyMode>,
}

/// What a passed deadline leaves to the loop ([`Connection::on_timeout`]);
/// what it needed of the protocol (a ping, an event-stream comment, a
/// close frame, an answer) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Nothing more: nothing was due, or what was due is done (a ping or
    /// a keep-alive comment went out, or, past the lifetime, our close
    /// frame did and the peer's is awaited).
    Nothing,
    /// Drop the connection now, without a word; an open WebSocket's
    /// handler hears the close first when `report` says so (the peer did
    /// not take our bytes for the send limit: nothing can be written to it).
    Drop {
        /// Tell the handler `1006`, "send timeout", first.
        report: bool,
    },
    /// A deferred answer did not come in time: ours is queued and the
    /// connection writes out and shuts down. Forget what was pending.
    Answered,
    /// The peer is silent (idle, or a ping went unanswered): our close
    /// frame (1001) is queued, but not waited on. Tell the handler
    /// (`1006`, "idle timeout"), then write out and shut down.
    Idle,
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
    /// The limits a request head and body are read under.
    pub http: requests::Limits,
    /// The connection's time limits (a refusal's last flush has the close
    /// limit).
    pub timeouts: Timeouts,
}

/// What the loop and the handler are to hear of the peer's input.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// An upgrade request, read to the end of its head (what follows it is
    /// the peer's first frames): answer with [`Connection::accept`] or
    /// [`Connection::respond`], or wait for an answer
    /// ([`Session::await_answer`]).
    Upgrade(Box<Request<'a>>),
    /// A whole plain request and its body: answer with
    /// [`Connection::respond`] or [`Connection::stream`], or wait.
    Request {
        /// The head (boxed: a frame's events, the many, stay small).
        head: Box<Request<'a>>,
        /// The body (empty when it had none), decoded when chunked.
        body: &'a [u8],
    },
    /// A request broke a rule: the refusal is queued and the connection
    /// writes out and shuts down; nothing is read after it.
    Refused,
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

impl Incoming<'_> {
    /// The connection decodes nothing after this event.
    pub fn ends_input(&self) -> bool {
        matches!(
            self,
            Incoming::Closed { .. } | Incoming::Failed { .. } | Incoming::Refused
        )
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
    pub fn send_close(&mut self, code: u16, reason: &str, carrier: &mut impl Carrier) -> bool {
        if !self.sess.send_close() {
            return false;
        }
        let (p, n) = close::payload(code, reason);
        carrier.close_frame(&p[..n]);
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
        carrier: &mut impl Carrier,
    ) -> bool {
        if !self.sess.closing(now, t) {
            return false;
        }
        self.send_close(code, reason, carrier);
        true
    }

    /// The keep-alive ping is due: send it, and wait for any answer.
    pub fn keepalive_ping(&mut self, now: Stamp, carrier: &mut impl Carrier) {
        carrier.control(OpCode::Ping, b"");
        self.sess.pinged(now);
    }

    /// The earliest moment the connection needs [`Connection::on_timeout`]
    /// (`stalled_since`: since when the loop's queued bytes have not moved,
    /// for the send limit).
    #[inline]
    pub fn next_timeout(&self, stalled_since: Option<Stamp>, t: &Timeouts) -> Option<Stamp> {
        self.sess.next_timeout(stalled_since, t)
    }

    /// A deadline may have passed at `now`: do what the session says is
    /// due ([`Session::due`]) that is the protocol's, and say what is left
    /// to the loop.
    pub fn on_timeout(
        &mut self,
        now: Stamp,
        stalled_since: Option<Stamp>,
        t: &Timeouts,
        carrier: &mut impl Carrier,
    ) -> Expired {
        match self.sess.due(stalled_since, t, now) {
            Due::Nothing => Expired::Nothing,
            Due::SendTimeout => Expired::Drop {
                report: matches!(self.sess.phase(), Phase::Open | Phase::Closing),
            },
            Due::Drop => Expired::Drop { report: false },
            Due::Answer(status, body) => {
                let a = Answer {
                    status,
                    headers: &[],
                    body: body.as_bytes(),
                    mode: None,
                };
                self.respond(a, false, now, t, carrier);
                Expired::Answered
            }
            Due::Lifetime => {
                self.close(close::GOING_AWAY, "max lifetime", now, t, carrier);
                Expired::Nothing
            }
            Due::Idle => {
                self.send_close(close::GOING_AWAY, "idle timeout", carrier);
                Expired::Idle
            }
            Due::Ping => {
                self.keepalive_ping(now, carrier);
                Expired::Nothing
            }
            Due::KeepAlive => {
                carrier.bytes(b": keep-alive\n\n");
                self.sess.kept_alive(now);
                Expired::Nothing
            }
        }
    }

    /// A request head asked for a body, which is read next under the
    /// handshake limit; a client that waits for `100 Continue` gets it.
    pub fn read_body(&mut self, send_continue: bool, now: Stamp, carrier: &mut impl Carrier) {
        if send_continue {
            carrier.bytes(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.sess.read_body(now);
    }

    /// Answer a request. With `mode` asking for keep-alive (and the
    /// server not `stopping`), the connection reads its next request
    /// afterwards: true. Otherwise it writes out and shuts down within the
    /// close limit: false.
    pub fn respond(
        &mut self,
        a: Answer<'_>,
        stopping: bool,
        now: Stamp,
        t: &Timeouts,
        carrier: &mut impl Carrier,
    ) -> bool {
        let keep = a.mode.is_some_and(|m| m.keep_alive) && !stopping;
        let head_only = a.mode.is_some_and(|m| m.head_only);
        let mut out = carrier.buffer(128 + a.body.len());
        http::write_response(&mut out, a.status, a.headers, a.body, keep, head_only);
        carrier.bytes(&out);
        carrier.recycle(out);
        if keep {
            self.sess.next_request(now);
        } else {
            self.sess.flush(now, t);
        }
        keep
    }

    /// Refuse a request that broke a rule (its status and reason), then
    /// write out and shut down.
    pub fn refuse(&mut self, r: Refusal, now: Stamp, t: &Timeouts, carrier: &mut impl Carrier) {
        let mut out = carrier.buffer(256);
        http::write_refusal(&mut out, r);
        carrier.bytes(&out);
        carrier.recycle(out);
        self.sess.flush(now, t);
    }

    /// Accept an upgrade: the 101 (with `accept_key`, the chosen
    /// subprotocol, the permessage-deflate answer when agreed, and extra
    /// headers the caller checked), and messages flow from now.
    pub fn accept(
        &mut self,
        accept_key: &str,
        protocol: Option<&str>,
        pmd: Option<&Negotiated>,
        headers: &[(String, String)],
        now: Stamp,
        carrier: &mut impl Carrier,
    ) {
        let mut out = carrier.buffer(256);
        let ext = pmd.map(|n| n.header.as_str());
        handshake::write_switching(&mut out, accept_key, protocol, ext, headers);
        carrier.bytes(&out);
        carrier.recycle(out);
        self.open(pmd.map(|n| n.agreed), now);
    }

    /// Answer with a head whose body follows as it is sent: an event
    /// stream (`sse`: `text/event-stream`, keep-alives from now) or a
    /// streamed body of `content_type`, delimited by the close.
    pub fn stream(
        &mut self,
        status: u16,
        headers: &[(String, String)],
        sse: bool,
        content_type: &str,
        now: Stamp,
        carrier: &mut impl Carrier,
    ) {
        let mut out = carrier.buffer(256);
        if sse {
            handshake::write_stream_head(&mut out, status, headers, "text/event-stream");
            out.extend_from_slice(b": volley\n\n");
        } else {
            handshake::write_stream_head(&mut out, status, headers, content_type);
        }
        carrier.bytes(&out);
        carrier.recycle(out);
        self.sess.stream(sse, now);
    }

    /// The next thing the handler is to hear from `input`, the peer's
    /// bytes, read as the connection's phase calls for (request heads and
    /// bodies before the upgrade, frames after it, unmasked in place), with
    /// the bytes of input it used. With no event, the bytes after those
    /// are not for now: more are needed (an incomplete request head: keep
    /// them and call again with more after them), the connection waits for
    /// an answer (keep them), or it reads no more (drop them). Go on with
    /// the input after the bytes used, unless the event [ends the
    /// input](Incoming::ends_input).
    ///
    /// A message that did not lie whole in `input`, or a request body that
    /// had to be decoded or gathered, is moved into `held`, an inflated
    /// message into `inflated` (both should be empty); the event borrows
    /// them, so take them back (for a pool) once it is handled.
    #[inline(always)]
    pub fn next_event<'a>(
        &mut self,
        input: &'a mut [u8],
        cfg: &Config,
        held: &'a mut Vec<u8>,
        inflated: &'a mut Vec<u8>,
        now: Stamp,
        carrier: &mut impl Carrier,
    ) -> (usize, Option<Incoming<'a>>) {
        match self.sess.phase() {
            Phase::Open | Phase::Closing => self.next_frame(input, cfg, held, inflated, carrier),
            Phase::Handshake => self.next_request(input, cfg, held, now, carrier),
            Phase::Body => self.more_body(input, cfg, held, now, carrier),
            Phase::Deferred | Phase::Fetching => (0, None),
            // Read and dropped: streaming out, closing, gone.
            Phase::Sse | Phase::Stream | Phase::Flushing | Phase::Done => (input.len(), None),
        }
    }

    /// The next frame of an open or closing WebSocket.
    #[inline(always)]
    fn next_frame<'a>(
        &mut self,
        input: &'a mut [u8],
        cfg: &Config,
        held: &'a mut Vec<u8>,
        inflated: &'a mut Vec<u8>,
        carrier: &mut impl Carrier,
    ) -> (usize, Option<Incoming<'a>>) {
        let limits = if self.sess.deflate().is_some() {
            &cfg.deflate
        } else {
            &cfg.plain
        };
        let len = input.len();
        let (used, ev) = match inbound::next(&mut self.dec, input, limits, held) {
            Ok(Some(found)) => found,
            Ok(None) => return (len, None),
            Err(e) => return (len, Some(self.fail(e, carrier))),
        };
        let ev = match ev {
            Received::Compressed { text, deflated } => {
                match self.inflate(text, deflated, cfg.max_message, inflated, carrier) {
                    Ok(ev) => ev,
                    Err(e) => return (used, Some(self.fail(e, carrier))),
                }
            }
            ev => ev,
        };
        let event = match self.sess.received(ev, cfg.max_control_backlog) {
            Reaction::Message(m) => Incoming::Message(m),
            Reaction::Discard => Incoming::Dropped,
            Reaction::Ping { payload, pong } => {
                if pong {
                    carrier.control(OpCode::Pong, payload);
                }
                Incoming::Ping(payload)
            }
            Reaction::Pong(p) => Incoming::Pong(p),
            Reaction::Close { code, reason } => {
                self.send_close(code, "", carrier);
                Incoming::Closed { code, reason }
            }
            Reaction::Fail(e) => self.fail(e, carrier),
        };
        (used, Some(event))
    }

    /// The start of a request ([`requests::read`]).
    fn next_request<'a>(
        &mut self,
        input: &'a mut [u8],
        cfg: &Config,
        scratch: &'a mut Vec<u8>,
        now: Stamp,
        carrier: &mut impl Carrier,
    ) -> (usize, Option<Incoming<'a>>) {
        let input: &'a [u8] = input;
        match requests::read(input, cfg.http, scratch) {
            Read::Incomplete => (0, None),
            Read::Refused(r) => (input.len(), Some(self.refused(r, cfg, now, carrier))),
            Read::Upgrade(head) => (head.head_len, Some(Incoming::Upgrade(Box::new(head)))),
            Read::Whole { head, body, used } => {
                let head = Box::new(head);
                (used, Some(Incoming::Request { head, body }))
            }
            Read::Started {
                body,
                send_continue,
            } => {
                self.read_body(send_continue, now, carrier);
                carrier.keep_body(body);
                (input.len(), None)
            }
        }
    }

    /// More of a request body; at its end, the request.
    fn more_body<'a>(
        &mut self,
        input: &'a mut [u8],
        cfg: &Config,
        held: &'a mut Vec<u8>,
        now: Stamp,
        carrier: &mut impl Carrier,
    ) -> (usize, Option<Incoming<'a>>) {
        let Some(mut b) = carrier.take_body() else {
            // The body phase is entered with its body kept: not reached.
            let r = Refusal {
                status: 500,
                reason: "internal error",
            };
            return (input.len(), Some(self.refused(r, cfg, now, carrier)));
        };
        // The time limit counts silence, not the length of an upload.
        self.sess.body_progress(now);
        match b.feed(input) {
            Err(r) => {
                carrier.recycle(b.into_buf());
                (input.len(), Some(self.refused(r, cfg, now, carrier)))
            }
            Ok(None) => {
                carrier.keep_body(b);
                (input.len(), None)
            }
            Ok(Some(n)) => {
                self.sess.body_done();
                match b.finish(cfg.http.head, held) {
                    Ok((head, body)) => {
                        let head = Box::new(head);
                        (n, Some(Incoming::Request { head, body }))
                    }
                    Err(r) => (input.len(), Some(self.refused(r, cfg, now, carrier))),
                }
            }
        }
    }

    /// A request broke a rule: say which, and close.
    fn refused<'a>(
        &mut self,
        r: Refusal,
        cfg: &Config,
        now: Stamp,
        carrier: &mut impl Carrier,
    ) -> Incoming<'a> {
        self.refuse(r, now, &cfg.timeouts, carrier);
        Incoming::Refused
    }

    /// A compressed message, inflated under the cap with the inflater the
    /// agreement calls for.
    fn inflate<'o>(
        &mut self,
        text: bool,
        deflated: &[u8],
        cap: usize,
        out: &'o mut Vec<u8>,
        carrier: &mut impl Carrier,
    ) -> Result<Received<'o>, ProtocolError> {
        // Without the extension, RSV1 was never the peer's to set (the
        // decoder refuses it first; this holds if it did not).
        let a = self.deflate().ok_or(ProtocolError::ReservedBitsSet)?;
        *out = carrier.buffer(deflated.len().saturating_mul(3).min(cap));
        let inflater = carrier.inflater(a.client_window_bits, a.client_no_context_takeover);
        inbound::inflate(text, deflated, inflater, cap, out)
    }

    /// The peer broke a rule: our close frame with its code.
    fn fail<'a>(&mut self, e: ProtocolError, carrier: &mut impl Carrier) -> Incoming<'a> {
        let code = e.close_code();
        let reason = e.reason();
        self.send_close(code, reason, carrier);
        Incoming::Failed { code, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{MAX_HEADER, encode_header};
    use crate::proto::mask::apply_mask;
    use crate::proto::session::Phase;

    /// A carrier that keeps what is sent, as frames.
    #[derive(Default)]
    struct Wire {
        frames: Vec<(OpCode, Vec<u8>)>,
        bytes: Vec<u8>,
        inflater: Option<Inflater>,
        body: Option<Box<Body>>,
    }

    impl Carrier for Wire {
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
        fn bytes(&mut self, b: &[u8]) {
            self.bytes.extend_from_slice(b);
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
            http: requests::Limits {
                head: handshake::HeadLimits {
                    max_bytes: 1024,
                    max_headers: 16,
                },
                max_body: 64,
            },
            timeouts: t(),
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
            let now = Stamp::from_ms(2);
            let (n, ev) = c.next_event(
                &mut input[pos..],
                &cfg(),
                &mut held,
                &mut inflated,
                now,
                &mut w,
            );
            let Some(ev) = ev else {
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

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn a_keep_alive_answer_reads_the_next_request_and_a_closing_one_flushes() {
        let keep = ReplyMode {
            keep_alive: true,
            head_only: false,
        };
        let head = ReplyMode {
            keep_alive: true,
            head_only: true,
        };
        let hdrs = [("X-A".to_string(), "1".to_string())];
        let answer = |mode| Answer {
            status: 200,
            headers: &hdrs,
            body: b"hi",
            mode,
        };
        // Keep-alive asked: the next request's limit starts now.
        let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
        assert!(c.respond(answer(Some(keep)), false, Stamp::from_ms(5), &t(), &mut w));
        assert_eq!(c.sess.phase(), Phase::Handshake);
        let out = text(&w.bytes);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("X-A: 1\r\n") && out.ends_with("\r\n\r\nhi"),
            "{out}"
        );
        assert!(
            !out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
        // HEAD: the same head, no body.
        let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
        assert!(c.respond(answer(Some(head)), false, Stamp::from_ms(5), &t(), &mut w));
        assert!(text(&w.bytes).ends_with("\r\n\r\n"));
        assert!(text(&w.bytes).contains("Content-Length: 2\r\n"));
        // A server that stops, or an answer that closes: flush, then shut.
        for (mode, stopping) in [(Some(keep), true), (None, false)] {
            let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
            assert!(!c.respond(answer(mode), stopping, Stamp::from_ms(5), &t(), &mut w));
            assert_eq!(c.sess.phase(), Phase::Flushing);
            let out = text(&w.bytes).to_ascii_lowercase();
            assert!(out.contains("connection: close\r\n"), "{out}");
        }
    }

    #[test]
    fn a_refusal_says_why_and_closes() {
        let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
        let r = Refusal {
            status: 431,
            reason: "request header fields too large",
        };
        c.refuse(r, Stamp::from_ms(2), &t(), &mut w);
        assert_eq!(c.sess.phase(), Phase::Flushing);
        let out = text(&w.bytes);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.ends_with("request header fields too large\n"), "{out}");
    }

    #[test]
    fn an_accepted_upgrade_writes_the_101_and_opens_with_the_agreement() {
        use crate::proto::deflate::{Config as Deflate, negotiate};
        let offer = ["permessage-deflate; client_max_window_bits"];
        let n = negotiate(offer, &Deflate::default()).unwrap();
        let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
        let hdrs = [("X-B".to_string(), "2".to_string())];
        c.accept(
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            Some("chat"),
            Some(&n),
            &hdrs,
            Stamp::from_ms(3),
            &mut w,
        );
        assert_eq!(c.sess.phase(), Phase::Open);
        assert_eq!(c.deflate(), Some(n.agreed));
        let out = text(&w.bytes);
        assert!(
            out.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{out}"
        );
        assert!(out.contains("Sec-WebSocket-Protocol: chat\r\n"), "{out}");
        assert!(
            out.contains(&format!("Sec-WebSocket-Extensions: {}\r\n", n.header)),
            "{out}"
        );
        assert!(
            out.contains("X-B: 2\r\n") && out.ends_with("\r\n\r\n"),
            "{out}"
        );
    }

    #[test]
    fn a_body_waits_behind_100_continue_only_when_asked() {
        for ask in [false, true] {
            let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
            c.read_body(ask, Stamp::from_ms(2), &mut w);
            assert_eq!(c.sess.phase(), Phase::Body);
            let want: &[u8] = if ask {
                b"HTTP/1.1 100 Continue\r\n\r\n"
            } else {
                b""
            };
            assert_eq!(w.bytes, want);
        }
    }

    #[test]
    fn a_streamed_answer_writes_its_head_and_streams() {
        let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
        c.stream(200, &[], true, "ignored", Stamp::from_ms(2), &mut w);
        assert_eq!(c.sess.phase(), Phase::Sse);
        let out = text(&w.bytes);
        assert!(
            out.contains("Content-Type: text/event-stream\r\n") && out.ends_with(": volley\n\n"),
            "{out}"
        );
        let (mut c, mut w) = (Connection::new(Stamp::from_ms(1)), Wire::default());
        c.stream(201, &[], false, "text/plain", Stamp::from_ms(2), &mut w);
        assert_eq!(c.sess.phase(), Phase::Stream);
        let out = text(&w.bytes);
        assert!(
            out.starts_with("HTTP/1.1 201 ") && out.contains("Content-Type: text/plain\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\n"), "{out}");
    }

    /// Events in short form, the bytes written, the control frames sent.
    type Driven = (Vec<String>, Vec<u8>, Vec<(OpCode, Vec<u8>)>);

    /// A connection from its first byte, fed `pieces` the way the loop
    /// feeds it (bytes it cannot take yet are kept and come again in front
    /// of the next piece): every event in a short form, and every byte it
    /// wrote. Upgrades are accepted, requests answered 200 with their body.
    fn drive(pieces: &[&[u8]]) -> Driven {
        let mut c = Connection::new(Stamp::from_ms(1));
        let mut w = Wire::default();
        let mut seen = Vec::new();
        let mut stash = Vec::new();
        'pieces: for piece in pieces {
            stash.extend_from_slice(piece);
            let mut input = std::mem::take(&mut stash);
            let mut pos = 0;
            while pos < input.len() {
                let (mut held, mut inflated) = (Vec::new(), Vec::new());
                let now = Stamp::from_ms(2);
                let (n, ev) = c.next_event(
                    &mut input[pos..],
                    &cfg(),
                    &mut held,
                    &mut inflated,
                    now,
                    &mut w,
                );
                pos += n;
                let Some(ev) = ev else { break };
                let ends = ev.ends_input();
                match ev {
                    Incoming::Upgrade(head) => {
                        seen.push(format!("upgrade {}", head.path));
                        c.accept("k", None, None, &[], now, &mut w);
                    }
                    Incoming::Request { head, body } => {
                        seen.push(format!("{} {} {:?}", head.method, head.path, text(body)));
                        let a = Answer {
                            status: 200,
                            headers: &[],
                            body,
                            mode: Some(ReplyMode::of(&head)),
                        };
                        c.respond(a, false, now, &t(), &mut w);
                    }
                    ev => seen.push(format!("{ev:?}")),
                }
                if ends {
                    break 'pieces;
                }
            }
            if c.sess.phase().keeps_input() {
                stash = input.split_off(pos);
            }
        }
        (seen, w.bytes, w.frames)
    }

    /// Every way to cut `wire` in two gives what it gives whole.
    fn same_at_every_cut(wire: &[u8]) -> Driven {
        let whole = drive(&[wire]);
        for cut in 0..=wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(drive(&[a, b]), whole, "cut at {cut}");
        }
        whole
    }

    #[test]
    fn pipelined_requests_and_a_chunked_body_come_out_whole_at_every_cut() {
        let wire = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
            POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";
        let (seen, out, frames) = same_at_every_cut(wire);
        assert_eq!(seen, ["GET /a \"\"", "POST /b \"abcde\"", "POST /c \"hi\""]);
        assert_eq!(text(&out).matches("HTTP/1.1 200 OK\r\n").count(), 3);
        assert!(text(&out).ends_with("\r\n\r\nhi"));
        assert!(frames.is_empty());
    }

    #[test]
    fn an_upgrade_then_frames_read_in_one_stream_at_every_cut() {
        let mut wire =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec();
        wire.extend(frame(OpCode::Ping, b"p"));
        wire.extend(frame(OpCode::Text, b"hello"));
        wire.extend(frame(OpCode::Close, &1000u16.to_be_bytes()));
        wire.extend(b"never read");
        let (seen, out, frames) = same_at_every_cut(&wire);
        assert_eq!(
            seen,
            [
                "upgrade /ws",
                "Ping([112])",
                "Message(Text(\"hello\"))",
                "Closed { code: 1000, reason: \"\" }"
            ]
        );
        assert!(text(&out).starts_with("HTTP/1.1 101 "));
        assert_eq!(
            frames,
            [
                (OpCode::Pong, b"p".to_vec()),
                (OpCode::Close, 1000u16.to_be_bytes().to_vec())
            ]
        );
    }

    #[test]
    fn a_request_that_breaks_a_rule_is_refused_and_nothing_after_it_is_read() {
        let wire = b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n\
            GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        let (seen, out, _) = same_at_every_cut(wire);
        assert_eq!(seen, ["Refused"]);
        assert!(text(&out).starts_with("HTTP/1.1 400 "), "{}", text(&out));
        // A body past the limit (64 here) is refused as it arrives.
        let big = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            20\r\n................................\r\n20\r\n................................\r\n\
            20\r\n................................\r\n";
        let (seen, out, _) = same_at_every_cut(big);
        assert_eq!(seen, ["Refused"]);
        assert!(text(&out).starts_with("HTTP/1.1 413 "), "{}", text(&out));
    }

    #[test]
    fn a_client_that_expects_100_continue_gets_it_before_its_body() {
        let wire =
            b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let (seen, out, _) = drive(&[wire, b"abc"]);
        assert_eq!(seen, ["PUT /u \"abc\""]);
        assert!(text(&out).starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
    }

    #[test]
    fn deadlines_ping_then_close_a_silent_peer_and_end_slow_requests() {
        use std::time::Duration;
        let ms = Stamp::from_ms;
        let t = Timeouts {
            ping: Some(Duration::from_millis(100)),
            pong_wait: Some(Duration::from_millis(50)),
            max_lifetime: Some(Duration::from_secs(10)),
            sse_keepalive: Some(Duration::from_millis(30)),
            send: Some(Duration::from_millis(500)),
            ..Timeouts::only(Duration::from_secs(1))
        };
        // An open WebSocket whose peer goes quiet: a ping at 100 ms, the
        // close (1001, not waited on) 50 ms after it.
        let (mut c, mut w) = (open(), Wire::default());
        assert_eq!(c.next_timeout(None, &t), Some(ms(101)));
        assert_eq!(c.on_timeout(ms(50), None, &t, &mut w), Expired::Nothing);
        assert!(w.frames.is_empty());
        assert_eq!(c.on_timeout(ms(101), None, &t, &mut w), Expired::Nothing);
        assert_eq!(w.frames, [(OpCode::Ping, Vec::new())]);
        assert_eq!(c.next_timeout(None, &t), Some(ms(151)));
        assert_eq!(c.on_timeout(ms(151), None, &t, &mut w), Expired::Idle);
        assert_eq!(w.frames[1].0, OpCode::Close);
        assert_eq!(w.frames[1].1[..2], 1001u16.to_be_bytes());
        // Past its lifetime: our close frame, then the peer's is awaited.
        let t_life = Timeouts {
            max_lifetime: Some(Duration::from_millis(20)),
            ..t
        };
        let (mut c, mut w) = (open(), Wire::default());
        assert_eq!(
            c.on_timeout(ms(21), None, &t_life, &mut w),
            Expired::Nothing
        );
        assert_eq!(c.sess.phase(), Phase::Closing);
        assert_eq!(w.frames[0].1[..2], 1001u16.to_be_bytes());
        // Queued bytes that do not move: dropped, the handler told.
        let (mut c, mut w) = (open(), Wire::default());
        let stalled = Some(ms(5));
        assert_eq!(
            c.on_timeout(ms(505), stalled, &t, &mut w),
            Expired::Drop { report: true }
        );
        assert!(w.frames.is_empty());
        // A slow head is dropped without a word; a slow body gets a 408.
        let (mut c, mut w) = (Connection::new(ms(1)), Wire::default());
        assert_eq!(
            c.on_timeout(ms(1001), None, &t, &mut w),
            Expired::Drop { report: false }
        );
        let (mut c, mut w) = (Connection::new(ms(1)), Wire::default());
        c.read_body(false, ms(1), &mut w);
        assert_eq!(c.on_timeout(ms(1001), None, &t, &mut w), Expired::Answered);
        assert!(
            text(&w.bytes).starts_with("HTTP/1.1 408 "),
            "{}",
            text(&w.bytes)
        );
        assert_eq!(c.sess.phase(), Phase::Flushing);
        // An event stream gets a comment when quiet.
        let (mut c, mut w) = (Connection::new(ms(1)), Wire::default());
        c.stream(200, &[], true, "", ms(1), &mut w);
        w.bytes.clear();
        assert_eq!(c.on_timeout(ms(31), None, &t, &mut w), Expired::Nothing);
        assert_eq!(w.bytes, b": keep-alive\n\n");
    }
}
