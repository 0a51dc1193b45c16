//! `volley bench`: a load generator for any WebSocket server.
//!
//! Modes:
//! - `echo`: C connections × P messages in flight × S bytes; counts echoes,
//!   records round-trip latency.
//! - `fanout`: N subscribers on `/sub`, publishers on `/pub`; counts delivered
//!   messages (the publish window is bounded by what subscriber 0 has seen)
//!   and records publish-to-delivery latency at subscriber 0. With
//!   `--sub-urls`, subscribers spread over other servers (processes bridged
//!   through Redis, say) while the publishers stay on `--url`.
//! - `connect`: handshakes per second, then N idle connections held while the
//!   server's RSS is read from `/proc/PID/status`.
//!
//! With `--pid` (several: comma-separated, summed), the server's CPU time is read from `/proc/PID/stat` at the
//! start and end of the measured window, giving messages per server
//! CPU-second: the figure that still separates fast servers when the
//! generator itself saturates. Output: a progress line per second on stderr,
//! a summary on stdout, or JSON with `--json`.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use volley::proto::frame::{self, OpCode};
use volley::proto::mask::apply_mask;

pub(crate) const USAGE: &str = "\
volley bench MODE --url ws://HOST:PORT/PATH [options]

MODES
  echo      --conns 100 --inflight 16 --size 32 [--binary]
  fanout    --subscribers 500 --publishers 1 --inflight 64 --size 32
            (subscribers connect to /sub, publishers to /pub on the url's host;
            --sub-urls ws://B/,ws://C/ spreads the subscribers over those
            servers instead, round-robin, subscriber 0 on the first)
  connect   --conns 50 (concurrent handshakes) --idle 10000 (held connections)
            [--size N: each session also sends one N-byte message and waits
            for its echo before closing]
  http      --conns 1000 --url http://HOST:PORT/PATH: keep-alive GET requests
            at full speed, one in flight per connection (requests/s, server CPU
            and RSS at the start, the peak and the end, with --pid)
  tcp       --conns 10 --inflight 4 --size 65536, against `volley tcp-echo`:
            the same echo pattern over bare TCP (MB/s), the loopback baseline

OPTIONS
  --deflate        offer permessage-deflate (client_no_context_takeover) and
                   send compressed JSON-like text (echo and fanout)
  --message TEXT   send TEXT as every message (e.g. a framework's JSON
                   envelope) instead of --size bytes (echo and fanout)
  --duration 5     measured seconds          --warmup 1   seconds before measuring
  --threads 1      generator threads         --pid PID[,PID]  server pids: CPU (summed), RSS
  --json           print one JSON object     --quiet      no progress line
  (echo and fanout also report longest_stall_ms: the longest time, sampled
  every 100 ms, in which no message arrived)
";

#[derive(Debug, Clone)]
struct Cfg {
    mode: String,
    addr: SocketAddr,
    host: String,
    path: String,
    conns: usize,
    inflight: usize,
    size: usize,
    binary: bool,
    duration: f64,
    warmup: f64,
    threads: usize,
    /// Server processes whose CPU time is summed (RSS: the first).
    pids: Vec<u32>,
    /// Where fanout subscribers connect: (address, path base); empty: `addr`.
    sub_urls: Vec<(SocketAddr, String)>,
    json: bool,
    quiet: bool,
    subscribers: usize,
    publishers: usize,
    /// Send this text instead of `size` bytes (a framework's envelope, say).
    message: Option<String>,
    idle: usize,
    deflate: bool,
}

