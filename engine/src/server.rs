//! The server: configuring and starting it ([`ServerBuilder`]), running and
//! stopping it ([`Server`]), reaching it from any thread ([`ServerHandle`]).

use crate::id::{ConnId, MAX_WORKERS};
use crate::io::hub::{self, Answer, Command, Hub, Link, Mailbox};
use crate::io::reply::{Accept, Response};
use crate::io::sock::Listener;
use crate::io::websocket::{WsHandle, op_of};
use crate::io::worker::{self, Shared};
use crate::pubsub::{Prepared, Registry, SlowConsumer};
use crate::queue::{EventQueue, QueueHandler, QueueShared};
use crate::route::Router;
use crate::{Handler, Message, Options, Stats};
use mio::net::{TcpListener, UnixListener};
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Configures and starts a [`Server`].
#[derive(Debug, Default)]
pub struct ServerBuilder {
    addr: Option<String>,
    unix: Option<PathBuf>,
    opts: Options,
    router: Router,
}

impl ServerBuilder {
    /// Listen on this address (default `127.0.0.1:0`: a free port).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.addr = Some(addr.into());
        self
    }

    /// Listen on a Unix stream socket at `path` instead of TCP (a server
    /// behind a local reverse proxy). The path must not exist (the server
    /// does not remove files; an old socket left by an earlier run is the
    /// caller's to remove), and it stays after the server stops. Peers have
    /// no IP address: `remote_address` is `None`. `reuse_port` does not
    /// apply and is refused.
    pub fn bind_unix(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix = Some(path.into());
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
        self.start(handler, None)
    }

    /// Start in event-queue mode (see [`crate::queue`]): every handler call
    /// becomes an event for the host to drain from the returned queue, and
    /// the host answers upgrades and requests by id. A connection's data is
    /// the host's `u64` user value (0 until its upgrade is accepted).
    pub fn serve_queue(self) -> io::Result<(Server, EventQueue)> {
        if self.opts.max_payload_length > crate::queue::MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_payload_length over 2 GiB in event-queue mode",
            ));
        }
        let shared = QueueShared::new(
            self.opts.workers.clamp(1, MAX_WORKERS),
            self.opts.queue_bytes,
        )?;
        let handler = QueueHandler {
            shared: shared.clone(),
        };
        let server = self.start(handler, Some(shared.clone()))?;
        shared.attach(&server.handle.hub);
        Ok((server, EventQueue::new(shared)))
    }

    fn start<H: Handler>(self, handler: H, queue: Option<Arc<QueueShared>>) -> io::Result<Server> {
        let bridge = self.opts.pubsub_bridge.clone();
        let (local, hub, workers) = self.build(handler, true, queue)?;
        if let Some(url) = bridge {
            start_bridge(&hub, &url)?;
        }
        let n = workers.len();
        let mut threads = Vec::new();
        for w in workers {
            let me = threads.len();
            let spawned = std::thread::Builder::new()
                .name(format!("volley-worker-{me}"))
                .spawn(move || w.run());
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // The workers started so far stop; the rest never ran.
                    for w in threads.len()..n {
                        hub.worker_exited(w);
                    }
                    hub.request_stop(hub::STOP_NOW);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Server {
            addr: local,
            threads: Mutex::new(threads),
            handle: ServerHandle { hub },
        })
    }

    /// The hub and the workers, not yet running; with `listen`, each
    /// worker has its listener (the harness runs one without).
    pub(crate) fn build<H: Handler>(
        self,
        handler: H,
        listen_too: bool,
        queue: Option<Arc<QueueShared>>,
    ) -> io::Result<(SocketAddr, Arc<Hub>, Vec<worker::Worker<H>>)> {
        let n = self.opts.workers.clamp(1, MAX_WORKERS);
        let mut parts = Vec::new();
        let mut links = Vec::new();
        let mut listeners = match (listen_too, &self.unix) {
            (false, _) => (0..n).map(|_| None).collect(),
            (true, Some(path)) => listen_unix(path, n, self.opts.reuse_port)?,
            (true, None) => listen_tcp(self.addr.as_deref(), n, self.opts.reuse_port)?,
        };
        let local = match listeners.first() {
            Some(Some(Listener::Tcp(l))) => l.local_addr()?,
            _ => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        // Exclusive (the default): one listening socket, bound without
        // SO_REUSEPORT, shared by the workers; see `listen_tcp`.
        let shared_listener = listen_too && !self.opts.reuse_port;
        for (me, listener) in listeners.drain(..).enumerate() {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), worker::WAKER)?;
            links.push(Link {
                mailbox: Mailbox::new(waker, self.opts.mailbox_bytes.max(1 << 16)),
                slots: Default::default(),
            });
            parts.push(worker::Parts {
                poll,
                listener,
                shared_listener,
                me,
            });
        }
        let opts = Arc::new(self.opts);
        let hub = Arc::new(Hub::new(
            links.into_boxed_slice(),
            Registry::new(n, opts.slow_consumer),
            opts,
        ));
        let shared = Arc::new(Shared {
            limits: hub.opts.connection_config(),
            handler,
            router: self.router,
            hub: hub.clone(),
            queue: queue.map(|q| q as Arc<dyn worker::HostQueue>),
        });
        let workers = parts
            .into_iter()
            .map(|p| worker::Worker::new(p, shared.clone()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok((local, hub, workers))
    }
}

