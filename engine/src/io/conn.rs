//! One connection's state, and the per-worker context every call gets.

use super::Hub;
use super::out::{OutQueue, Pool};
use super::timer::Stamp;
use super::timer::Wheel;
use crate::proto::close;
use crate::proto::decoder::{Decoder, Limits};
use crate::proto::deflate::{Agreed, Deflater, Inflater, Mode};
use crate::proto::frame::{MAX_HEADER, OpCode, encode_header};
use crate::pubsub::{LocalTopics, Prepared, SlowConsumer};
use crate::{Options, SendStatus};
use mio::net::TcpStream;
use std::io::{IoSlice, Write};
use std::sync::Arc;
use std::time::Duration;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading the HTTP request head.
    Handshake,
    /// The upgrade hook deferred its answer.
    Deferred,
    /// Messages flow.
    Open,
    /// The server sent a close frame and waits for the peer's.
    Closing,
    /// A `text/event-stream` response receiving publishes.
    Sse,
    /// Writing out the last bytes (a close frame or an HTTP response), then
    /// shutting down the write side and waiting for the peer's FIN.
    Flushing,
    /// To be removed by the worker.
    Done,
}

/// Something to tell the handler once the current callback has returned.
pub(crate) enum Event {
    /// A published message a slow subscriber did not get.
    Dropped {
        key: usize,
        generation: u32,
        topic: Arc<[u8]>,
        msg: Prepared,
    },
    /// A topic got its first subscriber on this server, or lost its last.
    TopicEdge { topic: Arc<[u8]>, active: bool },
}

/// What the worker shares with every connection call: options, clock, pools,
/// its topics, and the hub that connects it to the other workers.
pub(crate) struct Ctx {
    pub opts: Arc<Options>,
    pub hub: Arc<Hub>,
    /// This worker's index.
    pub me: usize,
    pub now: Stamp,
    pub pool: Pool,
    pub wheel: Wheel,
    /// Connections with bytes to write this loop turn.
    pub dirty: Vec<usize>,
    /// Connections to read again (resumed, or their read budget ran out).
    pub again: Vec<usize>,
    pub topics: LocalTopics,
    pub events: Vec<Event>,
    /// Scratch list of subscribers for one publish.
    pub scratch: Vec<(u32, u32)>,
    /// Bytes queued minus bytes written since the last stats update.
    pub queued_delta: i64,
    pub written: u64,
    /// Frame limits, without and with permessage-deflate.
    pub limits: Limits,
    pub limits_pmd: Limits,
    /// Shared (no context takeover) compressors and inflaters, by window 9..=15.
    pub deflaters: [Option<Deflater>; 7],
    pub inflaters: [Option<Inflater>; 7],
}

impl Ctx {
    /// The worker's no-context deflater for a window size.
    pub(crate) fn shared_deflater(&mut self, bits: u8) -> &mut Deflater {
        let level = self.opts.per_message_deflate.map_or(1, |c| c.level);
        self.deflaters[usize::from(bits.clamp(9, 15) - 9)]
            .get_or_insert_with(|| Deflater::new(level, bits, true))
    }

    /// The worker's no-context inflater for a window size.
    pub(crate) fn shared_inflater(&mut self, bits: u8) -> &mut Inflater {
        self.inflaters[usize::from(bits.clamp(9, 15) - 9)]
            .get_or_insert_with(|| Inflater::new(bits, true))
    }

    /// Compress a payload into a whole frame with RSV1, with the worker's
    /// shared deflater (the bytes every no-context subscriber can take).
    pub(crate) fn deflate_frame(&mut self, bits: u8, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut z = self.pool.get(payload.len() / 2 + 16);
        self.shared_deflater(bits).compress(payload, &mut z);
        self.hub
            .stats
            .compressions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, true, op, z.len() as u64, None);
        let mut f = Vec::with_capacity(n + z.len());
        f.extend_from_slice(&h[..n]);
        f.extend_from_slice(&z);
        self.pool.put(z);
        f
    }
}

/// Payloads from this size up are written directly when nothing is queued.
const DIRECT_MIN: usize = 16 * 1024;

