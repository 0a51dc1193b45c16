//! A WebSocket connection's input after the upgrade, sans IO: the decoder's
//! frames turned into what a handler is told, with permessage-deflate and
//! every check on the way (RFC 6455 §5, §7.4, §8.1; RFC 7692 §6.2).
//!
//! [`next`] finds the next complete message or control frame in the input
//! (unmasked in place, no copy; a message that spans reads or frames comes in
//! the decoder's buffer, handed to the caller) and says what it is: an
//! [`Received`], checked: text is UTF-8, a close frame's code is one a peer may
//! send and its reason is UTF-8. A permessage-deflate message comes as
//! [`Received::Compressed`], for [`inflate`] to turn into text or binary under
//! the message size cap.
//!
//! What a frame makes the connection do (answer a ping, echo a close, drop
//! data after our close frame) depends on the connection's phase: that is
//! [`Session::received`](super::session::Session::received), and
//! `io/frames.rs` carries it out.

use super::ProtocolError;
use super::close;
use super::decoder::{Decoder, Kind, Limits, Step};
use super::deflate::{InflateError, Inflater};
use super::utf8;

/// What the peer sent, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping and its payload.
    Ping(&'a [u8]),
    /// A pong and its payload.
    Pong(&'a [u8]),
    /// A close frame: its code (1005 when it had none) and reason.
    Close {
        /// The peer's code, or 1005 (no status) for an empty close frame.
        code: u16,
        /// The peer's reason (UTF-8, at most 123 bytes).
        reason: &'a str,
    },
    /// A permessage-deflate message (RSV1 on its first frame), not yet
    /// inflated or checked: give it to [`inflate`].
    Compressed {
        /// A text message (checked once inflated).
        text: bool,
        /// The deflated payload, without the 4-byte tail (RFC 7692 §7.2.2).
        deflated: &'a [u8],
    },
}

/// The next complete message or control frame at the start of `input`,
/// which is unmasked in place, with the bytes of input it used; `None` when
/// every byte was used and more are needed. Go on with the input after
/// those bytes.
///
/// A payload that did not lie whole in `input` is moved into `held` (which
/// should be empty: what it held is dropped) and the event borrows it there;
/// take it back out (for a pool) once the event has been handled.
#[inline(always)]
pub fn next<'a>(
    dec: &mut Decoder,
    input: &'a mut [u8],
    limits: &Limits,
    held: &'a mut Vec<u8>,
) -> Result<Option<(usize, Received<'a>)>, ProtocolError> {
    let step = dec.decode(input, limits)?;
    let input: &'a [u8] = input;
    let (consumed, kind, compressed, payload) = match step {
        Step::NeedMore => return Ok(None),
        Step::InPlace {
            consumed,
            kind,
            compressed,
            range,
        } => (consumed, kind, compressed, &input[range]),
        Step::Buffered {
            consumed,
            kind,
            compressed,
        } => {
            *held = dec.take_buffer(kind);
            let held: &'a Vec<u8> = held;
            (consumed, kind, compressed, &held[..])
        }
    };
    if compressed {
        return match kind {
            Kind::Text | Kind::Binary => Ok(Some((
                consumed,
                Received::Compressed {
                    text: kind == Kind::Text,
                    deflated: payload,
                },
            ))),
            // The decoder refuses RSV1 on a control frame (RFC 7692 §6.1).
            _ => Err(ProtocolError::ReservedBitsSet),
        };
    }
    let event = match kind {
        // SAFETY: the decoder validates an uncompressed text message as it
        // arrives (whole, or streamed across fragments with the end checked)
        // before it reports one; see proto::decoder.
        Kind::Text => Received::Text(unsafe { std::str::from_utf8_unchecked(payload) }),
        Kind::Binary => Received::Binary(payload),
        Kind::Ping => Received::Ping(payload),
        Kind::Pong => Received::Pong(payload),
        Kind::Close => {
            let (code, reason) = close::parse(payload)?;
            Received::Close { code, reason }
        }
    };
    Ok(Some((consumed, event)))
}

