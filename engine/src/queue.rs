//! Event-queue mode: for hosts with their own event loop (Node, Python, any
//! runtime behind the C ABI). Every handler call becomes an event; the
//! workers batch them (one batch per worker per loop turn, the payloads
//! copied once into the batch) and hand the batches over with one wake-up
//! of a pipe that the host watches. The host drains the batches from its
//! own thread, reads events in place (borrowed until it drains again), and
//! answers through [`crate::ServerHandle`]: sends and publishes (batched
//! per worker under [`crate::ServerHandle::cork`]), upgrade and HTTP answers by id.
//!
//! `open` runs on the host's thread, and a WebSocket's 101 waits for it as
//! it waits for Bun's `open`: the 101, and whatever the host sent in
//! `open`, go out once the host has handled the `Open` event, so a client
//! that sees its connection open finds `open`'s subscriptions in place.
//! "Handled" is the host's next [`EventQueue::drain`] or
//! [`EventQueue::wait`], or [`EventQueue::release_opened`] (hosts that
//! hand events out themselves record them with [`EventQueue::opened`]).
//!
//! A host that falls behind does not grow the process: past
//! `queue_limit` bytes of undrained events the workers stop reading from
//! their sockets (TCP then pushes back on the clients) until the host has
//! drained half of it.
//!
//! # Examples
//!
//! ```no_run
//! use volley::queue::Event;
//! use volley::{Accept, Server};
//!
//! let (server, mut queue) = Server::builder().bind("127.0.0.1:9001").serve_queue()?;
//! loop {
//!     queue.wait(None); // or watch queue.fd() in your own loop
//!     for ev in queue.drain() {
//!         match ev {
//!             Event::Upgrade { id, .. } => {
//!                 server.accept_upgrade(id, Accept::new(0u64));
//!             }
//!             Event::Message { id, data, binary, .. } => {
//!                 server.ws(id).send(if binary { volley::Message::Binary(data) } else {
//!                     volley::Message::Text(std::str::from_utf8(data).unwrap())
//!                 });
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::id::ConnId;
use crate::io::hub::{Command, Hub};
use crate::{Fetch, Handler, Message, Request, Upgrade, WebSocket};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// The largest `max_payload_length` of a queue-mode server: a batch
/// addresses its payloads with 32-bit offsets, and holds under
/// `BATCH_BYTES` before its last event.
pub const MAX_PAYLOAD: usize = 1 << 31;

/// Drained batches kept for reuse (each at most 2 × `BATCH_BYTES`): the
/// most memory a past peak holds.
const SPARE_BATCHES: usize = 8;

/// A batch is handed over early once its payloads pass this size.
const BATCH_BYTES: usize = 1 << 20;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A WebSocket upgrade request, to accept or reject by id.
    Upgrade = 1,
    /// A plain HTTP request (body read), to answer by id.
    Request = 2,
    /// A WebSocket opened.
    Open = 3,
    /// A whole message.
    Message = 4,
    /// A WebSocket closed (once per opened one).
    Close = 5,
    /// A backlog was written out after backpressure.
    Drain = 6,
    /// A ping arrived (the pong went automatically).
    Ping = 7,
    /// A pong arrived.
    Pong = 8,
    /// A published message a slow subscriber did not get.
    Dropped = 9,
    /// A topic got its first subscriber, or lost its last.
    Topic = 10,
}

/// One event as the batch stores it: offsets into the batch's bytes.
#[derive(Debug, Clone, Copy)]
struct Raw {
    kind: Kind,
    /// Binary message; active topic.
    flag: bool,
    code: u16,
    key: u32,
    generation: u64,
    user: u64,
    /// Payload (message, reason, ping data, topic name, packed request).
    a: (u32, u32),
    /// Second payload (the dropped message's topic).
    b: (u32, u32),
}

/// Events from one worker's loop turn, with their bytes.
#[derive(Default)]
pub struct Batch {
    raws: Vec<Raw>,
    bytes: Vec<u8>,
}

