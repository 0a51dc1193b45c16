//! Client bytes through the server's frame decoder, split at fuzzer-chosen
//! points: no panic, messages never larger than the limit, every error maps
//! to a close code a server may send for a peer's error (1002, 1007, 1008
//! for too many fragments, 1009), control payloads never over 125 bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::decoder::{Decoder, Kind, Limits, Step};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits = Limits { max_message: 4096, rsv1_allowed: data[0] & 1 == 1, max_fragments: 64 };
    let chunk = usize::from(data[1]).max(1);
    let mut d = Decoder::new();
    for piece in data[2..].chunks(chunk) {
        let mut piece = piece.to_vec();
        let mut pos = 0;
        loop {
            match d.decode(&mut piece[pos..], &limits) {
                Ok(Step::NeedMore) => break,
                Ok(Step::InPlace { consumed, kind, range, .. }) => {
                    check(kind, range.len(), &limits);
                    assert!(range.end <= consumed);
                    pos += consumed;
                }
                Ok(Step::Buffered { consumed, kind, .. }) => {
                    let b = d.take_buffer(kind);
                    check(kind, b.len(), &limits);
                    pos += consumed;
                }
                Err(e) => {
                    assert!(matches!(e.close_code(), 1002 | 1007 | 1008 | 1009), "{e}");
                    return;
                }
            }
            assert!(d.buffered() <= 2 * limits.max_message + 4096, "buffer bounded");
        }
    }
});

fn check(kind: Kind, len: usize, limits: &Limits) {
    match kind {
        Kind::Text | Kind::Binary => assert!(len <= limits.max_message),
        _ => assert!(len <= 125),
    }
}
