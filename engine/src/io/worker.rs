//! A worker: one thread, one `mio::Poll`, its own listener, connections,
//! timers and buffers. Nothing here is shared with other workers except the
//! handler, the options and the counters.

use super::conn::{Conn, Ctx, Pending, Phase, WebSocket, hard_idle, ping_interval};
use super::timer::Wheel;
use super::{Shared, Stats};
use crate::proto::close;
use crate::proto::decoder::{Decoder, Kind, Limits, Step};
use crate::proto::frame::OpCode;
use crate::proto::handshake::{self, HeadLimits, Refusal};
use crate::{Accept, Handler, Message, Request, Response, Upgrade};
use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io::{self, Read};
use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(crate) const LISTENER: Token = Token(usize::MAX);
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
/// Size of the per-worker receive buffer.
const RBUF: usize = 256 * 1024;
/// Reads per connection per readiness event before others get a turn.
const READ_BUDGET: usize = 8;
/// Control frames (pongs) queued past the backpressure limit before more are dropped.
const MAX_CTRL_BACKLOG: u8 = 16;

/// Messages from other threads to a worker.
pub(crate) enum Command<D> {
    /// The answer to a deferred upgrade.
    Answer {
        key: usize,
        generation: u32,
        answer: Result<Accept<D>, Response>,
    },
}

/// A deferred upgrade: answer it from any thread with [`PendingUpgrade::accept`]
/// or [`PendingUpgrade::reject`]. Dropped unanswered, the client gets 500.
pub struct PendingUpgrade<D: Send + 'static> {
    tx: Sender<Command<D>>,
    waker: Arc<Waker>,
    key: usize,
    generation: u32,
    answered: bool,
}

impl<D: Send + 'static> PendingUpgrade<D> {
    fn answer(mut self, answer: Result<Accept<D>, Response>) {
        self.answered = true;
        self.deliver(answer);
    }

    fn deliver(&self, answer: Result<Accept<D>, Response>) {
        let cmd = Command::Answer {
            key: self.key,
            generation: self.generation,
            answer,
        };
        // The worker may be gone (server stopped): nothing to answer then.
        if self.tx.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Accept the upgrade.
    pub fn accept(self, accept: Accept<D>) {
        self.answer(Ok(accept));
    }

    /// Reject the upgrade with this response.
    pub fn reject(self, response: Response) {
        self.answer(Err(response));
    }
}

impl<D: Send + 'static> Drop for PendingUpgrade<D> {
    fn drop(&mut self) {
        if !self.answered {
            self.deliver(Err(Response::new(500, "upgrade was not answered\n")));
        }
    }
}

/// A worker's own command sender and waker, for deferred upgrades.
pub(crate) type Me<D> = (Sender<Command<D>>, Arc<Waker>);

pub(crate) struct Worker<H: Handler> {
    poll: Poll,
    listener: Option<TcpListener>,
    me: Me<H::Data>,
    rx: Receiver<Command<H::Data>>,
    shared: Arc<Shared<H>>,
    conns: Slab<Conn<H::Data>>,
    ctx: Ctx,
    rbuf: Box<[u8]>,
    next_gen: u32,
    expired: Vec<(u64, (u32, u32))>,
    stop_deadline: Option<Instant>,
}