/// The latest held message per conflated topic.
pub(crate) type Conflated = Vec<(Arc<[u8]>, Prepared)>;

/// A deferred upgrade waiting for its answer.
pub(crate) struct Pending {
    pub accept: String,
    pub protocols: Vec<String>,
    pub pmd: Option<crate::proto::deflate::Negotiated>,
}

/// How a publish went for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Delivered,
    Backpressured,
    Dropped,
    Skipped,
}

/// What few connections need: kept in a box that exists only while needed,
/// so that an idle connection stays small.
#[derive(Default)]
pub(crate) struct Cold {
    /// Request bytes not yet complete, or input left undecoded while paused.
    pub stash: Vec<u8>,
    /// A deferred upgrade waiting for its answer.
    pub pending: Option<Box<Pending>>,
    /// Topics subscribed: name and slot in the worker's local topic.
    pub subs: Vec<(Arc<[u8]>, u32)>,
    /// Latest message per conflated topic, held while the queue is full.
    pub conflated: Conflated,
    /// Dedicated (context takeover) compressor, created on first use.
    pub deflater: Option<Deflater>,
    /// Dedicated (context takeover) inflater, created on first use.
    pub inflater: Option<Inflater>,
    /// The TLS session of a `wss://` connection.
    pub tls: Option<Box<rustls::ServerConnection>>,
}

impl Cold {
    fn is_empty(&self) -> bool {
        self.stash.is_empty()
            && self.pending.is_none()
            && self.subs.is_empty()
            && self.conflated.is_empty()
            && self.deflater.is_none()
            && self.inflater.is_none()
            && self.tls.is_none()
    }
}

pub(crate) struct Conn<D> {
    pub sock: TcpStream,
    pub generation: u32,
    /// Tick of this connection's live timer entry (0: none).
    pub timer_tick: u32,
    pub phase: Phase,
    /// permessage-deflate, when agreed.
    pub pmd: Option<Agreed>,
    pub dec: Decoder,
    pub out: OutQueue,
    pub cold: Option<Box<Cold>>,
    pub data: Option<D>,
    /// Accept time, then open time.
    pub since: Stamp,
    pub last_read: Stamp,
    /// Open/SSE: the last ping or keep-alive sent. Closing/Flushing: the deadline.
    pub aux: Option<Stamp>,
    pub close_sent: bool,
    pub paused: bool,
    /// A read was skipped (paused or deferred) and must be retried.
    pub read_pending: bool,
    /// The last flush left bytes unwritten.
    pub backlogged: bool,
    pub dirty: bool,
    pub shut: bool,
    /// The peer's FIN or RST was reported: read to the end, whatever the sizes.
    pub hup: bool,
    /// A TLS connection (its session lives in the cold box).
    pub tls: bool,
    /// Pong bytes queued since the peer last took any bytes.
    pub ctrl_unsent: u32,
    /// The close handler ran (or the connection never opened).
    pub reported: bool,
}

impl<D> Conn<D> {
    pub(crate) fn new(sock: TcpStream, generation: u32, now: Stamp) -> Self {
        Conn {
            sock,
            generation,
            timer_tick: 0,
            phase: Phase::Handshake,
            pmd: None,
            dec: Decoder::new(),
            out: OutQueue::default(),
            cold: None,
            data: None,
            since: now,
            last_read: now,
            aux: None,
            close_sent: false,
            paused: false,
            read_pending: false,
            backlogged: false,
            dirty: false,
            shut: false,
            hup: false,
            tls: false,
            ctrl_unsent: 0,
            reported: true,
        }
    }