impl Batch {
    fn put(&mut self, b: &[u8]) -> (u32, u32) {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(b);
        (at, b.len() as u32)
    }

    fn get(&self, (at, len): (u32, u32)) -> &[u8] {
        &self.bytes[at as usize..(at + len) as usize]
    }

    fn push(&mut self, kind: Kind, id: Option<ConnId>, user: u64, a: &[u8]) -> &mut Raw {
        let (key, generation) = id.map_or((0, 0), ConnId::to_raw);
        let a = self.put(a);
        self.raws.push(Raw {
            kind,
            flag: false,
            code: 0,
            key,
            generation,
            user,
            a,
            b: (0, 0),
        });
        self.raws.last_mut().expect("just pushed")
    }

    fn clear(&mut self) {
        self.raws.clear();
        self.bytes.clear();
    }

    /// Events in this batch.
    pub fn len(&self) -> usize {
        self.raws.len()
    }

    /// No events?
    pub fn is_empty(&self) -> bool {
        self.raws.is_empty()
    }

    /// The `i`th event.
    pub fn event(&self, i: usize) -> Event<'_> {
        let r = self.raws[i];
        let id = ConnId::from_raw(r.key, r.generation);
        let a = self.get(r.a);
        let id = || id.expect("events on a connection carry its id");
        match r.kind {
            Kind::Upgrade => Event::Upgrade {
                id: id(),
                request: RequestView::new(a),
            },
            Kind::Request => Event::Request {
                id: id(),
                request: RequestView::new(a),
            },
            Kind::Open => Event::Open {
                id: id(),
                user: r.user,
            },
            Kind::Message => Event::Message {
                id: id(),
                user: r.user,
                data: a,
                binary: r.flag,
            },
            Kind::Close => Event::Close {
                id: id(),
                user: r.user,
                code: r.code,
                reason: a,
            },
            Kind::Drain => Event::Drain {
                id: id(),
                user: r.user,
            },
            Kind::Ping => Event::Ping {
                id: id(),
                user: r.user,
                data: a,
            },
            Kind::Pong => Event::Pong {
                id: id(),
                user: r.user,
                data: a,
            },
            Kind::Dropped => Event::Dropped {
                id: id(),
                user: r.user,
                topic: self.get(r.b),
                data: a,
                binary: r.flag,
            },
            Kind::Topic => Event::Topic {
                topic: a,
                active: r.flag,
            },
        }
    }

    /// Every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = Event<'_>> + '_ {
        (0..self.len()).map(|i| self.event(i))
    }
}

/// An event, borrowed from its batch.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Answer with [`crate::ServerHandle::accept_upgrade`] (data: the
    /// connection's `u64` user value) or `reject_upgrade`.
    Upgrade {
        /// The request's id, the WebSocket's once accepted.
        id: ConnId,
        /// The request.
        request: RequestView<'a>,
    },
    /// Answer with [`crate::ServerHandle::respond`].
    Request {
        /// The request's id.
        id: ConnId,
        /// The request, with its body.
        request: RequestView<'a>,
    },
    /// A WebSocket opened.
    Open {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
    },
    /// A whole message.
    Message {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
        /// The payload (UTF-8 when not binary).
        data: &'a [u8],
        /// Binary or text.
        binary: bool,
    },
    /// The WebSocket closed; or an upgrade the host accepted never opened
    /// (no `Open` came before: 1006 "upgrade failed"). Either way the last
    /// event for the id.
    Close {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
        /// The close code (1006 when it dropped without one).
        code: u16,
        /// The reason (UTF-8).
        reason: &'a [u8],
    },
    /// Its backlog was written out after backpressure.
    Drain {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
    },
    /// A ping arrived.
    Ping {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
        /// The ping's payload.
        data: &'a [u8],
    },
    /// A pong arrived.
    Pong {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
        /// The pong's payload.
        data: &'a [u8],
    },
    /// A published message this slow subscriber did not get.
    Dropped {
        /// The connection.
        id: ConnId,
        /// Its user value.
        user: u64,
        /// The topic.
        topic: &'a [u8],
        /// The message.
        data: &'a [u8],
        /// Binary or text.
        binary: bool,
    },
    /// A topic got its first subscriber on this server, or lost its last.
    Topic {
        /// The topic.
        topic: &'a [u8],
        /// First (true) or last (false).
        active: bool,
    },
}

