//! A worker: one thread, one `mio::Poll`, its own listener, connections,
//! timers, buffers and topic table. It shares with other workers only the
//! handler, the options and the [`Hub`]. This file holds the loop; each job
//! of a turn lives in its own file beside it.

use super::conn::{Conn, Ctx};
use super::hub::{self, Hub, Inbox};
use super::sock::Listener;
use super::wheel::Wheel;
use crate::Handler;
use crate::proto::session::Stamp;
use crate::route::Router;
use mio::{Events, Poll, Token};
use slab::Slab;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(crate) const LISTENER: Token = Token(usize::MAX);
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
/// Size of the per-worker receive buffer.
pub(crate) const RBUF: usize = 256 * 1024;

pub(crate) type Conns<D> = Slab<Conn<D>>;

/// Connections a worker's table is reserved for at start (address space
/// only: a page becomes memory when a connection first lands on it). The
/// table then never moves while it grows to this size: growing by
/// doubling copied it at each power of two and left the old copies' pages
/// in the worker thread's malloc arena, about 35 bytes per idle connection
/// at eight workers (benches/scaling `--cells memory`).
const CONNS_RESERVED: usize = 1 << 16;

/// What the workers share: read-only after start, plus the hub.
pub(crate) struct Shared<H> {
    pub handler: H,
    pub router: Router,
    pub hub: Arc<Hub>,
    /// The limits a connection's input is read under.
    pub limits: crate::proto::connection::Config,
    /// Event-queue mode: where each turn's events go.
    pub queue: Option<Arc<dyn HostQueue>>,
}

/// What the loop asks of an event-queue host's queue (`crate::queue`
/// implements it; the loop names no queue type): the turn's events handed
/// over at its end, and reading paused while the host falls behind.
pub(crate) trait HostQueue: Send + Sync {
    /// Hand this thread's events over (the end of a loop turn).
    fn end_turn(&self);
    /// Should worker `w` stop reading (the host is behind)?
    fn throttle(&self, w: usize) -> bool;
    /// Did the host catch up since worker `w` was throttled?
    fn unthrottled(&self, w: usize) -> bool;
}

/// What a worker needs at start.
pub(crate) struct Parts {
    pub poll: Poll,
    pub listener: Option<Listener>,
    /// The listener is one socket shared by every worker (a duplicate
    /// descriptor each): registered with `EPOLLEXCLUSIVE`, so that a new
    /// connection wakes one worker rather than all of them.
    pub shared_listener: bool,
    pub me: usize,
}

pub(crate) struct Worker<H: Handler> {
    /// Where this worker's [`Stamp`]s count from.
    pub(super) epoch: Instant,
    pub(super) poll: Poll,
    pub(super) events: Option<Events>,
    pub(super) listener: Option<Listener>,
    pub(super) shared: Arc<Shared<H>>,
    pub(super) conns: Conns<H::Data>,
    pub(super) ctx: Ctx,
    pub(super) rbuf: Box<[u8]>,
    /// Plaintext out of TLS sessions (empty without TLS).
    pub(super) tbuf: Box<[u8]>,
    pub(super) expired: Vec<(u64, (u32, u32))>,
    /// Commands taken from the mailbox (swapped with it each turn).
    pub(super) inbox: Inbox,
    /// Set once the stop began: when the worker gives up on connections.
    pub(super) stop_deadline: Option<Stamp>,
    /// Stats this worker last published (deltas go to the shared counters).
    pub(super) queued_total: i64,
    /// Connections not read because the event-queue host fell behind.
    pub(super) throttled: Vec<usize>,
    /// `accept` gave up (out of descriptors, or the table is full) with
    /// clients still waiting: when to try again. The listener is out of
    /// the poll until then (level triggered, it would wake every turn).
    pub(super) accept_retry: Option<Stamp>,
    /// The listener is shared with the other workers (`EPOLLEXCLUSIVE`).
    pub(super) shared_listener: bool,
    /// Connections the next listener event may take (see `accept`).
    pub(super) accept_budget: usize,
    /// Loop turns so far, and the last one whose listener event used its
    /// whole budget: a listener ready again in the next turn is a burst.
    pub(super) turn_no: u64,
    pub(super) accept_full_turn: u64,
    /// `accept` failed and has not succeeded since (its warning is said once).
    pub(super) accept_failing: bool,
}