impl<H: Handler> Worker<H> {
    pub(crate) fn new(
        poll: Poll,
        mut listener: TcpListener,
        waker: Arc<Waker>,
        shared: Arc<Shared<H>>,
    ) -> io::Result<Self> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let now = Instant::now();
        Ok(Worker {
            poll,
            listener: Some(listener),
            me: (tx, waker),
            rx,
            ctx: Ctx {
                opts: shared.opts.clone(),
                now,
                pool: Default::default(),
                wheel: Wheel::new(now),
                dirty: Vec::new(),
                again: Vec::new(),
            },
            shared,
            conns: Slab::new(),
            rbuf: vec![0u8; RBUF].into_boxed_slice(),
            next_gen: 0,
            expired: Vec::new(),
            stop_deadline: None,
        })
    }

    fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.ctx.again.is_empty() {
                self.ctx.wheel.timeout(Instant::now())
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("volley: poll failed: {e}");
                    return;
                }
            }
            self.ctx.now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => self.commands(),
                    Token(k) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.readable(k);
                        }
                        if ev.is_writable() && self.conns.contains(k) {
                            self.flush(k);
                        }
                        self.settle(k);
                    }
                }
            }
            self.read_again();
            self.timers();
            self.flush_dirty();
            if self.shared.stopping.load(Ordering::Acquire) && self.stopping() {
                return;
            }
        }
    }

    // ---- accepting -------------------------------------------------------

    fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut sock, _addr)) => {
                    let _ = sock.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if key >= WAKER.0 {
                        return;
                    }
                    if let Err(e) = self.poll.registry().register(
                        &mut sock,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("volley: register failed: {e}");
                        continue;
                    }
                    self.next_gen = self.next_gen.wrapping_add(1);
                    let dec = Decoder::new(Limits {
                        max_message: self.ctx.opts.max_payload_length,
                        rsv1_allowed: false,
                    });
                    let conn = entry.insert(Conn::new(sock, self.next_gen, dec, self.ctx.now));
                    conn.arm(&mut self.ctx, key);
                    self.stats().connections.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: leave the rest in the backlog for now.
                    log::warn!("volley: accept failed: {e}");
                    return;
                }
            }
        }
    }

    // ---- reading ---------------------------------------------------------

    fn readable(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.paused || conn.phase == Phase::Deferred {
            conn.read_pending = true;
            return;
        }
        for _ in 0..READ_BUDGET {
            let conn = &mut self.conns[key];
            let n = match conn.sock.read(&mut self.rbuf) {
                Ok(0) => return self.eof(key),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.eof(key),
            };
            conn.last_read = self.ctx.now;
            self.input(key, n);
            let conn = &mut self.conns[key];
            if conn.phase == Phase::Done {
                return;
            }
            if conn.paused || conn.phase == Phase::Deferred {
                conn.read_pending = true;
                return;
            }
            // A short read drained the socket: the next byte brings a new edge.
            if n < self.rbuf.len() {
                return;
            }
        }
        self.ctx.again.push(key);
    }

    /// Handle `n` fresh bytes at the start of `rbuf`.
    fn input(&mut self, key: usize, n: usize) {
        let conn = &mut self.conns[key];
        if conn.stash.is_empty() {
            let used = feed(
                &self.shared,
                &self.me,
                conn,
                &mut self.ctx,
                key,
                &mut self.rbuf[..n],
            );
            let conn = &mut self.conns[key];
            if used < n && matches!(conn.phase, Phase::Open | Phase::Closing) {
                conn.stash.extend_from_slice(&self.rbuf[used..n]);
            }
        } else {
            conn.stash.extend_from_slice(&self.rbuf[..n]);
            self.feed_stash(key);
        }
    }

    /// Decode what a paused or split handshake left in the stash.
    fn feed_stash(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let mut stash = std::mem::take(&mut conn.stash);
        let used = feed(&self.shared, &self.me, conn, &mut self.ctx, key, &mut stash);
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Handshake && used == 0 {
            conn.stash = stash; // head still incomplete
        } else if used < stash.len() && matches!(conn.phase, Phase::Open | Phase::Closing) {
            stash.drain(..used);
            conn.stash = stash;
        }
    }

    fn read_again(&mut self) {
        let mut again = std::mem::take(&mut self.ctx.again);
        for key in again.drain(..) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.paused || conn.phase == Phase::Deferred {
                continue;
            }
            conn.read_pending = false;
            if !conn.stash.is_empty() && conn.phase != Phase::Handshake {
                self.feed_stash(key);
            }
            self.readable(key);
            self.settle(key);
        }
        if self.ctx.again.is_empty() {
            self.ctx.again = again; // keep the allocation
        }
    }

    fn eof(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if matches!(conn.phase, Phase::Open | Phase::Closing) {
            report_close(
                &self.shared.handler,
                conn,
                &mut self.ctx,
                key,
                close::ABNORMAL,
                "",
            );
        }
        self.conns[key].phase = Phase::Done;
    }

    // ---- writing ---------------------------------------------------------

    fn flush(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        match conn.out.flush(&mut conn.sock, &mut self.ctx.pool) {
            Ok(true) => {
                conn.ctrl_backlog = 0;
                if std::mem::take(&mut conn.backlogged) && conn.phase == Phase::Open {
                    guarded(&self.shared.handler, conn, &mut self.ctx, key, |h, ws| {
                        h.drain(ws)
                    });
                }
                let conn = &mut self.conns[key];
                if conn.phase == Phase::Flushing && !conn.shut && conn.out.is_empty() {
                    conn.shut = true;
                    let _ = conn.sock.shutdown(Shutdown::Write);
                }
            }
            Ok(false) => conn.backlogged = true,
            Err(_) => {
                if matches!(conn.phase, Phase::Open | Phase::Closing) {
                    report_close(
                        &self.shared.handler,
                        conn,
                        &mut self.ctx,
                        key,
                        close::ABNORMAL,
                        "",
                    );
                }
                self.conns[key].phase = Phase::Done;
            }
        }
    }

    fn flush_dirty(&mut self) {
        while let Some(key) = self.ctx.dirty.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.phase != Phase::Done {
                self.flush(key);
            }
            self.settle(key);
        }
    }

    // ---- lifecycle -------------------------------------------------------

    /// Remove a connection that reached `Done`.
    fn settle(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Done {
            return;
        }
        report_close(
            &self.shared.handler,
            conn,
            &mut self.ctx,
            key,
            close::ABNORMAL,
            "",
        );
        let mut conn = self.conns.remove(key);
        conn.out.clear(&mut self.ctx.pool);
        let _ = self.poll.registry().deregister(&mut conn.sock);
        self.stats().connections.fetch_sub(1, Ordering::Relaxed);
    }

    fn timers(&mut self) {
        let mut expired = std::mem::take(&mut self.expired);
        self.ctx.wheel.expire(self.ctx.now, &mut expired);
        for (tick, (key, generation)) in expired.drain(..) {
            let key = key as usize;
            match self.conns.get_mut(key) {
                Some(c) if c.generation == generation && c.timer_tick == tick => c.timer_tick = 0,
                _ => continue, // stale entry
            }
            self.timeout(key);
            if let Some(c) = self.conns.get_mut(key) {
                c.arm(&mut self.ctx, key);
            }
            self.settle(key);
        }
        self.expired = expired;
    }

    fn timeout(&mut self, key: usize) {
        let now = self.ctx.now;
        let opts = self.ctx.opts.clone();
        let conn = &mut self.conns[key];
        match conn.phase {
            Phase::Handshake => {
                if now >= conn.since + opts.handshake_timeout {
                    // Slowloris: drop without a word.
                    conn.phase = Phase::Done;
                }
            }
            Phase::Deferred => {
                if now >= conn.since + opts.handshake_timeout {
                    conn.pending = None;
                    respond(
                        conn,
                        &mut self.ctx,
                        key,
                        &Response::new(503, "upgrade timed out\n"),
                    );
                }
            }
            Phase::Closing | Phase::Flushing => {
                if now >= conn.close_at {
                    conn.phase = Phase::Done;
                }
            }
            Phase::Done => {}
            Phase::Open => {
                if opts.max_lifetime.is_some_and(|l| now >= conn.since + l) {
                    conn.start_close(&mut self.ctx, key, close::GOING_AWAY, "max lifetime");
                    return;
                }
                let pong_late = conn
                    .awaiting_pong()
                    .is_some_and(|p| now >= p + opts.pong_timeout);
                let idle = hard_idle(&opts).is_some_and(|i| now >= conn.last_read + i);
                if pong_late || idle {
                    // The peer is silent: say why, but do not wait for an answer.
                    conn.send_close_frame(&mut self.ctx, key, close::GOING_AWAY, "idle timeout");
                    report_close(
                        &self.shared.handler,
                        conn,
                        &mut self.ctx,
                        key,
                        close::ABNORMAL,
                        "idle timeout",
                    );
                    conn.flush_and_shut(&mut self.ctx, key);
                    return;
                }
                if conn.awaiting_pong().is_none()
                    && ping_interval(&opts).is_some_and(|i| now >= conn.last_read + i)
                {
                    conn.queue_frame(&mut self.ctx, key, OpCode::Ping, b"");
                    conn.ping_sent = Some(now);
                }
            }
        }
    }

    fn commands(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Answer {
                    key,
                    generation,
                    answer,
                } => {
                    let Some(conn) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if conn.generation != generation || conn.phase != Phase::Deferred {
                        continue;
                    }
                    let pending = conn.pending.take().expect("deferred upgrade has its state");
                    match answer {
                        Ok(a) => {
                            let offered: Vec<&str> =
                                pending.protocols.iter().map(String::as_str).collect();
                            open(
                                &self.shared,
                                conn,
                                &mut self.ctx,
                                key,
                                &pending.accept,
                                &offered,
                                a,
                            );
                        }
                        Err(resp) => respond(conn, &mut self.ctx, key, &resp),
                    }
                    let conn = &mut self.conns[key];
                    if conn.read_pending {
                        self.ctx.again.push(key);
                    }
                    self.settle(key);
                }
            }
        }
    }

    /// Server shutdown: close listeners, close every socket politely, and
    /// report whether the worker may exit.
    fn stopping(&mut self) -> bool {
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
            self.stop_deadline = Some(self.ctx.now + self.ctx.opts.close_timeout);
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                let conn = &mut self.conns[key];
                match conn.phase {
                    Phase::Open => conn.start_close(
                        &mut self.ctx,
                        key,
                        close::GOING_AWAY,
                        "server shutting down",
                    ),
                    Phase::Handshake | Phase::Deferred => conn.phase = Phase::Done,
                    _ => {}
                }
                self.settle(key);
            }
            self.flush_dirty();
        }
        self.conns.is_empty() || self.stop_deadline.is_some_and(|d| self.ctx.now >= d)
    }
}

