//! One connection's state, and the [`WebSocket`] handle handlers use.

use super::out::{OutQueue, Pool};
use super::timer::Wheel;
use crate::proto::close;
use crate::proto::decoder::Decoder;
use crate::proto::frame::{MAX_HEADER, OpCode, encode_header};
use crate::{Message, Options, ReadyState, SendStatus};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

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
    /// Writing out the last bytes (a close frame or an HTTP response), then
    /// shutting down the write side and waiting for the peer's FIN.
    Flushing,
    /// To be removed by the worker.
    Done,
}

/// What the worker shares with every connection call: options, clock, pools.
pub(crate) struct Ctx {
    pub opts: Arc<Options>,
    pub now: Instant,
    pub pool: Pool,
    pub wheel: Wheel,
    /// Connections with bytes to write this loop turn.
    pub dirty: Vec<usize>,
    /// Connections to read again (resumed, or their read budget ran out).
    pub again: Vec<usize>,
}

/// A deferred upgrade waiting for its answer.
pub(crate) struct Pending {
    pub accept: String,
    pub protocols: Vec<String>,
}

pub(crate) struct Conn<D> {
    pub sock: TcpStream,
    pub generation: u32,
    pub phase: Phase,
    pub dec: Decoder,
    pub out: OutQueue,
    /// Request bytes not yet complete, or input left undecoded while paused.
    pub stash: Vec<u8>,
    pub data: Option<D>,
    pub pending: Option<Box<Pending>>,
    /// Tick of this connection's live timer entry (0: none).
    pub timer_tick: u64,
    /// Accept time, then open time.
    pub since: Instant,
    pub last_read: Instant,
    pub ping_sent: Option<Instant>,
    /// Deadline in `Closing` and `Flushing`.
    pub close_at: Instant,
    pub close_sent: bool,
    pub paused: bool,
    /// A read was skipped (paused or deferred) and must be retried.
    pub read_pending: bool,
    /// The last flush left bytes unwritten.
    pub backlogged: bool,
    pub dirty: bool,
    pub shut: bool,
    /// Pongs queued while past the backpressure limit (reset when the queue empties).
    pub ctrl_backlog: u8,
    /// The close handler ran (or the connection never opened).
    pub reported: bool,
}

impl<D> Conn<D> {
    pub(crate) fn new(sock: TcpStream, generation: u32, dec: Decoder, now: Instant) -> Self {
        Conn {
            sock,
            generation,
            phase: Phase::Handshake,
            dec,
            out: OutQueue::default(),
            stash: Vec::new(),
            data: None,
            pending: None,
            timer_tick: 0,
            since: now,
            last_read: now,
            ping_sent: None,
            close_at: now,
            close_sent: false,
            paused: false,
            read_pending: false,
            backlogged: false,
            dirty: false,
            shut: false,
            ctrl_backlog: 0,
            reported: true,
        }
    }

    pub(crate) fn mark_dirty(&mut self, ctx: &mut Ctx, key: usize) {
        if !self.dirty {
            self.dirty = true;
            ctx.dirty.push(key);
        }
    }

