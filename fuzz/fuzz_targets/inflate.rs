//! Arbitrary bytes as a compressed message: the inflater never panics and
//! never produces (or allocates for) more than its cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::deflate::Inflater;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let bits = 8 + data[0] % 8;
    let cap = 64 * 1024;
    let mut inf = Inflater::new(bits, data[0] & 0x80 != 0);
    let mut out = Vec::new();
    let _ = inf.inflate(&data[1..], &mut out, cap);
    assert!(out.len() <= cap + 1);
    assert!(out.capacity() <= 2 * cap + 1024);
});
