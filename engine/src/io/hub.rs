//! What links the workers to each other and to the threads outside them:
//! one bounded mailbox and one slot table per worker, the topic registry,
//! the counters, and the stop signal.
//!
//! A mailbox is a mutex-protected batch (commands plus one byte arena for
//! their payloads) that the worker swaps out once per loop turn, and a
//! `mio::Waker`. Senders batch their wake-ups: a worker sending to another
//! worker wakes it once at the end of its own turn, and a thread that has
//! corked ([`cork`]) wakes each worker once when it uncorks, so a host that
//! answers a thousand messages costs one wake-up per worker, not a thousand.
//! Measured against one crossbeam channel per worker (the first design):
//! the same cost per command, plus payloads that need no allocation each and
//! a bound in bytes instead of in commands.

use super::slots::{Refused, Slot, Slots};
use crate::id::ConnId;
use crate::proto::frame::OpCode;
use crate::pubsub::{Prepared, Registry, Topic};
use crate::{Accept, Options, Response, SendStatus, Stats};
use mio::Waker;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

/// Bytes a command counts for in a mailbox besides its payload.
const COMMAND_COST: usize = 64;

/// The answer to a deferred upgrade or HTTP request.
pub(crate) enum Answer {
    /// Upgrade (the data is the handler's `Data`), or refuse with a response.
    Upgrade(Result<Accept<Box<dyn Any + Send>>, Response>),
    /// Answer an HTTP request.
    Respond(Response),
}

/// A look at one connection from another thread ([`crate::WsHandle::inspect`]).
pub(crate) type Inspector = Box<dyn FnOnce(Option<&mut dyn crate::Inspect>) + Send>;

/// Messages to a worker from other threads (or from handles on its own).
pub(crate) enum Command {
    /// Boxed: a command is as large as its largest kind, and every send
    /// is one (104 bytes with the answer inline, 56 without).
    Answer {
        id: ConnId,
        answer: Box<Answer>,
    },
    /// Deliver a publish to this worker's subscribers.
    Publish {
        topic: Arc<[u8]>,
        msg: Prepared,
        compress: Option<bool>,
        /// A connection that does not get it (the publisher, without
        /// `publish_to_self`).
        except: Option<ConnId>,
    },
    /// A message for one connection; its payload is `len` bytes at `at` in
    /// the inbox arena, and `counted` bytes were reserved in its slot.
    Send {
        id: ConnId,
        op: OpCode,
        at: usize,
        len: usize,
        compress: Option<bool>,
        counted: usize,
        want_drain: bool,
    },
    /// A prepared message for one connection.
    SendPrepared {
        id: ConnId,
        msg: Prepared,
        counted: usize,
        want_drain: bool,
    },
    /// A ping or pong (payload in the arena, at most 125 bytes).
    Control {
        id: ConnId,
        op: OpCode,
        at: usize,
        len: usize,
    },
    Close {
        id: ConnId,
        code: u16,
        reason: String,
    },
    Terminate {
        id: ConnId,
    },
    /// Event-queue mode: the host has run `open` for this connection, so
    /// its 101 (held since the upgrade, with whatever the host sent in
    /// `open`) may go out.
    Opened {
        id: ConnId,
    },
    /// A send from another thread was refused past the limit: fire
    /// `drain` when the queue has emptied (Bun's `0` is followed by a drain).
    WantDrain {
        id: ConnId,
    },
    /// Subscribe one connection; the registry already counts it.
    Subscribe {
        id: ConnId,
        topic: Arc<Topic>,
        first: bool,
    },
    Unsubscribe {
        id: ConnId,
        topic: Arc<[u8]>,
    },
    Pause {
        id: ConnId,
    },
    Resume {
        id: ConnId,
    },
    /// Replace the connection's data (the handler's `Data`).
    SetData {
        id: ConnId,
        data: Box<dyn Any + Send>,
    },
    Inspect {
        id: ConnId,
        f: Inspector,
    },
    /// Close this worker's idle HTTP connections (keep-alive ones between
    /// requests); the reply takes how many.
    CloseIdle {
        reply: IdleReply,
    },
}