/// A request packed into a batch: method, path, query, headers, route
/// parameters, offered subprotocols, the peer's address, whether it came
/// over TLS, and the body.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    bytes: &'a [u8],
}

impl std::fmt::Debug for RequestView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestView")
            .field("method", &self.method())
            .field("path", &self.path())
            .finish()
    }
}

/// How a packed request field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestField {
    /// A u32 length, then that many bytes.
    Bytes,
    /// A u32 count, then that many `Bytes` fields (name/value pairs
    /// alternate, so pairs count twice).
    List,
}

/// The packed request (the payload of upgrade and request events), field by
/// field in order: the one definition the writer below, [`RequestView`],
/// and the bindings' generated wire files (`ffi/tests/wire.rs`) follow.
/// `secure` is "s" over TLS and empty otherwise; `address` is `ip:port`,
/// empty when the peer has none (a Unix socket).
pub const REQUEST_FIELDS: [(&str, RequestField); 9] = [
    ("method", RequestField::Bytes),
    ("path", RequestField::Bytes),
    ("query", RequestField::Bytes),
    ("headers", RequestField::List),
    ("params", RequestField::List),
    ("protocols", RequestField::List),
    ("address", RequestField::Bytes),
    ("secure", RequestField::Bytes),
    ("body", RequestField::Bytes),
];

/// Indexes into [`REQUEST_FIELDS`].
mod at {
    pub const METHOD: usize = 0;
    pub const PATH: usize = 1;
    pub const QUERY: usize = 2;
    pub const HEADERS: usize = 3;
    pub const PARAMS: usize = 4;
    pub const PROTOCOLS: usize = 5;
    pub const ADDRESS: usize = 6;
    pub const SECURE: usize = 7;
    pub const BODY: usize = 8;
}

/// Writes the packed form, in [`REQUEST_FIELDS`]' order.
fn pack_request(b: &mut Vec<u8>, req: &Request<'_>) {
    fn field(b: &mut Vec<u8>, s: &[u8]) {
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s);
    }
    fn count(b: &mut Vec<u8>, n: usize) {
        b.extend_from_slice(&(n as u32).to_le_bytes());
    }
    for i in 0..REQUEST_FIELDS.len() {
        match i {
            at::METHOD => field(b, req.method().as_bytes()),
            at::PATH => field(b, req.path().as_bytes()),
            at::QUERY => field(b, req.query().as_bytes()),
            at::HEADERS => {
                count(b, req.headers().count() * 2);
                for (k, v) in req.headers() {
                    field(b, k.as_bytes());
                    field(b, v);
                }
            }
            at::PARAMS => {
                count(b, req.params().len() * 2);
                for (k, v) in req.params() {
                    field(b, k.as_bytes());
                    field(b, v.as_bytes());
                }
            }
            at::PROTOCOLS => {
                count(b, req.protocols().count());
                for p in req.protocols() {
                    field(b, p.as_bytes());
                }
            }
            at::ADDRESS => {
                let addr = req.remote_address().map(|a| a.to_string());
                field(b, addr.as_deref().unwrap_or_default().as_bytes());
            }
            at::SECURE => field(b, if req.is_secure() { b"s" } else { b"" }),
            at::BODY => field(b, req.body()),
            _ => unreachable!("REQUEST_FIELDS has {} fields", REQUEST_FIELDS.len()),
        }
    }
}

