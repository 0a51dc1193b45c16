//! Hot paths of the engine, each with a throughput: frame headers, unmasking,
//! UTF-8 validation, the decoder on an in-memory connection (no sockets),
//! and fan-out into subscriber queues.
//!
//! `cargo bench -p volley-benches` (add `-- --test` for a one-pass check).

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use volley::Prepared;
use volley::bench_support::Fanout;
use volley::proto::connection::{Carrier, Config, Connection, Incoming};
use volley::proto::decoder::{Decoder, Limits};
use volley::proto::deflate::Inflater;
use volley::proto::frame::{MAX_HEADER, OpCode, encode_header, parse_header, write_frame};
use volley::proto::handshake::HeadLimits;
use volley::proto::inbound::{self, Received};
use volley::proto::mask::apply_mask;
use volley::proto::requests::{self, Body};
use volley::proto::session::{Stamp, Timeouts};
use volley::proto::utf8::{Utf8Stream, validate};

fn masked_frame(op: OpCode, payload: &[u8]) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut h = [0u8; MAX_HEADER];
    let n = encode_header(&mut h, true, false, op, payload.len() as u64, Some(key));
    let mut v = h[..n].to_vec();
    let at = v.len();
    v.extend_from_slice(payload);
    apply_mask(&mut v[at..], key, 0);
    v
}

fn frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let small = masked_frame(OpCode::Text, b"hello");
    let big = masked_frame(OpCode::Binary, &[0u8; 70_000]);
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_small", |b| {
        b.iter(|| parse_header(black_box(&small)))
    });
    g.bench_function("parse_64bit_len", |b| {
        b.iter(|| parse_header(black_box(&big[..14])))
    });
    g.bench_function("encode", |b| {
        let mut h = [0u8; MAX_HEADER];
        b.iter(|| encode_header(&mut h, true, false, OpCode::Text, black_box(300), None))
    });
    g.finish();
}

fn mask(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for size in [32usize, 1024, 64 * 1024] {
        let mut buf = vec![0x5Au8; size + 1];
        g.throughput(Throughput::Bytes(size as u64));
        // Offset by one byte: the unaligned case real payloads hit.
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf[1..]), [1, 2, 3, 4], 0))
        });
    }
    g.finish();
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    let ascii = "websocket ".repeat(6554).into_bytes(); // 64 KiB
    let mixed = "κόσμε ✓ volley ".repeat(3000).into_bytes();
    for (name, text) in [("ascii_64KiB", &ascii), ("multibyte_64KiB", &mixed)] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("whole/{name}"), |b| {
            b.iter(|| validate(black_box(text)).is_ok())
        });
        g.bench_function(format!("stream_1KiB_pieces/{name}"), |b| {
            b.iter(|| {
                let mut s = Utf8Stream::default();
                for piece in text.chunks(1021) {
                    s.feed(black_box(piece)).unwrap();
                }
                s.finish().is_ok()
            })
        });
    }
    g.finish();
}

/// A whole connection's protocol work without sockets: client frames in,
/// through the connection's input stage (`proto::inbound`: decoded, checked),
/// echoed frames out.
fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip");
    let limits = Limits {
        max_message: 16 << 20,
        rsv1_allowed: false,
        max_fragments: 1 << 17,
    };
    for (n, size) in [(16usize, 32usize), (1, 64 * 1024)] {
        let one = masked_frame(OpCode::Text, &vec![b'x'; size]);
        let wire: Vec<u8> = one.repeat(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("echo_{n}x{size}B"), |b| {
            let mut dec = Decoder::new();
            let mut input = wire.clone();
            let mut out = Vec::with_capacity(wire.len() + 64);
            let mut held = Vec::new();
            b.iter(|| {
                input.copy_from_slice(&wire);
                out.clear();
                let mut pos = 0;
                while let Ok(Some((used, Received::Text(t)))) =
                    inbound::next(&mut dec, &mut input[pos..], &limits, &mut held)
                {
                    write_frame(&mut out, OpCode::Text, false, t.as_bytes());
                    pos += used;
                }
                out.len()
            })
        });
    }
    g.finish();
}

/// The loop's side of a connection in the benches: frames into a buffer.
struct Out(Vec<u8>);