/// One worker's answer to [`Command::CloseIdle`]: counted when sent, or
/// when dropped unsent (a worker that exits with it queued), so the
/// waiter never waits for an answer that cannot come.
pub(crate) struct IdleReply {
    tally: Arc<(Mutex<(usize, usize)>, Condvar)>,
    closed: usize,
}

impl IdleReply {
    pub(crate) fn send(mut self, closed: usize) {
        self.closed = closed;
    }
}

impl Drop for IdleReply {
    fn drop(&mut self) {
        let mut t = self.tally.0.lock().unwrap_or_else(|e| e.into_inner());
        t.0 += 1;
        t.1 += self.closed;
        self.tally.1.notify_all();
    }
}

/// A worker's pending commands and their payload bytes.
#[derive(Default)]
pub(crate) struct Inbox {
    pub cmds: Vec<Command>,
    pub data: Vec<u8>,
    bytes: usize,
}

/// What an emptied inbox keeps of its arena: a burst's high-water mark is
/// given back once a turn uses less than a quarter of it.
const INBOX_FLOOR: usize = 64 * 1024;

impl Inbox {
    pub(crate) fn clear(&mut self) {
        let n = self.cmds.len();
        self.clear_after(n);
    }

    /// Empty the inbox whose turn handled `cmds_used` commands (the worker
    /// drains them before clearing).
    pub(crate) fn clear_after(&mut self, cmds_used: usize) {
        let used = self.data.len();
        self.cmds.clear();
        self.data.clear();
        self.bytes = 0;
        // A peak passed: give its memory back (down to a floor), so a
        // burst of cross-thread sends does not hold its arena for ever.
        // Under steady load the arena stays (used > capacity / 4).
        if self.data.capacity() > INBOX_FLOOR && used < self.data.capacity() / 4 {
            self.data.shrink_to(INBOX_FLOOR.max(used * 2));
        }
        if self.cmds.capacity() > 1024 && cmds_used < self.cmds.capacity() / 4 {
            self.cmds.shrink_to(1024.max(cmds_used * 2));
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }
}

/// Why a command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The mailbox holds its limit in bytes.
    Full,
    /// The worker has exited.
    Gone,
}

/// One worker's inbox and wake-up.
pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    waker: Waker,
    /// Set by every push, cleared by the worker when it takes the inbox: a
    /// worker never sleeps with this set.
    pending: AtomicBool,
    /// The worker has exited.
    gone: AtomicBool,
    /// Bytes of data (sends, publishes) the inbox takes.
    limit: usize,
    /// Bytes the inbox takes for control traffic (upgrade and HTTP answers,
    /// close, subscribe, pings): the data limit plus a reserve of its own,
    /// so a burst of sends never makes an answer fail (bounded all the same).
    control_limit: usize,
}

/// Which budget a command counts against (see [`Mailbox`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    Data,
    Control,
    /// At most one per connection (so bounded by the connections).
    Unbounded,
}

impl Mailbox {
    pub(crate) fn new(waker: Waker, limit: usize) -> Self {
        Mailbox {
            inbox: Mutex::new(Inbox::default()),
            waker,
            pending: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            limit,
            control_limit: limit.saturating_add((limit / 4).max(64 * 1024)),
        }
    }

