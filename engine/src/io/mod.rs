//! The event loop: workers, connections, timers, and the server handle.

mod conn;
mod out;
mod socket;
mod timer;
pub mod tls;
mod worker;

pub use socket::{WebSocket, WsHandle};
pub use worker::PendingUpgrade;

use crate::pubsub::{Prepared, Registry, SlowConsumer};
use crate::route::Router;
use crate::{Accept, Handler, Message, Options, Response};
use mio::net::TcpListener;
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::any::Any;
use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

thread_local! {
    /// The worker running on this thread (`usize::MAX` elsewhere): a command to
    /// one's own worker needs no wake-up, the loop drains its queue every turn.
    static CURRENT_WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Counters, readable at any time from any thread (relaxed atomics).
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections held now (handshaking, open, SSE or closing).
    pub connections: AtomicUsize,
    /// WebSockets opened since start.
    pub opened: AtomicU64,
    /// Connections refused with 503 at `max_connections`.
    pub refused: AtomicU64,
    /// Messages received since start.
    pub messages_in: AtomicU64,
    /// Publishes since start (each counted once, however many workers it reached).
    pub publishes: AtomicU64,
    /// Messages encoded into a shared frame: one per publish, not per subscriber.
    pub frames_encoded: AtomicU64,
    /// Messages deflated (permessage-deflate): a publish counts once per
    /// group of subscribers sharing a window, plus once per subscriber with
    /// its own context in a small topic.
    pub compressions: AtomicU64,
    /// Published messages queued to subscribers.
    pub delivered: AtomicU64,
    /// Published messages a subscriber did not get (slow-consumer policy).
    pub dropped: AtomicU64,
    /// Bytes written to sockets.
    pub bytes_out: AtomicU64,
    /// Bytes queued and not yet written, all connections together (updated
    /// once per loop turn).
    pub buffered: AtomicU64,
}

/// Messages to a worker from other threads (or from handles on its own).
pub(crate) enum Command {
    /// The answer to a deferred upgrade; the data is the handler's `Data`.
    Answer {
        key: usize,
        generation: u32,
        answer: Result<Accept<Box<dyn Any + Send>>, Response>,
    },
    /// Deliver a publish to this worker's subscribers.
    Publish {
        topic: Arc<[u8]>,
        msg: Prepared,
        compress: Option<bool>,
    },
    /// Send on one connection.
    Send {
        key: u32,
        generation: u32,
        msg: Prepared,
    },
    /// Close one connection.
    Close {
        key: u32,
        generation: u32,
        code: u16,
        reason: String,
    },
    /// Subscribe one connection; the registry already counts it.
    Subscribe {
        key: u32,
        generation: u32,
        topic: Arc<crate::pubsub::Topic>,
        first: bool,
    },
    /// Unsubscribe one connection.
    Unsubscribe {
        key: u32,
        generation: u32,
        topic: Arc<[u8]>,
    },
    /// Resume reading on one connection.
    Resume { key: u32, generation: u32 },
}

/// What connects the workers: their mailboxes, the topic registry, counters.
pub(crate) struct Hub {
    pub mailboxes: Vec<worker::Mailbox>,
    pub registry: Registry,
    pub stats: Stats,
    pub stopping: AtomicBool,
    pub opts: Arc<Options>,
}

impl Hub {
    /// Queue a command for worker `w`; false if that worker has exited.
    pub(crate) fn command(&self, w: usize, c: Command) -> bool {
        let (tx, waker) = &self.mailboxes[w];
        if tx.send(c).is_err() {
            return false;
        }
        if CURRENT_WORKER.with(Cell::get) != w {
            let _ = waker.wake();
        }
        true
    }