/// Inflate a compressed message (as [`Received::Compressed`] gave it) into
/// `out` (cleared first) with `inflater`, refusing at `cap` bytes of output
/// (1009: a bomb stops at the cap, never past it), and check it: corrupt
/// data is 1007, and so is inflated text that is not UTF-8.
pub fn inflate<'o>(
    text: bool,
    deflated: &[u8],
    inflater: &mut Inflater,
    cap: usize,
    out: &'o mut Vec<u8>,
) -> Result<Received<'o>, ProtocolError> {
    out.clear();
    inflater.inflate(deflated, out, cap).map_err(|e| match e {
        InflateError::TooBig => ProtocolError::MessageTooBig,
        InflateError::Corrupt => ProtocolError::BadCompressedData,
    })?;
    if text {
        utf8::validate(out)
            .map(Received::Text)
            .map_err(|_| ProtocolError::InvalidUtf8)
    } else {
        Ok(Received::Binary(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::deflate::Deflater;
    use crate::proto::frame::{MAX_HEADER, OpCode, encode_header};
    use crate::proto::mask::apply_mask;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn limits(pmd: bool) -> Limits {
        Limits {
            max_message: 1 << 16,
            rsv1_allowed: pmd,
            max_fragments: 64,
        }
    }

    /// One masked client frame.
    fn client(fin: bool, rsv1: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, fin, rsv1, op, payload.len() as u64, Some(KEY));
        let mut v = h[..n].to_vec();
        let at = v.len();
        v.extend_from_slice(payload);
        apply_mask(&mut v[at..], KEY, 0);
        v
    }

    /// Every event in `wire`, fed in pieces of `piece` bytes, as owned
    /// values; the error that ended it, if one did.
    fn events(wire: &[u8], piece: usize, pmd: bool) -> (Vec<String>, Option<ProtocolError>) {
        let mut dec = Decoder::new();
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for chunk in wire.chunks(piece) {
            let mut input = chunk.to_vec();
            let mut pos = 0;
            loop {
                let mut held = Vec::new();
                let (used, ev) = match next(&mut dec, &mut input[pos..], &limits(pmd), &mut held) {
                    Ok(Some(found)) => found,
                    Ok(None) => break,
                    Err(e) => return (seen, Some(e)),
                };
                let ev = match ev {
                    Received::Compressed { text, deflated } => {
                        inflate(text, deflated, &mut inflater, 1 << 16, &mut out)
                    }
                    ev => Ok(ev),
                };
                match ev {
                    Ok(e) => seen.push(format!("{e:?}")),
                    Err(e) => return (seen, Some(e)),
                }
                pos += used;
            }
        }
        (seen, None)
    }

    #[test]
    fn a_message_in_one_read_is_told_in_place() {
        let mut wire = client(true, false, OpCode::Text, b"hello");
        let len = wire.len();
        let mut dec = Decoder::new();
        let mut held = Vec::new();
        let found = next(&mut dec, &mut wire, &limits(false), &mut held).unwrap();
        assert_eq!(found, Some((len, Received::Text("hello"))));
        assert_eq!(held.capacity(), 0, "no copy for a whole frame");
    }

    #[test]
    fn events_do_not_depend_on_how_the_input_is_cut() {
        let mut d = Deflater::new(1, 15, false);
        let mut z = Vec::new();
        d.compress("κόσμε, compressed".as_bytes(), &mut z);
        let mut wire = client(false, false, OpCode::Binary, b"frag");
        wire.extend(client(true, false, OpCode::Ping, b"p"));
        wire.extend(client(true, false, OpCode::Continuation, b"mented"));
        wire.extend(client(true, true, OpCode::Text, &z));
        wire.extend(client(true, false, OpCode::Pong, b""));
        wire.extend(client(
            true,
            false,
            OpCode::Close,
            &[0x03, 0xe8, b'b', b'y', b'e'],
        ));
        let (whole, err) = events(&wire, wire.len(), true);
        assert_eq!(err, None);
        assert_eq!(
            whole,
            [
                r#"Ping([112])"#,
                r#"Binary([102, 114, 97, 103, 109, 101, 110, 116, 101, 100])"#,
                r#"Text("κόσμε, compressed")"#,
                r#"Pong([])"#,
                r#"Close { code: 1000, reason: "bye" }"#,
            ]
        );
        for piece in 1..wire.len() {
            assert_eq!(
                events(&wire, piece, true),
                (whole.clone(), None),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let mut d = Deflater::new(9, 15, true);
        let mut z = Vec::new();
        d.compress(&vec![0u8; (1 << 16) + 1], &mut z);
        assert!(z.len() < 1024);
        let wire = client(true, true, OpCode::Binary, &z);
        let (seen, err) = events(&wire, wire.len(), true);
        assert!(seen.is_empty());
        assert_eq!(err, Some(ProtocolError::MessageTooBig));
        assert_eq!(err.unwrap().close_code(), 1009);
    }

    #[test]
    fn inflated_text_that_is_not_utf8_is_1007() {
        let mut d = Deflater::new(1, 15, true);
        let mut z = Vec::new();
        d.compress(&[b'a', 0xff, b'b'], &mut z);
        let wire = client(true, true, OpCode::Text, &z);
        let (_, err) = events(&wire, wire.len(), true);
        assert_eq!(err, Some(ProtocolError::InvalidUtf8));
        assert_eq!(err.unwrap().close_code(), 1007);
    }

    #[test]
    fn corrupt_deflate_data_is_1007() {
        let wire = client(true, true, OpCode::Binary, &[0xff, 0xff, 0xff, 0xff]);
        let (_, err) = events(&wire, wire.len(), true);
        assert_eq!(err, Some(ProtocolError::BadCompressedData));
        assert_eq!(err.unwrap().close_code(), 1007);
    }

    #[test]
    fn a_compressed_message_is_told_as_such_until_inflated() {
        let mut wire = client(true, true, OpCode::Binary, &[0x02, 0x00]);
        let mut dec = Decoder::new();
        let mut held = Vec::new();
        let (_, ev) = next(&mut dec, &mut wire, &limits(true), &mut held)
            .unwrap()
            .unwrap();
        assert_eq!(
            ev,
            Received::Compressed {
                text: false,
                deflated: &[0x02, 0x00]
            }
        );
        let mut out = Vec::new();
        let ev = inflate(
            false,
            &[0x02, 0x00],
            &mut Inflater::new(15, true),
            16,
            &mut out,
        );
        assert_eq!(ev, Ok(Received::Binary(b"")));
    }

    #[test]
    fn close_frames_are_checked() {
        let empty = client(true, false, OpCode::Close, b"");
        assert_eq!(
            events(&empty, empty.len(), false).0,
            [r#"Close { code: 1005, reason: "" }"#]
        );
        for (payload, err) in [
            (&[0x03][..], ProtocolError::TruncatedCloseCode),
            (&[0x03, 0xed][..], ProtocolError::IllegalCloseCode(1005)),
            (&[0x03, 0xe8, 0xff][..], ProtocolError::InvalidUtf8),
        ] {
            let wire = client(true, false, OpCode::Close, payload);
            assert_eq!(events(&wire, wire.len(), false), (vec![], Some(err)));
        }
    }

    #[test]
    fn a_spanning_message_comes_in_its_own_buffer() {
        let wire = client(true, false, OpCode::Binary, &[7u8; 300]);
        let mut dec = Decoder::new();
        let mut held = Vec::new();
        let mut first = wire[..100].to_vec();
        assert_eq!(
            next(&mut dec, &mut first, &limits(false), &mut held),
            Ok(None)
        );
        let mut rest = wire[100..].to_vec();
        let len = rest.len();
        let found = next(&mut dec, &mut rest, &limits(false), &mut held).unwrap();
        assert_eq!(found, Some((len, Received::Binary(&[7u8; 300]))));
        assert_eq!(held.len(), 300);
    }
}
