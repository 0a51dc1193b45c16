//! A one-shot deflate encoder for messages that stand alone (no context
//! takeover) at level 1: greedy LZ77 on a hash of four bytes, coded with the
//! fixed Huffman tables of RFC 1951 §3.2.6, the same kind of output zlib-ng's
//! and zlib-rs' level 1 ("quick") gives.
//!
//! Why not zlib-rs for these: a stream compressor must be reset between
//! messages that stand alone, and zlib-rs' reset clears a 128 KiB hash table
//! (its hash size is fixed) and a 64 KiB symbol buffer. For a 1 KiB chat
//! message that reset was 38 % of the server's CPU in the deflate echo cell
//! (`perf record`, 2026-12-05). Here the hash table is never cleared: it
//! holds positions offset by a base that moves past every message, so an
//! entry left by an earlier message is recognised as stale by its value.
//!
//! Output: one fixed-Huffman block with BFINAL = 0, its end-of-block code,
//! then the header of an empty stored block padded to a byte: a sync flush
//! without its `00 00 FF FF`, which RFC 7692 §7.2.1 strips. Input that would
//! not shrink goes out as stored blocks instead (5 bytes per 65,535).

/// log2 of the hash table's entries (8,192 × 4 bytes = 32 KiB).
const HASH_BITS: u32 = 13;
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
/// Kept free at the window's end, as zlib does (its MIN_LOOKAHEAD): a
/// distance never reaches the edge of what the peer's window holds.
const WINDOW_SLACK: usize = 262;
/// The largest stored block.
const STORED_MAX: usize = 65_535;

/// Fixed Huffman code of each literal/length symbol (0..=287), bit-reversed
/// for an LSB-first writer, with its length in bits.
const LIT_CODES: [(u16, u8); 288] = lit_codes();

const fn reverse(mut code: u16, len: u8) -> u16 {
    let mut r = 0u16;
    let mut i = 0;
    while i < len {
        r = (r << 1) | (code & 1);
        code >>= 1;
        i += 1;
    }
    r
}

const fn lit_codes() -> [(u16, u8); 288] {
    let mut t = [(0u16, 0u8); 288];
    let mut s = 0;
    while s < 288 {
        // RFC 1951 §3.2.6.
        let (base, first, len) = match s {
            0..=143 => (0x30u16, 0usize, 8u8),
            144..=255 => (0x190, 144, 9),
            256..=279 => (0x00, 256, 7),
            _ => (0xC0, 280, 8),
        };
        t[s] = (reverse(base + (s - first) as u16, len), len);
        s += 1;
    }
    t
}

/// A stateless level-1 encoder; the struct only keeps its hash table.
pub struct QuickDeflater {
    table: Box<[u32]>,
    /// Added to a position before it is stored: entries below it are stale.
    base: u32,
    /// Largest distance a match may reach back (from the window bits).
    max_dist: usize,
}

impl std::fmt::Debug for QuickDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuickDeflater")
            .field("max_dist", &self.max_dist)
            .finish()
    }
}

/// Bits written least-significant first, as deflate packs them.
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits<'_> {
    /// Append `len` (≤ 32) bits of `v`.
    #[inline(always)]
    fn put(&mut self, v: u32, len: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += len;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Pad with zero bits to a byte and write what is left.
    fn finish(mut self) {
        while self.n > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n = self.n.saturating_sub(8);
        }
    }
}