/// Run the close handler once for an opened connection.
fn report_close<H: Handler>(
    h: &H,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    code: u16,
    reason: &str,
) {
    if conn.reported {
        return;
    }
    conn.reported = true;
    let phase = conn.phase;
    if phase == Phase::Open || phase == Phase::Closing {
        conn.phase = Phase::Flushing; // sends are refused inside the close handler
    }
    let mut ws = WebSocket { conn, ctx, key };
    if panic::catch_unwind(AssertUnwindSafe(|| h.close(&mut ws, code, reason))).is_err() {
        log::error!("volley: close handler panicked");
    }
    if phase == Phase::Done {
        conn.phase = Phase::Done;
    }
}

/// Run a handler callback. A panic in it closes this connection with 1011;
/// the worker and every other connection keep running.
fn guarded<H: Handler>(
    h: &H,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    f: impl FnOnce(&H, &mut WebSocket<'_, H::Data>),
) {
    let ok =
        panic::catch_unwind(AssertUnwindSafe(|| f(h, &mut WebSocket { conn, ctx, key }))).is_ok();
    if ok {
        return;
    }
    log::error!("volley: handler panicked; closing the connection with 1011");
    if matches!(conn.phase, Phase::Open | Phase::Closing) {
        conn.send_close_frame(ctx, key, close::INTERNAL_ERROR, "internal error");
        report_close(h, conn, ctx, key, close::INTERNAL_ERROR, "internal error");
        if conn.phase != Phase::Done {
            conn.flush_and_shut(ctx, key);
        }
    }
}

/// Call a request hook (upgrade, fetch); a panic becomes `None`.
fn hook<R>(f: impl FnOnce() -> R) -> Option<R> {
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    if r.is_err() {
        log::error!("volley: request hook panicked; answering 500");
    }
    r.ok()
}

/// Feed input to the connection according to its phase; returns the bytes
/// used. Bytes not used are kept by the caller only in `Open`/`Closing`
/// (paused); in other phases they are discarded.
fn feed<H: Handler>(
    shared: &Shared<H>,
    me: &Me<H::Data>,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    match conn.phase {
        Phase::Handshake => handshake_input(shared, me, conn, ctx, key, input),
        Phase::Open | Phase::Closing => frames(shared, conn, ctx, key, input),
        // Flushing: the peer's bytes after our close are read and dropped.
        _ => input.len(),
    }
}

fn handshake_input<H: Handler>(
    shared: &Shared<H>,
    me: &Me<H::Data>,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let limits = HeadLimits {
        max_bytes: ctx.opts.max_header_bytes,
        max_headers: ctx.opts.max_headers,
    };
    let head = match handshake::parse_request(input, limits) {
        Err(r) => {
            refuse(conn, ctx, key, r);
            return input.len();
        }
        Ok(None) => {
            if conn.stash.is_empty() {
                conn.stash.extend_from_slice(input);
            }
            return 0;
        }
        Ok(Some(head)) => head,
    };
    let head_len = head.head_len;
    let m = shared.router.find(head.path);
    let routed = shared.router.is_empty() || m.is_some();
    let (route, params) = match m {
        Some(m) => (Some(m.pattern), m.params),
        None => (None, Vec::new()),
    };
    let req = Request {
        head: &head,
        route,
        params,
        remote: conn.sock.peer_addr().ok(),
    };
    if !head.wants_websocket() {
        let Some(answer) = hook(|| shared.handler.fetch(&req)) else {
            respond(conn, ctx, key, &Response::new(500, "internal error\n"));
            return input.len();
        };
        let resp = answer.unwrap_or_else(|| {
            if routed {
                Response::new(426, "this endpoint speaks WebSocket\n")
                    .header("Upgrade", "websocket")
                    .header("Sec-WebSocket-Version", "13")
            } else {
                Response::new(404, "not found\n")
            }
        });
        respond(conn, ctx, key, &resp);
        return input.len();
    }
    if !routed {
        respond(
            conn,
            ctx,
            key,
            &Response::new(404, "no WebSocket route for this path\n"),
        );
        return input.len();
    }
    let up = match handshake::validate_upgrade(&head) {
        Ok(up) => up,
        Err(r) => {
            refuse(conn, ctx, key, r);
            return input.len();
        }
    };
    let Some(answer) = hook(|| shared.handler.upgrade(&req)) else {
        respond(conn, ctx, key, &Response::new(500, "internal error\n"));
        return input.len();
    };
    match answer {
        Upgrade::Accept(a) => {
            let offered: Vec<&str> = req.protocols().collect();
            open(shared, conn, ctx, key, &up.accept, &offered, a);
        }
        Upgrade::Reject(resp) => {
            respond(conn, ctx, key, &resp);
            return input.len();
        }
        Upgrade::Defer(f) => {
            conn.phase = Phase::Deferred;
            conn.pending = Some(Box::new(Pending {
                accept: up.accept,
                protocols: req.protocols().map(str::to_string).collect(),
            }));
            let (tx, waker) = me.clone();
            drop(req);
            f(PendingUpgrade {
                tx,
                waker,
                key,
                generation: conn.generation,
                answered: false,
            });
            // A well-behaved client sends nothing before the 101.
            return input.len();
        }
    }
    // Frames that followed the request in the same read.
    if conn.phase == Phase::Open && head_len < input.len() {
        let rest = &mut input[head_len..];
        return head_len + frames(shared, conn, ctx, key, rest);
    }
    input.len()
}

/// Write the 101, attach the data, and run the open handler.
fn open<H: Handler>(
    shared: &Shared<H>,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    accept_key: &str,
    offered: &[&str],
    a: Accept<H::Data>,
) {
    if let Some(p) = &a.protocol {
        if !offered.contains(&p.as_str()) {
            log::error!("volley: upgrade chose subprotocol {p:?}, which the client did not offer");
            respond(
                conn,
                ctx,
                key,
                &Response::new(500, "subprotocol not offered\n"),
            );
            return;
        }
    }
    let headers: Vec<(String, String)> = a
        .headers
        .into_iter()
        .filter(|(n, v)| handshake::is_safe_header(n) && handshake::is_safe_header(v))
        .collect();
    let mut head = ctx.pool.get(256);
    handshake::write_switching(&mut head, accept_key, a.protocol.as_deref(), None, &headers);
    conn.queue_bytes(ctx, key, &head);
    ctx.pool.put(head);
    conn.stash = Vec::new();
    conn.data = Some(a.data);
    conn.phase = Phase::Open;
    conn.reported = false;
    conn.since = ctx.now;
    conn.last_read = ctx.now;
    conn.arm(ctx, key);
    shared.stats.opened.fetch_add(1, Ordering::Relaxed);
    guarded(&shared.handler, conn, ctx, key, |h, ws| h.open(ws));
}

fn refuse<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, r: Refusal) {
    let mut out = Vec::new();
    handshake::write_refusal(&mut out, r);
    conn.queue_bytes(ctx, key, &out);
    conn.stash = Vec::new();
    conn.flush_and_shut(ctx, key);
}

