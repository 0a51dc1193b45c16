//! Word-at-a-time unmasking equals byte-by-byte XOR at every offset and alignment.
#![no_main]
use libfuzzer_sys::fuzz_target;
use volley::proto::mask::apply_mask;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let key = [data[0], data[1], data[2], data[3]];
    let offset = usize::from(data[4]);
    let start = usize::from(data[5] % 8).min(data.len() - 6);
    let mut fast = data[6..].to_vec();
    apply_mask(&mut fast[start..], key, offset);
    let mut slow = data[6..].to_vec();
    for (i, b) in slow[start..].iter_mut().enumerate() {
        *b ^= key[(i + offset) % 4];
    }
    assert_eq!(fast, slow);
});
