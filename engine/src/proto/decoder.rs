//! The server's frame decoder: bytes from a client in, whole messages and
//! control frames out, with every RFC 6455 rule a server enforces.
//!
//! The decoder unmasks in place in the caller's buffer and, when a whole
//! single-frame message lies in that buffer, hands back its range: no copy.
//! Only a message that spans reads or frames is assembled in the decoder's
//! own buffer, which the caller takes and gives back (so idle connections
//! hold no buffer). Text is validated as it arrives, so an invalid byte closes
//! the connection without waiting for the end of the message.

use super::ProtocolError;
use super::frame::{self, Header, MAX_CONTROL_PAYLOAD, MAX_HEADER, OpCode};
use super::mask::apply_mask;
use super::utf8::{self, Utf8Stream};
use std::ops::Range;

/// What a complete message or control frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text; already validated as UTF-8 unless `compressed`.
    Text,
    /// Binary.
    Binary,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
    /// Close (payload not yet validated: see [`super::close::parse`]).
    Close,
}

/// One step of decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every input byte was consumed; more are needed.
    NeedMore,
    /// A complete message or control frame lies at `input[range]`, unmasked.
    /// The caller advances its input by `consumed`.
    InPlace {
        /// Bytes of input this step used.
        consumed: usize,
        /// What it is.
        kind: Kind,
        /// RSV1 was set on its first frame (permessage-deflate).
        compressed: bool,
        /// Where the payload lies in the input.
        range: Range<usize>,
    },
    /// A complete message or control frame is in the decoder's buffer: take it
    /// with [`Decoder::take_buffer`].
    Buffered {
        /// Bytes of input this step used.
        consumed: usize,
        /// What it is.
        kind: Kind,
        /// RSV1 was set on its first frame (permessage-deflate).
        compressed: bool,
    },
}

/// The common case, without the general path's state: one whole final
/// frame (a message that is one frame, or a control frame) at the start of
/// `input`, with no message in progress. `Ok(None)` for anything else (a
/// frame that is split, fragmented, over a limit or against a rule), which
/// the general path then reads and, where it breaks a rule, refuses: this
/// path writes nothing until it has seen that the frame is one it takes.
/// Its events are the general path's, which the `frame_decoder` fuzz target
/// checks (whole input here, the same bytes in pieces there).
#[inline]
fn whole_frame(input: &mut [u8], limits: &Limits) -> Result<Option<Step>, ProtocolError> {
    let Ok(Some(h)) = frame::parse_header(input) else {
        return Ok(None);
    };
    let Some(mask) = h.mask else {
        return Ok(None);
    };
    if !h.fin || h.rsv23 || h.len > (input.len() - h.header_len) as u64 {
        return Ok(None);
    }
    let kind = match h.opcode {
        OpCode::Text | OpCode::Binary => {
            if h.len > limits.max_message as u64
                || (h.rsv1 && !limits.rsv1_allowed)
                || limits.max_fragments == 0
            {
                return Ok(None);
            }
            if h.opcode == OpCode::Text {
                Kind::Text
            } else {
                Kind::Binary
            }
        }
        OpCode::Ping | OpCode::Pong | OpCode::Close => {
            if h.rsv1 || h.len > MAX_CONTROL_PAYLOAD as u64 {
                return Ok(None);
            }
            match h.opcode {
                OpCode::Ping => Kind::Ping,
                OpCode::Pong => Kind::Pong,
                _ => Kind::Close,
            }
        }
        OpCode::Continuation => return Ok(None),
    };
    let range = h.header_len..h.header_len + h.len as usize;
    apply_mask(&mut input[range.clone()], mask, 0);
    if kind == Kind::Text && !h.rsv1 && utf8::validate(&input[range.clone()]).is_err() {
        return Err(ProtocolError::InvalidUtf8);
    }
    Ok(Some(Step::InPlace {
        consumed: range.end,
        kind,
        compressed: h.rsv1,
        range,
    }))
}

/// The frame being read.
#[derive(Debug, Clone, Copy)]
struct Current {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already read (position for the mask).
    offset: usize,
}

/// Configuration of a decoder.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message (sum of its frames' payloads), before any inflation.
    pub max_message: usize,
    /// RSV1 is allowed on a message's first frame (permessage-deflate negotiated).
    pub rsv1_allowed: bool,
    /// Most frames in one message: a million one-byte fragments is work
    /// without a message, refused with 1008.
    pub max_fragments: u32,
}