#[cfg(feature = "redis-bridge")]
fn start_bridge(hub: &Arc<Hub>, url: &str) -> io::Result<()> {
    let url = crate::bridge::BridgeUrl::parse(url)?;
    let b = crate::bridge::Bridge::start(&url, hub)?;
    let _ = hub.bridge.set(b as Arc<dyn crate::io::hub::Relay>);
    Ok(())
}

#[cfg(not(feature = "redis-bridge"))]
fn start_bridge(_: &Arc<Hub>, _: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "pubsub_bridge needs volley built with the `redis-bridge` feature",
    ))
}

/// One listener per worker on a TCP address. Exclusive (the default): one
/// listening socket, bound without `SO_REUSEPORT` so that no other socket
/// can join the port, shared by the workers (a duplicate descriptor each).
/// `reuse_port`: one `SO_REUSEPORT` listener per worker (the kernel spreads
/// connections; other processes may join the group).
fn listen_tcp(addr: Option<&str>, n: usize, reuse_port: bool) -> io::Result<Vec<Option<Listener>>> {
    let mut addr = addr
        .unwrap_or("127.0.0.1:0")
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let mut out = Vec::with_capacity(n);
    if !reuse_port {
        let l = listen(addr, false)?;
        for _ in 0..n {
            out.push(Some(Listener::Tcp(TcpListener::from_std(l.try_clone()?))));
        }
        return Ok(out);
    }
    for _ in 0..n {
        let l = listen(addr, true)?;
        // The first one fixes the port (when 0 was asked) for the others.
        addr = l.local_addr()?;
        out.push(Some(Listener::Tcp(TcpListener::from_std(l))));
    }
    Ok(out)
}

/// One Unix stream socket at `path`, shared by the workers as the exclusive
/// TCP listener is. `SO_REUSEPORT` has no meaning for a path: refused.
fn listen_unix(
    path: &std::path::Path,
    n: usize,
    reuse_port: bool,
) -> io::Result<Vec<Option<Listener>>> {
    if reuse_port {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "reuse_port does not apply to a Unix socket",
        ));
    }
    let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    s.bind(&socket2::SockAddr::unix(path)?)?;
    s.listen(4096)?;
    let l: std::os::unix::net::UnixListener = s.into();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Some(Listener::Unix(UnixListener::from_std(l.try_clone()?))));
    }
    Ok(out)
}