    /// Queue a command whose payload (possibly empty) goes into the arena;
    /// `make` gets the payload's offset. Returns whether the mailbox was
    /// empty of news (the worker may need a wake-up).
    fn push_limited(
        &self,
        payload: &[u8],
        weight: usize,
        budget: Budget,
        make: impl FnOnce(usize) -> Command,
    ) -> Result<bool, Full> {
        if self.gone.load(Ordering::Acquire) {
            return Err(Full::Gone);
        }
        let cost = COMMAND_COST + payload.len() + weight;
        let cap = match budget {
            Budget::Data => self.limit,
            Budget::Control => self.control_limit,
            Budget::Unbounded => usize::MAX,
        };
        {
            let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
            // One command always fits an empty inbox, however large.
            if inbox.bytes > 0 && inbox.bytes.saturating_add(cost) > cap {
                return Err(Full::Full);
            }
            let at = inbox.data.len();
            inbox.data.extend_from_slice(payload);
            inbox.bytes += cost;
            inbox.cmds.push(make(at));
        }
        // Already set: not the first, and no locked write (a host's batch
        // of sends finds it set after its first). A stale `true` is
        // harmless: the worker clears the flag and then locks to take the
        // inbox; had that take come before our push in the mutex's order,
        // the clear would happen-before this load and be seen, so a take
        // after a clear we did not see comes after our push, and has it.
        if self.pending.load(Ordering::Acquire) {
            return Ok(false);
        }
        Ok(!self.pending.swap(true, Ordering::AcqRel))
    }

    /// The worker takes everything queued (swapping in its empty spare).
    pub(crate) fn take(&self, spare: &mut Inbox) {
        self.pending.store(false, Ordering::Release);
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *inbox, spare);
    }

    /// Is anything waiting (checked before the worker sleeps)?
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// The worker exited: refuse further commands, drop queued ones.
    pub(crate) fn close(&self) {
        self.gone.store(true, Ordering::Release);
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        inbox.clear();
    }
}

/// A worker as other threads see it.
pub(crate) struct Link {
    pub mailbox: Mailbox,
    pub slots: Slots,
}

/// Server stop requests, in rising order (a request only ever raises it).
pub(crate) const RUNNING: u8 = 0;
/// Stop accepting; open connections carry on until they end.
pub(crate) const STOP_LISTENING: u8 = 1;
/// Stop accepting, 1001 to every WebSocket, up to `close_timeout`.
pub(crate) const STOP_GRACEFUL: u8 = 2;
/// Drop every connection now.
pub(crate) const STOP_NOW: u8 = 3;

/// A count other threads can wait to see reach zero.
struct Count {
    n: Mutex<usize>,
    zero: Condvar,
}

impl Count {
    fn new(n: usize) -> Self {
        Count {
            n: Mutex::new(n),
            zero: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.n.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self) -> usize {
        *self.lock()
    }

    fn add(&self) {
        *self.lock() += 1;
    }

    /// Count one down; returns what is left (waiters wake at zero).
    fn sub(&self) -> usize {
        let mut n = self.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.zero.notify_all();
        }
        *n
    }

    /// Wait until the count is zero, or at most `limit`.
    fn wait_zero(&self, limit: Option<std::time::Duration>) {
        let n = self.lock();
        // The guard is released as the wait returns.
        drop(match limit {
            Some(l) => self
                .zero
                .wait_timeout_while(n, l, |n| *n > 0)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g),
            None => self
                .zero
                .wait_while(n, |n| *n > 0)
                .unwrap_or_else(|e| e.into_inner()),
        });
    }
}

/// Shared by every worker and every handle.
pub(crate) struct Hub {
    pub links: Box<[Link]>,
    pub registry: Registry,
    pub stats: Stats,
    /// RUNNING, STOP_LISTENING, STOP_GRACEFUL or STOP_NOW.
    pub stopping: AtomicU8,
    pub opts: Arc<Options>,
    /// Workers still running.
    running: Count,
    /// Workers still holding their listener (a stop returns once nobody
    /// accepts).
    listening: Count,
    /// Workers whose threads started (set once each is up).
    pub started: AtomicUsize,
    /// The bridge to other processes (Redis), when `Options::pubsub_bridge`
    /// is set.
    pub bridge: std::sync::OnceLock<Arc<dyn Relay>>,
}

/// What the loop asks of a bridge that carries publishes to other
/// processes (the Redis bridge, `crate::bridge`, implements it; the loop
/// names no bridge type). Calls never wait.
pub(crate) trait Relay: Send + Sync {
    /// A publish made in this process, to send out.
    fn publish(&self, hub: &Hub, topic: &[u8], msg: &Prepared, compress: Option<bool>);
    /// A topic gained its first or lost its last subscriber here.
    fn topic_changed(&self, topic: &Arc<[u8]>);
    /// The last worker exited: stop relaying.
    fn signal_stop(&self);
    /// The server stopped: end the bridge's threads and wait for them.
    fn shutdown(&self);
}