/// Reads the packed form field by field.
#[derive(Clone)]
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn u32(&mut self) -> usize {
        let (n, rest) = self.0.split_at(4);
        self.0 = rest;
        u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize
    }

    fn field(&mut self) -> &'a [u8] {
        let n = self.u32();
        let (f, rest) = self.0.split_at(n);
        self.0 = rest;
        f
    }

    fn skip_list(&mut self) {
        for _ in 0..self.u32() {
            self.field();
        }
    }

    fn list(mut self) -> impl Iterator<Item = &'a [u8]> {
        let n = self.u32();
        (0..n).map(move |_| self.field())
    }
}

fn text(b: &[u8]) -> &str {
    // The engine wrote these from `&str`s.
    std::str::from_utf8(b).unwrap_or("")
}

impl<'a> RequestView<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        RequestView { bytes }
    }

    /// The fields from the `i`th of [`REQUEST_FIELDS`] on.
    fn at(&self, i: usize) -> Fields<'a> {
        let mut f = Fields(self.bytes);
        for (_, kind) in &REQUEST_FIELDS[..i] {
            match kind {
                RequestField::List => f.skip_list(),
                RequestField::Bytes => {
                    f.field();
                }
            }
        }
        f
    }

    /// `GET`, `POST`, …
    pub fn method(&self) -> &'a str {
        text(self.at(at::METHOD).field())
    }

    /// The path without the query.
    pub fn path(&self) -> &'a str {
        text(self.at(at::PATH).field())
    }

    /// The query without `?`.
    pub fn query(&self) -> &'a str {
        text(self.at(at::QUERY).field())
    }

    /// Header lines, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        pairs(self.at(at::HEADERS)).map(|(k, v)| (text(k), v))
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Route parameters.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        pairs(self.at(at::PARAMS)).map(|(k, v)| (text(k), text(v)))
    }

    /// Offered subprotocols.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> {
        self.at(at::PROTOCOLS).list().map(text)
    }

    /// The peer's address (`ip:port`), empty when unknown.
    pub fn remote_address(&self) -> &'a str {
        text(self.at(at::ADDRESS).field())
    }

    /// Did it come over TLS?
    pub fn is_secure(&self) -> bool {
        !self.at(at::SECURE).field().is_empty()
    }

    /// The body.
    pub fn body(&self) -> &'a [u8] {
        self.at(at::BODY).field()
    }

    /// The packed form itself: method, path, query as (u32 length, bytes);
    /// headers and route parameters as a u32 count of (length, bytes)
    /// fields, names and values alternating; subprotocols likewise; then
    /// the address, a field that is "s" over TLS and empty otherwise, and
    /// the body. Lengths are little-endian.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn pairs<'a>(f: Fields<'a>) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    let mut it = f.list();
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
}

/// The host's wake-up: a non-blocking pipe (or an eventfd's worth of it),
/// written once per hand-over when the host is not already signalled.
struct Signal {
    read: OwnedFd,
    write: OwnedFd,
}

impl Signal {
    fn new() -> io::Result<Signal> {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Signal { read, write })
    }

    fn raise(&self) {
        let b = 1u8;
        // SAFETY: writing one byte from a live local to an fd we own. A
        // full pipe (EAGAIN) already means "readable": nothing to do.
        unsafe { libc::write(self.write.as_raw_fd(), (&b as *const u8).cast(), 1) };
    }

    fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a live local buffer of the size given.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
        }
    }
}

/// What the workers and the host share.
pub(crate) struct QueueShared {
    ready: Mutex<VecDeque<Batch>>,
    free: Mutex<Vec<Batch>>,
    /// Bytes of events handed over and not yet drained.
    backlog: AtomicUsize,
    limit: usize,
    signal: Signal,
    signaled: AtomicBool,
    /// Per worker: reading stopped because of the backlog.
    throttled: Box<[AtomicBool]>,
    hub: Mutex<Weak<Hub>>,
}