/// A listener with `SO_REUSEADDR` (a restart binds over TIME_WAIT; on
/// Linux it never lets two listeners share a port) and, with
/// `reuse_port`, `SO_REUSEPORT`; non-blocking, with a deep backlog.
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(false).ok();
    }
    // Frames are written whole, so Nagle's algorithm only adds latency. On
    // Linux an accepted socket inherits `TCP_NODELAY` from its listener (it
    // is cloned from it): set once here, it saves a `setsockopt` per
    // connection (see `Listener::accept`).
    #[cfg(target_os = "linux")]
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// A running server. Every method takes `&self`: one thread may
/// [`Server::join`] while another calls [`Server::stop`]. Dropping it stops
/// it and waits for the workers (not when dropped on one of its own worker
/// threads, which cannot wait for themselves).
pub struct Server {
    addr: SocketAddr,
    threads: Mutex<Vec<JoinHandle<()>>>,
    handle: ServerHandle,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl std::ops::Deref for Server {
    type Target = ServerHandle;
    fn deref(&self) -> &ServerHandle {
        &self.handle
    }
}

impl Server {
    /// Start configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the server listens on (with the real port when bound to
    /// 0); `0.0.0.0:0` for a server on a Unix socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle for any thread, that outlives borrows of the server.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// A handle for publishing from any thread (the same as [`Server::handle`]).
    pub fn publisher(&self) -> ServerHandle {
        self.handle()
    }

    /// Stop accepting, send close 1001 to every open WebSocket, and wait up
    /// to `close_timeout` for them to finish before the workers exit; then
    /// return. Called on one of this server's worker threads (from a
    /// handler), it only asks, and returns at once.
    pub fn stop(&self) {
        self.handle.stop();
        self.join();
    }

    /// Stop now: every connection is dropped without a closing handshake
    /// (close handlers run with 1006). Waits like [`Server::stop`].
    pub fn stop_now(&self) {
        self.handle.stop_now();
        self.join();
    }

    /// Bun's `server.stop()` (without `true`): stop accepting new
    /// connections (one made after this returns is refused) without
    /// waiting for the rest; open WebSockets and requests in flight carry
    /// on, and the workers exit when the last of them has ended
    /// ([`Server::join`] waits for that). Idle keep-alive connections close
    /// at once, and HTTP answers from then on close their connection
    /// instead of keeping it alive. A later [`Server::stop`] or
    /// [`Server::stop_now`] closes what is left.
    pub fn stop_listening(&self) {
        self.handle.stop_listening();
    }

    /// Block until the server has stopped (it runs until something calls
    /// `stop`). Several threads may wait at once. Returns at once on one of
    /// this server's own worker threads.
    pub fn join(&self) {
        if self.handle.hub.current_worker().is_some() {
            return;
        }
        self.handle.hub.wait_exited();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        if let Some(b) = self.handle.hub.bridge.get() {
            b.shutdown();
        }
    }

    /// Has the server stopped?
    pub fn is_stopped(&self) -> bool {
        !self.handle.hub.is_running()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.stop();
        if self.handle.hub.current_worker().is_none() {
            self.join();
        }
        // On a worker thread the threads are detached: they exit on their own.
    }
}

/// The server as any thread reaches it: publish, send to a connection by id,
/// answer deferred upgrades and requests, stop. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) hub: Arc<Hub>,
}

/// The old name of [`ServerHandle`].
pub type Publisher = ServerHandle;

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerHandle")
    }
}