thread_local! {
    /// The worker running on this thread: its hub (by address) and index.
    static CURRENT: Cell<(usize, usize)> = const { Cell::new((0, usize::MAX)) };
    /// Wake-ups this thread owes, deferred until the end of its worker's
    /// turn or until it uncorks.
    static OWED: RefCell<Owed> = RefCell::new(Owed::default());
}

/// What a thread owes: its corks, one depth per server, and the wake-ups it
/// deferred. Servers are held weakly, so a server freed while another
/// thread still had it corked is neither kept alive nor confused with a
/// later one (a `Weak` keeps its allocation, so its address is not reused).
#[derive(Default)]
struct Owed {
    corks: Vec<(Weak<Hub>, u32)>,
    wakes: Vec<(Weak<Hub>, usize)>,
}

impl Owed {
    fn corked(&self, hub: &Hub) -> bool {
        self.corks
            .iter()
            .any(|(h, _)| std::ptr::eq(h.as_ptr(), hub))
    }
}

/// Wake the workers in `wakes` whose server still exists.
fn pay(wakes: Vec<(Weak<Hub>, usize)>) {
    for (hub, w) in wakes {
        if let Some(hub) = hub.upgrade() {
            hub.links[w].mailbox.wake();
        }
    }
}

/// Wake now the workers this thread owes a wake-up (end of a worker's turn).
/// A cork held on this thread keeps its server's wake-ups for its uncork.
pub(crate) fn pay_wakes() {
    let wakes = OWED.with(|o| {
        let mut o = o.borrow_mut();
        if o.corks.is_empty() {
            return std::mem::take(&mut o.wakes);
        }
        let o = &mut *o;
        let mut due = Vec::new();
        let corks = &o.corks;
        o.wakes.retain(|(h, w)| {
            let held = corks.iter().any(|(c, _)| Weak::ptr_eq(c, h));
            if !held {
                due.push((h.clone(), *w));
            }
            held
        });
        due
    });
    pay(wakes);
}

impl Hub {
    pub(crate) fn new(links: Box<[Link]>, registry: Registry, opts: Arc<Options>) -> Self {
        let n = links.len();
        Hub {
            links,
            registry,
            stats: Stats::default(),
            stopping: AtomicU8::new(RUNNING),
            opts,
            running: Count::new(n),
            listening: Count::new(0),
            started: AtomicUsize::new(0),
            bridge: std::sync::OnceLock::new(),
        }
    }

    /// Is a Redis bridge running (publishes with no local subscriber still
    /// go out)?
    #[inline]
    pub(crate) fn bridging(&self) -> bool {
        self.bridge.get().is_some()
    }

    /// A publish made in this process: hand it to the Redis bridge, if any
    /// (never waits).
    #[inline]
    pub(crate) fn bridge_out(&self, topic: &[u8], msg: &Prepared, compress: Option<bool>) {
        if let Some(b) = self.bridge.get() {
            b.publish(self, topic, msg, compress);
        }
    }

    /// A topic gained its first or lost its last subscriber: the bridge
    /// follows it at Redis.
    #[inline]
    pub(crate) fn bridge_topic(&self, topic: &Arc<[u8]>) {
        if let Some(b) = self.bridge.get() {
            b.topic_changed(topic);
        }
    }

    /// A message another process published, from the bridge: to every
    /// worker with subscribers (not back to Redis).
    #[cfg(feature = "redis-bridge")]
    pub(crate) fn publish_bridged(
        self: &Arc<Self>,
        topic: &[u8],
        msg: &Prepared,
        compress: Option<bool>,
    ) {
        if let Some(t) = self.registry.get(topic) {
            self.publish_to_workers(&t, msg, compress, None, None);
        }
    }

