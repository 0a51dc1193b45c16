//! One connection's state, and the per-worker context every call gets.

use super::hub::Hub;
use super::out::{OutQueue, Pool};
use super::slots::{self, Slot};
use super::sock::Stream;
use super::wheel::Wheel;
use crate::id::ConnId;
use crate::proto::close;
use crate::proto::connection::{Carrier, Connection};
use crate::proto::deflate::{Agreed, Deflater, Inflater, Mode, Negotiated};
use crate::proto::frame::{MAX_HEADER, OpCode, encode_header};
use crate::proto::requests::{Body, ReplyMode};
use crate::proto::session::{Phase, Stamp, Timeouts};
use crate::pubsub::{LocalTopics, Prepared, SlowConsumer};
use crate::{Options, SendStatus};
use std::io::{IoSlice, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Something to tell the handler once the current callback has returned
/// (events raised inside a callback wait in `Ctx::events` for it to end).
pub(crate) enum Deferred {
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
    /// The options' time limits, resolved once.
    pub timeouts: Timeouts,
    pub hub: Arc<Hub>,
    /// This worker's index.
    pub me: usize,
    /// The last generation given to a connection (see [`ConnId`]).
    pub next_generation: u64,
    pub now: Stamp,
    pub pool: Pool,
    pub wheel: Wheel,
    /// Connections with bytes to write (or to reap) this loop turn.
    pub dirty: Vec<usize>,
    /// Connections to read again (resumed, or their read budget ran out).
    pub again: Vec<usize>,
    pub topics: LocalTopics,
    pub events: Vec<Deferred>,
    /// Scratch list of subscribers for one publish.
    pub scratch: Vec<(u32, u32)>,
    /// Bytes queued minus bytes written since the last stats update.
    pub queued_delta: i64,
    pub written: u64,
    /// Shared (no context takeover) compressors and inflaters, by window 9..=15.
    pub deflaters: [Option<Deflater>; 7],
    pub inflaters: [Option<Inflater>; 7],
}

/// How far apart a worker's generations are (unit tests only).
#[cfg(test)]
pub(crate) static GENERATION_STRIDE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(1);

impl Ctx {
    /// The id of this worker's connection `key`.
    #[inline]
    pub(crate) fn id(&self, key: usize) -> ConnId {
        ConnId::new(self.me, key, self.slot(key).generation())
    }

    /// A new occupant for slot `key` (a new connection, or the next request
    /// of a keep-alive one): the next generation of this worker.
    pub(crate) fn occupy(&mut self, key: usize) -> ConnId {
        #[cfg(not(test))]
        let step = 1;
        // Unit tests may stride by 2^32, so that an old and a new occupant
        // agree in every bit the worker keeps of a generation but the top.
        #[cfg(test)]
        let step = GENERATION_STRIDE.load(Ordering::Relaxed);
        self.next_generation += step;
        self.slot(key).occupy(self.me, key, self.next_generation)
    }

    /// What other threads see of connection `key`.
    #[inline]
    pub(crate) fn slot(&self, key: usize) -> &Slot {
        self.hub.links[self.me].slots.at(key)
    }

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

    fn count_compression(&self) {
        self.hub.stats.compressions.fetch_add(1, Ordering::Relaxed);
    }

    /// Compress a payload into a whole frame with RSV1, with the worker's
    /// shared deflater (the bytes every no-context subscriber can take).
    pub(crate) fn deflate_frame(&mut self, bits: u8, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut z = self.pool.get(payload.len() / 2 + 16);
        self.shared_deflater(bits).compress(payload, &mut z);
        self.count_compression();
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

/// What a connection waits for while its phase awaits an answer.
pub(crate) enum Pending {
    /// A deferred upgrade: what the 101 needs.
    Upgrade {
        accept: String,
        protocols: Vec<String>,
        pmd: Option<Negotiated>,
    },
    /// A deferred HTTP answer: how to frame it.
    Fetch(ReplyMode),
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
    /// Input not yet used: an incomplete request head, pipelined requests,
    /// or frames left undecoded while paused.
    pub stash: Vec<u8>,
    /// A deferred upgrade or HTTP request waiting for its answer.
    pub pending: Option<Box<Pending>>,
    /// An HTTP request body being read.
    pub body: Option<Box<Body>>,
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
    /// Our `close_notify` is queued in the session.
    pub tls_notified: bool,
    /// Since when queued bytes have not moved (set by a flush the socket
    /// pushed back on, moved on by one that wrote, cleared when the queue
    /// empties): past `send_timeout` the peer is taken for dead.
    pub stalled_since: Option<Stamp>,
}

impl Cold {
    fn is_empty(&self) -> bool {
        self.stash.is_empty()
            && self.pending.is_none()
            && self.body.is_none()
            && self.subs.is_empty()
            && self.conflated.is_empty()
            && self.deflater.is_none()
            && self.inflater.is_none()
            && self.tls.is_none()
            && self.stalled_since.is_none()
    }
}

/// Mark connection `key` for this turn's write, once.
#[inline(always)]
fn mark(dirty: &mut bool, ctx: &mut Ctx, key: usize) {
    if !*dirty {
        *dirty = true;
        ctx.dirty.push(key);
    }
}

/// Queue one whole frame on `out`, counted, and mark the connection.
#[inline(always)]
fn push_frame(
    out: &mut OutQueue,
    dirty: &mut bool,
    ctx: &mut Ctx,
    key: usize,
    op: OpCode,
    rsv1: bool,
    payload: &[u8],
) {
    let mut h = [0u8; MAX_HEADER];
    let n = encode_header(&mut h, true, rsv1, op, payload.len() as u64, None);
    out.push_frame(&mut ctx.pool, &h[..n], payload);
    ctx.queued_delta += (n + payload.len()) as i64;
    mark(dirty, ctx, key);
}

/// Queue raw bytes on `out`, counted, and mark the connection.
fn push_bytes(out: &mut OutQueue, dirty: &mut bool, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
    out.push_bytes(&mut ctx.pool, bytes);
    ctx.queued_delta += bytes.len() as i64;
    mark(dirty, ctx, key);
}

/// Where a connection's own frames go ([`Carrier`]): its write queue, and
/// the worker's pool and inflaters.
pub(crate) struct Wire<'a> {
    out: &'a mut OutQueue,
    cold: &'a mut Option<Box<Cold>>,
    dirty: &'a mut bool,
    ctx: &'a mut Ctx,
    key: usize,
}

impl Carrier for Wire<'_> {
    fn control(&mut self, op: OpCode, payload: &[u8]) {
        push_frame(self.out, self.dirty, self.ctx, self.key, op, false, payload);
    }

    /// Nothing published goes after our close frame: messages held for a
    /// slow subscriber are dropped, and other threads see it closing.
    fn close_frame(&mut self, payload: &[u8]) {
        if let Some(c) = self.cold.as_mut() {
            c.conflated.clear();
        }
        if self.cold.as_ref().is_some_and(|c| c.is_empty()) {
            *self.cold = None;
        }
        self.ctx.slot(self.key).set_state(slots::CLOSING);
        self.control(OpCode::Close, payload);
    }

    fn inflater(&mut self, window_bits: u8, shared: bool) -> &mut Inflater {
        if shared {
            return self.ctx.shared_inflater(window_bits);
        }
        self.cold
            .get_or_insert_with(Default::default)
            .inflater
            .get_or_insert_with(|| Inflater::new(window_bits, false))
    }

    fn bytes(&mut self, bytes: &[u8]) {
        push_bytes(self.out, self.dirty, self.ctx, self.key, bytes);
    }

    fn buffer(&mut self, len: usize) -> Vec<u8> {
        self.ctx.pool.get(len)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.ctx.pool.put(buf);
    }

    fn keep_body(&mut self, body: Box<Body>) {
        self.cold.get_or_insert_with(Default::default).body = Some(body);
    }

    fn take_body(&mut self) -> Option<Box<Body>> {
        let b = self.cold.as_mut()?.body.take();
        if self.cold.as_ref().is_some_and(|c| c.is_empty()) {
            *self.cold = None;
        }
        b
    }
}

pub(crate) struct Conn<D> {
    pub sock: Stream,
    /// The low 32 bits of this occupant's generation, for the worker's own
    /// bookkeeping (timer entries, subscriber lists), which never outlives
    /// the connection; ids from elsewhere are checked against the slot's
    /// full 64 bits (see [`ConnId`]).
    pub generation: u32,
    /// Tick of this connection's live timer entry (0: none).
    pub timer_tick: u32,
    /// Its protocol state, sans IO: phase, clock, close handshake, the
    /// frame decoder, permessage-deflate.
    pub proto: Connection,
    pub out: OutQueue,
    pub cold: Option<Box<Cold>>,
    pub data: Option<D>,
    pub paused: bool,
    /// A read was skipped (paused or awaiting an answer) and must be retried.
    pub read_pending: bool,
    /// The last flush left bytes unwritten (or a send from another thread
    /// was told `-1`): `drain` fires when the queue empties.
    pub backlogged: bool,
    pub dirty: bool,
    pub shut: bool,
    /// The peer's FIN or RST was reported: read to the end, whatever the sizes.
    pub hup: bool,
    /// Event-queue mode: the 101 and what follows it wait, while the
    /// connection is open, until the host has run `open` (Command::Opened).
    pub held: bool,
}

impl<D> Conn<D> {
    pub(crate) fn new(sock: Stream, generation: u32, now: Stamp) -> Self {
        Conn {
            sock,
            generation,
            timer_tick: 0,
            proto: Connection::new(now),
            out: OutQueue::default(),
            cold: None,
            data: None,
            paused: false,
            read_pending: false,
            backlogged: false,
            dirty: false,
            shut: false,
            hup: false,
            held: false,
        }
    }

    /// A TLS connection: its session lives in the cold box (from the
    /// accept to the end; a flag beside it would cost a byte that an idle
    /// connection's size has no room for).
    #[inline]
    pub(crate) fn is_tls(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| c.tls.is_some())
    }

    /// Where the connection is in its life.
    #[inline(always)]
    pub(crate) fn phase(&self) -> Phase {
        self.proto.sess.phase()
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

    /// A keep-alive HTTP connection whose queued answers passed the
    /// limit: it reads (and answers) no more requests until they drain, as
    /// a paused WebSocket does, so pipelining cannot buy unbounded memory.
    pub(crate) fn http_backlogged(&self, o: &Options) -> bool {
        self.phase() == Phase::Handshake && self.out.len() > o.backpressure_limit
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

    /// An HTTP connection between requests: no request head or body
    /// arriving, no answer pending or going out (what Bun's
    /// `closeIdleConnections` closes).
    pub(crate) fn is_idle_http(&self) -> bool {
        self.phase() == Phase::Handshake
            && self.out.is_empty()
            && self.cold.as_ref().is_none_or(|c| {
                c.stash.is_empty()
                    && c.body.is_none()
                    && c.pending.is_none()
                    && c.tls.as_ref().is_none_or(|t| !t.is_handshaking())
            })
    }

    pub(crate) fn has_conflated(&self) -> bool {
        self.cold.as_ref().is_some_and(|c| !c.conflated.is_empty())
    }

    pub(crate) fn mark_dirty(&mut self, ctx: &mut Ctx, key: usize) {
        mark(&mut self.dirty, ctx, key);
    }

    /// Drop the connection at the end of this loop turn (whatever called:
    /// a handler, a command, a timer), without a closing handshake.
    pub(crate) fn finish(&mut self, ctx: &mut Ctx, key: usize) {
        self.proto.sess.finish();
        self.mark_dirty(ctx, key);
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
        push_frame(&mut self.out, &mut self.dirty, ctx, key, op, rsv1, payload);
    }

    /// Queue raw bytes (an HTTP response).
    pub(crate) fn queue_bytes(&mut self, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
        push_bytes(&mut self.out, &mut self.dirty, ctx, key, bytes);
    }

    /// Queue a shared, already encoded buffer (see [`OutQueue::push_published`]).
    pub(crate) fn queue_shared(&mut self, ctx: &mut Ctx, key: usize, bytes: &Arc<[u8]>) {
        self.queue_published(ctx, key, bytes, false);
    }

    // Inlined: per subscriber per publish (see `offer_shared`).
    #[inline(always)]
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
        } else {
            // Refused because bytes are queued: `drain` follows when they
            // are written, even if no send before said -1.
            self.backlogged = true;
        }
        SendStatus::Dropped
    }

    /// Should a message of `len` bytes to this connection be compressed?
    /// `force`: the caller's per-message choice (Bun's `compress` flag).
    fn wants_compression(&self, ctx: &Ctx, len: usize, force: Option<bool>) -> Option<Agreed> {
        let a = self.proto.deflate()?;
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

    /// Compress for this connection: with the worker's shared deflater when
    /// the peer agreed to no context takeover, else with its own context.
    fn deflate_for(&mut self, ctx: &mut Ctx, a: Agreed, payload: &[u8]) -> Vec<u8> {
        let mut z = ctx.pool.get(payload.len() / 2 + 16);
        if a.server_no_context_takeover {
            ctx.shared_deflater(a.server_window_bits)
                .compress(payload, &mut z);
        } else {
            let level = ctx.opts.per_message_deflate.map_or(1, |c| c.level);
            self.cold()
                .deflater
                .get_or_insert_with(|| Deflater::new(level, a.server_window_bits, false))
                .compress(payload, &mut z);
        }
        ctx.count_compression();
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
        if self.phase() != Phase::Open {
            return SendStatus::Dropped;
        }
        if self.over_limit(ctx, payload.len() + MAX_HEADER) {
            return self.refuse_over_limit(ctx, key);
        }
        self.send_unchecked(ctx, key, op, payload, compress)
    }

    /// A data send past the limit check (a send from another thread was
    /// checked against the connection's slot when it was made).
    pub(crate) fn send_unchecked(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        op: OpCode,
        payload: &[u8],
        compress: Option<bool>,
    ) -> SendStatus {
        if let Some(a) = self.wants_compression(ctx, payload.len(), compress) {
            let z = self.deflate_for(ctx, a, payload);
            let before = self.out.len();
            self.queue_frame_ext(ctx, key, op, true, &z);
            ctx.pool.put(z);
            return self.status(self.out.len() - before);
        }
        if payload.len() >= DIRECT_MIN && self.out.is_empty() && !self.is_tls() {
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

    /// Send a prepared message (shared buffer, no copy). `checked`: the
    /// limit was already applied (a send from another thread).
    pub(crate) fn send_prepared(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        p: &Prepared,
        checked: bool,
    ) -> SendStatus {
        if self.phase() != Phase::Open {
            return SendStatus::Dropped;
        }
        let frame = p.frame();
        if !checked && self.over_limit(ctx, frame.len()) {
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
        match self.phase() {
            Phase::Open => {}
            Phase::Sse => return self.offer_shared(ctx, key, topic, policy, p, p.sse()),
            _ => return Offer::Skipped,
        }
        let Some(a) = self.wants_compression(ctx, p.payload().len(), compress) else {
            return self.offer_shared(ctx, key, topic, policy, p, p.frame());
        };
        let op = if p.is_binary() {
            OpCode::Binary
        } else {
            OpCode::Text
        };
        // One shared no-context frame: when the peer agreed to it, when the
        // group is large, and for DropOldest topics (a frame that may be
        // evicted must not be one that later frames' context refers to).
        if a.server_no_context_takeover || group || policy == SlowConsumer::DropOldest {
            if !a.server_no_context_takeover {
                // This connection's stream gets a message its own context
                // did not see: start that context afresh.
                if let Some(d) = self.cold.as_mut().and_then(|c| c.deflater.as_mut()) {
                    d.restart();
                }
            }
            let bytes = p.deflated(a.server_window_bits, |payload| {
                ctx.deflate_frame(a.server_window_bits, op, payload)
            });
            return self.offer_shared(ctx, key, topic, policy, p, bytes);
        }
        // Context takeover, few subscribers: compress for this one, if it fits.
        if self.over_limit(ctx, p.payload().len()) {
            return self.past_limit(ctx, key, topic, policy, p, None);
        }
        let z = self.deflate_for(ctx, a, p.payload());
        self.queue_frame_ext(ctx, key, op, true, &z);
        ctx.pool.put(z);
        self.offered()
    }

    fn offered(&self) -> Offer {
        if self.backlogged {
            Offer::Backpressured
        } else {
            Offer::Delivered
        }
    }

    /// Queue an encoded shared frame (or SSE event), or apply the policy.
    // Inlined into `offer`, the per-subscriber step of a publish: left to
    // its heuristics the compiler called it, and `queue_published` from it,
    // out of line once `Conn`'s close path grew (fan-out: 243 instructions
    // per delivery against 215, callgrind).
    #[inline(always)]
    fn offer_shared(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        topic: &Arc<[u8]>,
        policy: SlowConsumer,
        p: &Prepared,
        bytes: &Arc<[u8]>,
    ) -> Offer {
        if self.over_limit(ctx, bytes.len()) {
            return self.past_limit(ctx, key, topic, policy, p, Some(bytes));
        }
        self.queue_published(ctx, key, bytes, policy == SlowConsumer::DropOldest);
        self.offered()
    }

    /// The queue is past the limit: what the topic's policy says.
    /// `bytes`: the shared frame, which `DropOldest` queues after evicting.
    fn past_limit(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        topic: &Arc<[u8]>,
        policy: SlowConsumer,
        p: &Prepared,
        bytes: Option<&Arc<[u8]>>,
    ) -> Offer {
        match (policy, bytes) {
            (SlowConsumer::DropOldest, Some(bytes)) => {
                let limit = ctx.opts.backpressure_limit;
                let (n, freed) = self.out.evict_shared(limit.saturating_sub(bytes.len()));
                ctx.queued_delta -= freed as i64;
                ctx.hub.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
                if self.over_limit(ctx, bytes.len()) {
                    // Only owned bytes (direct sends, control frames) are left.
                    self.note_dropped(ctx, key, topic, p);
                    return Offer::Dropped;
                }
                self.queue_published(ctx, key, bytes, true);
                Offer::Backpressured
            }
            (SlowConsumer::DropNewest | SlowConsumer::DropOldest, _) => {
                self.note_dropped(ctx, key, topic, p);
                Offer::Dropped
            }
            (SlowConsumer::Close(code), _) => {
                if self.phase() == Phase::Sse {
                    self.finish(ctx, key);
                } else {
                    self.start_close(ctx, key, code, "slow consumer");
                }
                Offer::Dropped
            }
            (SlowConsumer::Conflate, _) => {
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
        ctx.events.push(Deferred::Dropped {
            key,
            generation: self.generation,
            topic: topic.clone(),
            msg: p.clone(),
        });
    }

    /// The queue emptied: release conflated messages (only while the
    /// connection still takes them).
    pub(crate) fn release_conflated(&mut self, ctx: &mut Ctx, key: usize) {
        let held = self.cold.as_mut().map(|c| std::mem::take(&mut c.conflated));
        self.trim_cold();
        let Some(held) = held else { return };
        for (_, p) in held.iter() {
            match self.phase() {
                Phase::Sse => self.queue_shared(ctx, key, p.sse()),
                Phase::Open => self.queue_shared(ctx, key, p.frame()),
                _ => {}
            }
        }
    }

    /// Send a close frame and wait (bounded) for the peer's.
    pub(crate) fn start_close(&mut self, ctx: &mut Ctx, key: usize, code: u16, reason: &str) {
        let (now, t) = (ctx.now, ctx.timeouts);
        let (proto, mut wire) = self.wire(ctx, key);
        if proto.close(code, reason, now, &t, &mut wire) {
            self.arm(ctx, key);
        }
    }

    /// Queue our close frame once (see [`Wire::close_frame`]).
    pub(crate) fn send_close_frame(&mut self, ctx: &mut Ctx, key: usize, code: u16, reason: &str) {
        let (proto, mut wire) = self.wire(ctx, key);
        proto.send_close(code, reason, &mut wire);
    }

    /// The protocol state, and the way to the loop its frames take.
    #[inline(always)]
    pub(crate) fn wire<'a>(
        &'a mut self,
        ctx: &'a mut Ctx,
        key: usize,
    ) -> (&'a mut Connection, Wire<'a>) {
        let wire = Wire {
            out: &mut self.out,
            cold: &mut self.cold,
            dirty: &mut self.dirty,
            ctx,
            key,
        };
        (&mut self.proto, wire)
    }

    /// Write out what is queued, then shut down; drop after `close_timeout`.
    pub(crate) fn flush_and_shut(&mut self, ctx: &mut Ctx, key: usize) {
        self.proto.sess.flush(ctx.now, &ctx.timeouts);
        self.mark_dirty(ctx, key);
        self.arm(ctx, key);
    }

    /// Since when queued bytes have not moved (see [`Cold::stalled_since`]).
    pub(crate) fn stalled_since(&self) -> Option<Stamp> {
        self.cold.as_ref()?.stalled_since
    }

    /// The earliest moment this connection needs attention.
    pub(crate) fn deadline(&self, t: &Timeouts) -> Option<Stamp> {
        self.proto.next_timeout(self.stalled_since(), t)
    }

    /// A flush moved `written` bytes and put everything on the wire
    /// (`all_out`) or not: keep the stall clock.
    pub(crate) fn note_flush(&mut self, ctx: &mut Ctx, key: usize, written: usize, all_out: bool) {
        if all_out {
            if let Some(c) = self.cold.as_mut() {
                c.stalled_since = None;
            }
            self.trim_cold();
        } else if written > 0 || self.cold.as_ref().is_none_or(|c| c.stalled_since.is_none()) {
            self.cold().stalled_since = Some(ctx.now);
            self.arm(ctx, key);
        }
    }

    /// Bytes arrived: the peer is alive.
    #[inline]
    pub(crate) fn note_read(&mut self, now: Stamp) {
        self.proto.sess.note_read(now);
    }

    /// Make sure a timer entry fires at or before this connection's deadline.
    pub(crate) fn arm(&mut self, ctx: &mut Ctx, key: usize) {
        let Some(at) = self.deadline(&ctx.timeouts) else {
            return;
        };
        let t = ctx.wheel.tick_of(at);
        if self.timer_tick != 0 && u64::from(self.timer_tick) <= t {
            return; // an earlier entry will re-evaluate
        }
        self.timer_tick = ctx.wheel.insert(at, (key as u32, self.generation)) as u32;
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
        // 120: issue 22's slope target (192 B per idle connection, 186
        // measured at two workers) has no room for another word.
        assert!(conn <= 120, "Conn<()> is {conn} bytes");
    }
}