fn parse(args: &[String]) -> Result<Cfg, String> {
    let mode = args.first().cloned().ok_or("missing MODE")?;
    let flags = crate::flags_with_switches(&args[1..], &["binary", "json", "quiet", "deflate"])?;
    let get = |n: &str| {
        flags
            .iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let num = |n: &str, d: usize| -> Result<usize, String> {
        get(n).map_or(Ok(d), |v| {
            v.parse().map_err(|_| format!("--{n} takes a number"))
        })
    };
    let secs = |n: &str, d: f64| -> Result<f64, String> {
        get(n).map_or(Ok(d), |v| {
            v.parse().map_err(|_| format!("--{n} takes seconds"))
        })
    };
    let url = get("url").ok_or("--url ws://HOST:PORT/PATH is required")?;
    let (addr, hostport, path) = split_url(&url)?;
    let sub_urls = match get("sub-urls") {
        Some(list) => list
            .split(',')
            .map(|u| split_url(u).map(|(a, _, p)| (a, path_base(&p).to_string())))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let (dc, dp, dsize) = match mode.as_str() {
        "echo" => (100, 16, 32),
        "fanout" => (0, 64, 32),
        "connect" => (50, 1, 0),
        "tcp" => (10, 4, 65536),
        "http" => (1000, 1, 0),
        other => return Err(format!("unknown mode {other:?}")),
    };
    Ok(Cfg {
        mode,
        addr,
        host: hostport.to_string(),
        path: path.to_string(),
        conns: num("conns", dc)?,
        inflight: num("inflight", dp)?.max(1),
        size: match get("message") {
            Some(m) => m.len(),
            None => num("size", dsize)?,
        },
        binary: flags.iter().any(|(k, _)| k == "binary"),
        duration: secs("duration", 5.0)?,
        warmup: secs("warmup", 1.0)?,
        threads: num("threads", 1)?.max(1),
        pids: get("pid")
            .map(|list| {
                list.split(',')
                    .map(|p| p.trim().parse().map_err(|_| "--pid takes pids"))
                    .collect::<Result<Vec<u32>, _>>()
            })
            .transpose()?
            .unwrap_or_default(),
        sub_urls,
        json: flags.iter().any(|(k, _)| k == "json"),
        quiet: flags.iter().any(|(k, _)| k == "quiet"),
        subscribers: num("subscribers", 500)?,
        message: get("message"),
        publishers: num("publishers", 1)?.max(1),
        idle: num("idle", 10_000)?,
        deflate: flags.iter().any(|(k, _)| k == "deflate"),
    })
}

/// `ws://HOST:PORT/PATH` (or `tcp://`): the address, `HOST:PORT` and the path.
fn split_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("tcp://"))
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("only ws:// (tcp:// for mode tcp, http:// for mode http) URLs")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or("no address")?;
    Ok((addr, hostport.to_string(), path.to_string()))
}

/// The directory of a URL path: `/x/echo` → `/x`, `/echo` → ``.
fn path_base(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    p.rsplit_once('/').map_or("", |(b, _)| b)
}

/// Summed CPU seconds of these processes (None if any cannot be read).
fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

