//! Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).

use super::utf8;

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The endpoint is going away (server shutdown, lifetime reached).
pub const GOING_AWAY: u16 = 1001;
/// The peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A data type the endpoint can not accept.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// Reported locally when a close frame had no code; never sent.
pub const NO_STATUS: u16 = 1005;
/// Reported locally when the connection ended without a close frame; never sent.
pub const ABNORMAL: u16 = 1006;
/// A text message (or close reason) that was not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A message that violates the endpoint's policy.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message larger than `max_payload_length`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// An unexpected condition inside the server.
pub const INTERNAL_ERROR: u16 = 1011;
/// Try again later (used for overload and slow consumers).
pub const TRY_AGAIN_LATER: u16 = 1013;

/// May a peer send this code in a close frame? (RFC 6455 §7.4.1, IANA registry.)
pub fn is_valid_received(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// May this endpoint put this code on the wire? (Never 1005, 1006 or 1015.)
pub fn is_sendable(code: u16) -> bool {
    is_valid_received(code)
}

/// Why a received close frame is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadClose {
    /// A one-byte payload: a code needs two.
    TruncatedCode,
    /// A code that no peer may send.
    IllegalCode(u16),
    /// The reason is not UTF-8.
    InvalidReason,
}

impl BadClose {
    /// The close code to answer with.
    pub fn close_code(self) -> u16 {
        match self {
            BadClose::InvalidReason => INVALID_PAYLOAD,
            _ => PROTOCOL_ERROR,
        }
    }
}

/// Parse a received close payload into `(code, reason)`; an empty payload is
/// reported as [`NO_STATUS`] with an empty reason.
pub fn parse(payload: &[u8]) -> Result<(u16, &str), BadClose> {
    match payload.len() {
        0 => Ok((NO_STATUS, "")),
        1 => Err(BadClose::TruncatedCode),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_received(code) {
                return Err(BadClose::IllegalCode(code));
            }
            let reason = utf8::validate(&payload[2..]).map_err(|_| BadClose::InvalidReason)?;
            Ok((code, reason))
        }
    }
}

/// Build a close payload: the code and as much of `reason` as fits in a
/// control frame (123 bytes), cut on a character boundary. A code that may not
/// be sent becomes an empty payload when it is 1005, else 1000 is sent instead.
pub fn payload(code: u16, reason: &str) -> ([u8; 125], usize) {
    let mut out = [0u8; 125];
    if code == NO_STATUS {
        return (out, 0);
    }
    let code = if is_sendable(code) { code } else { NORMAL };
    out[..2].copy_from_slice(&code.to_be_bytes());
    let mut n = reason.len().min(123);
    while !reason.is_char_boundary(n) {
        n -= 1;
    }
    out[2..2 + n].copy_from_slice(&reason.as_bytes()[..n]);
    (out, 2 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_code_rules() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4999] {
            assert!(is_valid_received(ok), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_received(bad), "{bad}");
        }
    }

    #[test]
    fn parse_cases() {
        assert_eq!(parse(b""), Ok((NO_STATUS, "")));
        assert_eq!(parse(b"\x03"), Err(BadClose::TruncatedCode));
        assert_eq!(parse(b"\x03\xe8bye"), Ok((1000, "bye")));
        assert_eq!(parse(b"\x03\xed"), Err(BadClose::IllegalCode(1005)));
        assert_eq!(parse(b"\x03\xe8\xff"), Err(BadClose::InvalidReason));
        assert_eq!(BadClose::InvalidReason.close_code(), 1007);
    }

    #[test]
    fn payload_never_carries_local_codes_and_cuts_on_char_boundary() {
        let (p, n) = payload(1006, "x");
        assert_eq!(&p[..n], b"\x03\xe8x");
        assert_eq!(payload(1005, "x").1, 0);
        let long = "é".repeat(100); // 200 bytes
        let (p, n) = payload(4000, &long);
        assert!(n <= 125);
        assert!(std::str::from_utf8(&p[2..n]).is_ok());
    }
}
