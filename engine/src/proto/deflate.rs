//! permessage-deflate (RFC 7692): negotiation and the message codec.
//!
//! Negotiation takes the first acceptable offer of `Sec-WebSocket-Extensions`;
//! an offer with an unknown, duplicate or malformed parameter is declined
//! (§7.1), never an error. The codec compresses a whole message into raw
//! deflate ending in an empty sync block whose `00 00 FF FF` tail is
//! stripped (§7.2.1), and inflates under a hard cap on the *inflated* size,
//! so a small bomb stops after one cap's worth of output.

use super::quick::QuickDeflater;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::num::NonZeroU16;

/// How one direction of compression is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Not at all.
    #[default]
    Off,
    /// No context takeover: each message stands alone. Compressors are per
    /// worker (no memory per connection), and a published message is
    /// compressed once for every subscriber that negotiated the same window.
    Shared,
    /// Context takeover: a compressor (or inflater) per connection; better
    /// ratio, about 300 KB (or 40 KB) per connection while it lives.
    Dedicated,
}

/// Server configuration of the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Server-to-client compression.
    pub compress: Mode,
    /// Client-to-server compression. `Shared` asks the client for
    /// `client_no_context_takeover`, so the server keeps no inflate window
    /// per connection.
    pub decompress: Mode,
    /// Largest window the server compresses with (9..=15).
    pub server_max_window_bits: u8,
    /// Compression level 0..=9 (1 measured best for throughput).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed.
    pub threshold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            compress: Mode::Shared,
            decompress: Mode::Shared,
            server_max_window_bits: 15,
            level: 1,
            threshold: 64,
        }
    }
}

/// What was agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server compresses each message alone.
    pub server_no_context_takeover: bool,
    /// The client compresses each message alone.
    pub client_no_context_takeover: bool,
    /// Window the server compresses with; 8 means "never compress" (zlib
    /// cannot deflate with a 256-byte window, so such messages go plain).
    pub server_window_bits: u8,
    /// Window the client compresses with (the server inflates with at least
    /// this, and never less than 9).
    pub client_window_bits: u8,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub fn response(&self, offered_server_bits: bool, offered_client_bits: bool) -> String {
        let mut s = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if offered_server_bits {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_window_bits
            ));
        }
        if offered_client_bits {
            s.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_window_bits
            ));
        }
        s
    }

    /// Can this connection receive compressed messages from the server at all?
    pub fn can_compress(&self) -> bool {
        self.server_window_bits >= 9
    }

    /// The agreement in 16 bits (a connection keeps it in its session's
    /// spare bytes; see [`crate::proto::session::Session`]). Window bits
    /// are 8..=15 (RFC 7692 §7.1.2; negotiation refuses others); a larger
    /// value is kept as 15, the largest window there is.
    #[inline]
    pub fn pack(self) -> NonZeroU16 {
        let bits = |b: u8| u16::from(b.min(15));
        let v = 1 << 15
            | u16::from(self.server_no_context_takeover)
            | u16::from(self.client_no_context_takeover) << 1
            | bits(self.server_window_bits) << 4
            | bits(self.client_window_bits) << 8;
        NonZeroU16::new(v).expect("the top bit is set")
    }

    /// The agreement [`Agreed::pack`] packed.
    #[inline]
    pub fn unpack(p: NonZeroU16) -> Agreed {
        let v = p.get();
        Agreed {
            server_no_context_takeover: v & 1 != 0,
            client_no_context_takeover: v & 2 != 0,
            server_window_bits: (v >> 4 & 0xf) as u8,
            client_window_bits: (v >> 8 & 0xf) as u8,
        }
    }
}

/// The result of negotiation: the agreement and its response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// What was agreed.
    pub agreed: Agreed,
    /// The header value for the 101 response.
    pub header: String,
}

/// An offer's parameters: (name, optional value).
type Params<'a> = Vec<(&'a str, Option<&'a str>)>;

/// One parsed offer: the extension name and its parameters.
fn parse_params(offer: &str) -> Option<(&str, Params<'_>)> {
    let mut parts = offer.split(';').map(str::trim);
    let name = parts.next()?;
    let mut params = Vec::new();
    for p in parts {
        if p.is_empty() {
            return None;
        }
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
            None => (p, None),
        };
        params.push((k, v));
    }
    Some((name, params))
}