    /// Publish from anywhere: to every worker with subscribers.
    pub(crate) fn publish(&self, topic: &[u8], msg: &Prepared, compress: Option<bool>) -> usize {
        self.stats.publishes.fetch_add(1, Ordering::Relaxed);
        let Some(t) = self.registry.get(topic) else {
            return 0;
        };
        let mut n = 0;
        for (w, count) in t.per_worker.iter().enumerate() {
            if count.load(Ordering::Acquire) > 0 {
                let c = Command::Publish {
                    topic: t.name.clone(),
                    msg: msg.clone(),
                    compress,
                };
                n += self.command(w, c) as usize;
            }
        }
        n
    }
}

/// What the workers share: read-only after start, plus the hub.
pub(crate) struct Shared<H> {
    pub handler: H,
    pub router: Router,
    pub hub: Arc<Hub>,
}

/// Configures and starts a [`Server`].
#[derive(Debug, Default)]
pub struct ServerBuilder {
    addr: Option<String>,
    opts: Options,
    router: Router,
}

impl ServerBuilder {
    /// Listen on this address (default `127.0.0.1:0`: a free port).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.addr = Some(addr.into());
        self
    }

    /// Replace the options.
    pub fn options(mut self, opts: Options) -> Self {
        self.opts = opts;
        self
    }

    /// Add a route pattern (`/echo`, `/room/:room_id`, `/files/*`). With no
    /// route every path is accepted; with routes, other paths get 404.
    pub fn route(mut self, pattern: &str) -> Self {
        self.router.add(pattern);
        self
    }

    /// Bind the listeners and start the workers.
    ///
    /// Each worker gets its own listener on the same port (`SO_REUSEPORT`),
    /// so the kernel spreads connections over workers with no hand-off.
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<Server> {
        let addr = self
            .addr
            .as_deref()
            .unwrap_or("127.0.0.1:0")
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let n = self.opts.workers.max(1);
        let mut local = addr;
        let mut parts = Vec::new();
        let mut mailboxes = Vec::new();
        for me in 0..n {
            let listener = listen(local, n > 1)?;
            local = listener.local_addr()?;
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), worker::WAKER)?);
            let (tx, rx) = crossbeam_channel::unbounded();
            mailboxes.push((tx, waker));
            parts.push(worker::Parts {
                poll,
                listener,
                rx,
                me,
            });
        }
        let opts = Arc::new(self.opts);
        let hub = Arc::new(Hub {
            mailboxes,
            registry: Registry::new(n, opts.slow_consumer),
            stats: Stats::default(),
            stopping: AtomicBool::new(false),
            opts,
        });
        let shared = Arc::new(Shared {
            handler,
            router: self.router,
            hub: hub.clone(),
        });
        let mut threads = Vec::new();
        for p in parts {
            let me = p.me;
            let w = worker::Worker::new(p, shared.clone())?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("volley-worker-{me}"))
                    .spawn(move || w.run())?,
            );
        }
        Ok(Server {
            addr: local,
            threads,
            hub,
        })
    }
}

/// A listener with `SO_REUSEADDR` (and `SO_REUSEPORT` when several workers
/// share the port), non-blocking, with a deep backlog.
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(false).ok();
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(TcpListener::from_std(s.into()))
}

/// A running server. Dropping it stops it (see [`Server::stop`]).
pub struct Server {
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Start configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the server listens on (with the real port when bound to 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.hub.stats
    }

    /// Connections held now.
    pub fn connections(&self) -> usize {
        self.hub.stats.connections.load(Ordering::Relaxed)
    }