thread_local! {
    /// This worker's batch being filled this loop turn.
    static OUT: RefCell<Option<Batch>> = const { RefCell::new(None) };
}

impl QueueShared {
    pub(crate) fn new(workers: usize, limit: usize) -> io::Result<Arc<Self>> {
        Ok(Arc::new(QueueShared {
            ready: Mutex::new(VecDeque::new()),
            free: Mutex::new(Vec::new()),
            backlog: AtomicUsize::new(0),
            limit,
            signal: Signal::new()?,
            signaled: AtomicBool::new(false),
            throttled: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            hub: Mutex::new(Weak::new()),
        }))
    }

    pub(crate) fn attach(&self, hub: &Arc<Hub>) {
        *self.hub.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(hub);
    }

    /// Add to this thread's batch.
    fn with_batch<R>(&self, f: impl FnOnce(&mut Batch) -> R) -> R {
        let (r, full) = OUT.with(|o| {
            let mut o = o.borrow_mut();
            let b = o.get_or_insert_with(|| {
                self.free
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop()
                    .unwrap_or_default()
            });
            let r = f(b);
            (r, b.bytes.len() >= BATCH_BYTES)
        });
        if full {
            self.end_turn();
        }
        r
    }

    /// Hand this thread's batch over (the end of a worker's loop turn).
    pub(crate) fn end_turn(&self) {
        let Some(b) = OUT.with(|o| o.borrow_mut().take()) else {
            return;
        };
        if b.is_empty() {
            self.recycle(b);
            return;
        }
        self.backlog
            .fetch_add(b.bytes.len() + 64 * b.raws.len(), Ordering::SeqCst);
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(b);
        // W2/W3 of the hand-over protocol (see `EventQueue::take`).
        if !self.signaled.swap(true, Ordering::SeqCst) {
            self.signal.raise();
        }
    }

    /// Should worker `w` stop reading? (It then asks again after the host drains.)
    pub(crate) fn throttle(&self, w: usize) -> bool {
        if self.backlog.load(Ordering::SeqCst) <= self.limit {
            return false;
        }
        self.throttled[w].store(true, Ordering::SeqCst);
        // The host lowers the backlog before it looks at the flags: seen
        // from here, either the backlog is still high (and the host will
        // see the flag when it drains) or it is not (and we read on).
        if self.backlog.load(Ordering::SeqCst) <= self.limit {
            self.throttled[w].store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Did the host drain since worker `w` was throttled?
    pub(crate) fn unthrottled(&self, w: usize) -> bool {
        !self.throttled[w].load(Ordering::Acquire)
    }

    /// Keep a drained batch for reuse: at most `SPARE_BATCHES` of them, and
    /// only ordinary ones (a batch grown past twice the hand-over size by
    /// a large message is freed), so a peak's memory is given back.
    fn recycle(&self, mut b: Batch) {
        b.clear();
        if b.bytes.capacity() <= 2 * BATCH_BYTES && b.raws.capacity() <= 64 * 1024 {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < SPARE_BATCHES {
                free.push(b);
            }
        }
    }
}

/// The loop's view of the queue (it names no queue type).
impl crate::io::worker::HostQueue for QueueShared {
    fn end_turn(&self) {
        QueueShared::end_turn(self)
    }
    fn throttle(&self, w: usize) -> bool {
        QueueShared::throttle(self, w)
    }
    fn unthrottled(&self, w: usize) -> bool {
        QueueShared::unthrottled(self, w)
    }
}

/// The host's end of the queue.
pub struct EventQueue {
    shared: Arc<QueueShared>,
    /// Batches handed out by the last drain, recycled at the next.
    current: Vec<Batch>,
    /// Connections whose `Open` event was handed out and whose 101 waits.
    opened: Vec<ConnId>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("fd", &self.fd())
            .finish()
    }
}

impl EventQueue {
    pub(crate) fn new(shared: Arc<QueueShared>) -> Self {
        EventQueue {
            shared,
            current: Vec::new(),
            opened: Vec::new(),
        }
    }