/// Server-side incremental decoder. See the module documentation.
///
/// Eight bytes at rest: the state of a frame or message in progress lives in
/// a box that exists only while one is in progress. A whole frame with
/// nothing in progress takes a short path that builds no state at all; any
/// other call decodes on a stack copy of that state and boxes it only if
/// something is left over, so a stream of whole frames never allocates.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Option<Box<Partial>>,
}

impl Decoder {
    /// A decoder at the start of a connection.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// True when the decoder holds no partial frame or message.
    pub fn is_idle(&self) -> bool {
        self.partial.as_ref().is_none_or(|p| p.is_idle())
    }

    /// Bytes held for partial messages (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.buffered())
    }

    /// Decode from `input`, unmasking it in place. Call again with the input
    /// after `consumed` until [`Step::NeedMore`].
    pub fn decode(&mut self, input: &mut [u8], limits: &Limits) -> Result<Step, ProtocolError> {
        match &mut self.partial {
            Some(p) => {
                let step = p.decode(input, limits);
                if p.is_idle() && p.buffered() == 0 {
                    self.partial = None;
                }
                step
            }
            None => {
                if let Some(step) = whole_frame(input, limits)? {
                    return Ok(step);
                }
                let mut p = Partial::default();
                let step = p.decode(input, limits);
                if !p.is_idle() || p.buffered() > 0 {
                    self.partial = Some(Box::new(p));
                }
                step
            }
        }
    }

    /// Take the payload of the last [`Step::Buffered`].
    pub fn take_buffer(&mut self, kind: Kind) -> Vec<u8> {
        let Some(p) = self.partial.as_mut() else {
            return Vec::new();
        };
        let v = p.take_buffer(kind);
        if p.is_idle() && p.buffered() == 0 {
            self.partial = None;
        }
        v
    }
}

/// A frame or message in progress.
#[derive(Debug, Default)]
struct Partial {
    hdr: [u8; MAX_HEADER],
    hdr_len: u8,
    cur: Option<Current>,
    /// Opcode of the fragmented message in progress (Text or Binary).
    msg_op: Option<OpCode>,
    msg_compressed: bool,
    /// Payload of the message in progress, or of a split control frame.
    buf: Vec<u8>,
    /// Payload of a control frame that arrived in pieces while `buf` holds data.
    ctrl: Vec<u8>,
    utf8: Utf8Stream,
    /// Bytes of the message in progress counted against the limit.
    msg_len: usize,
    /// Frames of the message in progress.
    frags: u32,
}

impl Partial {
    fn is_idle(&self) -> bool {
        self.hdr_len == 0 && self.cur.is_none() && self.msg_op.is_none()
    }

    fn buffered(&self) -> usize {
        self.buf.capacity() + self.ctrl.capacity()
    }

    fn take_buffer(&mut self, kind: Kind) -> Vec<u8> {
        match kind {
            Kind::Ping | Kind::Pong | Kind::Close if self.msg_op.is_some() => {
                std::mem::take(&mut self.ctrl)
            }
            _ => std::mem::take(&mut self.buf),
        }
    }

