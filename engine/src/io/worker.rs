//! A worker: one thread, one `mio::Poll`, its own listener, connections,
//! timers, buffers and topic table. It shares with other workers only the
//! handler, the options and the [`Hub`] (registry, counters, command queues).

use super::conn::{Conn, Ctx, Event, Pending, Phase, hard_idle, ping_interval};
use super::socket::{self, WebSocket};
use super::timer::{Stamp, Wheel};
use super::tls;
use super::{CURRENT_WORKER, Command, Hub, Shared};
use crate::proto::close;
use crate::proto::decoder::{Kind, Limits, Step};
use crate::proto::deflate;
use crate::proto::frame::OpCode;
use crate::proto::handshake::{self, HeadLimits, Refusal};
use crate::{Accept, Handler, Message, Request, Response, Upgrade};
use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::any::Any;
use std::io::{self, Read, Write};
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
/// The answer to a connection past `max_connections`.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 28\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections, retry\n";

type Conns<D> = Slab<Conn<D>>;

/// A deferred upgrade: answer it from any thread with [`PendingUpgrade::accept`]
/// or [`PendingUpgrade::reject`]. Dropped unanswered, the client gets 500.
pub struct PendingUpgrade<D: Send + 'static> {
    hub: Arc<Hub>,
    worker: usize,
    key: usize,
    generation: u32,
    answered: bool,
    _data: std::marker::PhantomData<fn(D)>,
}