fn bits(v: Option<&str>) -> Option<u8> {
    let v = v?;
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = v.parse().ok()?;
    (8..=15).contains(&n).then_some(n)
}

/// Take the first acceptable `permessage-deflate` offer among the header
/// values. `None`: no offer, or every offer declined.
pub fn negotiate<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    cfg: &Config,
) -> Option<Negotiated> {
    if cfg.compress == Mode::Off && cfg.decompress == Mode::Off {
        return None;
    }
    for value in headers {
        for offer in value.split(',') {
            let Some((name, params)) = parse_params(offer) else {
                continue;
            };
            if !name.eq_ignore_ascii_case("permessage-deflate") {
                continue;
            }
            if let Some(n) = accept_offer(&params, cfg) {
                return Some(n);
            }
        }
    }
    None
}

/// Apply §7.1 to one offer; `None` declines it.
fn accept_offer(params: &[(&str, Option<&str>)], cfg: &Config) -> Option<Negotiated> {
    let mut seen = [false; 4];
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits: Option<u8> = None;
    let mut client_bits: Option<Option<u8>> = None;
    for &(k, v) in params {
        let i = match k {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None, // unknown parameter: decline
        };
        if std::mem::replace(&mut seen[i], true) {
            return None; // duplicate: decline
        }
        match i {
            0 | 1 if v.is_some() => return None,
            0 => server_nct = true,
            1 => client_nct = true,
            2 => server_bits = Some(bits(v)?),
            _ => {
                client_bits = Some(match v {
                    None => None,
                    Some(_) => Some(bits(v)?),
                })
            }
        }
    }
    let server_window_bits = server_bits
        .unwrap_or(15)
        .min(cfg.server_max_window_bits.clamp(9, 15));
    let agreed = Agreed {
        server_no_context_takeover: server_nct || cfg.compress != Mode::Dedicated,
        // Ask for it in shared mode; legal only... always legal for a server
        // to include (§7.1.1.2), and it spares a window per connection.
        client_no_context_takeover: client_nct || cfg.decompress != Mode::Dedicated,
        server_window_bits: if server_bits == Some(8) {
            8
        } else {
            server_window_bits
        },
        client_window_bits: client_bits.flatten().unwrap_or(15),
    };
    Some(Negotiated {
        header: agreed.response(server_bits.is_some(), client_bits.is_some()),
        agreed,
    })
}

/// A deflater for whole messages.
pub struct Deflater {
    engine: Engine,
}

enum Engine {
    /// A zlib stream: context takeover, or a level other than 1.
    Stream {
        c: Compress,
        /// Reset after every message (no context takeover).
        reset: bool,
    },
    /// Each message alone at level 1: nothing to reset (see `quick`).
    Quick(QuickDeflater),
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.engine {
            Engine::Stream { reset, .. } => {
                f.debug_struct("Deflater").field("reset", reset).finish()
            }
            Engine::Quick(q) => f.debug_tuple("Deflater").field(q).finish(),
        }
    }
}

impl Deflater {
    /// A raw deflater with `window_bits` (9..=15).
    pub fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Self {
        let bits = window_bits.clamp(9, 15);
        let engine = if no_context_takeover && level == 1 {
            Engine::Quick(QuickDeflater::new(bits))
        } else {
            Engine::Stream {
                c: Compress::new_with_window_bits(Compression::new(level.min(9)), false, bits),
                reset: no_context_takeover,
            }
        };
        Deflater { engine }
    }

    /// Forget the context: the next message refers to nothing before it.
    pub fn restart(&mut self) {
        if let Engine::Stream { c, .. } = &mut self.engine {
            c.reset();
        }
    }

    /// Append the compressed form of `input` to `out` (tail stripped).
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            // An empty message is one empty stored block (§7.2.3.6). Asking
            // zlib instead yields nothing at all when the last call already
            // flushed (a second empty message with context takeover), and a
            // zero-length payload with RSV1 inflates to an error.
            out.push(0x00);
            return;
        }
        let (c, reset) = match &mut self.engine {
            Engine::Quick(q) => return q.compress(input, out),
            Engine::Stream { c, reset } => (c, *reset),
        };
        let start_in = c.total_in();
        let base = out.len();
        // Incompressible input grows a little: reserve for that up front.
        out.reserve(input.len() + input.len() / 16 + 64);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let consumed = (c.total_in() - start_in) as usize;
            c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
                .expect("deflate of in-memory data cannot fail");
            // Done when all input is in and the flush stopped with room to spare.
            let all_in = (c.total_in() - start_in) as usize == input.len();
            if all_in && out.len() < out.capacity() {
                break;
            }
        }
        // Strip the empty stored block's 00 00 FF FF (§7.2.1).
        if out.len() >= base + 4 && out[out.len() - 4..] == [0, 0, 0xFF, 0xFF] {
            out.truncate(out.len() - 4);
        }
        if reset {
            c.reset();
        }
    }
}