    /// The cold state, created on first use.
    pub(crate) fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Default::default)
    }

    /// Drop the cold state once nothing is in it.
    pub(crate) fn trim_cold(&mut self) {
        if self.cold.as_ref().is_some_and(|c| c.is_empty()) {
            self.cold = None;
        }
    }

    pub(crate) fn has_stash(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| !c.stash.is_empty())
    }

    pub(crate) fn stash_mut(&mut self) -> &mut Vec<u8> {
        &mut self.cold().stash
    }

    pub(crate) fn take_stash(&mut self) -> Vec<u8> {
        let v = self
            .cold
            .as_mut()
            .map(|c| std::mem::take(&mut c.stash))
            .unwrap_or_default();
        self.trim_cold();
        v
    }

    pub(crate) fn put_stash(&mut self, v: Vec<u8>) {
        if !v.is_empty() {
            self.cold().stash = v;
        }
    }

    pub(crate) fn take_pending(&mut self) -> Option<Box<Pending>> {
        let p = self.cold.as_mut().and_then(|c| c.pending.take());
        self.trim_cold();
        p
    }

    pub(crate) fn subs(&self) -> &[(Arc<[u8]>, u32)] {
        self.cold.as_ref().map_or(&[], |c| &c.subs)
    }

    pub(crate) fn has_conflated(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| !c.conflated.is_empty())
    }

    pub(crate) fn mark_dirty(&mut self, ctx: &mut Ctx, key: usize) {
        if !self.dirty {
            self.dirty = true;
            ctx.dirty.push(key);
        }
    }

    /// Queue one frame, no questions asked.
    pub(crate) fn queue_frame(&mut self, ctx: &mut Ctx, key: usize, op: OpCode, payload: &[u8]) {
        self.queue_frame_ext(ctx, key, op, false, payload);
    }

    fn queue_frame_ext(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        op: OpCode,
        rsv1: bool,
        payload: &[u8],
    ) {
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, rsv1, op, payload.len() as u64, None);
        self.out.push_frame(&mut ctx.pool, &h[..n], payload);
        ctx.queued_delta += (n + payload.len()) as i64;
        self.mark_dirty(ctx, key);
    }

    /// Queue raw bytes (an HTTP response head).
    pub(crate) fn queue_bytes(&mut self, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
        self.out.push_bytes(&mut ctx.pool, bytes);
        ctx.queued_delta += bytes.len() as i64;
        self.mark_dirty(ctx, key);
    }

    /// Write bytes now if nothing is queued (the 101 response), queueing only
    /// what the socket does not take: a handshake then leaves no buffer behind.
    pub(crate) fn write_now(&mut self, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
        let n = if self.out.is_empty() && !self.tls {
            // Errors surface on the next flush, which closes the connection.
            self.sock.write(bytes).unwrap_or_default()
        } else {
            0
        };
        ctx.written += n as u64;
        if n < bytes.len() {
            self.queue_bytes(ctx, key, &bytes[n..]);
        }
    }

    /// Queue a shared, already encoded buffer (see [`OutQueue::push_published`]).
    pub(crate) fn queue_shared(&mut self, ctx: &mut Ctx, key: usize, bytes: &Arc<[u8]>) {
        self.queue_published(ctx, key, bytes, false);
    }

    fn queue_published(&mut self, ctx: &mut Ctx, key: usize, bytes: &Arc<[u8]>, evictable: bool) {
        self.out.push_published(&mut ctx.pool, bytes, evictable);
        ctx.queued_delta += bytes.len() as i64;
        self.mark_dirty(ctx, key);
    }

    /// Would `len` more bytes pass the backpressure limit? A message always
    /// fits an empty queue, however large.
    fn over_limit(&self, ctx: &Ctx, len: usize) -> bool {
        !self.out.is_empty() && self.out.len() + len > ctx.opts.backpressure_limit
    }

    fn status(&self, len: usize) -> SendStatus {
        if self.backlogged {
            SendStatus::Backpressure
        } else {
            SendStatus::Sent(len)
        }
    }

    fn refuse_over_limit(&mut self, ctx: &mut Ctx, key: usize) -> SendStatus {
        if ctx.opts.close_on_backpressure_limit {
            self.start_close(ctx, key, close::POLICY_VIOLATION, "backpressure limit");
        }
        SendStatus::Dropped
    }

    /// Should a message of `len` bytes to this connection be compressed?
    /// `force`: the caller's per-message choice (Bun's `compress` flag).
    fn wants_compression(&self, ctx: &Ctx, len: usize, force: Option<bool>) -> Option<Agreed> {
        let a = self.pmd?;
        let cfg = ctx.opts.per_message_deflate?;
        if cfg.compress == Mode::Off || !a.can_compress() {
            return None;
        }
        match force {
            Some(false) => None,
            None if len < cfg.threshold => None,
            _ => Some(a),
        }
    }

    /// Compress with this connection's own context (context takeover).
    fn deflate_dedicated(&mut self, ctx: &mut Ctx, a: Agreed, payload: &[u8]) -> Vec<u8> {
        let level = ctx.opts.per_message_deflate.map_or(1, |c| c.level);
        let mut z = ctx.pool.get(payload.len() / 2 + 16);
        self.cold()
            .deflater
            .get_or_insert_with(|| Deflater::new(level, a.server_window_bits, false))
            .compress(payload, &mut z);
        ctx.hub
            .stats
            .compressions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        z
    }

    /// A data send with Bun's backpressure rules.
    pub(crate) fn send(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        op: OpCode,
        payload: &[u8],
        compress: Option<bool>,
    ) -> SendStatus {
        if self.phase != Phase::Open {
            return SendStatus::Dropped;
        }
        if self.over_limit(ctx, payload.len() + MAX_HEADER) {
            return self.refuse_over_limit(ctx, key);
        }
        if let Some(a) = self.wants_compression(ctx, payload.len(), compress) {
            let z = if a.server_no_context_takeover {
                let mut z = ctx.pool.get(payload.len() / 2 + 16);
                ctx.shared_deflater(a.server_window_bits)
                    .compress(payload, &mut z);
                ctx.hub
                    .stats
                    .compressions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                z
            } else {
                self.deflate_dedicated(ctx, a, payload)
            };
            let before = self.out.len();
            self.queue_frame_ext(ctx, key, op, true, &z);
            ctx.pool.put(z);
            return self.status(self.out.len() - before);
        }
        if payload.len() >= DIRECT_MIN && self.out.is_empty() && !self.tls {
            return self.send_direct(ctx, key, op, payload);
        }
        let before = self.out.len();
        self.queue_frame(ctx, key, op, payload);
        self.status(self.out.len() - before)
    }

    /// A large frame with nothing queued ahead of it: `writev` header and
    /// payload straight from the caller's slice, and copy only what the
    /// socket did not take. Saves a copy of every large message.
    fn send_direct(&mut self, ctx: &mut Ctx, key: usize, op: OpCode, payload: &[u8]) -> SendStatus {
        let mut h = [0u8; MAX_HEADER];
        let hl = encode_header(&mut h, true, false, op, payload.len() as u64, None);
        let total = hl + payload.len();
        let iov = [IoSlice::new(&h[..hl]), IoSlice::new(payload)];
        // Errors surface on the next flush, which closes the connection.
        let n = self.sock.write_vectored(&iov).unwrap_or_default();
        ctx.written += n as u64;
        if n < hl {
            self.out.push_frame(&mut ctx.pool, &h[n..hl], payload);
        } else if n < total {
            self.out.push_bytes(&mut ctx.pool, &payload[n - hl..]);
        }
        let left = total - n;
        if left > 0 {
            ctx.queued_delta += left as i64;
            self.backlogged = true;
            self.mark_dirty(ctx, key);
            return SendStatus::Backpressure;
        }
        SendStatus::Sent(total)
    }

    /// Send a prepared message (shared buffer, no copy).
    pub(crate) fn send_prepared(&mut self, ctx: &mut Ctx, key: usize, p: &Prepared) -> SendStatus {
        if self.phase != Phase::Open {
            return SendStatus::Dropped;
        }
        let frame = p.frame();
        if self.over_limit(ctx, frame.len()) {
            return self.refuse_over_limit(ctx, key);
        }
        self.queue_shared(ctx, key, frame);
        self.status(frame.len())
    }

    /// Offer a published message under the topic's slow-consumer policy.
    /// `group`: the topic has enough local subscribers that one shared
    /// compressed frame beats compressing per connection, even for
    /// connections with their own context (which is then restarted).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn offer(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        topic: &Arc<[u8]>,
        policy: SlowConsumer,
        p: &Prepared,
        compress: Option<bool>,
        group: bool,
    ) -> Offer {
        let pmd = match self.phase {
            Phase::Open => self.wants_compression(ctx, p.payload().len(), compress),
            _ => None,
        };
        let bytes = match (self.phase, pmd) {
            (Phase::Open, Some(a)) if a.server_no_context_takeover || group => {
                if !a.server_no_context_takeover {
                    // This connection's stream gets a message its own context
                    // did not see: start that context afresh.
                    if let Some(d) = self.cold.as_mut().and_then(|c| c.deflater.as_mut()) {
                        d.restart();
                    }
                }
                let op = if p.is_binary() {
                    OpCode::Binary
                } else {
                    OpCode::Text
                };
                p.deflated(a.server_window_bits, |payload| {
                    ctx.deflate_frame(a.server_window_bits, op, payload)
                })
            }
            (Phase::Open, Some(a)) => {
                // Context takeover, few subscribers: compress for this one.
                if self.over_limit(ctx, p.payload().len()) && policy != SlowConsumer::DropOldest {
                    self.note_dropped(ctx, key, topic, p);
                    return Offer::Dropped;
                }
                let z = self.deflate_dedicated(ctx, a, p.payload());
                let op = if p.is_binary() {
                    OpCode::Binary
                } else {
                    OpCode::Text
                };
                self.queue_frame_ext(ctx, key, op, true, &z);
                ctx.pool.put(z);
                return if self.backlogged {
                    Offer::Backpressured
                } else {
                    Offer::Delivered
                };
            }
            (Phase::Open, None) => p.frame(),
            (Phase::Sse, _) => p.sse(),
            _ => return Offer::Skipped,
        };
        if !self.over_limit(ctx, bytes.len()) {
            self.queue_published(ctx, key, bytes, policy == SlowConsumer::DropOldest);
            return if self.backlogged {
                Offer::Backpressured
            } else {
                Offer::Delivered
            };
        }
        match policy {
            SlowConsumer::DropNewest => {
                self.note_dropped(ctx, key, topic, p);
                Offer::Dropped
            }
            SlowConsumer::DropOldest => {
                let limit = ctx.opts.backpressure_limit;
                let (n, freed) = self.out.evict_shared(limit.saturating_sub(bytes.len()));
                ctx.queued_delta -= freed as i64;
                ctx.hub
                    .stats
                    .dropped
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                self.queue_published(ctx, key, bytes, true);
                Offer::Backpressured
            }
            SlowConsumer::Close(code) => {
                if self.phase == Phase::Sse {
                    self.phase = Phase::Done;
                } else {
                    self.start_close(ctx, key, code, "slow consumer");
                }
                Offer::Dropped
            }
            SlowConsumer::Conflate => {
                let c = &mut self.cold().conflated;
                match c.iter_mut().find(|(t, _)| t == topic) {
                    Some(slot) => {
                        let old = std::mem::replace(&mut slot.1, p.clone());
                        self.note_dropped(ctx, key, topic, &old);
                    }
                    None => c.push((topic.clone(), p.clone())),
                }
                Offer::Backpressured
            }
        }
    }

    fn note_dropped(&self, ctx: &mut Ctx, key: usize, topic: &Arc<[u8]>, p: &Prepared) {
        ctx.events.push(Event::Dropped {
            key,
            generation: self.generation,
            topic: topic.clone(),
            msg: p.clone(),
        });
    }

    /// The queue emptied: release conflated messages.
    pub(crate) fn release_conflated(&mut self, ctx: &mut Ctx, key: usize) {
        let held = self.cold.as_mut().map(|c| std::mem::take(&mut c.conflated));
        self.trim_cold();
        if let Some(c) = held {
            for (_, p) in c.iter() {
                let bytes = if self.phase == Phase::Sse {
                    p.sse()
                } else {
                    p.frame()
                };
                self.queue_shared(ctx, key, bytes);
            }
        }
    }

    /// Send a close frame and wait (bounded) for the peer's.
    pub(crate) fn start_close(&mut self, ctx: &mut Ctx, key: usize, code: u16, reason: &str) {
        if self.phase != Phase::Open {
            return;
        }
        self.send_close_frame(ctx, key, code, reason);
        self.phase = Phase::Closing;
        self.aux = Some(ctx.now + ctx.opts.close_timeout);
        self.arm(ctx, key);
    }

    /// Queue our close frame once.
    pub(crate) fn send_close_frame(&mut self, ctx: &mut Ctx, key: usize, code: u16, reason: &str) {
        if !self.close_sent {
            self.close_sent = true;
            let (p, n) = close::payload(code, reason);
            self.queue_frame(ctx, key, OpCode::Close, &p[..n]);
        }
    }

    /// Write out what is queued, then shut down; drop after `close_timeout`.
    pub(crate) fn flush_and_shut(&mut self, ctx: &mut Ctx, key: usize) {
        self.phase = Phase::Flushing;
        self.aux = Some(ctx.now + ctx.opts.close_timeout);
        self.mark_dirty(ctx, key);
        self.arm(ctx, key);
    }

    /// The earliest moment this connection needs attention.
    pub(crate) fn deadline(&self, o: &Options) -> Option<Stamp> {
        match self.phase {
            Phase::Handshake | Phase::Deferred => Some(self.since + o.handshake_timeout),
            Phase::Closing | Phase::Flushing => self.aux,
            Phase::Done => None,
            Phase::Sse => (!o.sse_keepalive.is_zero())
                .then(|| self.aux.unwrap_or(self.since) + o.sse_keepalive),
            Phase::Open => {
                let mut d = o.max_lifetime.map(|l| self.since + l);
                let mut take = |t: Stamp| d = Some(d.map_or(t, |x| x.min(t)));
                match self.awaiting_pong() {
                    Some(p) => take(p + o.pong_timeout),
                    None => {
                        if let Some(i) = ping_interval(o) {
                            take(self.last_read + i);
                        }
                    }
                }
                if let Some(i) = hard_idle(o) {
                    take(self.last_read + i);
                }
                d
            }
        }
    }

    /// When a ping was sent that the peer has not answered with any frame
    /// (every read clears it: see [`Conn::note_read`]).
    pub(crate) fn awaiting_pong(&self) -> Option<Stamp> {
        if self.phase == Phase::Open {
            self.aux
        } else {
            None
        }
    }

    /// Bytes arrived: the peer is alive.
    #[inline]
    pub(crate) fn note_read(&mut self, now: Stamp) {
        self.last_read = now;
        if self.phase == Phase::Open {
            self.aux = None;
        }
    }

    /// Make sure a timer entry fires at or before this connection's deadline.
    pub(crate) fn arm(&mut self, ctx: &mut Ctx, key: usize) {
        let Some(at) = self.deadline(&ctx.opts) else {
            return;
        };
        let t = ctx.wheel.tick_of(at);
        if self.timer_tick != 0 && u64::from(self.timer_tick) <= t {
            return; // an earlier entry will re-evaluate
        }
        self.timer_tick = ctx.wheel.insert(at, (key as u32, self.generation)) as u32;
    }
}

/// Interval of keep-alive pings, if any.
pub(crate) fn ping_interval(o: &Options) -> Option<Duration> {
    if !o.send_pings {
        return None;
    }
    o.ping_interval
        .or((!o.idle_timeout.is_zero()).then_some(o.idle_timeout))
        .filter(|d| !d.is_zero())
}

/// Inbound silence that closes without a ping first: `idle_timeout` when pings
/// are off or run on their own interval.
pub(crate) fn hard_idle(o: &Options) -> Option<Duration> {
    if o.idle_timeout.is_zero() || (o.send_pings && o.ping_interval.is_none()) {
        None
    } else {
        Some(o.idle_timeout)
    }
}

#[cfg(test)]
mod size_tests {
    /// Idle connections are a headline figure: keep the struct from growing
    /// unnoticed (benches/compare measures the RSS per connection).
    #[test]
    fn an_idle_connection_stays_small() {
        let conn = std::mem::size_of::<super::Conn<()>>();
        eprintln!(
            "sizes: conn={conn} decoder={} out={}",
            std::mem::size_of::<crate::proto::decoder::Decoder>(),
            std::mem::size_of::<super::OutQueue>()
        );
        assert!(conn <= 136, "Conn<()> is {conn} bytes");
    }
}