impl<D: Send + 'static> PendingUpgrade<D> {
    fn answer(mut self, answer: Result<Accept<Box<dyn Any + Send>>, Response>) {
        self.answered = true;
        self.deliver(answer);
    }

    fn deliver(&self, answer: Result<Accept<Box<dyn Any + Send>>, Response>) {
        // The worker may be gone (server stopped): nothing to answer then.
        self.hub.command(
            self.worker,
            Command::Answer {
                key: self.key,
                generation: self.generation,
                answer,
            },
        );
    }

    /// Accept the upgrade.
    pub fn accept(self, a: Accept<D>) {
        self.answer(Ok(Accept {
            data: Box::new(a.data),
            protocol: a.protocol,
            headers: a.headers,
        }));
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

pub(crate) struct Worker<H: Handler> {
    /// Where this worker's [`Stamp`]s count from.
    epoch: Instant,
    poll: Poll,
    listener: Option<TcpListener>,
    rx: Receiver<Command>,
    shared: Arc<Shared<H>>,
    conns: Conns<H::Data>,
    ctx: Ctx,
    rbuf: Box<[u8]>,
    /// Plaintext out of TLS sessions (empty without TLS).
    tbuf: Box<[u8]>,
    next_gen: u32,
    expired: Vec<(u64, (u32, u32))>,
    stop_deadline: Option<Stamp>,
    /// Stats this worker last published (deltas go to the shared counters).
    queued_total: i64,
}

/// What a worker needs at start.
pub(crate) struct Parts {
    pub poll: Poll,
    pub listener: TcpListener,
    pub rx: Receiver<Command>,
    pub me: usize,
}

/// The sending half of a worker's command queue.
pub(crate) type Mailbox = (Sender<Command>, Arc<Waker>);

impl<H: Handler> Worker<H> {
    pub(crate) fn new(p: Parts, shared: Arc<Shared<H>>) -> io::Result<Self> {
        let Parts {
            poll,
            mut listener,
            rx,
            me,
        } = p;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let epoch = Instant::now();
        let now = Stamp::at(epoch, epoch);
        let tbuf_len = if shared.hub.opts.tls.is_some() {
            RBUF
        } else {
            0
        };
        Ok(Worker {
            epoch,
            poll,
            listener: Some(listener),
            rx,
            ctx: Ctx {
                opts: shared.hub.opts.clone(),
                hub: shared.hub.clone(),
                me,
                now,
                pool: Default::default(),
                wheel: Wheel::new(),
                limits: Limits {
                    max_message: shared.hub.opts.max_payload_length,
                    rsv1_allowed: false,
                    max_fragments: shared.hub.opts.max_fragments,
                },
                limits_pmd: Limits {
                    max_message: shared.hub.opts.max_payload_length,
                    rsv1_allowed: true,
                    max_fragments: shared.hub.opts.max_fragments,
                },
                deflaters: Default::default(),
                inflaters: Default::default(),
                dirty: Vec::new(),
                again: Vec::new(),
                topics: Default::default(),
                events: Vec::new(),
                scratch: Vec::new(),
                queued_delta: 0,
                written: 0,
            },
            shared,
            conns: Slab::new(),
            rbuf: vec![0u8; RBUF].into_boxed_slice(),
            tbuf: vec![0u8; tbuf_len].into_boxed_slice(),
            next_gen: 0,
            expired: Vec::new(),
            stop_deadline: None,
            queued_total: 0,
        })
    }

    pub(crate) fn run(mut self) {
        CURRENT_WORKER.with(|c| c.set(self.ctx.me));
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.ctx.again.is_empty() {
                self.ctx
                    .wheel
                    .timeout(Stamp::at(self.epoch, Instant::now()))
            } else {
                Some(std::time::Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("volley: poll failed: {e}");
                    return;
                }
            }
            self.ctx.now = Stamp::at(self.epoch, Instant::now());
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(k) => {
                        let closed = ev.is_read_closed() || ev.is_error();
                        if ev.is_readable() || closed {
                            self.readable(k, closed);
                        }
                        if ev.is_writable() && self.conns.contains(k) {
                            self.flush(k);
                        }
                        self.settle(k);
                    }
                }
            }
            // Commands from other threads (and handles on this one) every turn.
            self.commands();
            self.read_again();
            self.timers();
            self.flush_dirty();
            self.publish_stats();
            if self.ctx.hub.stopping.load(Ordering::Acquire) && self.stopping() {
                return;
            }
        }
    }

    fn publish_stats(&mut self) {
        let st = &self.ctx.hub.stats;
        if self.ctx.written > 0 {
            st.bytes_out
                .fetch_add(std::mem::take(&mut self.ctx.written), Ordering::Relaxed);
        }
        let d = std::mem::take(&mut self.ctx.queued_delta);
        if d != 0 {
            self.queued_total += d;
            if d > 0 {
                st.buffered.fetch_add(d as u64, Ordering::Relaxed);
            } else {
                st.buffered.fetch_sub((-d) as u64, Ordering::Relaxed);
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
                    let max = self.ctx.opts.max_connections;
                    if max > 0 && self.ctx.hub.stats.connections.load(Ordering::Relaxed) >= max {
                        // Refused before reading a byte: a short answer and close.
                        let _ = sock.write(OVERLOADED);
                        self.ctx.hub.stats.refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let _ = sock.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    if key >= WAKER.0 || key > u32::MAX as usize {
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
                    let session = match &self.ctx.opts.tls {
                        Some(cfg) => match tls::session(cfg) {
                            Ok(s) => Some(Box::new(s)),
                            Err(e) => {
                                log::warn!("volley: TLS session: {e}");
                                let _ = self.poll.registry().deregister(&mut sock);
                                continue;
                            }
                        },
                        None => None,
                    };
                    let conn = entry.insert(Conn::new(sock, self.next_gen, self.ctx.now));
                    if session.is_some() {
                        conn.tls = true;
                        conn.cold().tls = session;
                    }
                    conn.arm(&mut self.ctx, key);
                    self.ctx
                        .hub
                        .stats
                        .connections
                        .fetch_add(1, Ordering::Relaxed);
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

    /// Read what the socket has. `closed`: the event also reported the
    /// peer's FIN or RST, which brings no further edge, so read on to the
    /// end instead of stopping at a short read.
    fn readable(&mut self, key: usize, closed: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.hup |= closed;
        let closed = conn.hup;
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
            conn.note_read(self.ctx.now);
            if conn.tls {
                if !self.tls_input(key, n) {
                    return;
                }
            } else {
                self.input(key, n, false);
            }
            self.fire_events();
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            // Answer this read now: one write for everything its messages
            // sent, without waiting for the other ready sockets of this turn.
            if conn.dirty && conn.phase != Phase::Done {
                conn.dirty = false;
                self.flush(key);
                if !self.conns.contains(key) {
                    return;
                }
            }
            let conn = &mut self.conns[key];
            if conn.phase == Phase::Done {
                return;
            }
            if conn.paused || conn.phase == Phase::Deferred {
                conn.read_pending = true;
                return;
            }
            // A short read drained the socket: the next byte brings a new edge.
            if n < self.rbuf.len() && !closed {
                return;
            }
        }
        self.ctx.again.push(key);
    }

    /// Handle `n` fresh bytes at the start of `rbuf`.
    /// Handle `n` bytes of plaintext: at the start of `rbuf`, or of `tbuf`
    /// when they came out of a TLS session.
    fn input(&mut self, key: usize, n: usize, from_tls: bool) {
        let buf = if from_tls {
            &mut self.tbuf
        } else {
            &mut self.rbuf
        };
        if !self.conns[key].has_stash() {
            let used = feed(
                &self.shared,
                &mut self.conns,
                &mut self.ctx,
                key,
                &mut buf[..n],
            );
            let conn = &mut self.conns[key];
            if used < n && matches!(conn.phase, Phase::Open | Phase::Closing) {
                conn.stash_mut().extend_from_slice(&buf[used..n]);
            }
        } else {
            self.conns[key].stash_mut().extend_from_slice(&buf[..n]);
            self.feed_stash(key);
        }
    }

    /// `n` bytes of ciphertext at the start of `rbuf`: through the session,
    /// plaintext to [`Worker::input`]. False when the connection ended.
    fn tls_input(&mut self, key: usize, n: usize) -> bool {
        let mut pos = 0;
        while pos < n {
            let Some(s) = self.conns[key].cold.as_mut().and_then(|c| c.tls.as_mut()) else {
                return false;
            };
            let mut cipher = &self.rbuf[pos..n];
            let read = s.read_tls(&mut cipher);
            pos = n - cipher.len();
            let state = read.map_err(|_| ()).and_then(|_| {
                s.process_new_packets()
                    .map_err(|e| log::debug!("volley: TLS: {e}"))
            });
            let Ok(state) = state else {
                // The alert (if any) goes out with a best-effort flush.
                let conn = &mut self.conns[key];
                conn.mark_dirty(&mut self.ctx, key);
                if matches!(conn.phase, Phase::Open | Phase::Closing) {
                    report_close(
                        &self.shared.handler,
                        &mut self.conns,
                        &mut self.ctx,
                        key,
                        close::ABNORMAL,
                        "",
                    );
                }
                let conn = &mut self.conns[key];
                conn.phase = Phase::Flushing;
                self.flush(key);
                if let Some(c) = self.conns.get_mut(key) {
                    c.phase = Phase::Done;
                }
                return false;
            };
            let mut plain = state.plaintext_bytes_to_read();
            let peer_closed = state.peer_has_closed();
            while plain > 0 {
                let s = self.conns[key]
                    .cold
                    .as_mut()
                    .and_then(|c| c.tls.as_mut())
                    .expect("session");
                let p = match s.reader().read(&mut self.tbuf) {
                    Ok(p) => p,
                    Err(_) => break,
                };
                if p == 0 {
                    break;
                }
                plain -= p.min(plain);
                self.input(key, p, true);
                if !self.conns.contains(key) || self.conns[key].phase == Phase::Done {
                    return false;
                }
            }
            if peer_closed {
                self.eof(key);
                return false;
            }
        }
        // Handshake records or alerts to answer with.
        let conn = &mut self.conns[key];
        if conn
            .cold
            .as_ref()
            .and_then(|c| c.tls.as_ref())
            .is_some_and(|s| s.wants_write())
        {
            conn.mark_dirty(&mut self.ctx, key);
        }
        true
    }

    /// Decode what a paused or split handshake left in the stash.
    fn feed_stash(&mut self, key: usize) {
        let mut stash = self.conns[key].take_stash();
        let used = feed(
            &self.shared,
            &mut self.conns,
            &mut self.ctx,
            key,
            &mut stash,
        );
        let conn = &mut self.conns[key];
        if conn.phase == Phase::Handshake && used == 0 {
            conn.put_stash(stash); // head still incomplete
        } else if used < stash.len() && matches!(conn.phase, Phase::Open | Phase::Closing) {
            stash.drain(..used);
            conn.put_stash(stash);
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
            if conn.has_stash() && conn.phase != Phase::Handshake {
                self.feed_stash(key);
                self.fire_events();
            }
            self.readable(key, false);
            self.settle(key);
        }
        if self.ctx.again.is_empty() {
            self.ctx.again = again; // keep the allocation
        }
    }

    fn eof(&mut self, key: usize) {
        if matches!(self.conns[key].phase, Phase::Open | Phase::Closing) {
            report_close(
                &self.shared.handler,
                &mut self.conns,
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
        let before = conn.out.len();
        let res = if conn.tls {
            flush_tls(conn, &mut self.ctx.pool)
        } else {
            conn.out.flush(&mut conn.sock, &mut self.ctx.pool)
        };
        let written = before - conn.out.len();
        self.ctx.written += written as u64;
        self.ctx.queued_delta -= written as i64;
        match res {
            Ok(true) => {
                conn.ctrl_unsent = 0;
                if conn.has_conflated() {
                    // The queue drained: the latest conflated messages go now.
                    conn.release_conflated(&mut self.ctx, key);
                    return;
                }
                if std::mem::take(&mut conn.backlogged) && conn.phase == Phase::Open {
                    guarded(
                        &self.shared.handler,
                        &mut self.conns,
                        &mut self.ctx,
                        key,
                        |h, ws| h.drain(ws),
                    );
                    self.fire_events();
                }
                let Some(conn) = self.conns.get_mut(key) else {
                    return;
                };
                if conn.phase == Phase::Flushing && !conn.shut && conn.out.is_empty() {
                    conn.shut = true;
                    if let Some(s) = conn.cold.as_mut().and_then(|c| c.tls.as_mut()) {
                        s.send_close_notify();
                        let _ = tls::write_out(s, &mut conn.sock);
                    }
                    let _ = conn.sock.shutdown(Shutdown::Write);
                }
            }
            Ok(false) => {
                conn.backlogged = true;
                if written > 0 {
                    // The peer reads: its pongs are going out.
                    conn.ctrl_unsent = 0;
                }
            }
            Err(_) => self.eof(key),
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
            &mut self.conns,
            &mut self.ctx,
            key,
            close::ABNORMAL,
            "",
        );
        // Subscriptions end with the connection.
        while let Some((topic, _)) = self.conns[key].subs().last().cloned() {
            socket::unsubscribe(&mut self.conns, &mut self.ctx, key, &topic);
        }
        let mut conn = self.conns.remove(key);
        self.ctx.queued_delta -= conn.out.len() as i64;
        conn.out.clear(&mut self.ctx.pool);
        let _ = self.poll.registry().deregister(&mut conn.sock);
        self.ctx
            .hub
            .stats
            .connections
            .fetch_sub(1, Ordering::Relaxed);
        self.fire_events();
    }

    /// Tell the handler what happened during the last callback.
    fn fire_events(&mut self) {
        while !self.ctx.events.is_empty() {
            let events = std::mem::take(&mut self.ctx.events);
            for ev in events {
                match ev {
                    Event::Dropped {
                        key,
                        generation,
                        topic,
                        msg,
                    } => {
                        let live = self
                            .conns
                            .get(key)
                            .is_some_and(|c| c.generation == generation && c.phase == Phase::Open);
                        if live {
                            guarded(
                                &self.shared.handler,
                                &mut self.conns,
                                &mut self.ctx,
                                key,
                                |h, ws| h.dropped(ws, &topic, msg.message()),
                            );
                        }
                    }
                    Event::TopicEdge { topic, active } => {
                        let h = &self.shared.handler;
                        if hook(|| h.topic(&topic, active)).is_none() {
                            log::error!("volley: topic handler panicked");
                        }
                    }
                }
            }
        }
    }

    fn timers(&mut self) {
        let mut expired = std::mem::take(&mut self.expired);
        self.ctx.wheel.expire(self.ctx.now, &mut expired);
        for (tick, (key, generation)) in expired.drain(..) {
            let key = key as usize;
            match self.conns.get_mut(key) {
                Some(c) if c.generation == generation && u64::from(c.timer_tick) == tick => {
                    c.timer_tick = 0
                }
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
                    conn.take_pending();
                    respond(
                        conn,
                        &mut self.ctx,
                        key,
                        &Response::new(503, "upgrade timed out\n"),
                    );
                }
            }
            Phase::Closing | Phase::Flushing => {
                if conn.aux.is_none_or(|d| now >= d) {
                    conn.phase = Phase::Done;
                }
            }
            Phase::Done => {}
            Phase::Sse => {
                let last = conn.aux.unwrap_or(conn.since);
                if !opts.sse_keepalive.is_zero() && now >= last + opts.sse_keepalive {
                    conn.queue_bytes(&mut self.ctx, key, b": keep-alive\n\n");
                    conn.aux = Some(now);
                }
            }
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
                        &mut self.conns,
                        &mut self.ctx,
                        key,
                        close::ABNORMAL,
                        "idle timeout",
                    );
                    self.conns[key].flush_and_shut(&mut self.ctx, key);
                    return;
                }
                if conn.awaiting_pong().is_none()
                    && ping_interval(&opts).is_some_and(|i| now >= conn.last_read + i)
                {
                    conn.queue_frame(&mut self.ctx, key, OpCode::Ping, b"");
                    conn.aux = Some(now);
                }
            }
        }
    }

    /// The connection a command names, if it is still the same one.
    fn target(&mut self, key: u32, generation: u32) -> Option<usize> {
        let key = key as usize;
        self.conns
            .get(key)
            .filter(|c| c.generation == generation && c.phase != Phase::Done)
            .map(|_| key)
    }

    fn commands(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Answer {
                    key,
                    generation,
                    answer,
                } => {
                    let Some(key) = self.target(key as u32, generation) else {
                        continue;
                    };
                    if self.conns[key].phase != Phase::Deferred {
                        continue;
                    }
                    let pending = self.conns[key]
                        .take_pending()
                        .expect("deferred upgrade has its state");
                    match answer {
                        Ok(a) => match a.data.downcast::<H::Data>() {
                            Ok(data) => {
                                let a = Accept {
                                    data: *data,
                                    protocol: a.protocol,
                                    headers: a.headers,
                                };
                                let offered = a
                                    .protocol
                                    .as_ref()
                                    .is_none_or(|p| pending.protocols.contains(p));
                                open(
                                    &self.shared,
                                    &mut self.conns,
                                    &mut self.ctx,
                                    key,
                                    &pending.accept,
                                    offered,
                                    pending.pmd.clone(),
                                    a,
                                );
                            }
                            Err(_) => unreachable!("PendingUpgrade<D> carries D"),
                        },
                        Err(resp) => respond(&mut self.conns[key], &mut self.ctx, key, &resp),
                    }
                    if let Some(conn) = self.conns.get(key) {
                        if conn.read_pending {
                            self.ctx.again.push(key);
                        }
                    }
                    self.fire_events();
                    self.settle(key);
                }
                Command::Publish {
                    topic,
                    msg,
                    compress,
                } => {
                    socket::deliver_local(
                        &mut self.conns,
                        &mut self.ctx,
                        &topic,
                        &msg,
                        None,
                        compress,
                    );
                    self.fire_events();
                }
                Command::Send {
                    key,
                    generation,
                    msg,
                } => {
                    if let Some(key) = self.target(key, generation) {
                        self.conns[key].send_prepared(&mut self.ctx, key, &msg);
                    }
                }
                Command::Close {
                    key,
                    generation,
                    code,
                    reason,
                } => {
                    if let Some(key) = self.target(key, generation) {
                        self.conns[key].start_close(&mut self.ctx, key, code, &reason);
                    }
                }
                Command::Subscribe {
                    key,
                    generation,
                    topic,
                    first,
                } => match self.target(key, generation) {
                    Some(key) => {
                        let name = topic.name.clone();
                        socket::subscribe(
                            &mut self.conns,
                            &mut self.ctx,
                            key,
                            &name,
                            Some((topic, first)),
                        );
                        self.fire_events();
                    }
                    None => {
                        if first {
                            self.ctx.events.push(Event::TopicEdge {
                                topic: topic.name.clone(),
                                active: true,
                            });
                        }
                        socket::uncount(&mut self.ctx, &topic);
                        self.fire_events();
                    }
                },
                Command::Unsubscribe {
                    key,
                    generation,
                    topic,
                } => {
                    if let Some(key) = self.target(key, generation) {
                        socket::unsubscribe(&mut self.conns, &mut self.ctx, key, &topic);
                        self.fire_events();
                    }
                }
                Command::Resume { key, generation } => {
                    if let Some(key) = self.target(key, generation) {
                        let conn = &mut self.conns[key];
                        if conn.paused {
                            conn.paused = false;
                            self.ctx.again.push(key);
                        }
                    }
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
                    Phase::Handshake | Phase::Deferred | Phase::Sse => conn.phase = Phase::Done,
                    _ => {}
                }
                self.settle(key);
            }
            self.flush_dirty();
        }
        if self.conns.is_empty() || self.stop_deadline.is_some_and(|d| self.ctx.now >= d) {
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                self.conns[key].phase = Phase::Done;
                self.settle(key);
            }
            self.publish_stats();
            return true;
        }
        false
    }
}