    fn decode(&mut self, input: &mut [u8], limits: &Limits) -> Result<Step, ProtocolError> {
        let mut pos = 0;
        loop {
            if self.cur.is_none() {
                let h = match self.read_header(input, &mut pos)? {
                    Some(h) => h,
                    None => return Ok(Step::NeedMore),
                };
                self.start_frame(h, limits)?;
                if h.len == 0 {
                    if let Some(step) = self.finish_frame(pos, pos..pos)? {
                        return Ok(step);
                    }
                    continue;
                }
            }
            let cur = self.cur.as_mut().expect("frame in progress");
            let avail = (input.len() - pos).min(cur.remaining as usize);
            if avail == 0 {
                return Ok(Step::NeedMore);
            }
            let range = pos..pos + avail;
            apply_mask(&mut input[range.clone()], cur.mask, cur.offset);
            let whole = cur.offset == 0 && avail as u64 == cur.remaining;
            cur.offset += avail;
            cur.remaining -= avail as u64;
            pos += avail;
            let (opcode, fin) = (cur.opcode, cur.fin);
            if opcode.is_control() {
                if whole {
                    return Ok(self.finish_frame(pos, range)?.expect("control completes"));
                }
                self.ctrl_buf().extend_from_slice(&input[range]);
            } else {
                let single = whole && fin && opcode != OpCode::Continuation;
                let text = self.msg_op == Some(OpCode::Text) && !self.msg_compressed;
                if single {
                    // The whole message is here: validate it in one pass.
                    if text && utf8::validate(&input[range.clone()]).is_err() {
                        return Err(ProtocolError::InvalidUtf8);
                    }
                    return Ok(self.finish_frame(pos, range)?.expect("message completes"));
                }
                if text {
                    self.utf8
                        .feed(&input[range.clone()])
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                self.buf.extend_from_slice(&input[range]);
            }
            if self.cur.expect("frame").remaining == 0 {
                if let Some(step) = self.finish_frame(pos, 0..0)? {
                    return Ok(step);
                }
            }
        }
    }

    /// The buffer a split control frame accumulates in.
    fn ctrl_buf(&mut self) -> &mut Vec<u8> {
        if self.msg_op.is_some() {
            &mut self.ctrl
        } else {
            &mut self.buf
        }
    }

    /// Parse a header from the carried bytes and `input[*pos..]`.
    fn read_header(
        &mut self,
        input: &[u8],
        pos: &mut usize,
    ) -> Result<Option<Header>, ProtocolError> {
        let rest = &input[*pos..];
        if self.hdr_len == 0 {
            if let Some(h) = frame::parse_header(rest)? {
                *pos += h.header_len;
                return Ok(Some(h));
            }
            self.hdr[..rest.len()].copy_from_slice(rest);
            self.hdr_len = rest.len() as u8;
            *pos = input.len();
            // Reject a bad opcode or length as soon as its bytes are here.
            return Ok(None);
        }
        let had = self.hdr_len as usize;
        let take = (MAX_HEADER - had).min(rest.len());
        self.hdr[had..had + take].copy_from_slice(&rest[..take]);
        match frame::parse_header(&self.hdr[..had + take])? {
            Some(h) => {
                *pos += h.header_len - had;
                self.hdr_len = 0;
                Ok(Some(h))
            }
            None => {
                self.hdr_len = (had + take) as u8;
                *pos += take;
                Ok(None)
            }
        }
    }

    /// Apply the server's rules to a new frame and make it current.
    fn start_frame(&mut self, h: Header, limits: &Limits) -> Result<(), ProtocolError> {
        let mask = h.mask.ok_or(ProtocolError::UnmaskedClientFrame)?;
        if h.rsv23 {
            return Err(ProtocolError::ReservedBitsSet);
        }
        if h.opcode.is_control() {
            if h.rsv1 {
                return Err(ProtocolError::ReservedBitsSet);
            }
            if h.len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
        } else {
            match (h.opcode, self.msg_op) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Continuation, Some(_)) => {
                    if h.rsv1 {
                        return Err(ProtocolError::ReservedBitsSet);
                    }
                }
                (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
                (op, None) => {
                    if h.rsv1 && !limits.rsv1_allowed {
                        return Err(ProtocolError::ReservedBitsSet);
                    }
                    self.msg_op = Some(op);
                    self.msg_compressed = h.rsv1;
                    self.msg_len = 0;
                    self.frags = 0;
                }
            }
            self.frags += 1;
            if self.frags > limits.max_fragments {
                return Err(ProtocolError::TooManyFragments);
            }
            let total = (self.msg_len as u64).saturating_add(h.len);
            if total > limits.max_message as u64 {
                return Err(ProtocolError::MessageTooBig);
            }
            self.msg_len = total as usize;
        }
        self.cur = Some(Current {
            opcode: h.opcode,
            fin: h.fin,
            mask,
            remaining: h.len,
            offset: 0,
        });
        Ok(())
    }