impl<H: Handler> Worker<H> {
    pub(crate) fn new(p: Parts, shared: Arc<Shared<H>>) -> io::Result<Self> {
        let Parts {
            poll,
            listener,
            shared_listener,
            me,
        } = p;
        if let Some(l) = listener.as_ref() {
            register_listener(&poll, l, shared_listener)?;
            shared.hub.listener_opened();
        }
        let epoch = Instant::now();
        let now = Stamp::at(epoch, epoch);
        let opts = shared.hub.opts.clone();
        let tbuf_len = if opts.tls.is_some() { RBUF } else { 0 };
        Ok(Worker {
            epoch,
            poll,
            events: Some(Events::with_capacity(1024)),
            listener,
            ctx: Ctx {
                timeouts: opts.timeouts(),
                opts,
                hub: shared.hub.clone(),
                me,
                next_generation: 0,
                now,
                pool: Default::default(),
                wheel: Wheel::new(),
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
            conns: Slab::with_capacity(CONNS_RESERVED),
            rbuf: vec![0u8; RBUF].into_boxed_slice(),
            tbuf: vec![0u8; tbuf_len].into_boxed_slice(),
            expired: Vec::new(),
            inbox: Inbox::default(),
            stop_deadline: None,
            queued_total: 0,
            throttled: Vec::new(),
            accept_retry: None,
            shared_listener,
            accept_budget: 1,
            turn_no: 0,
            accept_full_turn: 0,
            accept_failing: false,
        })
    }

    pub(crate) fn run(mut self) {
        let hub = self.ctx.hub.clone();
        let me = self.ctx.me;
        hub.enter_worker(me);
        hub.started.fetch_add(1, Ordering::AcqRel);
        /// Whatever ends the loop (even a panic), the worker is marked gone.
        struct Exit(Arc<Hub>, usize);
        impl Drop for Exit {
            fn drop(&mut self) {
                self.0.worker_exited(self.1);
            }
        }
        let _exit = Exit(hub, me);
        while !self.turn(None) {}
    }

    /// One loop turn: wait for readiness (at most `max_wait`, and not at all
    /// when work is pending), handle ready sockets, commands, reads put off,
    /// timers, then write everything this turn queued. True when the worker
    /// has stopped.
    pub(crate) fn turn(&mut self, max_wait: Option<Duration>) -> bool {
        self.turn_no += 1;
        let now = self.clock();
        let mut timeout = self.ctx.wheel.timeout(now);
        for d in [self.stop_deadline, self.accept_retry]
            .into_iter()
            .flatten()
        {
            let left = now.until(d);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        if self.stop_pending()
            || !self.ctx.again.is_empty()
            || !self.ctx.dirty.is_empty()
            || self.ctx.hub.links[self.ctx.me].mailbox.has_pending()
        {
            timeout = Some(Duration::ZERO);
        }
        if let Some(m) = max_wait {
            timeout = Some(timeout.map_or(m, |t| t.min(m)));
        }
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(1024));
        if let Err(e) = self.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("volley: poll failed: {e}");
                self.events = Some(events);
                return true;
            }
        }
        self.ctx.now = self.clock();
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
        self.events = Some(events);
        if self.accept_retry.is_some_and(|t| self.ctx.now >= t) {
            self.accept_retry = None;
            self.resume_accept();
        }
        self.commands();
        self.unthrottle();
        self.read_again();
        self.timers();
        self.flush_dirty();
        self.publish_stats();
        let done = self.ctx.hub.stopping.load(Ordering::Acquire) != hub::RUNNING && self.stopping();
        if let Some(q) = &self.shared.queue {
            q.end_turn();
        }
        hub::pay_wakes();
        done
    }

    /// In event-queue mode: should reading stop because the host fell
    /// behind? The connection is then read again once it has caught up.
    pub(super) fn throttle(&mut self, key: usize) -> bool {
        match &self.shared.queue {
            Some(q) if q.throttle(self.ctx.me) => {
                self.throttled.push(key);
                true
            }
            _ => false,
        }
    }

    fn unthrottle(&mut self) {
        if self.throttled.is_empty() {
            return;
        }
        if let Some(q) = &self.shared.queue {
            if q.unthrottled(self.ctx.me) {
                self.ctx.again.append(&mut self.throttled);
            }
        }
    }

    fn clock(&self) -> Stamp {
        Stamp::at(self.epoch, Instant::now())
    }

    /// Connections held (the harness's question).
    #[cfg(feature = "testing")]
    pub(crate) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub(super) fn publish_stats_now(&mut self) {
        self.publish_stats();
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
}

/// Register a listener for level-triggered readability (which mio does
/// not offer), with `EPOLLEXCLUSIVE` when it is shared with the other
/// workers (a new connection wakes one waiting worker, not every one).
/// Level triggered, a listener need not be drained until `accept` fails:
/// `Worker::accept` takes one connection per event and the poll reports
/// the listener again while more wait. A failed `accept4` is not cheap
/// (the kernel allocates the new socket and its file before it looks at
/// the queue, then frees them: ~10 times an empty `epoll_wait`), and at a
/// sustained rate drained edges cost one per connection. The event
/// carries the `LISTENER` token as mio's own registrations do;
/// [`deregister_listener`] removes it (mio's `deregister` would refuse a
/// registration it did not make, in debug builds).
pub(super) fn register_listener(poll: &Poll, l: &Listener, exclusive: bool) -> io::Result<()> {
    let mut events = libc::EPOLLIN as u32;
    if exclusive {
        events |= libc::EPOLLEXCLUSIVE as u32;
    }
    let mut ev = libc::epoll_event {
        events,
        u64: LISTENER.0 as u64,
    };
    listener_ctl(poll, l, libc::EPOLL_CTL_ADD, &mut ev)
}

/// Take the listener out of the poll (`EPOLL_CTL_DEL` by descriptor).
pub(super) fn deregister_listener(poll: &Poll, l: &Listener) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    listener_ctl(poll, l, libc::EPOLL_CTL_DEL, &mut ev)
}

fn listener_ctl(
    poll: &Poll,
    l: &Listener,
    op: libc::c_int,
    ev: &mut libc::epoll_event,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a live epoll descriptor, a live socket, a valid event.
    let rc = unsafe { libc::epoll_ctl(poll.as_raw_fd(), op, l.as_raw_fd(), ev) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