/// Flush a TLS connection: the queue's plaintext into the session (as much
/// as its buffer takes), the session's ciphertext to the socket, until one
/// of them pushes back. `Ok(true)`: everything is on the wire.
fn flush_tls<D>(conn: &mut Conn<D>, pool: &mut super::out::Pool) -> io::Result<bool> {
    let s = conn
        .cold
        .as_mut()
        .and_then(|c| c.tls.as_mut())
        .ok_or_else(|| io::Error::other("TLS connection without a session"))?;
    loop {
        let emptied = conn.out.flush(&mut tls::Plain(s), pool)?;
        if !tls::write_out(s, &mut conn.sock)? {
            return Ok(false);
        }
        if emptied {
            return Ok(true);
        }
    }
}

/// Run the close handler once for an opened connection.
fn report_close<H: Handler>(
    h: &H,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    code: u16,
    reason: &str,
) {
    let conn = &mut conns[key];
    if conn.reported {
        return;
    }
    conn.reported = true;
    let phase = conn.phase;
    if phase == Phase::Open || phase == Phase::Closing {
        conn.phase = Phase::Flushing; // sends are refused inside the close handler
    }
    let mut ws = WebSocket { conns, ctx, key };
    if panic::catch_unwind(AssertUnwindSafe(|| h.close(&mut ws, code, reason))).is_err() {
        log::error!("volley: close handler panicked");
    }
    if phase == Phase::Done {
        conns[key].phase = Phase::Done;
    }
}