    /// The current frame's payload is complete. Returns the step to report,
    /// or `None` when the frame ends a fragment that is not the last.
    fn finish_frame(
        &mut self,
        consumed: usize,
        in_place: Range<usize>,
    ) -> Result<Option<Step>, ProtocolError> {
        let cur = self.cur.take().expect("frame in progress");
        let ctrl_kind = match cur.opcode {
            OpCode::Ping => Some(Kind::Ping),
            OpCode::Pong => Some(Kind::Pong),
            OpCode::Close => Some(Kind::Close),
            _ => None,
        };
        if let Some(kind) = ctrl_kind {
            // A control frame is whole in place when it arrived in one piece
            // (or is empty); else it was accumulated.
            let step = if cur.offset == in_place.len() {
                Step::InPlace {
                    consumed,
                    kind,
                    compressed: false,
                    range: in_place,
                }
            } else {
                Step::Buffered {
                    consumed,
                    kind,
                    compressed: false,
                }
            };
            return Ok(Some(step));
        }
        if !cur.fin {
            return Ok(None);
        }
        let op = self.msg_op.take().expect("message in progress");
        let compressed = std::mem::take(&mut self.msg_compressed);
        let kind = if op == OpCode::Text {
            if !compressed {
                self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            Kind::Text
        } else {
            Kind::Binary
        };
        self.msg_len = 0;
        // In place only for a single unfragmented frame that arrived whole.
        let single = cur.opcode != OpCode::Continuation && cur.offset == in_place.len();
        Ok(Some(if single {
            self.utf8 = Utf8Stream::default();
            Step::InPlace {
                consumed,
                kind,
                compressed,
                range: in_place,
            }
        } else {
            Step::Buffered {
                consumed,
                kind,
                compressed,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::encode_header;

    const LIMITS: Limits = Limits {
        max_message: 1 << 20,
        rsv1_allowed: false,
        max_fragments: 1 << 17,
    };

    fn client_frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let key = [0xA1, 0xB2, 0xC3, 0xD4];
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, fin, false, op, payload.len() as u64, Some(key));
        let mut v = h[..n].to_vec();
        let start = v.len();
        v.extend_from_slice(payload);
        apply_mask(&mut v[start..], key, 0);
        v
    }

    /// Feed `wire` in chunks of `chunk` bytes; collect (kind, payload) events.
    fn run(
        wire: &[u8],
        chunk: usize,
        limits: Limits,
    ) -> Result<Vec<(Kind, Vec<u8>)>, ProtocolError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk.max(1)) {
            let mut piece = piece.to_vec();
            let mut pos = 0;
            loop {
                match d.decode(&mut piece[pos..], &limits)? {
                    Step::NeedMore => break,
                    Step::InPlace {
                        consumed,
                        kind,
                        range,
                        ..
                    } => {
                        out.push((kind, piece[pos..][range].to_vec()));
                        pos += consumed;
                    }
                    Step::Buffered { consumed, kind, .. } => {
                        out.push((kind, d.take_buffer(kind)));
                        pos += consumed;
                    }
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn fragmented_text_with_interleaved_ping_at_every_chunk_size() {
        let mut wire = client_frame(false, OpCode::Text, "héllo ".as_bytes());
        wire.extend(client_frame(true, OpCode::Ping, b"p"));
        wire.extend(client_frame(false, OpCode::Continuation, "wör".as_bytes()));
        wire.extend(client_frame(true, OpCode::Continuation, b"ld"));
        wire.extend(client_frame(true, OpCode::Binary, &[7u8; 300]));
        wire.extend(client_frame(true, OpCode::Close, b"\x03\xe8"));
        for chunk in 1..=wire.len() {
            let ev = run(&wire, chunk, LIMITS).unwrap();
            assert_eq!(
                ev,
                vec![
                    (Kind::Ping, b"p".to_vec()),
                    (Kind::Text, "héllo wörld".as_bytes().to_vec()),
                    (Kind::Binary, vec![7u8; 300]),
                    (Kind::Close, b"\x03\xe8".to_vec()),
                ],
                "chunk={chunk}"
            );
        }
    }

    #[test]
    fn empty_messages_and_empty_fragments() {
        let mut wire = client_frame(true, OpCode::Text, b"");
        wire.extend(client_frame(false, OpCode::Binary, b""));
        wire.extend(client_frame(false, OpCode::Continuation, b""));
        wire.extend(client_frame(true, OpCode::Continuation, b""));
        for chunk in 1..=wire.len() {
            let ev = run(&wire, chunk, LIMITS).unwrap();
            assert_eq!(ev, vec![(Kind::Text, vec![]), (Kind::Binary, vec![])]);
        }
    }

    fn err(wire: Vec<u8>) -> ProtocolError {
        run(&wire, wire.len(), LIMITS).unwrap_err()
    }

    #[test]
    fn each_rule_gives_its_error() {
        let mut unmasked = vec![0x81, 0x02];
        unmasked.extend_from_slice(b"hi");
        assert_eq!(err(unmasked), ProtocolError::UnmaskedClientFrame);
        let mut rsv = client_frame(true, OpCode::Text, b"x");
        rsv[0] |= 0x40;
        assert_eq!(err(rsv), ProtocolError::ReservedBitsSet);
        let mut rsv2 = client_frame(true, OpCode::Text, b"x");
        rsv2[0] |= 0x20;
        assert_eq!(err(rsv2), ProtocolError::ReservedBitsSet);
        assert_eq!(
            err(client_frame(true, OpCode::Ping, &[0; 126])),
            ProtocolError::ControlFrameTooLong
        );
        assert_eq!(
            err(client_frame(false, OpCode::Ping, b"")),
            ProtocolError::FragmentedControlFrame
        );
        assert_eq!(
            err(client_frame(true, OpCode::Continuation, b"x")),
            ProtocolError::UnexpectedContinuation
        );
        let mut two = client_frame(false, OpCode::Text, b"a");
        two.extend(client_frame(true, OpCode::Text, b"b"));
        assert_eq!(err(two), ProtocolError::ExpectedContinuation);
        assert_eq!(
            err(client_frame(true, OpCode::Text, b"\xff")),
            ProtocolError::InvalidUtf8
        );
    }

    #[test]
    fn size_limit_is_enforced_on_the_header_before_buffering() {
        let limits = Limits {
            max_message: 100,
            rsv1_allowed: false,
            max_fragments: 1 << 17,
        };
        // A header declaring 2^40 bytes is refused with no payload sent.
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, false, OpCode::Binary, 1 << 40, Some([1; 4]));
        assert_eq!(
            run(&h[..n], n, limits).unwrap_err(),
            ProtocolError::MessageTooBig
        );
        // Fragments add up.
        let mut wire = client_frame(false, OpCode::Binary, &[0; 60]);
        wire.extend(client_frame(true, OpCode::Continuation, &[0; 41]));
        assert_eq!(
            run(&wire, wire.len(), limits).unwrap_err(),
            ProtocolError::MessageTooBig
        );
        let mut wire = client_frame(false, OpCode::Binary, &[0; 60]);
        wire.extend(client_frame(true, OpCode::Continuation, &[0; 40]));
        assert_eq!(run(&wire, 7, limits).unwrap().len(), 1);
    }

    #[test]
    fn fragment_count_is_capped() {
        let limits = Limits {
            max_fragments: 3,
            ..LIMITS
        };
        let mut ok = client_frame(false, OpCode::Binary, b"a");
        ok.extend(client_frame(false, OpCode::Continuation, b"b"));
        ok.extend(client_frame(true, OpCode::Continuation, b"c"));
        assert_eq!(run(&ok, ok.len(), limits).unwrap().len(), 1);
        let mut four = client_frame(false, OpCode::Binary, b"a");
        for _ in 0..2 {
            four.extend(client_frame(false, OpCode::Continuation, b"b"));
        }
        four.extend(client_frame(true, OpCode::Continuation, b"c"));
        assert_eq!(
            run(&four, four.len(), limits).unwrap_err(),
            ProtocolError::TooManyFragments
        );
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_ends() {
        // Only the first 8 payload bytes of a 100-byte text frame arrive.
        let mut payload = b"abc\xf4\x90".to_vec();
        payload.resize(100, b'a');
        let wire = client_frame(true, OpCode::Text, &payload);
        let mut d = Decoder::new();
        let mut part = wire[..6 + 8].to_vec();
        assert_eq!(
            d.decode(&mut part, &LIMITS),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn whole_frames_leave_no_state_behind() {
        let mut d = Decoder::new();
        let mut wire = client_frame(true, OpCode::Text, b"one");
        wire.extend(client_frame(true, OpCode::Binary, &[1; 200]));
        let mut pos = 0;
        while let Step::InPlace { consumed, .. } = d.decode(&mut wire[pos..], &LIMITS).unwrap() {
            pos += consumed;
            assert!(d.partial.is_none(), "no allocation for whole frames");
        }
        // A split frame keeps state; finishing it releases it.
        let mut w = client_frame(true, OpCode::Text, b"split");
        let (a, b) = w.split_at_mut(8); // inside the payload
        assert_eq!(d.decode(a, &LIMITS).unwrap(), Step::NeedMore);
        assert!(d.partial.is_some());
        assert!(matches!(
            d.decode(b, &LIMITS).unwrap(),
            Step::Buffered { .. }
        ));
        assert_eq!(d.take_buffer(Kind::Text), b"split");
        assert!(d.partial.is_none());
    }

    #[test]
    fn rsv1_allowed_only_on_first_frame_when_negotiated() {
        let limits = Limits {
            max_message: 1000,
            rsv1_allowed: true,
            max_fragments: 1 << 17,
        };
        let mut a = client_frame(false, OpCode::Text, b"\xff");
        a[0] |= 0x40;
        let mut b = client_frame(true, OpCode::Continuation, b"x");
        let mut ok = a.clone();
        ok.extend(&b);
        let ev = run(&ok, 3, limits).unwrap();
        assert_eq!(ev, vec![(Kind::Text, b"\xffx".to_vec())]);
        b[0] |= 0x40;
        a.extend(&b);
        assert_eq!(
            run(&a, a.len(), limits).unwrap_err(),
            ProtocolError::ReservedBitsSet
        );
    }
}