    /// Queue one frame, no questions asked.
    pub(crate) fn queue_frame(&mut self, ctx: &mut Ctx, key: usize, op: OpCode, payload: &[u8]) {
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, false, op, payload.len() as u64, None);
        self.out.push_frame(&mut ctx.pool, &h[..n], payload);
        self.mark_dirty(ctx, key);
    }

    /// Queue raw bytes (an HTTP response head).
    pub(crate) fn queue_bytes(&mut self, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
        self.out.push_bytes(&mut ctx.pool, bytes);
        self.mark_dirty(ctx, key);
    }

    /// A data send with Bun's backpressure rules.
    pub(crate) fn send(
        &mut self,
        ctx: &mut Ctx,
        key: usize,
        op: OpCode,
        payload: &[u8],
    ) -> SendStatus {
        if self.phase != Phase::Open {
            return SendStatus::Dropped;
        }
        let limit = ctx.opts.backpressure_limit;
        if !self.out.is_empty() && self.out.len() + payload.len() > limit {
            if ctx.opts.close_on_backpressure_limit {
                self.start_close(ctx, key, close::POLICY_VIOLATION, "backpressure limit");
            }
            return SendStatus::Dropped;
        }
        let before = self.out.len();
        self.queue_frame(ctx, key, op, payload);
        if self.backlogged {
            SendStatus::Backpressure
        } else {
            SendStatus::Sent(self.out.len() - before)
        }
    }

    /// Send a close frame and wait (bounded) for the peer's.
    pub(crate) fn start_close(&mut self, ctx: &mut Ctx, key: usize, code: u16, reason: &str) {
        if self.phase != Phase::Open {
            return;
        }
        self.send_close_frame(ctx, key, code, reason);
        self.phase = Phase::Closing;
        self.close_at = ctx.now + ctx.opts.close_timeout;
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
        self.close_at = ctx.now + ctx.opts.close_timeout;
        self.mark_dirty(ctx, key);
        self.arm(ctx, key);
    }

    /// The earliest moment this connection needs attention.
    pub(crate) fn deadline(&self, o: &Options) -> Option<Instant> {
        match self.phase {
            Phase::Handshake | Phase::Deferred => Some(self.since + o.handshake_timeout),
            Phase::Closing | Phase::Flushing => Some(self.close_at),
            Phase::Done => None,
            Phase::Open => {
                let mut d = o.max_lifetime.map(|l| self.since + l);
                let mut take = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
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

    /// When a ping was sent that the peer has not answered with any frame.
    pub(crate) fn awaiting_pong(&self) -> Option<Instant> {
        self.ping_sent.filter(|&p| self.last_read <= p)
    }

    /// Make sure a timer entry fires at or before this connection's deadline.
    pub(crate) fn arm(&mut self, ctx: &mut Ctx, key: usize) {
        let Some(at) = self.deadline(&ctx.opts) else {
            return;
        };
        let t = ctx.wheel.tick_of(at);
        if self.timer_tick != 0 && self.timer_tick <= t {
            return; // an earlier entry will re-evaluate
        }
        self.timer_tick = ctx.wheel.insert(at, (key as u32, self.generation));
    }
}

/// Interval of keep-alive pings, if any.
pub(crate) fn ping_interval(o: &Options) -> Option<std::time::Duration> {
    if !o.send_pings {
        return None;
    }
    o.ping_interval
        .or((!o.idle_timeout.is_zero()).then_some(o.idle_timeout))
        .filter(|d| !d.is_zero())
}

/// Inbound silence that closes without a ping first: `idle_timeout` when pings
/// are off or run on their own interval.
pub(crate) fn hard_idle(o: &Options) -> Option<std::time::Duration> {
    if o.idle_timeout.is_zero() || (o.send_pings && o.ping_interval.is_none()) {
        None
    } else {
        Some(o.idle_timeout)
    }
}

/// A connection as handlers see it. Borrowed for the duration of a handler
/// call; sends are queued and written once per loop turn (every handler runs
/// corked), so several sends cost one `writev`.
pub struct WebSocket<'a, D> {
    pub(crate) conn: &'a mut Conn<D>,
    pub(crate) ctx: &'a mut Ctx,
    pub(crate) key: usize,
}

impl<D> WebSocket<'_, D> {
    /// Send a message as text or binary, as it is.
    pub fn send<'m>(&mut self, msg: impl Into<Message<'m>>) -> SendStatus {
        match msg.into() {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
        }
    }

    /// Send a text message.
    pub fn send_text(&mut self, text: &str) -> SendStatus {
        self.conn
            .send(self.ctx, self.key, OpCode::Text, text.as_bytes())
    }

    /// Send a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> SendStatus {
        self.conn.send(self.ctx, self.key, OpCode::Binary, data)
    }

    /// Start the closing handshake. An illegal `code` (1005, 1006, 1015, …)
    /// is sent as 1000; `reason` is cut to 123 bytes. The close handler runs
    /// when the peer answers or `close_timeout` passes.
    pub fn close(&mut self, code: u16, reason: &str) {
        self.conn.start_close(self.ctx, self.key, code, reason);
    }

    /// Drop the TCP connection now, without a closing handshake. The close
    /// handler runs with 1006.
    pub fn terminate(&mut self) {
        if self.conn.phase != Phase::Done {
            self.conn.phase = Phase::Done;
        }
    }

    /// Send a ping (payload cut to 125 bytes). Not subject to backpressure.
    pub fn ping(&mut self, data: &[u8]) -> SendStatus {
        self.control(OpCode::Ping, data)
    }

    /// Send an unsolicited pong (payload cut to 125 bytes).
    pub fn pong(&mut self, data: &[u8]) -> SendStatus {
        self.control(OpCode::Pong, data)
    }

    fn control(&mut self, op: OpCode, data: &[u8]) -> SendStatus {
        if self.conn.phase != Phase::Open {
            return SendStatus::Dropped;
        }
        let data = &data[..data.len().min(125)];
        self.conn.queue_frame(self.ctx, self.key, op, data);
        SendStatus::Sent(2 + data.len())
    }

    /// Run `f` with sends batched into one write. Handlers already run corked;
    /// this exists for Bun's API and is a plain call here.
    pub fn cork<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        f(self)
    }

    /// The data attached at upgrade.
    pub fn data(&self) -> &D {
        self.conn.data.as_ref().expect("data is set at upgrade")
    }

    /// The data attached at upgrade, mutably.
    pub fn data_mut(&mut self) -> &mut D {
        self.conn.data.as_mut().expect("data is set at upgrade")
    }

    /// Bun's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        match self.conn.phase {
            Phase::Handshake | Phase::Deferred => ReadyState::Connecting,
            Phase::Open => ReadyState::Open,
            Phase::Closing => ReadyState::Closing,
            Phase::Flushing | Phase::Done => ReadyState::Closed,
        }
    }

    /// The peer's address (a `getpeername` call: connections do not store it).
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.conn.sock.peer_addr().ok()
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.conn.out.len()
    }

    /// Stop reading from this connection: no more `message` calls until
    /// [`WebSocket::resume_reading`]; the kernel's buffers then push back on
    /// the peer. Control frames already read are still answered.
    pub fn pause_reading(&mut self) {
        self.conn.paused = true;
    }

    /// Resume reading after [`WebSocket::pause_reading`].
    pub fn resume_reading(&mut self) {
        if self.conn.paused {
            self.conn.paused = false;
            self.ctx.again.push(self.key);
        }
    }

    /// Is reading paused?
    pub fn is_paused(&self) -> bool {
        self.conn.paused
    }
}