/// Run a handler callback. A panic in it closes this connection with 1011;
/// the worker and every other connection keep running.
fn guarded<H: Handler>(
    h: &H,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    f: impl FnOnce(&H, &mut WebSocket<'_, H::Data>),
) {
    let ok = panic::catch_unwind(AssertUnwindSafe(|| {
        f(h, &mut WebSocket { conns, ctx, key })
    }))
    .is_ok();
    if ok {
        return;
    }
    log::error!("volley: handler panicked; closing the connection with 1011");
    let Some(conn) = conns.get_mut(key) else {
        return;
    };
    if matches!(conn.phase, Phase::Open | Phase::Closing) {
        conn.send_close_frame(ctx, key, close::INTERNAL_ERROR, "internal error");
        report_close(h, conns, ctx, key, close::INTERNAL_ERROR, "internal error");
        let conn = &mut conns[key];
        if conn.phase != Phase::Done {
            conn.flush_and_shut(ctx, key);
        }
    }
}

/// Call a request hook (upgrade, fetch, topic); a panic becomes `None`.
fn hook<R>(f: impl FnOnce() -> R) -> Option<R> {
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    if r.is_err() {
        log::error!("volley: hook panicked");
    }
    r.ok()
}

/// Feed input to the connection according to its phase; returns the bytes
/// used. Bytes not used are kept by the caller only in `Open`/`Closing`
/// (paused); in other phases they are discarded.
fn feed<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    match conns[key].phase {
        Phase::Handshake => handshake_input(shared, conns, ctx, key, input),
        Phase::Open | Phase::Closing => frames(shared, conns, ctx, key, input),
        // Flushing, SSE: the peer's bytes are read and dropped.
        _ => input.len(),
    }
}