    /// A handle for publishing from any thread, that outlives borrows of the server.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            hub: self.hub.clone(),
        }
    }

    /// Publish to every subscriber of `topic` on every worker, from any
    /// thread. Encodes once; returns the number of workers it was handed to.
    pub fn publish<'m>(&self, topic: impl AsRef<[u8]>, msg: impl Into<Message<'m>>) -> usize {
        self.publisher().publish(topic, msg)
    }

    /// Publish a prepared message from any thread.
    pub fn publish_prepared(&self, topic: impl AsRef<[u8]>, msg: &Prepared) -> usize {
        self.hub.publish(topic.as_ref(), msg, None)
    }

    /// Subscribers of `topic` on all workers (WebSocket and SSE).
    pub fn subscriber_count(&self, topic: impl AsRef<[u8]>) -> usize {
        self.hub.registry.count(topic.as_ref())
    }

    /// Set what happens to a slow subscriber of `topic` (see [`SlowConsumer`]).
    /// Applies when the topic next goes from no subscriber to one.
    pub fn set_topic_policy(&self, topic: impl AsRef<[u8]>, policy: SlowConsumer) {
        self.hub.registry.set_policy(topic.as_ref(), policy);
    }

    /// Stop accepting, send close 1001 to every open WebSocket, and wait up to
    /// `close_timeout` for them to finish before the workers exit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.hub.stopping.store(true, Ordering::Release);
        for (_, w) in &self.hub.mailboxes {
            let _ = w.wake();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Block until the server stops (it runs until the process exits).
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
        }
    }
}

/// Publishes from any thread (cheap to clone).
#[derive(Clone)]
pub struct Publisher {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publisher")
    }
}

impl Publisher {
    /// Publish to every subscriber of `topic`; returns the workers reached.
    pub fn publish<'m>(&self, topic: impl AsRef<[u8]>, msg: impl Into<Message<'m>>) -> usize {
        self.publish_with(topic.as_ref(), msg.into(), None)
    }

    fn publish_with(&self, topic: &[u8], msg: Message<'_>, compress: Option<bool>) -> usize {
        let p = Prepared::new(msg);
        self.hub
            .stats
            .frames_encoded
            .fetch_add(1, Ordering::Relaxed);
        self.hub.publish(topic, &p, compress)
    }

    /// Publish with an explicit compression choice (Bun's `compress` flag).
    pub fn publish_compressed<'m>(
        &self,
        topic: impl AsRef<[u8]>,
        msg: impl Into<Message<'m>>,
        compress: bool,
    ) -> usize {
        self.publish_with(topic.as_ref(), msg.into(), Some(compress))
    }

    /// Publish a prepared message.
    pub fn publish_prepared(&self, topic: impl AsRef<[u8]>, msg: &Prepared) -> usize {
        self.hub.publish(topic.as_ref(), msg, None)
    }

    /// Subscribers of `topic`.
    pub fn subscriber_count(&self, topic: impl AsRef<[u8]>) -> usize {
        self.hub.registry.count(topic.as_ref())
    }
}

/// Internals exposed for the criterion benches only; not part of the API.
#[doc(hidden)]
pub mod bench_support {
    use super::out::{OutQueue, Pool};
    use crate::pubsub::Prepared;
    use std::io::{self, Write};

    /// N subscriber queues, fed the way a publish feeds them.
    pub struct Fanout {
        queues: Vec<OutQueue>,
        pool: Pool,
    }

    /// A socket that takes everything.
    struct Sink;
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn write_vectored(&mut self, b: &[io::IoSlice<'_>]) -> io::Result<usize> {
            Ok(b.iter().map(|s| s.len()).sum())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Fanout {
        /// `n` empty subscriber queues.
        pub fn new(n: usize) -> Self {
            Fanout {
                queues: (0..n).map(|_| OutQueue::default()).collect(),
                pool: Pool::default(),
            }
        }

        /// Queue `msg` for every subscriber (copy or share, as a publish does).
        pub fn publish(&mut self, msg: &Prepared) {
            for q in &mut self.queues {
                q.push_published(&mut self.pool, msg.frame(), false);
            }
        }

        /// Write every queue out to a sink (the loop turn's flush).
        pub fn flush(&mut self) -> usize {
            let mut n = 0;
            for q in &mut self.queues {
                n += q.len();
                let _ = q.flush(&mut Sink, &mut self.pool);
            }
            n
        }
    }
}