    /// A file descriptor that is readable when events wait (a pipe's read
    /// end: watch it with epoll, `loop.add_reader`, libuv, …). Reading it is
    /// the queue's job ([`EventQueue::drain_batches`] empties it).
    pub fn fd(&self) -> RawFd {
        self.shared.signal.read.as_raw_fd()
    }

    /// Give back the batches of the last drain and take every batch waiting
    /// now. Events borrow from the returned batches until the next call.
    /// The 101s of the `Open` events handed out by the last drain go out
    /// first (the host has handled them).
    pub fn drain_batches(&mut self) -> &[Batch] {
        self.release_opened();
        for b in std::mem::take(&mut self.current) {
            self.recycle(b);
        }
        let mut got = Vec::new();
        self.take(&mut got);
        for b in &got {
            self.opened.extend(
                b.raws
                    .iter()
                    .filter(|r| r.kind == Kind::Open)
                    .filter_map(|r| ConnId::from_raw(r.key, r.generation)),
            );
        }
        self.current = got;
        &self.current
    }

    /// Record that the `Open` event of `id` was handed to the host (for
    /// hosts that take batches with [`EventQueue::take`] and hand events
    /// out themselves): its 101 goes out at the next
    /// [`EventQueue::release_opened`].
    pub fn opened(&mut self, id: ConnId) {
        self.opened.push(id);
    }

    /// The host has handled the `Open` events handed out so far (its
    /// `open` handlers ran, their sends and subscriptions are queued): let
    /// those connections' 101s go out, after what `open` queued. Under
    /// [`crate::ServerHandle::cork`] the workers are woken at the uncork.
    pub fn release_opened(&mut self) {
        if self.opened.is_empty() {
            return;
        }
        let hub = self.hub();
        let Some(hub) = hub else { return };
        for id in self.opened.drain(..) {
            // Fails only when the worker has exited.
            let _ = hub.command_unbounded(id.worker(), Command::Opened { id });
        }
    }

    /// Move every batch waiting now into `into` (for hosts that keep
    /// batches across drains; give each back with [`EventQueue::recycle`]).
    pub fn take(&self, into: &mut Vec<Batch>) {
        // The hand-over protocol, and why no interleaving loses a wake-up.
        // A worker (`end_turn`) does W1: push its batch (under `ready`'s
        // lock), W2: `signaled.swap(true)`, and W3: writes a byte only if
        // W2 saw false. The host does H1: empty the pipe, H2: store false,
        // H3: take `ready` (under its lock). Invariant: while `signaled` is
        // true, a byte is in the pipe or the host is between H1 and H3.
        // - A byte written after H1 is never eaten: only H1 reads the pipe.
        // - A worker whose W2 comes before H2 saw true and wrote nothing,
        //   but its W1 came before W2, so before H3: the host takes it.
        // - A worker whose W2 comes after H2 either saw false and wrote a
        //   byte that H1 has already passed, or saw true set by another
        //   worker after H2, whose byte is likewise still in the pipe.
        // H2 before H3 is ordered by `ready`'s mutex (H3 and W1 take it in
        // one total order), so W1-after-H3 implies W2-after-H2.
        // The reverse order (flag first, then pipe) let a worker's byte
        // written between the two be eaten while the flag stayed true: no
        // worker wrote again and the fd never became readable.
        self.shared.signal.clear();
        #[cfg(test)]
        tests::take_hook(&self.shared);
        self.shared.signaled.store(false, Ordering::SeqCst);
        let start = into.len();
        {
            let mut ready = self.shared.ready.lock().unwrap_or_else(|e| e.into_inner());
            into.extend(ready.drain(..));
        }
        let taken: usize = into[start..]
            .iter()
            .map(|b| b.bytes.len() + 64 * b.raws.len())
            .sum();
        if taken == 0 {
            return;
        }
        let left = self.shared.backlog.fetch_sub(taken, Ordering::SeqCst) - taken;
        if left <= self.shared.limit / 2 {
            self.wake_throttled();
        }
    }