fn handshake_input<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let limits = HeadLimits {
        max_bytes: ctx.opts.max_header_bytes,
        max_headers: ctx.opts.max_headers,
    };
    let conn = &mut conns[key];
    let head = match handshake::parse_request(input, limits) {
        Err(r) => {
            refuse(conn, ctx, key, r);
            return input.len();
        }
        Ok(None) => {
            if !conn.has_stash() {
                conn.stash_mut().extend_from_slice(input);
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
        sock: &conn.sock,
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
        match resp.event_stream.clone() {
            Some(topics) => start_sse(conns, ctx, key, &resp, &topics),
            None => respond(conn, ctx, key, &resp),
        }
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
    let pmd = ctx.opts.per_message_deflate.as_ref().and_then(|cfg| {
        let offers = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok());
        deflate::negotiate(offers, cfg)
    });
    let Some(answer) = hook(|| shared.handler.upgrade(&req)) else {
        respond(conn, ctx, key, &Response::new(500, "internal error\n"));
        return input.len();
    };
    match answer {
        Upgrade::Accept(a) => {
            let offered = a
                .protocol
                .as_ref()
                .is_none_or(|p| req.protocols().any(|o| o == p));
            drop(req);
            open(shared, conns, ctx, key, &up.accept, offered, pmd, a);
        }
        Upgrade::Reject(resp) => {
            respond(conn, ctx, key, &resp);
            return input.len();
        }
        Upgrade::Defer(f) => {
            let protocols = req.protocols().map(str::to_string).collect();
            drop(req);
            conn.phase = Phase::Deferred;
            conn.cold().pending = Some(Box::new(Pending {
                accept: up.accept,
                protocols,
                pmd,
            }));
            let pending = PendingUpgrade {
                hub: ctx.hub.clone(),
                worker: ctx.me,
                key,
                generation: conn.generation,
                answered: false,
                _data: std::marker::PhantomData,
            };
            if hook(move || f(pending)).is_none() {
                respond(
                    &mut conns[key],
                    ctx,
                    key,
                    &Response::new(500, "internal error\n"),
                );
            }
            // A well-behaved client sends nothing before the 101.
            return input.len();
        }
    }
    // Frames that followed the request in the same read.
    if conns.get(key).is_some_and(|c| c.phase == Phase::Open) && head_len < input.len() {
        let rest = &mut input[head_len..];
        return head_len + frames(shared, conns, ctx, key, rest);
    }
    input.len()
}

/// Write the 101, attach the data, and run the open handler.
#[allow(clippy::too_many_arguments)]
fn open<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    accept_key: &str,
    protocol_offered: bool,
    pmd: Option<deflate::Negotiated>,
    a: Accept<H::Data>,
) {
    let conn = &mut conns[key];
    if !protocol_offered {
        log::error!(
            "volley: upgrade chose subprotocol {:?}, which the client did not offer",
            a.protocol
        );
        respond(
            conn,
            ctx,
            key,
            &Response::new(500, "subprotocol not offered\n"),
        );
        return;
    }
    let headers: Vec<(String, String)> = a
        .headers
        .into_iter()
        .filter(|(n, v)| handshake::is_safe_header(n) && handshake::is_safe_header(v))
        .collect();
    let mut head = ctx.pool.get(256);
    handshake::write_switching(
        &mut head,
        accept_key,
        a.protocol.as_deref(),
        pmd.as_ref().map(|n| n.header.as_str()),
        &headers,
    );
    conn.pmd = pmd.map(|n| n.agreed);
    conn.write_now(ctx, key, &head);
    ctx.pool.put(head);
    conn.take_stash();
    conn.data = Some(a.data);
    conn.phase = Phase::Open;
    conn.reported = false;
    conn.since = ctx.now;
    conn.last_read = ctx.now;
    conn.arm(ctx, key);
    ctx.hub.stats.opened.fetch_add(1, Ordering::Relaxed);
    guarded(&shared.handler, conns, ctx, key, |h, ws| h.open(ws));
}