    /// Batch this thread's sends to this server: until the matching
    /// [`Hub::uncork`], each worker they go to is woken once, at the end.
    /// Nests; other servers' sends are not held back.
    pub(crate) fn cork(self: &Arc<Self>) {
        OWED.with(|o| {
            let mut o = o.borrow_mut();
            if let Some(c) = o
                .corks
                .iter_mut()
                .find(|(h, _)| std::ptr::eq(h.as_ptr(), Arc::as_ptr(self)))
            {
                c.1 += 1;
                return;
            }
            // Corks of servers freed meanwhile go here, so the list stays
            // as short as the servers this thread has corked.
            o.corks.retain(|(h, _)| h.strong_count() > 0);
            o.corks.push((Arc::downgrade(self), 1));
        });
    }

    /// How many [`Hub::cork`]s of this server this thread is inside.
    pub(crate) fn cork_depth(&self) -> u32 {
        OWED.with(|o| {
            let o = o.borrow();
            o.corks
                .iter()
                .find(|(h, _)| std::ptr::eq(h.as_ptr(), self))
                .map_or(0, |c| c.1)
        })
    }

    /// End a [`Hub::cork`]; the outermost one wakes the workers this
    /// server's sends went to (unless this thread is in a worker's turn,
    /// which pays at its end).
    pub(crate) fn uncork(&self) {
        let wakes = OWED.with(|o| {
            let mut o = o.borrow_mut();
            let me: *const Hub = self;
            let Some(i) = o
                .corks
                .iter()
                .position(|(h, _)| std::ptr::eq(h.as_ptr(), me))
            else {
                return Vec::new();
            };
            o.corks[i].1 -= 1;
            if o.corks[i].1 > 0 {
                return Vec::new();
            }
            o.corks.swap_remove(i);
            if Self::on_a_worker() {
                return Vec::new();
            }
            let mut due = Vec::new();
            o.wakes.retain(|(h, w)| {
                let mine = std::ptr::eq(h.as_ptr(), me);
                if mine {
                    due.push((h.clone(), *w));
                }
                !mine
            });
            due
        });
        pay(wakes);
    }

    /// This thread is worker `me` of this hub.
    pub(crate) fn enter_worker(self: &Arc<Self>, me: usize) {
        CURRENT.with(|c| c.set((Arc::as_ptr(self) as usize, me)));
    }

    /// The index of this thread's worker, if it is one of this hub's.
    pub(crate) fn current_worker(&self) -> Option<usize> {
        let (hub, w) = CURRENT.with(Cell::get);
        (hub == self as *const Hub as usize).then_some(w)
    }

    /// Is this thread any hub's worker?
    fn on_a_worker() -> bool {
        CURRENT.with(Cell::get).1 != usize::MAX
    }

    /// A worker registered its listener.
    pub(crate) fn listener_opened(&self) {
        self.listening.add();
    }

    /// A worker closed its listener (stopping, or the worker went away).
    pub(crate) fn listener_closed(&self) {
        self.listening.sub();
    }

    /// Wait until no worker accepts, up to `limit` (a worker stuck in a
    /// handler must not hang the caller forever).
    pub(crate) fn wait_unlistened(&self, limit: std::time::Duration) {
        self.listening.wait_zero(Some(limit));
    }

    /// A worker exited.
    pub(crate) fn worker_exited(&self, me: usize) {
        self.links[me].mailbox.close();
        if self.running.sub() == 0 {
            if let Some(b) = self.bridge.get() {
                b.signal_stop();
            }
        }
    }