impl ServerHandle {
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.hub.stats
    }

    /// The options the server runs with.
    pub fn options(&self) -> &Options {
        &self.hub.opts
    }

    /// Batch this thread's sends, publishes and answers to this server:
    /// until the matching [`ServerHandle::uncork`], each worker they go to
    /// is woken once, at the end, instead of once per call. Nests. A cork
    /// is this thread's and this server's: another server's sends, and
    /// another thread's, are not held back. Handlers run corked already.
    pub fn cork(&self) {
        self.hub.cork();
    }

    /// End a [`ServerHandle::cork`]; the outermost one wakes the workers
    /// sent to. An uncork without a cork does nothing.
    pub fn uncork(&self) {
        self.hub.uncork();
    }

    /// Close the idle HTTP connections (keep-alive ones between requests)
    /// on every worker, as Bun's `closeIdleConnections` does: returns how
    /// many. WebSockets, requests in flight and the listener are untouched.
    /// Waits for each worker's turn (at most 5 s); None when called on one
    /// of this server's worker threads (it would wait for itself).
    pub fn close_idle_connections(&self) -> Option<usize> {
        self.hub.close_idle(std::time::Duration::from_secs(5))
    }

    /// How many corks of this server this thread is inside (0: none).
    pub fn cork_depth(&self) -> u32 {
        self.hub.cork_depth()
    }

    /// Connections held now.
    pub fn connections(&self) -> usize {
        self.hub.stats.connections.load(Ordering::Relaxed)
    }

    /// The connection with this id, for any thread.
    pub fn ws(&self, id: ConnId) -> WsHandle {
        WsHandle {
            hub: self.hub.clone(),
            id,
        }
    }

    /// Publish to every subscriber of `topic` on every worker, from any
    /// thread. Encodes once; returns the number of workers it was handed to.
    pub fn publish<'m>(&self, topic: impl AsRef<[u8]>, msg: impl Into<Message<'m>>) -> usize {
        self.publish_with(topic.as_ref(), msg.into(), None, None)
    }

    /// Publish as connection `from` would (Bun's `ws.publish` from outside
    /// its handlers): everyone but `from` gets it, unless `publish_to_self`.
    pub fn publish_from<'m>(
        &self,
        from: ConnId,
        topic: impl AsRef<[u8]>,
        msg: impl Into<Message<'m>>,
        compress: Option<bool>,
    ) -> usize {
        let except = (!self.hub.opts.publish_to_self).then_some(from);
        self.publish_with(topic.as_ref(), msg.into(), compress, except)
    }

    /// Publish with an explicit compression choice (Bun's `compress` flag).
    pub fn publish_compressed<'m>(
        &self,
        topic: impl AsRef<[u8]>,
        msg: impl Into<Message<'m>>,
        compress: bool,
    ) -> usize {
        self.publish_with(topic.as_ref(), msg.into(), Some(compress), None)
    }

    fn publish_with(
        &self,
        topic: &[u8],
        msg: Message<'_>,
        compress: Option<bool>,
        except: Option<ConnId>,
    ) -> usize {
        let stats = &self.hub.stats;
        stats.publishes.fetch_add(1, Ordering::Relaxed);
        let t = self.hub.registry.get(topic);
        if t.is_none() && !self.hub.bridging() {
            return 0;
        }
        let p = Prepared::new(msg);
        stats.frames_encoded.fetch_add(1, Ordering::Relaxed);
        self.hub.bridge_out(topic, &p, compress);
        t.map_or(0, |t| {
            self.hub.publish_to_workers(&t, &p, compress, None, except)
        })
    }

    /// Publish a prepared message from any thread.
    pub fn publish_prepared(&self, topic: impl AsRef<[u8]>, msg: &Prepared) -> usize {
        let topic = topic.as_ref();
        self.hub.stats.publishes.fetch_add(1, Ordering::Relaxed);
        self.hub.bridge_out(topic, msg, None);
        match self.hub.registry.get(topic) {
            Some(t) => self.hub.publish_to_workers(&t, msg, None, None, None),
            None => 0,
        }
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

    fn answer(&self, id: ConnId, answer: Answer) -> bool {
        self.hub
            .command(
                id.worker(),
                Command::Answer {
                    id,
                    answer: Box::new(answer),
                },
            )
            .is_ok()
    }

    /// Accept an upgrade answered later ([`crate::Upgrade::Later`]). `D`
    /// must be the handler's `Data` (otherwise the client gets 500). False
    /// if it could not be queued (server stopping, mailbox full).
    pub fn accept_upgrade<D: Send + 'static>(&self, id: ConnId, a: Accept<D>) -> bool {
        self.answer(id, Answer::Upgrade(Ok(a.boxed())))
    }

    /// Refuse an upgrade answered later.
    pub fn reject_upgrade(&self, id: ConnId, r: Response) -> bool {
        self.answer(id, Answer::Upgrade(Err(r)))
    }

    /// Answer an HTTP request answered later ([`crate::Fetch::Later`]).
    ///
    /// An event stream ([`Response::event_stream`]) or a streamed body
    /// ([`Response::stream`]) takes sends by `id` from then on (see
    /// [`ServerHandle::send`]).
    pub fn respond(&self, id: ConnId, r: Response) -> bool {
        if r.is_streamed() {
            self.open_event_stream(id);
        }
        self.answer(id, Answer::Respond(r))
    }

    /// Let sends by `id` in before an event-stream answer is handed over
    /// (a host answering inside its request callback, whose answer the
    /// worker takes when the callback returns); [`ServerHandle::respond`]
    /// does this itself.
    #[doc(hidden)]
    pub fn open_event_stream(&self, id: ConnId) {
        if let Some(s) = self.hub.slot(id) {
            s.open_stream(id);
        }
    }

    /// Have all of the server's workers exited (after a stop)?
    pub fn is_stopped(&self) -> bool {
        !self.hub.is_running()
    }

    /// Is this thread one of this server's workers (inside a handler)?
    pub fn on_worker_thread(&self) -> bool {
        self.hub.current_worker().is_some()
    }

    /// Ask the server to stop gracefully (1001 to every WebSocket) and
    /// return once it no longer accepts; [`Server::join`] waits for the rest.
    pub fn stop(&self) {
        self.request_stop(hub::STOP_GRACEFUL);
    }

    /// Ask the server to drop every connection now and return once it no
    /// longer accepts.
    pub fn stop_now(&self) {
        self.request_stop(hub::STOP_NOW);
    }

    /// Stop accepting and return once no worker accepts; open connections
    /// carry on (see [`Server::stop_listening`]).
    pub fn stop_listening(&self) {
        self.request_stop(hub::STOP_LISTENING);
    }

    /// The request of [`ServerHandle::stop`] (`now`: of
    /// [`ServerHandle::stop_now`]) without waiting for the listeners to
    /// close: one atomic and one eventfd write per worker, no lock and no
    /// allocation, so a signal handler may call it.
    pub fn signal_stop(&self, now: bool) {
        self.hub.request_stop(if now {
            hub::STOP_NOW
        } else {
            hub::STOP_GRACEFUL
        });
    }

    /// Raise the stop level, then wait (not on a worker thread, which
    /// would wait for itself; and at most a second, in case a worker is
    /// stuck in a handler) until every listener is closed, so that a
    /// connection made after this returns is refused.
    fn request_stop(&self, level: u8) {
        self.hub.request_stop(level);
        if !self.on_worker_thread() {
            self.hub.wait_unlistened(std::time::Duration::from_secs(1));
        }
    }

    /// A message to a connection by id (see [`WsHandle::send`]), with an
    /// optional compression choice; no handle is made.
    ///
    /// `id` may also name an HTTP request answered with an event stream:
    /// text goes out as one event (a `data:` field per line), binary as
    /// the bytes given (already event-stream formatted). [`WsHandle::close`]
    /// on it ends the response.
    pub fn send<'m>(
        &self,
        id: ConnId,
        msg: impl Into<Message<'m>>,
        compress: Option<bool>,
    ) -> crate::SendStatus {
        let (op, data) = op_of(msg.into());
        self.hub.send(id, op, data, compress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every accepted TCP connection has `TCP_NODELAY`, whichever way it
    /// got it (inherited from the listener on Linux, set at accept
    /// elsewhere), on both kinds of listener and both address families.
    #[test]
    fn accepted_connections_have_nodelay() {
        for (addr, reuse_port) in [
            ("127.0.0.1:0", false),
            ("127.0.0.1:0", true),
            ("[::1]:0", false),
        ] {
            let Ok(listeners) = listen_tcp(Some(addr), 2, reuse_port) else {
                assert!(addr.starts_with('['), "cannot listen on {addr}");
                continue; // no IPv6 loopback on this machine
            };
            let listeners: Vec<&Listener> = listeners.iter().flatten().collect();
            let Listener::Tcp(t) = listeners[0] else {
                panic!("a TCP listener expected");
            };
            for _ in 0..4 {
                let _client = std::net::TcpStream::connect(t.local_addr().unwrap()).unwrap();
                // With SO_REUSEPORT the kernel picks the listener.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                let s = 'found: loop {
                    for l in &listeners {
                        match l.accept() {
                            Ok(s) => break 'found s,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => panic!("accept: {e}"),
                        }
                    }
                    assert!(std::time::Instant::now() < deadline, "no connection");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                };
                assert!(s.nodelay().unwrap(), "{addr} reuse_port={reuse_port}");
            }
        }
    }
}