/// Answer with `text/event-stream` headers and subscribe the response to topics.
fn start_sse<D>(
    conns: &mut Conns<D>,
    ctx: &mut Ctx,
    key: usize,
    resp: &Response,
    topics: &[Vec<u8>],
) {
    let mut out = Vec::new();
    handshake::write_stream_head(&mut out, resp.status, &resp.headers, "text/event-stream");
    out.extend_from_slice(b": volley\n\n");
    let conn = &mut conns[key];
    conn.queue_bytes(ctx, key, &out);
    conn.take_stash();
    conn.phase = Phase::Sse;
    conn.since = ctx.now;
    conn.arm(ctx, key);
    for t in topics {
        socket::subscribe(conns, ctx, key, t, None);
    }
}

fn refuse<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, r: Refusal) {
    let mut out = Vec::new();
    handshake::write_refusal(&mut out, r);
    answer(conn, ctx, key, &out);
}

fn respond<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, resp: &Response) {
    let mut out = Vec::new();
    handshake::write_response(&mut out, resp.status, &resp.headers, &resp.body);
    answer(conn, ctx, key, &out);
}

/// Send an HTTP answer and close after it.
fn answer<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
    conn.queue_bytes(ctx, key, bytes);
    conn.take_stash();
    conn.flush_and_shut(ctx, key);
}

