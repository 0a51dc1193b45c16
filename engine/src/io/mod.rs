//! The event loop: workers, connections, timers, and the server handle.

mod conn;
mod out;
mod timer;
mod worker;

pub use conn::WebSocket;
pub use worker::PendingUpgrade;

use crate::route::Router;
use crate::{Handler, Options};
use mio::net::TcpListener;
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Counters, readable at any time from any thread.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections held now (handshaking, open or closing).
    pub connections: AtomicUsize,
    /// WebSockets opened since start.
    pub opened: AtomicU64,
    /// Messages received since start.
    pub messages_in: AtomicU64,
}

/// What the workers share: read-only after start, plus atomics.
pub(crate) struct Shared<H> {
    pub handler: H,
    pub opts: Arc<Options>,
    pub router: Router,
    pub stats: Stats,
    pub stopping: AtomicBool,
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
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<Server> {
        let addr = self
            .addr
            .as_deref()
            .unwrap_or("127.0.0.1:0")
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let n = self.opts.workers.max(1);
        let shared = Arc::new(Shared {
            handler,
            opts: Arc::new(self.opts),
            router: self.router,
            stats: Stats::default(),
            stopping: AtomicBool::new(false),
        });
        let mut local = addr;
        let mut wakers = Vec::new();
        let mut workers = Vec::new();
        for i in 0..n {
            let listener = listen(local, n > 1)?;
            local = listener.local_addr()?;
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), worker::WAKER)?);
            wakers.push(waker.clone());
            let w = worker::Worker::new(poll, listener, waker, shared.clone())?;
            workers.push(
                std::thread::Builder::new()
                    .name(format!("volley-worker-{i}"))
                    .spawn(move || w.run())?,
            );
        }
        let stop_shared = shared.clone();
        Ok(Server {
            addr: local,
            threads: workers,
            wakers,
            stop_flag: Box::new(move || stop_shared.stopping.store(true, Ordering::Release)),
            stats: Box::new(StatsRef(shared)),
        })
    }
}

struct StatsRef<H>(Arc<Shared<H>>);

trait StatsSource: Send + Sync {
    fn stats(&self) -> &Stats;
}

impl<H: Handler> StatsSource for StatsRef<H> {
    fn stats(&self) -> &Stats {
        &self.0.stats
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
    wakers: Vec<Arc<Waker>>,
    stop_flag: Box<dyn Fn() + Send + Sync>,
    stats: Box<dyn StatsSource>,
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
        self.stats.stats()
    }

    /// Connections held now (Bun's `pendingWebSockets` counts open ones only).
    pub fn connections(&self) -> usize {
        self.stats().connections.load(Ordering::Relaxed)
    }

    /// Stop accepting, send close 1001 to every open WebSocket, and wait up to
    /// `close_timeout` for them to finish before the workers exit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        (self.stop_flag)();
        for w in &self.wakers {
            let _ = w.wake();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Block until the server stops (it runs until [`Server::stop`] from
    /// another handle or the process exits).
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