    /// Give a drained batch back, for a worker to fill again.
    pub fn recycle(&self, b: Batch) {
        self.shared.recycle(b);
    }

    /// Every event waiting now, in order per connection; borrowed until
    /// the next drain.
    pub fn drain(&mut self) -> impl Iterator<Item = Event<'_>> + '_ {
        self.drain_batches().iter().flat_map(Batch::iter)
    }

    /// Block until events wait (or `timeout` passes); for hosts without
    /// their own loop. True if events wait.
    /// The `Open` events handed out so far count as handled.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        self.release_opened();
        let mut p = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        n > 0
    }

    /// Have all workers exited and every event been drained?
    pub fn is_finished(&self) -> bool {
        let hub = self.hub();
        let running = hub.is_some_and(|h| h.is_running());
        !running
            && self
                .shared
                .ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    /// The server's hub, while it exists.
    fn hub(&self) -> Option<Arc<Hub>> {
        self.shared
            .hub
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
    }

    fn wake_throttled(&self) {
        let hub = self.hub();
        let Some(hub) = hub else { return };
        for (w, t) in self.shared.throttled.iter().enumerate() {
            if t.swap(false, Ordering::SeqCst) {
                hub.links[w].mailbox.wake();
            }
        }
    }
}

/// The handler of a queue-mode server: every call becomes an event. The
/// connection's data is the host's `u64` user value.
pub(crate) struct QueueHandler {
    pub shared: Arc<QueueShared>,
}

impl Handler for QueueHandler {
    type Data = u64;

    fn upgrade(&self, req: &Request<'_>) -> Upgrade<u64> {
        self.shared.with_batch(|b| {
            let at = b.bytes.len();
            pack_request(&mut b.bytes, req);
            let len = b.bytes.len() - at;
            let (key, generation) = req.id().to_raw();
            b.raws.push(Raw {
                kind: Kind::Upgrade,
                flag: false,
                code: 0,
                key,
                generation,
                user: 0,
                a: (at as u32, len as u32),
                b: (0, 0),
            });
        });
        Upgrade::Later
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        self.shared.with_batch(|b| {
            let at = b.bytes.len();
            pack_request(&mut b.bytes, req);
            let len = b.bytes.len() - at;
            let (key, generation) = req.id().to_raw();
            b.raws.push(Raw {
                kind: Kind::Request,
                flag: false,
                code: 0,
                key,
                generation,
                user: 0,
                a: (at as u32, len as u32),
                b: (0, 0),
            });
        });
        Fetch::Later
    }

    fn open(&self, ws: &mut WebSocket<'_, u64>) {
        let user = *ws.data();
        self.shared
            .with_batch(|b| b.push(Kind::Open, Some(ws.id()), user, &[]).flag = false);
    }

    fn message(&self, ws: &mut WebSocket<'_, u64>, msg: Message<'_>) {
        let user = *ws.data();
        let binary = msg.is_binary();
        self.shared.with_batch(|b| {
            b.push(Kind::Message, Some(ws.id()), user, msg.as_bytes())
                .flag = binary;
        });
    }

    fn close(&self, ws: &mut WebSocket<'_, u64>, code: u16, reason: &str) {
        let user = *ws.data();
        self.shared.with_batch(|b| {
            b.push(Kind::Close, Some(ws.id()), user, reason.as_bytes())
                .code = code;
        });
    }

    fn drain(&self, ws: &mut WebSocket<'_, u64>) {
        let user = *ws.data();
        self.shared
            .with_batch(|b| b.push(Kind::Drain, Some(ws.id()), user, &[]).flag = false);
    }