/// Decode frames and dispatch them; stops early when the handler pauses
/// reading or the connection stops taking messages.
fn frames<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut pos = 0;
    while pos < input.len() {
        let conn = &mut conns[key];
        if conn.paused || !matches!(conn.phase, Phase::Open | Phase::Closing) {
            return pos;
        }
        let limits = if conn.pmd.is_some() {
            &ctx.limits_pmd
        } else {
            &ctx.limits
        };
        match conn.dec.decode(&mut input[pos..], limits) {
            Err(e) => {
                fail(shared, conns, ctx, key, e);
                return input.len();
            }
            Ok(Step::NeedMore) => return input.len(),
            Ok(Step::InPlace {
                consumed,
                kind,
                range,
                compressed,
            }) => {
                let start = pos;
                pos += consumed;
                let payload = &input[start..][range];
                if compressed {
                    inflate_and_dispatch(shared, conns, ctx, key, kind, payload);
                } else {
                    dispatch(shared, conns, ctx, key, kind, payload);
                }
            }
            Ok(Step::Buffered {
                consumed,
                kind,
                compressed,
            }) => {
                pos += consumed;
                let buf = conn.dec.take_buffer(kind);
                if compressed {
                    inflate_and_dispatch(shared, conns, ctx, key, kind, &buf);
                } else {
                    dispatch(shared, conns, ctx, key, kind, &buf);
                }
                // Back to the worker's pool: an idle connection holds no buffer.
                ctx.pool.put(buf);
            }
        }
    }
    pos
}