    /// Block until every worker has exited.
    pub(crate) fn wait_exited(&self) {
        self.running.wait_zero(None);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire) != RUNNING
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.get() > 0
    }

    /// Ask every worker to stop.
    pub(crate) fn request_stop(&self, how: u8) {
        self.stopping.fetch_max(how, Ordering::AcqRel);
        for l in self.links.iter() {
            l.mailbox.wake();
        }
    }

    /// Queue a command for worker `w` and see that it wakes up: now, at the
    /// end of this worker's turn, or when this thread uncorks.
    pub(crate) fn push(
        self: &Arc<Self>,
        w: usize,
        payload: &[u8],
        make: impl FnOnce(usize) -> Command,
    ) -> Result<(), Full> {
        self.push_weighted(w, payload, 0, make)
    }

    /// Queue a control command with a payload (a ping's data): counted
    /// against the control budget, which data sends cannot fill.
    pub(crate) fn push_control(
        self: &Arc<Self>,
        w: usize,
        payload: &[u8],
        make: impl FnOnce(usize) -> Command,
    ) -> Result<(), Full> {
        self.push_budget(w, payload, 0, Budget::Control, make)
    }

    /// Queue a command that holds `weight` bytes besides its payload (a
    /// shared message it keeps alive).
    pub(crate) fn push_weighted(
        self: &Arc<Self>,
        w: usize,
        payload: &[u8],
        weight: usize,
        make: impl FnOnce(usize) -> Command,
    ) -> Result<(), Full> {
        self.push_budget(w, payload, weight, Budget::Data, make)
    }

    fn push_budget(
        self: &Arc<Self>,
        w: usize,
        payload: &[u8],
        weight: usize,
        budget: Budget,
        make: impl FnOnce(usize) -> Command,
    ) -> Result<(), Full> {
        let link = self.links.get(w).ok_or(Full::Gone)?;
        let first = match link.mailbox.push_limited(payload, weight, budget, make) {
            Ok(first) => first,
            Err(e) => {
                if e == Full::Full {
                    self.stats.mailbox_full.fetch_add(1, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        self.owe_wake(w, first);
        Ok(())
    }

    /// Wake worker `w` for a command just queued (`first`: its mailbox had
    /// no news before): at once, or once per worker at the end of this
    /// thread's cork or worker turn.
    fn owe_wake(self: &Arc<Self>, w: usize, first: bool) {
        // Not the first: whoever queued the first command since the worker
        // last looked owes its wake-up (at once or deferred), so this one
        // owes nothing. The common case of a host's batch of sends, and no
        // thread-local is read for it.
        if !first || self.current_worker() == Some(w) {
            return; // the worker looks at its mailbox before it sleeps
        }
        let link = &self.links[w];
        let deferred = OWED.with(|o| {
            let mut o = o.borrow_mut();
            if !Self::on_a_worker() && !o.corked(self) {
                return false;
            }
            let me = Arc::as_ptr(self);
            if !o
                .wakes
                .iter()
                .any(|(h, x)| *x == w && std::ptr::eq(h.as_ptr(), me))
            {
                o.wakes.push((Arc::downgrade(self), w));
            }
            true
        });
        if !deferred {
            link.mailbox.wake();
        }
    }

    /// Queue a control command without payload (answers, close,
    /// subscriptions, …): the control budget, which data sends cannot fill.
    pub(crate) fn command(self: &Arc<Self>, w: usize, c: Command) -> Result<(), Full> {
        self.push_budget(w, &[], 0, Budget::Control, |_| c)
    }

    /// Queue a command that must not be refused for a full mailbox (one per
    /// connection at most, so bounded by the connections): woken as
    /// [`Hub::command`] is, corked or not.
    pub(crate) fn command_unbounded(self: &Arc<Self>, w: usize, c: Command) -> Result<(), Full> {
        let link = self.links.get(w).ok_or(Full::Gone)?;
        let first = link
            .mailbox
            .push_limited(&[], 0, Budget::Unbounded, |_| c)?;
        self.owe_wake(w, first);
        Ok(())
    }

    /// Close every worker's idle HTTP connections (keep-alive ones with no
    /// request arriving and no answer going out) and say how many; open
    /// WebSockets, requests in flight and the listener are untouched (Bun's
    /// `closeIdleConnections`). Waits (at most `limit`) for each worker's
    /// turn: None on one of this server's worker threads, which would wait
    /// for itself.
    pub(crate) fn close_idle(self: &Arc<Self>, limit: std::time::Duration) -> Option<usize> {
        if self.current_worker().is_some() {
            return None;
        }
        let tally = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
        for w in 0..self.links.len() {
            let reply = IdleReply {
                tally: tally.clone(),
                closed: 0,
            };
            // Refused (a worker gone): the reply drops here and counts.
            let _ = self.command_now(w, Command::CloseIdle { reply });
        }
        let n = self.links.len();
        let t = tally.0.lock().unwrap_or_else(|e| e.into_inner());
        let (t, _) = tally
            .1
            .wait_timeout_while(t, limit, |t| t.0 < n)
            .unwrap_or_else(|e| e.into_inner());
        Some(t.1)
    }

    /// Queue a command and wake the worker now, corked or not (someone is
    /// about to wait for its answer).
    pub(crate) fn command_now(self: &Arc<Self>, w: usize, c: Command) -> Result<(), Full> {
        let link = self.links.get(w).ok_or(Full::Gone)?;
        link.mailbox.push_limited(&[], 0, Budget::Control, |_| c)?;
        if self.current_worker() != Some(w) {
            link.mailbox.wake();
        }
        Ok(())
    }

    /// The slot of `id`, if its worker and segment exist.
    pub(crate) fn slot(&self, id: ConnId) -> Option<&Slot> {
        self.links.get(id.worker())?.slots.of(id)
    }

    /// A message to one connection from any thread, with Bun's answer.
    pub(crate) fn send(
        self: &Arc<Self>,
        id: ConnId,
        op: OpCode,
        payload: &[u8],
        compress: Option<bool>,
    ) -> SendStatus {
        let n = crate::proto::frame::frame_len(payload.len());
        let Some(waiting) = self.reserve(id, n) else {
            return SendStatus::Dropped;
        };
        let pushed = self.push(id.worker(), payload, |at| Command::Send {
            id,
            op,
            at,
            len: payload.len(),
            compress,
            counted: n,
            want_drain: waiting,
        });
        self.settle_send(id, n, waiting, pushed.is_ok())
    }

    /// A prepared message to one connection from any thread.
    pub(crate) fn send_prepared(self: &Arc<Self>, id: ConnId, msg: &Prepared) -> SendStatus {
        let n = msg.frame().len();
        let Some(waiting) = self.reserve(id, n) else {
            return SendStatus::Dropped;
        };
        let pushed = self.push_weighted(id.worker(), &[], n, |_| Command::SendPrepared {
            id,
            msg: msg.clone(),
            counted: n,
            want_drain: waiting,
        });
        self.settle_send(id, n, waiting, pushed.is_ok())
    }

    /// Reserve room for `n` bytes to `id`: `Some(waiting)` when accepted.
    /// Past the limit the send is dropped, or with
    /// `close_on_backpressure_limit` the connection is closed (1008).
    fn reserve(self: &Arc<Self>, id: ConnId, n: usize) -> Option<bool> {
        let slot = self.slot(id)?;
        match slot.reserve(id, n, self.opts.backpressure_limit) {
            Ok(waiting) => Some(waiting),
            Err(Refused::OverLimit) => {
                if self.opts.close_on_backpressure_limit {
                    let _ = self.command(
                        id.worker(),
                        Command::Close {
                            id,
                            code: crate::close::POLICY_VIOLATION,
                            reason: "backpressure limit".into(),
                        },
                    );
                } else if slot.ask_drain()
                    && self
                        .command(id.worker(), Command::WantDrain { id })
                        .is_err()
                {
                    slot.drain_taken();
                }
                None
            }
            Err(Refused::Closed) => None,
        }
    }

    fn settle_send(
        self: &Arc<Self>,
        id: ConnId,
        n: usize,
        waiting: bool,
        pushed: bool,
    ) -> SendStatus {
        if !pushed {
            // The worker's mailbox is full: dropped (0), and, as after any
            // 0 while the connection is open, a drain follows (Bun's
            // contract), so a host that waits for it is not left waiting.
            if let Some(s) = self.slot(id) {
                s.release(id, n);
                if s.ask_drain()
                    && self
                        .command_unbounded(id.worker(), Command::WantDrain { id })
                        .is_err()
                {
                    s.drain_taken();
                }
            }
            return SendStatus::Dropped;
        }
        if waiting {
            SendStatus::Backpressure
        } else {
            SendStatus::Sent(n)
        }
    }

    /// Publish from anywhere: to every worker with subscribers (the caller
    /// counts the publish). Returns the workers it was handed to.
    pub(crate) fn publish_to_workers(
        self: &Arc<Self>,
        topic: &Topic,
        msg: &Prepared,
        compress: Option<bool>,
        skip_worker: Option<usize>,
        except: Option<ConnId>,
    ) -> usize {
        let mut n = 0;
        for (w, count) in topic.per_worker.iter().enumerate() {
            if Some(w) == skip_worker || count.load(Ordering::Acquire) == 0 {
                continue;
            }
            let c = Command::Publish {
                topic: topic.name.clone(),
                msg: msg.clone(),
                compress,
                except: except.filter(|id| id.worker() == w),
            };
            if self.push_weighted(w, &[], msg.frame().len(), |_| c).is_ok() {
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod inbox_tests {
    use super::*;

    /// The wake-up protocol under contention: producers wake the worker
    /// only for the first command since it last looked (the others see the
    /// flag set and neither swap it nor wake), and a worker that finds the
    /// flag clear sleeps until woken. No command may be left waiting while
    /// the worker sleeps: it would wait for the 2 s timeout, which fails.
    /// (A producer that never wakes fails at once; a race in a window of
    /// a few instructions may pass many runs, which is why the argument
    /// for the order is written at `push_limited` and `take`.)
    #[test]
    fn no_command_waits_for_a_worker_that_sleeps() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 50_000;
        let mut poll = mio::Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let mb = Arc::new(Mailbox::new(waker, usize::MAX));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let mb = mb.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let id = ConnId::new(0, p, i as u64 + 1);
                        let first = mb
                            .push_limited(&[], 0, Budget::Unbounded, |_| Command::Terminate { id })
                            .unwrap();
                        if first {
                            mb.wake();
                        }
                        if i % 1024 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut events = mio::Events::with_capacity(8);
        let mut spare = Inbox::default();
        let mut got = 0;
        let mut sleeps = 0;
        loop {
            mb.take(&mut spare);
            got += spare.cmds.len();
            spare.clear();
            if got == PRODUCERS * EACH {
                break;
            }
            if !mb.has_pending() {
                sleeps += 1;
                let t0 = std::time::Instant::now();
                poll.poll(&mut events, Some(std::time::Duration::from_secs(2)))
                    .unwrap();
                assert!(
                    t0.elapsed() < std::time::Duration::from_secs(2),
                    "slept with commands waiting: {got} of {} taken",
                    PRODUCERS * EACH
                );
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        mb.take(&mut spare);
        assert!(spare.cmds.is_empty(), "no command after the last");
        eprintln!("{got} commands, {sleeps} sleeps");
    }

    /// Every cross-thread send is a command, copied into the inbox and out
    /// again: the rare large kinds are boxed so that it stays this small.
    #[test]
    fn a_command_is_small() {
        assert!(std::mem::size_of::<Command>() <= 56);
    }

    /// A burst's arena is kept while the next turns use it, and given back
    /// (to the floor) once a turn uses under a quarter of it.
    #[test]
    fn an_inbox_gives_a_peaks_memory_back() {
        let mut i = Inbox::default();
        i.data.resize(4 << 20, 1);
        i.clear_after(1);
        assert!(i.capacity() >= 4 << 20, "steady use keeps the arena");
        i.data.resize(3 << 20, 1);
        i.clear_after(1);
        assert!(i.capacity() >= 3 << 20);
        i.data.extend_from_slice(b"small");
        i.clear_after(1);
        assert!(
            i.capacity() <= 2 * INBOX_FLOOR,
            "kept {} bytes after the peak",
            i.capacity()
        );
    }
}
