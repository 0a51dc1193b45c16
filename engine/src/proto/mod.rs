//! The sans-IO protocol core: RFC 6455 as pure functions and state machines
//! over byte slices. Nothing here touches a socket, reads a clock or starts a
//! thread (time comes in as a value: see [`session`]), so
//! every part is unit-tested, fuzzed and benched on plain bytes.

pub mod close;
pub mod connection;
pub mod decoder;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod http;
#[cfg(any(test, feature = "testing"))]
pub mod http_model;
pub mod inbound;
pub mod mask;
pub mod message;
pub mod quick;
pub mod requests;
pub mod session;
pub mod utf8;

use std::fmt;

/// A rule of RFC 6455 that the peer broke. Each maps to the close code the
/// server answers with ([`ProtocolError::close_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// Opcodes 3–7 and 11–15 are reserved (§5.2).
    ReservedOpcode(u8),
    /// RSV1–3 set without an extension that owns them (§5.2).
    ReservedBitsSet,
    /// A client frame without a mask (§5.1).
    UnmaskedClientFrame,
    /// A 64-bit length with the most significant bit set (§5.2).
    LengthTopBitSet,
    /// A length not in its minimal encoding (§5.2).
    NonMinimalLength,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message is in progress (§5.4).
    ExpectedContinuation,
    /// The message would exceed `max_payload_length`.
    MessageTooBig,
    /// Text (or a close reason) that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with one byte of payload (§5.5.1).
    TruncatedCloseCode,
    /// A close code no peer may send (§7.4).
    IllegalCloseCode(u16),
    /// A compressed message that does not inflate (RFC 7692 §6.2).
    BadCompressedData,
    /// More fragments in one message than `max_fragments` allows.
    TooManyFragments,
    /// Pings keep coming while their pongs go unread.
    PingFlood,
}

impl ProtocolError {
    /// The close code the server sends for this error.
    pub fn close_code(self) -> u16 {
        match self {
            ProtocolError::MessageTooBig => close::MESSAGE_TOO_BIG,
            ProtocolError::TooManyFragments | ProtocolError::PingFlood => close::POLICY_VIOLATION,
            ProtocolError::InvalidUtf8 | ProtocolError::BadCompressedData => close::INVALID_PAYLOAD,
            _ => close::PROTOCOL_ERROR,
        }
    }

    /// A short reason for the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::ReservedBitsSet => "reserved bits set",
            ProtocolError::UnmaskedClientFrame => "client frame not masked",
            ProtocolError::LengthTopBitSet => "64-bit length has top bit set",
            ProtocolError::NonMinimalLength => "length not minimally encoded",
            ProtocolError::ControlFrameTooLong => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "expected a continuation frame",
            ProtocolError::MessageTooBig => "message too big",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::TruncatedCloseCode => "close payload of one byte",
            ProtocolError::IllegalCloseCode(_) => "illegal close code",
            ProtocolError::BadCompressedData => "invalid compressed data",
            ProtocolError::TooManyFragments => "too many fragments",
            ProtocolError::PingFlood => "pings faster than pongs are read",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close {})", self.reason(), self.close_code())
    }
}

impl std::error::Error for ProtocolError {}

impl From<close::BadClose> for ProtocolError {
    fn from(b: close::BadClose) -> Self {
        match b {
            close::BadClose::TruncatedCode => ProtocolError::TruncatedCloseCode,
            close::BadClose::IllegalCode(c) => ProtocolError::IllegalCloseCode(c),
            close::BadClose::InvalidReason => ProtocolError::InvalidUtf8,
        }
    }
}