pub fn main(args: &[String]) -> ExitCode {
    let cfg = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("volley bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let res = match cfg.mode.as_str() {
        "tcp" => crate::tcp::bench(
            &cfg.addr.to_string(),
            cfg.conns,
            cfg.inflight,
            cfg.size,
            cfg.warmup,
            cfg.duration,
        )
        .map(|mb| {
            let mut r = Report::default();
            r.str("mode", "tcp");
            r.num("mb_per_sec", mb);
            r
        }),
        "echo" => run_traffic(&cfg, false),
        "fanout" => run_traffic(&cfg, true),
        "http" => run_http(&cfg),
        _ => run_connect(&cfg),
    };
    match res {
        Ok(report) => {
            if cfg.json {
                println!("{}", report.json());
            } else {
                println!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("volley bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- reports ----------------------------------------------------------------

#[derive(Default)]
struct Report {
    fields: Vec<(&'static str, String)>,
}

impl Report {
    fn num(&mut self, k: &'static str, v: f64) {
        self.fields.push((k, format!("{v:.1}")));
    }
    fn str(&mut self, k: &'static str, v: &str) {
        self.fields.push((k, format!("\"{v}\"")));
    }
    fn json(&self) -> String {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }
    fn text(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k:>24}: {}", v.trim_matches('"')))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // CLK_TCK is 100 on Linux
}

/// Resident set size of a process, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Latency histogram with 1 µs buckets up to 1 s.
struct Hist {
    counts: Vec<u64>,
    over: u64,
    n: u64,
}

impl Hist {
    fn new() -> Self {
        Hist {
            counts: vec![0; 1_000_000],
            over: 0,
            n: 0,
        }
    }
    fn record(&mut self, d: Duration) {
        let us = d.as_micros() as usize;
        match self.counts.get_mut(us) {
            Some(c) => *c += 1,
            None => self.over += 1,
        }
        self.n += 1;
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.over += o.over;
        self.n += o.n;
    }
    fn pct(&self, p: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let target = ((self.n as f64) * p).ceil() as u64;
        let mut acc = 0;
        for (us, c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= target {
                return us as f64;
            }
        }
        1_000_000.0
    }
}

// ---- a generator connection -------------------------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn request(cfg: &Cfg, path: &str, rng: &mut Rng) -> Vec<u8> {
    let key: Vec<u8> = (0..16).map(|_| rng.next() as u8).collect();
    let ext = if cfg.deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
    } else {
        ""
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n",
        cfg.host,
        b64(&key)
    )
    .into_bytes()
}

/// A chat-like JSON payload of `size` bytes: compresses like real traffic
/// (a run of one byte would flatter any deflater).
fn json_payload(size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 128);
    let mut i = 0u32;
    while v.len() < size {
        v.extend_from_slice(
            format!(
                r#"{{"id":{},"room":"lobby-{}","user":"user-{}","text":"the quick brown fox {} jumps over the lazy dog","ts":{}}},"#,
                i,
                i % 7,
                i * 37 % 1000,
                i * 13,
                1_700_000_000 + i * 61
            )
            .as_bytes(),
        );
        i += 1;
    }
    v.truncate(size);
    v
}

/// `n` copies of one masked client frame (compressed once with `deflate`).
fn burst(cfg: &Cfg, n: usize, rng: &mut Rng) -> (Vec<u8>, usize) {
    let (size, binary, deflate) = (cfg.size, cfg.binary, cfg.deflate);
    let key = (rng.next() as u32).to_le_bytes();
    let op = if binary { OpCode::Binary } else { OpCode::Text };
    let mut payload = if let Some(m) = &cfg.message {
        m.clone().into_bytes()
    } else if deflate {
        let mut z = Vec::new();
        volley::proto::deflate::Deflater::new(6, 15, true).compress(&json_payload(size), &mut z);
        z
    } else {
        vec![b'x'; size]
    };
    let mut h = [0u8; 14];
    let hl = frame::encode_header(&mut h, true, deflate, op, payload.len() as u64, Some(key));
    let mut one = h[..hl].to_vec();
    apply_mask(&mut payload, key, 0);
    one.extend_from_slice(&payload);
    let len = one.len();
    (one.repeat(n), len)
}

#[derive(PartialEq)]
enum Role {
    Echo,
    Subscriber,
    Publisher,
}

struct BConn {
    sock: TcpStream,
    role: Role,
    open: bool,
    head: Vec<u8>,
    out: Vec<u8>,
    /// Client frame header bytes carried between reads.
    hdr: [u8; 14],
    hdr_len: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    skip_fin: bool,
    skip_data: bool,
    inflight: usize,
    sent_at: VecDeque<Instant>,
}

impl BConn {
    fn new(addr: SocketAddr, role: Role) -> io::Result<Self> {
        let sock = TcpStream::connect(addr)?;
        let _ = sock.set_nodelay(true);
        Ok(BConn {
            sock,
            role,
            open: false,
            head: Vec::new(),
            out: Vec::new(),
            hdr: [0; 14],
            hdr_len: 0,
            skip: 0,
            skip_fin: false,
            skip_data: false,
            inflight: 0,
            sent_at: VecDeque::new(),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.out.is_empty() {
            self.out.extend_from_slice(bytes);
            return Ok(());
        }
        match self.sock.write(bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(n) => {
                self.out.extend_from_slice(&bytes[n..]);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.out.extend_from_slice(bytes);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.sock.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Count complete data messages in `buf` (server frames are unmasked).
    /// Returns (messages, close seen).
    fn scan(&mut self, mut buf: &[u8]) -> Result<(usize, bool), String> {
        let mut msgs = 0;
        loop {
            if self.skip > 0 {
                let t = (buf.len() as u64).min(self.skip) as usize;
                self.skip -= t as u64;
                buf = &buf[t..];
                if self.skip > 0 {
                    return Ok((msgs, false));
                }
                msgs += (self.skip_fin && self.skip_data) as usize;
                continue;
            }
            if buf.is_empty() {
                return Ok((msgs, false));
            }
            let take = (14 - self.hdr_len).min(buf.len());
            self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&buf[..take]);
            let avail = self.hdr_len + take;
            match frame::parse_header(&self.hdr[..avail]).map_err(|e| e.to_string())? {
                None => {
                    self.hdr_len = avail;
                    return Ok((msgs, false));
                }
                Some(h) => {
                    buf = &buf[h.header_len - self.hdr_len..];
                    self.hdr_len = 0;
                    if h.opcode == OpCode::Close {
                        return Ok((msgs, true));
                    }
                    let data = !h.opcode.is_control();
                    if h.len == 0 {
                        msgs += (h.fin && data) as usize;
                    } else {
                        self.skip = h.len;
                        self.skip_fin = h.fin;
                        self.skip_data = data;
                    }
                }
            }
        }
    }
}

// ---- echo and fanout ----------------------------------------------------------

struct Shared {
    received: AtomicU64,
    sent: AtomicU64,
    opened: AtomicU64,
    errors: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
}

fn run_traffic(cfg: &Cfg, fanout: bool) -> Result<Report, String> {
    let shared = Arc::new(Shared {
        received: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        opened: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    // Roles and the server each talks to, spread round-robin over threads.
    let home = (cfg.addr, path_base(&cfg.path).to_string());
    let mut roles: Vec<Vec<(Role, SocketAddr, String)>> =
        (0..cfg.threads).map(|_| Vec::new()).collect();
    let total = if fanout {
        for i in 0..cfg.subscribers {
            let (a, base) = if cfg.sub_urls.is_empty() {
                &home
            } else {
                &cfg.sub_urls[i % cfg.sub_urls.len()]
            };
            roles[i % cfg.threads].push((Role::Subscriber, *a, format!("{base}/sub")));
        }
        // Publishers live on thread 0 with subscriber 0, which paces them.
        for _ in 0..cfg.publishers {
            roles[0].push((Role::Publisher, home.0, format!("{}/pub", home.1)));
        }
        cfg.subscribers + cfg.publishers
    } else {
        for i in 0..cfg.conns {
            roles[i % cfg.threads].push((Role::Echo, cfg.addr, cfg.path.clone()));
        }
        cfg.conns
    };
    let mut threads = Vec::new();
    for (t, roles) in roles.into_iter().enumerate() {
        let (cfg, shared) = (cfg.clone(), shared.clone());
        threads.push(std::thread::spawn(move || {
            traffic_thread(&cfg, t, roles, &shared)
        }));
    }
    // Wait for every connection to open (bounded).
    let t0 = Instant::now();
    while (shared.opened.load(Ordering::Relaxed) as usize) < total {
        if t0.elapsed() > Duration::from_secs(30) || shared.errors.load(Ordering::Relaxed) > 0 {
            shared.stop.store(true, Ordering::Relaxed);
            return Err(format!(
                "only {} of {total} connections opened ({} errors)",
                shared.opened.load(Ordering::Relaxed),
                shared.errors.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_secs_f64(cfg.warmup));
    let r0 = shared.received.load(Ordering::Relaxed);
    let c0 = cpu_of(&cfg.pids);
    let start = Instant::now();
    shared.measuring.store(true, Ordering::Relaxed);
    let mut last = (start, r0);
    // The longest stretch with no message received (sampled every 100 ms):
    // a server that stops serving shows here even when msg/s looks fine.
    let (mut progress, mut seen, mut stall) = (start, r0, Duration::ZERO);
    while start.elapsed().as_secs_f64() < cfg.duration {
        std::thread::sleep(Duration::from_millis(100).min(Duration::from_secs_f64(cfg.duration)));
        let r = shared.received.load(Ordering::Relaxed);
        if r != seen {
            (progress, seen) = (Instant::now(), r);
        }
        stall = stall.max(progress.elapsed());
        if !cfg.quiet && last.0.elapsed() >= Duration::from_secs(1) {
            let r = shared.received.load(Ordering::Relaxed);
            eprint!(
                "\r{:>6.1}s  {:>12.0} msg/s  ",
                start.elapsed().as_secs_f64(),
                (r - last.1) as f64 / last.0.elapsed().as_secs_f64()
            );
            last = (Instant::now(), r);
        }
    }
    shared.measuring.store(false, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let r1 = shared.received.load(Ordering::Relaxed);
    let c1 = cpu_of(&cfg.pids);
    shared.stop.store(true, Ordering::Relaxed);
    let mut hist = Hist::new();
    for t in threads {
        if let Ok(h) = t.join() {
            hist.merge(&h?);
        }
    }
    if !cfg.quiet {
        eprintln!();
    }
    let msgs = (r1 - r0) as f64;
    let mut rep = Report::default();
    rep.str("mode", &cfg.mode);
    rep.num("connections", total as f64);
    rep.num("inflight", cfg.inflight as f64);
    rep.num("size", cfg.size as f64);
    rep.num("seconds", secs);
    rep.num("msgs_per_sec", msgs / secs);
    rep.num("mb_per_sec", msgs * cfg.size as f64 / secs / 1e6);
    if let (Some(a), Some(b)) = (c0, c1) {
        let cpu = b - a;
        rep.num("server_cpu_sec", cpu);
        rep.num(
            "msgs_per_server_cpu_sec",
            if cpu > 0.0 { msgs / cpu } else { 0.0 },
        );
    }
    // Echo: round trips. Fanout: publish to delivery at subscriber 0.
    rep.num("p50_us", hist.pct(0.50));
    rep.num("p99_us", hist.pct(0.99));
    rep.num("p999_us", hist.pct(0.999));
    rep.num("longest_stall_ms", stall.as_secs_f64() * 1e3);
    rep.num("errors", shared.errors.load(Ordering::Relaxed) as f64);
    Ok(rep)
}

fn traffic_thread(
    cfg: &Cfg,
    t: usize,
    roles: Vec<(Role, SocketAddr, String)>,
    sh: &Shared,
) -> Result<Hist, String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678_9ABC));
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut conns = Vec::new();
    for (i, (role, addr, path)) in roles.into_iter().enumerate() {
        let mut c = BConn::new(addr, role).map_err(|e| e.to_string())?;
        poll.registry()
            .register(
                &mut c.sock,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| e.to_string())?;
        c.out = request(cfg, &path, &mut rng);
        conns.push(c);
    }
    let (frames, flen) = burst(cfg, cfg.inflight, &mut rng);
    let mut buf = vec![0u8; 256 * 1024];
    let mut hist = Hist::new();
    // Subscriber 0 on this thread paces the publishers.
    let pacer = conns.iter().position(|c| c.role == Role::Subscriber);
    let mut paced_seen: u64 = 0;
    let mut published: u64 = 0;
    // When each publish still unseen by subscriber 0 was sent, in order.
    let mut published_at: VecDeque<Instant> = VecDeque::new();
    // Subscriber 0's last progress: a window it never sees (publishes lost
    // before a subscription reached the server, or dropped by a policy) is
    // written off after STALL instead of stopping the publishers for good.
    const STALL: Duration = Duration::from_millis(250);
    let mut progress = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        let measuring = sh.measuring.load(Ordering::Relaxed);
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() && c.flush().is_err() {
                sh.errors.fetch_add(1, Ordering::Relaxed);
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                let n = match c.sock.read(&mut buf) {
                    Ok(0) => {
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
                let mut data = &buf[..n];
                if !c.open {
                    c.head.extend_from_slice(data);
                    let Some(end) = c.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    if !c.head.starts_with(b"HTTP/1.1 101") {
                        return Err(format!(
                            "upgrade refused: {}",
                            String::from_utf8_lossy(&c.head[..end])
                        ));
                    }
                    if cfg.deflate
                        && !String::from_utf8_lossy(&c.head[..end])
                            .to_ascii_lowercase()
                            .contains("permessage-deflate")
                    {
                        return Err("the server did not agree to permessage-deflate".into());
                    }
                    let rest = c.head.split_off(end + 4);
                    c.head = Vec::new();
                    c.open = true;
                    sh.opened.fetch_add(1, Ordering::Relaxed);
                    if c.role == Role::Echo {
                        c.inflight = cfg.inflight;
                        c.sent_at.extend(std::iter::repeat_n(now, cfg.inflight));
                        c.send(&frames).map_err(|e| e.to_string())?;
                    }
                    if rest.is_empty() {
                        continue;
                    }
                    let (m, closed) = c.scan(&rest)?;
                    if closed || m > 0 {
                        return Err("unexpected frames right after the upgrade".into());
                    }
                    data = &[];
                }
                let (m, closed) = c.scan(data)?;
                if closed {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                }
                if m == 0 {
                    if n < buf.len() {
                        break;
                    }
                    continue;
                }
                sh.received.fetch_add(m as u64, Ordering::Relaxed);
                if c.role == Role::Echo {
                    for _ in 0..m {
                        if let Some(t) = c.sent_at.pop_front() {
                            if measuring {
                                hist.record(now - t);
                            }
                        }
                    }
                    c.sent_at.extend(std::iter::repeat_n(now, m));
                    let k = m.min(cfg.inflight);
                    c.send(&frames[..k * flen]).map_err(|e| e.to_string())?;
                    sh.sent.fetch_add(k as u64, Ordering::Relaxed);
                }
                if Some(i) == pacer {
                    paced_seen += m as u64;
                    progress = now;
                    for _ in 0..m {
                        if let Some(t) = published_at.pop_front() {
                            if measuring {
                                hist.record(now - t);
                            }
                        }
                    }
                }
                if n < buf.len() {
                    break;
                }
            }
        }
        // Publishers: keep at most `inflight` messages beyond what subscriber 0
        // has received; one batch per loop turn.
        if pacer.is_some()
            && sh.opened.load(Ordering::Relaxed) as usize >= cfg.subscribers + cfg.publishers
        {
            let window = cfg.inflight as u64;
            if published > paced_seen && progress.elapsed() > STALL {
                published = paced_seen;
                published_at.clear();
                progress = Instant::now();
            }
            for c in conns
                .iter_mut()
                .filter(|c| c.role == Role::Publisher && c.open)
            {
                let ahead = published.saturating_sub(paced_seen);
                if ahead < window / 2 {
                    let k = (window - ahead) as usize;
                    c.send(&frames[..k * flen]).map_err(|e| e.to_string())?;
                    published += k as u64;
                    published_at.extend(std::iter::repeat_n(Instant::now(), k));
                }
            }
        }
    }
    Ok(hist)
}

// ---- connect ------------------------------------------------------------------

/// A session's input after its one message went out (`connect --size`):
/// true when the session is over, counted as done once the echo arrived,
/// as an error when a close or bad input came instead.
fn echoed(scanned: Result<(usize, bool), String>, done: &mut u64, errors: &mut u64) -> bool {
    match scanned {
        Ok((0, false)) => false,
        Ok((_, false)) => {
            *done += 1;
            true
        }
        _ => {
            *errors += 1;
            true
        }
    }
}

fn run_connect(cfg: &Cfg) -> Result<Report, String> {
    let mut rng = Rng(0xDEAD_BEEF_1234_5678);
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    // Phase 1: handshakes per second with `conns` concurrent connectors.
    let mut slots: Vec<Option<BConn>> = (0..cfg.conns).map(|_| None).collect();
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(cfg.warmup);
    let end = warm_end + Duration::from_secs_f64(cfg.duration);
    let mut done = 0u64;
    let mut c0 = None;
    let mut errors = 0u64;
    // With --size N: each session is open, one N-byte message and its echo,
    // close (a handshake's sustained rate with the work a real client does).
    let one = if cfg.size > 0 || cfg.message.is_some() {
        burst(cfg, 1, &mut rng).0
    } else {
        Vec::new()
    };
    let open =
        |slots: &mut Vec<Option<BConn>>, i: usize, poll: &Poll, rng: &mut Rng| -> io::Result<()> {
            let mut c = BConn::new(cfg.addr, Role::Echo)?;
            poll.registry().register(
                &mut c.sock,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            c.out = request(cfg, &cfg.path, rng);
            slots[i] = Some(c);
            Ok(())
        };
    for i in 0..cfg.conns {
        open(&mut slots, i, &poll, &mut rng).map_err(|e| e.to_string())?;
    }
    let mut measuring = false;
    while Instant::now() < end {
        if !measuring && Instant::now() >= warm_end {
            measuring = true;
            done = 0;
            c0 = cpu_of(&cfg.pids);
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = slots[i].as_mut() else { continue };
            if ev.is_writable() {
                let _ = c.flush();
            }
            if !ev.is_readable() {
                continue;
            }
            let finished = match c.sock.read(&mut buf) {
                Ok(0) => {
                    errors += 1;
                    true
                }
                // --size: the echo of the one message ends the session.
                Ok(n) if c.open => echoed(c.scan(&buf[..n]), &mut done, &mut errors),
                Ok(n) => {
                    c.head.extend_from_slice(&buf[..n]);
                    match c.head.windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(_) if !c.head.starts_with(b"HTTP/1.1 101") => {
                            errors += 1;
                            true
                        }
                        Some(_) if one.is_empty() => {
                            done += 1;
                            true
                        }
                        Some(end) => {
                            // Open: send the message; its echo may follow
                            // the head in this very read (it cannot yet).
                            c.open = true;
                            let rest = c.head.split_off(end + 4);
                            let scanned = match c.send(&one) {
                                Ok(()) => c.scan(&rest),
                                Err(e) => Err(e.to_string()),
                            };
                            echoed(scanned, &mut done, &mut errors)
                        }
                        None => false,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                Err(_) => {
                    errors += 1;
                    true
                }
            };
            if finished {
                let mut c = slots[i].take().expect("slot");
                let _ = poll.registry().deregister(&mut c.sock);
                // RST instead of FIN: no TIME_WAIT pile-up on the generator.
                let _ = socket2::SockRef::from(&c.sock).set_linger(Some(Duration::ZERO));
                drop(c);
                open(&mut slots, i, &poll, &mut rng).map_err(|e| e.to_string())?;
            }
        }
    }
    let secs = (Instant::now() - warm_end).as_secs_f64();
    let c1 = cpu_of(&cfg.pids);
    drop(slots);
    let mut rep = Report::default();
    rep.str("mode", "connect");
    rep.num("handshakes_per_sec", done as f64 / secs);
    if let (Some(a), Some(b)) = (c0, c1) {
        rep.num(
            "handshakes_per_server_cpu_sec",
            done as f64 / (b - a).max(0.01),
        );
    }
    rep.num("handshake_errors", errors as f64);
    // Phase 2: idle connections and the server's memory for them.
    if cfg.idle > 0 {
        std::thread::sleep(Duration::from_millis(500));
        let rss0 = cfg.pids.first().and_then(|&p| rss_bytes(p));
        let mut held = Vec::with_capacity(cfg.idle);
        let mut pending = 0usize;
        let mut opened = 0usize;
        let t0 = Instant::now();
        while opened < cfg.idle && t0.elapsed() < Duration::from_secs(60) {
            while pending < 256 && held.len() < cfg.idle {
                let mut c = BConn::new(cfg.addr, Role::Echo).map_err(|e| e.to_string())?;
                let tok = Token(held.len());
                poll.registry()
                    .register(&mut c.sock, tok, Interest::READABLE | Interest::WRITABLE)
                    .map_err(|e| e.to_string())?;
                c.out = request(cfg, &cfg.path, &mut rng);
                held.push(c);
                pending += 1;
            }
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
            for ev in events.iter() {
                let c = &mut held[ev.token().0];
                if ev.is_writable() {
                    let _ = c.flush();
                }
                if ev.is_readable() && !c.open {
                    if let Ok(n) = c.sock.read(&mut buf) {
                        c.head.extend_from_slice(&buf[..n]);
                        if c.head.windows(4).any(|w| w == b"\r\n\r\n") {
                            c.open = c.head.starts_with(b"HTTP/1.1 101");
                            c.head = Vec::new();
                            opened += 1;
                            pending -= 1;
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
        let rss1 = cfg.pids.first().and_then(|&p| rss_bytes(p));
        rep.num(
            "idle_connections",
            held.iter().filter(|c| c.open).count() as f64,
        );
        if let (Some(a), Some(b)) = (rss0, rss1) {
            rep.num("server_rss_before_kb", a as f64 / 1024.0);
            rep.num("server_rss_after_kb", b as f64 / 1024.0);
            rep.num(
                "bytes_per_idle_connection",
                (b as f64 - a as f64) / cfg.idle as f64,
            );
        }
        for c in &held {
            let _ = socket2::SockRef::from(&c.sock).set_linger(Some(Duration::ZERO));
        }
    }
    Ok(rep)
}

// ---- http: keep-alive GET soak ---------------------------------------------

/// One keep-alive connection: its request out, the answer being read.
struct HConn {
    sock: TcpStream,
    out: usize,
    buf: Vec<u8>,
}

/// Bytes of the complete response at the start of `b` (head and
/// `Content-Length` body), if it is all there.
fn response_len(b: &[u8]) -> Option<Result<usize, String>> {
    let end = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&b[..end]).ok()?;
    if !head.starts_with("HTTP/1.1 200") {
        let line = head.lines().next().unwrap_or("");
        return Some(Err(format!("answer {line:?}")));
    }
    let len = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    let Some(len) = len else {
        return Some(Err("an answer without Content-Length".into()));
    };
    (b.len() >= end + len).then_some(Ok(end + len))
}

fn run_http(cfg: &Cfg) -> Result<Report, String> {
    let req = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", cfg.path, cfg.host).into_bytes();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(4096);
    let mut conns = Vec::with_capacity(cfg.conns);
    for i in 0..cfg.conns {
        let mut sock = TcpStream::connect(cfg.addr).map_err(|e| e.to_string())?;
        let _ = sock.set_nodelay(true);
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        conns.push(HConn {
            sock,
            out: 0,
            buf: Vec::new(),
        });
    }
    let rss0 = cfg.pids.first().and_then(|&p| rss_bytes(p));
    let mut rss_peak = rss0.unwrap_or(0);
    let mut done: u64 = 0;
    let mut errors: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let t0 = Instant::now();
    let warm = Duration::from_secs_f64(cfg.warmup);
    let end = warm + Duration::from_secs_f64(cfg.duration);
    let (mut start, mut d0, mut c0) = (None, 0, None);
    let mut last_sample = t0;
    // Write (the rest of) the request; false on error.
    let write = |c: &mut HConn| -> bool {
        while c.out < req.len() {
            match c.sock.write(&req[c.out..]) {
                Ok(n) => c.out += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    };
    for c in conns.iter_mut() {
        if !write(c) {
            errors += 1;
        }
    }
    while t0.elapsed() < end {
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if ev.is_writable() && c.out < req.len() && !write(c) {
                errors += 1;
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                match c.sock.read(&mut buf) {
                    Ok(0) => {
                        errors += 1;
                        break;
                    }
                    Ok(n) => c.buf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            while let Some(r) = response_len(&c.buf) {
                let n = r?;
                c.buf.drain(..n);
                done += 1;
                c.out = 0;
                if !write(c) {
                    errors += 1;
                }
            }
        }
        if start.is_none() && t0.elapsed() >= warm {
            start = Some(Instant::now());
            d0 = done;
            c0 = cpu_of(&cfg.pids);
        }
        if last_sample.elapsed() >= Duration::from_millis(250) {
            last_sample = Instant::now();
            if let Some(r) = cfg.pids.first().and_then(|&p| rss_bytes(p)) {
                rss_peak = rss_peak.max(r);
            }
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let c1 = cpu_of(&cfg.pids);
    let rss1 = cfg.pids.first().and_then(|&p| rss_bytes(p));
    let reqs = (done - d0) as f64;
    let mut rep = Report::default();
    rep.str("mode", "http");
    rep.num("connections", cfg.conns as f64);
    rep.num("seconds", secs);
    rep.num(
        "requests_per_sec",
        if secs > 0.0 { reqs / secs } else { 0.0 },
    );
    if let (Some(a), Some(b)) = (c0, c1) {
        let cpu = b - a;
        rep.num("server_cpu_sec", cpu);
        rep.num(
            "requests_per_server_cpu_sec",
            if cpu > 0.0 { reqs / cpu } else { 0.0 },
        );
    }
    if let (Some(a), Some(b)) = (rss0, rss1) {
        rep.num("server_rss_start_kb", a as f64 / 1024.0);
        rep.num("server_rss_peak_kb", rss_peak as f64 / 1024.0);
        rep.num("server_rss_end_kb", b as f64 / 1024.0);
    }
    rep.num("errors", errors as f64);
    Ok(rep)
}