/// Why a compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would exceed the cap (close 1009).
    TooBig,
    /// Not valid deflate data (close 1007 for payload data that is invalid).
    Corrupt,
}

/// An inflater for whole messages, with a cap on output.
pub struct Inflater {
    d: Decompress,
    reset: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("reset", &self.reset)
            .finish()
    }
}

const TAIL: [u8; 4] = [0, 0, 0xFF, 0xFF];

impl Inflater {
    /// A raw inflater for a peer compressing with `window_bits` (8..=15; 8 is
    /// read with 9, which inflates any 8-bit stream).
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Inflater {
            d: Decompress::new_with_window_bits(false, window_bits.clamp(9, 15)),
            reset: no_context_takeover,
        }
    }

    /// Inflate one message (`input` without the tail) into `out`, refusing
    /// once the output would pass `cap` bytes: no more than `cap` bytes of
    /// output are ever produced.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        cap: usize,
    ) -> Result<(), InflateError> {
        let res = self.inflate_inner(input, out, cap);
        if self.reset || res.is_err() {
            self.d.reset(false);
        }
        res
    }

    fn inflate_inner(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        cap: usize,
    ) -> Result<(), InflateError> {
        let base = out.len();
        for part in [input, &TAIL[..]] {
            let start = self.d.total_in();
            loop {
                let used = (self.d.total_in() - start) as usize;
                if used == part.len() {
                    break;
                }
                if out.len() == out.capacity() {
                    let produced = out.len() - base;
                    if produced > cap {
                        return Err(InflateError::TooBig);
                    }
                    // Grow geometrically, but never past cap + 1 bytes of output.
                    let want = (produced.max(part.len() * 2).max(256)).min(cap + 1 - produced);
                    out.reserve_exact(want.max(1));
                }
                let before = (self.d.total_in(), out.len());
                let status = self
                    .d
                    .decompress_vec(&part[used..], out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                if out.len() - base > cap {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // A final block inside a message is not valid here.
                    return Err(InflateError::Corrupt);
                }
                if (self.d.total_in(), out.len()) == before && out.len() < out.capacity() {
                    return Err(InflateError::Corrupt); // no progress with room to spare
                }
            }
        }
        // Drain any output still buffered inside the inflater.
        loop {
            if out.len() == out.capacity() {
                let produced = out.len() - base;
                if produced > cap {
                    return Err(InflateError::TooBig);
                }
                out.reserve_exact((produced.max(256)).min(cap + 1 - produced).max(1));
            }
            let before = out.len();
            self.d
                .decompress_vec(&[], out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            if out.len() - base > cap {
                return Err(InflateError::TooBig);
            }
            if out.len() == before {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: Config = Config {
        compress: Mode::Shared,
        decompress: Mode::Shared,
        server_max_window_bits: 15,
        level: 1,
        threshold: 0,
    };

    fn neg(h: &str) -> Option<String> {
        negotiate([h], &CFG).map(|n| n.header)
    }

    #[test]
    fn negotiates_every_parameter() {
        assert_eq!(
            neg("permessage-deflate").unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits").unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"
        );
        assert_eq!(
            neg("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9").unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"
        );
        let dedicated = Config {
            compress: Mode::Dedicated,
            decompress: Mode::Dedicated,
            ..CFG
        };
        let n = negotiate(
            ["permessage-deflate; client_no_context_takeover"],
            &dedicated,
        )
        .unwrap();
        assert!(!n.agreed.server_no_context_takeover && n.agreed.client_no_context_takeover);
        assert_eq!(n.header, "permessage-deflate; client_no_context_takeover");
        let n = negotiate(
            ["permessage-deflate; server_no_context_takeover"],
            &dedicated,
        )
        .unwrap();
        assert!(n.agreed.server_no_context_takeover);
    }

    #[test]
    fn takes_the_first_acceptable_offer_and_declines_bad_ones() {
        // Unknown, duplicate and malformed parameters decline that offer only.
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=0x0f",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate;;",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(neg(bad), None, "{bad}");
        }
        let h = "permessage-deflate; foo, permessage-deflate; server_max_window_bits=12";
        assert!(neg(h).unwrap().contains("server_max_window_bits=12"));
        // Across several header lines, too.
        let n = negotiate(["permessage-deflate; bad", "permessage-deflate"], &CFG);
        assert!(n.is_some());
    }

    #[test]
    fn window_bits_8_is_accepted_but_never_compressed_with() {
        let n = negotiate(["permessage-deflate; server_max_window_bits=8"], &CFG).unwrap();
        assert_eq!(n.agreed.server_window_bits, 8);
        assert!(!n.agreed.can_compress());
        assert!(n.header.contains("server_max_window_bits=8"));
        let n = negotiate(["permessage-deflate; client_max_window_bits=8"], &CFG).unwrap();
        assert_eq!(n.agreed.client_window_bits, 8);
        let _ = Inflater::new(8, true); // must not panic (flate2 rejects 8)
    }

    #[test]
    fn round_trip_with_and_without_context() {
        for (nct, bits) in [(true, 15), (false, 15), (true, 9), (false, 12)] {
            let mut d = Deflater::new(1, bits, nct);
            let mut i = Inflater::new(bits, nct);
            for msg in [
                &b""[..],
                b"hello hello hello",
                &[7u8; 100_000],
                &(0..=255).collect::<Vec<u8>>(),
            ] {
                let mut z = Vec::new();
                d.compress(msg, &mut z);
                let mut out = Vec::new();
                i.inflate(&z, &mut out, 1 << 20).unwrap();
                assert_eq!(out, msg, "nct={nct} bits={bits}");
            }
        }
    }

    #[test]
    fn empty_messages_stay_valid_with_context_takeover() {
        let mut d = Deflater::new(1, 15, false);
        let mut i = Inflater::new(15, false);
        for msg in [&b""[..], b"", b"abc", b"", b"", b"abcabc"] {
            let mut z = Vec::new();
            d.compress(msg, &mut z);
            assert!(!z.is_empty(), "a compressed message is never zero bytes");
            let mut out = Vec::new();
            i.inflate(&z, &mut out, 1024).unwrap();
            assert_eq!(out, msg);
        }
    }

    #[test]
    fn incompressible_input_round_trips_at_small_windows() {
        let mut x = 1u32;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut d = Deflater::new(1, 9, true);
        let mut z = Vec::new();
        d.compress(&noise, &mut z);
        let mut out = Vec::new();
        Inflater::new(9, true)
            .inflate(&z, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, noise);
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let zeros = vec![0u8; 50 << 20]; // 50 MiB of zeros deflates to ~50 KB
        let mut z = Vec::new();
        Deflater::new(9, 15, true).compress(&zeros, &mut z);
        assert!(z.len() < 100_000);
        let mut out = Vec::new();
        let cap = 1 << 20;
        assert_eq!(
            Inflater::new(15, true).inflate(&z, &mut out, cap),
            Err(InflateError::TooBig)
        );
        assert!(
            out.capacity() <= cap + 1,
            "never allocates past the cap: {}",
            out.capacity()
        );
        // The inflater is reusable afterwards.
        let mut ok = Vec::new();
        let mut small = Vec::new();
        Deflater::new(1, 15, true).compress(b"fine", &mut small);
        Inflater::new(15, true)
            .inflate(&small, &mut ok, cap)
            .unwrap();
        assert_eq!(ok, b"fine");
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert_eq!(
            Inflater::new(15, true).inflate(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF], &mut out, 1024),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn an_agreement_packs_into_16_bits_and_back() {
        for snct in [false, true] {
            for cnct in [false, true] {
                for sb in 8..=15 {
                    for cb in 8..=15 {
                        let a = Agreed {
                            server_no_context_takeover: snct,
                            client_no_context_takeover: cnct,
                            server_window_bits: sb,
                            client_window_bits: cb,
                        };
                        assert_eq!(Agreed::unpack(a.pack()), a);
                    }
                }
            }
        }
        let wide = Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_window_bits: 200,
            client_window_bits: 16,
        };
        let back = Agreed::unpack(wide.pack());
        assert_eq!((back.server_window_bits, back.client_window_bits), (15, 15));
    }
}
