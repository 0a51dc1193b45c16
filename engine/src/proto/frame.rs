//! Frame headers (RFC 6455 §5.2): parse and encode, nothing else.
//!
//! Role-agnostic: the server's decoder ([`super::decoder`]) adds the rules that
//! depend on who is talking (masking, fragmentation, size limits), and the load
//! generator uses the same functions to read server frames.

use super::ProtocolError;

/// Frame opcodes. Reserved values are rejected when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// First frame of a text message.
    Text = 0x1,
    /// First frame of a binary message.
    Binary = 0x2,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl OpCode {
    /// Decode the low nibble of the first header byte.
    pub fn from_u8(v: u8) -> Result<Self, ProtocolError> {
        Ok(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// Close, Ping and Pong.
    #[inline]
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Largest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Largest frame header: 2 + 8 (length) + 4 (mask).
pub const MAX_HEADER: usize = 14;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Final fragment of its message.
    pub fin: bool,
    /// RSV1 (owned by permessage-deflate when negotiated).
    pub rsv1: bool,
    /// RSV2 or RSV3: always a protocol error, as no extension here owns them.
    pub rsv23: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Payload length.
    pub len: u64,
    /// Bytes the header occupies.
    pub header_len: usize,
}

/// Parse a header from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed; nothing is consumed. Lengths must be
/// minimally encoded and a 64-bit length must have its top bit clear.
pub fn parse_header(buf: &[u8]) -> Result<Option<Header>, ProtocolError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let opcode = OpCode::from_u8(b0 & 0x0F)?;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(None);
    }
    let len = match len7 {
        126 => {
            let l = u16::from_be_bytes([buf[2], buf[3]]) as u64;
            if l < 126 {
                return Err(ProtocolError::NonMinimalLength);
            }
            l
        }
        127 => {
            let l = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if l >> 63 != 0 {
                return Err(ProtocolError::LengthTopBitSet);
            }
            if l <= u16::MAX as u64 {
                return Err(ProtocolError::NonMinimalLength);
            }
            l
        }
        n => n as u64,
    };
    let mask = masked.then(|| {
        let m = &buf[2 + ext..2 + ext + 4];
        [m[0], m[1], m[2], m[3]]
    });
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        rsv23: b0 & 0x30 != 0,
        opcode,
        mask,
        len,
        header_len,
    }))
}

/// Bytes of an unmasked server frame carrying `payload` bytes.
pub fn frame_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        }
}

/// Encode a header into `out`; returns its length (2 to 14).
#[inline]
pub fn encode_header(
    out: &mut [u8; MAX_HEADER],
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    len: u64,
    mask: Option<[u8; 4]>,
) -> usize {
    out[0] = (fin as u8) << 7 | (rsv1 as u8) << 6 | opcode as u8;
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut n = if len < 126 {
        out[1] = m | len as u8;
        2
    } else if len <= u16::MAX as u64 {
        out[1] = m | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = m | 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    if let Some(k) = mask {
        out[n..n + 4].copy_from_slice(&k);
        n += 4;
    }
    n
}

/// Append a whole unmasked frame (header and payload) to `out`.
#[inline]
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, rsv1: bool, payload: &[u8]) {
    let mut h = [0u8; MAX_HEADER];
    let n = encode_header(&mut h, true, rsv1, opcode, payload.len() as u64, None);
    out.reserve(n + payload.len());
    out.extend_from_slice(&h[..n]);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_length_class() {
        for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 40] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut h = [0u8; MAX_HEADER];
                let n = encode_header(&mut h, true, false, OpCode::Binary, len, mask);
                let p = parse_header(&h[..n]).unwrap().unwrap();
                assert_eq!((p.len, p.mask, p.header_len, p.fin), (len, mask, n, true));
                // Every strict prefix asks for more.
                for cut in 0..n {
                    assert_eq!(parse_header(&h[..cut]).unwrap(), None);
                }
            }
        }
    }

    #[test]
    fn rejects_reserved_opcodes_and_bad_lengths() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                parse_header(&[0x80 | op, 0x80, 0, 0, 0, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
        let mut h = vec![0x82, 127];
        h.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(parse_header(&h), Err(ProtocolError::LengthTopBitSet));
        assert_eq!(
            parse_header(&[0x82, 126, 0, 5]),
            Err(ProtocolError::NonMinimalLength)
        );
        let mut h = vec![0x82, 127];
        h.extend_from_slice(&100u64.to_be_bytes());
        assert_eq!(parse_header(&h), Err(ProtocolError::NonMinimalLength));
    }
}