    /// The host accepted an upgrade that never opened: it gets a `Close`
    /// (1006, "upgrade failed") with the user value it gave, and no `Open`
    /// came before it: the one terminal event for that id.
    fn upgrade_failed(&self, id: ConnId, user: u64) {
        self.shared.with_batch(|b| {
            b.push(Kind::Close, Some(id), user, b"upgrade failed").code = 1006;
        });
    }

    fn ping(&self, ws: &mut WebSocket<'_, u64>, data: &[u8]) {
        let user = *ws.data();
        self.shared
            .with_batch(|b| b.push(Kind::Ping, Some(ws.id()), user, data).flag = false);
    }

    fn pong(&self, ws: &mut WebSocket<'_, u64>, data: &[u8]) {
        let user = *ws.data();
        self.shared
            .with_batch(|b| b.push(Kind::Pong, Some(ws.id()), user, data).flag = false);
    }

    fn dropped(&self, ws: &mut WebSocket<'_, u64>, topic: &[u8], msg: Message<'_>) {
        let user = *ws.data();
        self.shared.with_batch(|b| {
            let t = b.put(topic);
            let r = b.push(Kind::Dropped, Some(ws.id()), user, msg.as_bytes());
            r.flag = msg.is_binary();
            r.b = t;
        });
    }

    fn topic(&self, topic: &[u8], active: bool) {
        self.shared
            .with_batch(|b| b.push(Kind::Topic, None, 0, topic).flag = active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Hook = Box<dyn FnOnce(&QueueShared)>;

    thread_local! {
        /// Runs inside `EventQueue::take` between its pipe and flag steps.
        static TAKE_HOOK: RefCell<Option<Hook>> = RefCell::new(None);
    }

    pub(super) fn take_hook(shared: &QueueShared) {
        if let Some(f) = TAKE_HOOK.with(|h| h.borrow_mut().take()) {
            f(shared);
        }
    }

    /// What a worker does at the end of a turn with one event to hand over.
    fn hand_over(shared: &QueueShared) {
        shared.with_batch(|b| {
            b.push(Kind::Topic, None, 0, b"t");
        });
        shared.end_turn();
    }

    fn readable(q: &EventQueue) -> bool {
        let mut p = libc::pollfd {
            fd: q.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    /// Drained batches are kept for reuse only up to `SPARE_BATCHES` and
    /// twice the hand-over size: a peak (a 16 MiB message, a flood of
    /// batches) gives its memory back once drained.
    #[test]
    fn recycling_keeps_no_peak() {
        let shared = QueueShared::new(1, 1 << 20).unwrap();
        let mut big = Batch::default();
        big.bytes.reserve(16 << 20);
        shared.recycle(big);
        assert!(
            shared.free.lock().unwrap().is_empty(),
            "a 16 MiB batch was kept"
        );
        for _ in 0..100 {
            shared.recycle(Batch::default());
        }
        assert_eq!(shared.free.lock().unwrap().len(), SPARE_BATCHES);
    }

    /// The losing interleaving of the old protocol, forced: a worker hands
    /// over a batch while the host is inside `take`, between emptying the
    /// pipe and clearing the flag. The next hand-over must still make the
    /// fd readable (with the steps the other way round it never did again).
    #[test]
    fn a_hand_over_inside_take_never_loses_the_next_wake_up() {
        let shared = QueueShared::new(1, 1 << 20).unwrap();
        let q = EventQueue::new(shared.clone());
        hand_over(&shared);
        assert!(readable(&q));
        TAKE_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hand_over)));
        let mut got = Vec::new();
        q.take(&mut got);
        let events: usize = got.iter().map(|b| b.raws.len()).sum();
        assert_eq!(events, 2, "the batch handed over inside take is taken");
        assert!(!readable(&q), "nothing waits after the take");
        hand_over(&shared);
        assert!(
            readable(&q),
            "a batch waits but the fd is not readable: the wake-up was lost"
        );
        got.clear();
        q.take(&mut got);
        assert_eq!(got.len(), 1);
        assert!(!readable(&q), "nothing waits after the take");
    }
}