impl Carrier for Out {
    fn control(&mut self, op: OpCode, payload: &[u8]) {
        write_frame(&mut self.0, op, false, payload);
    }
    fn close_frame(&mut self, payload: &[u8]) {
        write_frame(&mut self.0, OpCode::Close, false, payload);
    }
    fn inflater(&mut self, _: u8, _: bool) -> &mut Inflater {
        unreachable!("no permessage-deflate here")
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        Vec::with_capacity(len)
    }
    fn recycle(&mut self, _: Vec<u8>) {}
    fn keep_body(&mut self, _: Box<Body>) {
        unreachable!("no HTTP here")
    }
    fn take_body(&mut self) -> Option<Box<Body>> {
        None
    }
}

/// The sans-IO connection (issue 23): client bytes in, the handler's
/// events and the connection's own frames out, per message; beside
/// `roundtrip`, which runs the decoder alone.
fn connection(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection");
    let limits = |rsv1_allowed| Limits {
        max_message: 16 << 20,
        rsv1_allowed,
        max_fragments: 1 << 17,
    };
    let cfg = Config {
        plain: limits(false),
        deflate: limits(true),
        max_message: 16 << 20,
        max_control_backlog: usize::MAX,
        http: requests::Limits {
            head: HeadLimits {
                max_bytes: 8192,
                max_headers: 64,
            },
            max_body: 1 << 20,
        },
        timeouts: Timeouts::only(std::time::Duration::from_secs(10)),
    };
    for (name, op) in [("echo_16x32B", OpCode::Text), ("pong_16x32B", OpCode::Ping)] {
        let wire: Vec<u8> = masked_frame(op, &[b'x'; 32]).repeat(16);
        g.throughput(Throughput::Elements(16));
        g.bench_function(name, |b| {
            let mut conn = Connection::new(Stamp::from_ms(1));
            conn.open(None, Stamp::from_ms(1));
            let mut input = wire.clone();
            let mut out = Out(Vec::with_capacity(wire.len() + 64));
            b.iter(|| {
                input.copy_from_slice(&wire);
                out.0.clear();
                let mut pos = 0;
                let (mut held, mut inflated) = (Vec::new(), Vec::new());
                let now = Stamp::from_ms(2);
                while let (used, Some(ev)) = conn.next_event(
                    &mut input[pos..],
                    &cfg,
                    &mut held,
                    &mut inflated,
                    now,
                    &mut out,
                ) {
                    if let Incoming::Message(m) = ev {
                        write_frame(&mut out.0, OpCode::Text, false, m.as_bytes());
                    }
                    pos += used;
                }
                out.0.len()
            })
        });
    }
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for subs in [1usize, 100, 10_000] {
        for size in [32usize, 4096] {
            let msg = Prepared::new(&vec![b'x'; size][..]);
            let mut f = Fanout::new(subs);
            g.throughput(Throughput::Elements(subs as u64));
            g.bench_function(format!("{subs}_subscribers_{size}B"), |b| {
                b.iter(|| {
                    f.publish(black_box(&msg));
                    f.flush()
                })
            });
        }
    }
    g.finish();
}

/// permessage-deflate on a typical 1 KiB JSON chat message, no context
/// takeover (the shared mode), and with context (dedicated).
fn deflate(c: &mut Criterion) {
    use volley::proto::deflate::{Deflater, Inflater};
    let mut g = c.benchmark_group("deflate");
    let msg: Vec<u8> = (0..)
        .map(|i| {
            format!(
                r#"{{"id":{i},"user":"user-{}","text":"the quick brown fox jumps"}},"#,
                i % 97
            )
        })
        .take(20)
        .collect::<String>()
        .into_bytes()[..1024]
        .to_vec();
    g.throughput(Throughput::Bytes(msg.len() as u64));
    for (name, nct) in [("shared", true), ("dedicated", false)] {
        let mut d = Deflater::new(1, 15, nct);
        let mut z = Vec::with_capacity(2048);
        g.bench_function(format!("compress_1KiB/{name}"), |b| {
            b.iter(|| {
                z.clear();
                d.compress(black_box(&msg), &mut z);
                z.len()
            })
        });
    }
    let mut z = Vec::new();
    Deflater::new(1, 15, true).compress(&msg, &mut z);
    let mut inf = Inflater::new(15, true);
    let mut out = Vec::with_capacity(2048);
    g.bench_function("inflate_1KiB", |b| {
        b.iter(|| {
            out.clear();
            inf.inflate(black_box(&z), &mut out, 1 << 20).unwrap();
            out.len()
        })
    });
    g.finish();
}

criterion_group!(
    benches, frame, mask, utf8, roundtrip, connection, fanout, deflate
);
criterion_main!(benches);