/// The peer broke a rule: close with its code.
fn fail<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    e: crate::proto::ProtocolError,
) {
    let c = (e.close_code(), e.reason());
    close_with(shared, conns, ctx, key, c, c);
}

/// Send our close frame (`sent`), tell the handler (`reported`), then write
/// out and shut down.
fn close_with<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    sent: (u16, &str),
    reported: (u16, &str),
) {
    conns[key].send_close_frame(ctx, key, sent.0, sent.1);
    report_close(&shared.handler, conns, ctx, key, reported.0, reported.1);
    let conn = &mut conns[key];
    if conn.phase != Phase::Done {
        conn.flush_and_shut(ctx, key);
    }
}

/// A compressed message: inflate it under `max_payload_length` (a bomb
/// stops at the cap, 1009), check text, dispatch.
fn inflate_and_dispatch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    kind: Kind,
    payload: &[u8],
) {
    use crate::proto::ProtocolError;
    use crate::proto::deflate::{InflateError, Inflater};
    let conn = &mut conns[key];
    let Some(a) = conn.pmd else {
        return fail(shared, conns, ctx, key, ProtocolError::ReservedBitsSet);
    };
    let cap = ctx.opts.max_payload_length;
    let mut out = ctx.pool.get(payload.len().saturating_mul(3).min(cap));
    let res = if a.client_no_context_takeover {
        ctx.shared_inflater(a.client_window_bits)
            .inflate(payload, &mut out, cap)
    } else {
        conn.cold()
            .inflater
            .get_or_insert_with(|| Inflater::new(a.client_window_bits, false))
            .inflate(payload, &mut out, cap)
    };
    let err = match res {
        Err(InflateError::TooBig) => Some(ProtocolError::MessageTooBig),
        Err(InflateError::Corrupt) => Some(ProtocolError::BadCompressedData),
        Ok(()) if kind == Kind::Text && crate::proto::utf8::validate(&out).is_err() => {
            Some(ProtocolError::InvalidUtf8)
        }
        Ok(()) => None,
    };
    match err {
        Some(e) => fail(shared, conns, ctx, key, e),
        None => dispatch(shared, conns, ctx, key, kind, &out),
    }
    ctx.pool.put(out);
}

fn dispatch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    kind: Kind,
    payload: &[u8],
) {
    let h = &shared.handler;
    let conn = &mut conns[key];
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
            ctx.hub.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            guarded(h, conns, ctx, key, |h, ws| h.message(ws, msg));
        }
        Kind::Ping => {
            // Pongs get through whatever the data backlog, but a peer that
            // pings while reading nothing (flushes make no progress) is
            // closed once its unsent pongs pass `max_control_backlog`.
            if conn.phase == Phase::Open {
                let pong = 2 + payload.len() as u32;
                if conn.ctrl_unsent as usize + pong as usize > ctx.opts.max_control_backlog {
                    return fail(
                        shared,
                        conns,
                        ctx,
                        key,
                        crate::proto::ProtocolError::PingFlood,
                    );
                }
                conn.ctrl_unsent += pong;
                conn.queue_frame(ctx, key, OpCode::Pong, payload);
            }
            guarded(h, conns, ctx, key, |h, ws| h.ping(ws, payload));
        }
        Kind::Pong => guarded(h, conns, ctx, key, |h, ws| h.pong(ws, payload)),
        Kind::Close => match close::parse(payload) {
            // Echo the code (RFC 6455 §5.5.1); an empty close gets an empty one.
            Ok((code, reason)) => {
                let reason = reason.to_string();
                close_with(shared, conns, ctx, key, (code, ""), (code, &reason));
            }
            Err(bad) => fail(shared, conns, ctx, key, bad.into()),
        },
    }
}