fn respond<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, resp: &Response) {
    let mut out = Vec::new();
    handshake::write_response(&mut out, resp.status, &resp.headers, &resp.body);
    conn.queue_bytes(ctx, key, &out);
    conn.stash = Vec::new();
    conn.flush_and_shut(ctx, key);
}

/// Decode frames and dispatch them; stops early when the handler pauses
/// reading or the connection stops taking messages.
fn frames<H: Handler>(
    shared: &Shared<H>,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut pos = 0;
    while pos < input.len() {
        if conn.paused || !matches!(conn.phase, Phase::Open | Phase::Closing) {
            return pos;
        }
        match conn.dec.decode(&mut input[pos..]) {
            Err(e) => {
                conn.send_close_frame(ctx, key, e.close_code(), e.reason());
                report_close(&shared.handler, conn, ctx, key, e.close_code(), e.reason());
                if conn.phase != Phase::Done {
                    conn.flush_and_shut(ctx, key);
                }
                return input.len();
            }
            Ok(Step::NeedMore) => return input.len(),
            Ok(Step::InPlace {
                consumed,
                kind,
                range,
                ..
            }) => {
                let start = pos;
                pos += consumed;
                dispatch(shared, conn, ctx, key, kind, &input[start..][range]);
            }
            Ok(Step::Buffered { consumed, kind, .. }) => {
                pos += consumed;
                let buf = conn.dec.take_buffer(kind);
                dispatch(shared, conn, ctx, key, kind, &buf);
                // Back to the worker's pool: an idle connection holds no buffer.
                ctx.pool.put(buf);
            }
        }
    }
    pos
}

