//! Streaming UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames and across TCP reads, and a code
//! point may be split with it. [`Utf8Stream`] validates each piece as it
//! arrives (so an invalid byte fails the message at once, RFC 6455 §8.1) and
//! carries at most three bytes of an unfinished code point to the next piece.
//! The bulk of each piece goes through `simdutf8`.

use simdutf8::compat::from_utf8;

/// The input is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Incremental validator; `Default` is the start of a message.
#[derive(Debug, Default, Clone, Copy)]
pub struct Utf8Stream {
    /// Bytes of a code point started in an earlier piece.
    partial: [u8; 4],
    len: u8,
}

/// Width of a UTF-8 sequence from its lead byte (0 for an invalid lead).
#[inline]
fn seq_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

impl Utf8Stream {
    /// Validate the next piece of the message.
    ///
    /// Fails on the first byte that can not begin or continue valid UTF-8,
    /// even when the code point it belongs to is not complete yet.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.len > 0 {
            // Finish the carried code point with bytes from this piece.
            let have = self.len as usize;
            let need = seq_width(self.partial[0]);
            let take = (need - have).min(input.len());
            self.partial[have..have + take].copy_from_slice(&input[..take]);
            let now = have + take;
            match from_utf8(&self.partial[..now]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; `input` was exhausted.
                    self.len = now as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            input = &input[take..];
        }
        match from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) => match e.error_len() {
                Some(_) => Err(InvalidUtf8),
                None => {
                    // A valid but unfinished sequence ends the piece.
                    let rest = &input[e.valid_up_to()..];
                    self.partial[..rest.len()].copy_from_slice(rest);
                    self.len = rest.len() as u8;
                    Ok(())
                }
            },
        }
    }

    /// The message ended: valid only if no code point is left unfinished.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let ok = self.len == 0;
        *self = Self::default();
        if ok { Ok(()) } else { Err(InvalidUtf8) }
    }
}

/// Under this many bytes, text that is all ASCII (most chat and JSON
/// messages) is checked with `<[u8]>::is_ascii`, a word at a time.
/// `simdutf8` hands inputs this short to `core::str::from_utf8`, which walks
/// byte by byte up to an aligned address: a payload after a 6-byte frame
/// header starts unaligned, and a 32-byte text cost ~100 instructions.
const SHORT: usize = 64;

/// Validate a complete piece of text in one call.
#[inline]
pub fn validate(input: &[u8]) -> Result<&str, InvalidUtf8> {
    if input.len() < SHORT && input.is_ascii() {
        // SAFETY: every ASCII byte sequence is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(input) });
    }
    simdutf8::basic::from_utf8(input).map_err(|_| InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(bytes: &[u8]) -> bool {
        let whole = std::str::from_utf8(bytes).is_ok();
        for cut1 in 0..=bytes.len() {
            for cut2 in cut1..=bytes.len() {
                let mut v = Utf8Stream::default();
                let r = v
                    .feed(&bytes[..cut1])
                    .and_then(|_| v.feed(&bytes[cut1..cut2]))
                    .and_then(|_| v.feed(&bytes[cut2..]))
                    .and_then(|_| v.finish());
                assert_eq!(r.is_ok(), whole, "{bytes:x?} cut at {cut1},{cut2}");
            }
        }
        whole
    }

    #[test]
    fn agrees_with_std_at_every_split() {
        assert!(split_everywhere("κόσμε €𝄞 ok".as_bytes()));
        assert!(!split_everywhere(
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"
        ));
        assert!(!split_everywhere(b"ab\xf4\x90\x80\x80"));
        assert!(!split_everywhere(b"\xc0\xaf"));
        assert!(!split_everywhere(b"abc\xe2\x82"));
        assert!(split_everywhere(b""));
    }

    #[test]
    fn validate_agrees_with_std_around_the_short_path() {
        // Every length across the ASCII shortcut's bound, all ASCII, then
        // with a two-byte character, a lone continuation byte or a
        // truncated sequence at each position.
        for len in 0..=2 * SHORT + 1 {
            let ascii = vec![b'x'; len];
            assert_eq!(validate(&ascii).ok(), std::str::from_utf8(&ascii).ok());
            for at in 0..len {
                for bad in [&b"\xc3\xa9"[..], b"\x80", b"\xe2\x82"] {
                    let mut v = ascii.clone();
                    v.splice(at..at + 1, bad.iter().copied());
                    let std = std::str::from_utf8(&v);
                    assert_eq!(validate(&v).ok(), std.ok(), "{v:x?}");
                }
            }
        }
    }

    #[test]
    fn fails_fast_on_an_impossible_prefix() {
        // 0xF4 0x90 can never start a valid code point: fail before the rest arrives.
        let mut v = Utf8Stream::default();
        assert_eq!(v.feed(b"hello\xf4\x90"), Err(InvalidUtf8));
        let mut v = Utf8Stream::default();
        assert!(v.feed(b"hello\xf4").is_ok());
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn unfinished_code_point_fails_at_finish() {
        let mut v = Utf8Stream::default();
        assert!(v.feed(b"\xe2\x82").is_ok());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }
}
