//! Compress arbitrary messages (with and without context takeover, every
//! window size) and inflate them back: identical bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::deflate::{Deflater, Inflater};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let bits = 9 + data[0] % 7;
    let nct = data[0] & 0x80 != 0;
    // Level 1 half the time: with no context takeover it is the quick
    // encoder (proto::quick), the one `--deflate` uses.
    let level = if data[0] & 0x40 != 0 {
        1
    } else {
        u32::from(data[0] >> 4) % 10
    };
    let mut d = Deflater::new(level, bits, nct);
    let mut i = Inflater::new(bits, nct);
    // Several messages on the same stream: the context carries over.
    for msg in data[1..].split(|&b| b == 0xFF) {
        let mut z = Vec::new();
        d.compress(msg, &mut z);
        assert!(!z.is_empty());
        let mut out = Vec::new();
        i.inflate(&z, &mut out, 1 << 20).expect("own output inflates");
        assert_eq!(out, msg);
    }
});