fn dispatch<H: Handler>(
    shared: &Shared<H>,
    conn: &mut Conn<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    kind: Kind,
    payload: &[u8],
) {
    let h = &shared.handler;
    match kind {
        Kind::Text | Kind::Binary => {
            if conn.phase != Phase::Open {
                return; // after our close frame, data is read and dropped
            }
            let msg = if kind == Kind::Text {
                // SAFETY: the decoder validated this payload as UTF-8 (whole, or
                // streamed across fragments with the end checked) before
                // reporting a text message; see proto::decoder.
                Message::Text(unsafe { std::str::from_utf8_unchecked(payload) })
            } else {
                Message::Binary(payload)
            };
            shared.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            guarded(h, conn, ctx, key, |h, ws| h.message(ws, msg));
        }
        Kind::Ping => {
            // Pongs get through past the backpressure limit, but only a few:
            // a peer that floods pings and reads nothing gets no more, which
            // RFC 6455 §5.5.3 allows (answering only the latest ping).
            if conn.phase == Phase::Open {
                let over = conn.out.len() > ctx.opts.backpressure_limit;
                if !over || conn.ctrl_backlog < MAX_CTRL_BACKLOG {
                    conn.ctrl_backlog += over as u8;
                    conn.queue_frame(ctx, key, OpCode::Pong, payload);
                }
            }
            guarded(h, conn, ctx, key, |h, ws| h.ping(ws, payload));
        }
        Kind::Pong => guarded(h, conn, ctx, key, |h, ws| h.pong(ws, payload)),
        Kind::Close => match close::parse(payload) {
            Ok((code, reason)) => {
                // Echo the code (RFC 6455 §5.5.1); an empty close gets an empty one.
                conn.send_close_frame(ctx, key, code, "");
                let reason = reason.to_string();
                report_close(h, conn, ctx, key, code, &reason);
                if conn.phase != Phase::Done {
                    conn.flush_and_shut(ctx, key);
                }
            }
            Err(bad) => {
                let e = crate::proto::ProtocolError::from(bad);
                conn.send_close_frame(ctx, key, e.close_code(), e.reason());
                report_close(h, conn, ctx, key, e.close_code(), e.reason());
                if conn.phase != Phase::Done {
                    conn.flush_and_shut(ctx, key);
                }
            }
        },
    }
}