#[inline(always)]
fn read4(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[inline(always)]
fn hash(v: u32) -> usize {
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// How far the bytes at `at` repeat at `i` (`at < i`), from MIN_MATCH up
/// to `limit`, eight bytes per step.
#[inline(always)]
fn match_len(input: &[u8], at: usize, i: usize, limit: usize) -> usize {
    let mut len = MIN_MATCH;
    while len + 8 <= limit {
        let a = u64::from_le_bytes(input[at + len..at + len + 8].try_into().unwrap_or([0; 8]));
        let b = u64::from_le_bytes(input[i + len..i + len + 8].try_into().unwrap_or([0; 8]));
        let x = a ^ b;
        if x != 0 {
            return len + (x.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < limit && input[at + len] == input[i + len] {
        len += 1;
    }
    len
}

/// Length 3..=258 as (symbol, extra bits, extra value).
#[inline(always)]
fn length_code(len: usize) -> (usize, u32, u32) {
    let l = (len - 3) as u32;
    if l < 8 {
        (257 + l as usize, 0, 0)
    } else if len == MAX_MATCH {
        (285, 0, 0)
    } else {
        let top = 31 - l.leading_zeros(); // 3..=7
        let extra = top - 2;
        let sym = 257 + 4 * (top - 1) + ((l >> extra) & 3);
        (sym as usize, extra, l & ((1 << extra) - 1))
    }
}

/// Distance 1..=32768 as (code, extra bits, extra value).
#[inline(always)]
fn distance_code(dist: usize) -> (u32, u32, u32) {
    let x = (dist - 1) as u32;
    if x < 4 {
        (x, 0, 0)
    } else {
        let top = 31 - x.leading_zeros(); // 2..=14
        let extra = top - 1;
        (2 * top + ((x >> extra) & 1), extra, x & ((1 << extra) - 1))
    }
}

impl QuickDeflater {
    /// An encoder whose matches stay within a window of `window_bits`
    /// (9..=15) bits.
    pub fn new(window_bits: u8) -> Self {
        QuickDeflater {
            table: vec![0; 1 << HASH_BITS].into_boxed_slice(),
            base: 1,
            max_dist: (1usize << window_bits.clamp(9, 15)) - WINDOW_SLACK,
        }
    }

    /// Append `input` (not empty) compressed, sync-flush tail stripped.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        debug_assert!(!input.is_empty());
        if input.len() >= 1 << 30 {
            // Positions are 32-bit: such a message goes out as it is.
            return stored(input, out);
        }
        // Positions this message stores run from `base` to `base + len`:
        // start the table over (once per 4 GiB of input) when they would wrap.
        if u32::try_from(input.len())
            .ok()
            .and_then(|n| self.base.checked_add(n))
            .is_none()
        {
            self.table.fill(0);
            self.base = 1;
        }
        let start = out.len();
        out.reserve(input.len() + input.len() / 8 + 16);
        self.huffman(input, out);
        self.base = self
            .base
            .saturating_add(u32::try_from(input.len()).unwrap_or(u32::MAX));
        if out.len() - start > stored_len(input.len()) {
            out.truncate(start);
            stored(input, out);
        }
    }

    fn huffman(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut w = Bits { out, acc: 0, n: 0 };
        w.put(0b010, 3); // BFINAL 0, BTYPE 01 (fixed Huffman)
        let n = input.len();
        let base = self.base;
        let mut i = 0;
        while i + MIN_MATCH <= n {
            let v = read4(input, i);
            let h = hash(v);
            let seen = self.table[h];
            self.table[h] = base + i as u32;
            if seen >= base {
                let at = (seen - base) as usize;
                let dist = i - at;
                if dist <= self.max_dist && read4(input, at) == v {
                    let len = match_len(input, at, i, (n - i).min(MAX_MATCH));
                    let (sym, lx, lv) = length_code(len);
                    let (code, clen) = LIT_CODES[sym];
                    w.put(u32::from(code) | (lv << clen), u32::from(clen) + lx);
                    let (d, dx, dv) = distance_code(dist);
                    w.put(u32::from(reverse(d as u16, 5)) | (dv << 5), 5 + dx);
                    i += len;
                    continue;
                }
            }
            let (code, clen) = LIT_CODES[input[i] as usize];
            w.put(u32::from(code), u32::from(clen));
            i += 1;
        }
        for &b in &input[i..] {
            let (code, clen) = LIT_CODES[b as usize];
            w.put(u32::from(code), u32::from(clen));
        }
        let (eob, eob_len) = LIT_CODES[256];
        w.put(u32::from(eob), u32::from(eob_len));
        w.put(0, 3); // the sync flush's empty stored block: BFINAL 0, BTYPE 00
        w.finish();
    }
}

/// Bytes `stored` writes for `n` input bytes.
fn stored_len(n: usize) -> usize {
    n + 5 * n.div_ceil(STORED_MAX) + 1
}

/// `input` as stored blocks, then the sync flush's header byte.
fn stored(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(STORED_MAX) {
        let len = chunk.len() as u16;
        out.push(0x00); // BFINAL 0, BTYPE 00, padding
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0x00);
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    /// Inflate one message as a peer does: append 00 00 FF FF.
    fn inflate(z: &[u8], bits: u8) -> Vec<u8> {
        let mut d = Decompress::new_with_window_bits(false, bits);
        let mut input = z.to_vec();
        input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("valid deflate");
        assert_eq!(d.total_in() as usize, input.len(), "all input consumed");
        out
    }

    fn round_trip(q: &mut QuickDeflater, msg: &[u8], bits: u8) -> usize {
        let mut z = Vec::new();
        q.compress(msg, &mut z);
        assert_eq!(inflate(&z, bits), msg);
        z.len()
    }

    #[test]
    fn length_and_distance_codes_match_rfc_1951() {
        // (length, symbol, extra bits, extra value) from §3.2.5's table.
        for (len, sym, x, v) in [
            (3, 257, 0, 0),
            (10, 264, 0, 0),
            (11, 265, 1, 0),
            (12, 265, 1, 1),
            (19, 269, 2, 0),
            (22, 269, 2, 3),
            (35, 273, 3, 0),
            (50, 274, 3, 7),
            (67, 277, 4, 0),
            (130, 280, 4, 15),
            (131, 281, 5, 0),
            (227, 284, 5, 0),
            (257, 284, 5, 30),
            (258, 285, 0, 0),
        ] {
            assert_eq!(length_code(len), (sym, x, v), "length {len}");
        }
        for (dist, code, x, v) in [
            (1, 0, 0, 0),
            (4, 3, 0, 0),
            (5, 4, 1, 0),
            (8, 5, 1, 1),
            (13, 7, 2, 0),
            (24, 8, 3, 7),
            (257, 16, 7, 0),
            (32_768, 29, 13, 8191),
        ] {
            assert_eq!(distance_code(dist), (code, x, v), "distance {dist}");
        }
        assert_eq!(LIT_CODES[0], (reverse(0x30, 8), 8));
        assert_eq!(LIT_CODES[255], (reverse(0x1FF, 9), 9));
        assert_eq!(LIT_CODES[256], (0, 7));
        assert_eq!(LIT_CODES[287], (reverse(0xC7, 8), 8));
    }

    #[test]
    fn messages_round_trip_at_every_window() {
        let chat: Vec<u8> = (0..200)
            .flat_map(|i| {
                format!(r#"{{"id":{i},"user":"u-{}","text":"hello there"}},"#, i % 7).into_bytes()
            })
            .collect();
        let mut seed = 0x1234_5678_u32;
        let mut noise = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let random: Vec<u8> = (0..70_000).map(|_| noise() as u8).collect();
        let runs: Vec<u8> = (0..100_000).map(|i| (i / 1000) as u8).collect();
        let few: Vec<u8> = (0..50_000).map(|_| b"ab"[(noise() & 1) as usize]).collect();
        for bits in 9..=15 {
            let mut q = QuickDeflater::new(bits);
            for msg in [
                &b"a"[..],
                b"abc",
                b"abcd",
                b"abcdabcdabcdabcd",
                &[0u8; 300],
                &[0xFFu8; 70_000],
                &chat,
                &random,
                &runs,
                &few,
                &random[..5],
                &chat,
            ] {
                round_trip(&mut q, msg, bits);
            }
        }
    }

    #[test]
    fn compressible_text_shrinks_and_noise_is_stored() {
        let chat: Vec<u8> = (0..40)
            .flat_map(|i| format!(r#"{{"id":{i},"text":"the quick brown fox"}},"#).into_bytes())
            .collect();
        let mut q = QuickDeflater::new(15);
        assert!(round_trip(&mut q, &chat, 15) < chat.len() / 3);
        let mut seed = 7u32;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 16) as u8
            })
            .collect();
        assert_eq!(round_trip(&mut q, &noise, 15), stored_len(noise.len()));
    }

    #[test]
    fn an_earlier_message_is_never_referred_to() {
        // The second message repeats the first: with a stale table entry
        // taken for a match, its distance would point before its own start
        // and a fresh inflater (no context takeover) would fail.
        let mut q = QuickDeflater::new(15);
        let msg = b"a message that is repeated exactly, byte for byte";
        round_trip(&mut q, msg, 15);
        round_trip(&mut q, msg, 15);
        // The base wraps: the table starts over instead of aliasing.
        q.base = u32::MAX - 10;
        round_trip(&mut q, msg, 15);
        round_trip(&mut q, msg, 15);
    }
}
