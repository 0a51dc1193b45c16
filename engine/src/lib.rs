//! Volley: a WebSocket server engine with Bun's `ServerWebSocket` surface.
//!
//! A [`Handler`] receives `upgrade`, `open`, `message`, `close`, `drain`,
//! `ping` and `pong` events on worker threads, each running its own `mio`
//! event loop; the [`WebSocket`] handle it gets sends, closes, pauses reading
//! and reports backpressure the way Bun does.
//!
//! # Examples
//!
//! An echo server:
//!
//! ```no_run
//! use volley::{Handler, Message, Request, Server, Upgrade, WebSocket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn upgrade(&self, _req: &Request<'_>) -> Upgrade<()> {
//!         Upgrade::accept(())
//!     }
//!     fn message(&self, ws: &mut WebSocket<'_, ()>, msg: Message<'_>) {
//!         ws.send(msg);
//!     }
//! }
//!
//! let server = Server::builder().bind("127.0.0.1:9001").route("/echo").serve(Echo)?;
//! server.join();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Platform notes
//! The event loop uses `mio` (epoll on Linux, kqueue on the BSDs and macOS).
//! Per-worker listeners use `SO_REUSEPORT`, available on Linux and the BSDs.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod io;
pub mod proto;
pub mod pubsub;
mod route;

use std::net::SocketAddr;
use std::time::Duration;

#[doc(hidden)]
pub use io::bench_support;
pub use io::tls;
pub use io::{PendingUpgrade, Publisher, Server, ServerBuilder, Stats, WebSocket, WsHandle};
pub use proto::close;
pub use proto::deflate::{Config as Deflate, Mode as DeflateMode};
pub use pubsub::{Prepared, PublishResult, SlowConsumer};

/// Server options. `Default` gives Bun's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest message accepted, summed over its fragments; larger closes with 1009
    /// before it is buffered. Default 16 MiB.
    pub max_payload_length: usize,
    /// Inbound silence after which a connection is pinged (with `send_pings`)
    /// or closed. Outbound traffic does not reset it. `Duration::ZERO` disables.
    /// Default 120 s.
    pub idle_timeout: Duration,
    /// Bytes queued for one connection past which sends are dropped. Default 16 MiB.
    pub backpressure_limit: usize,
    /// Close (1008) a connection whose send would pass `backpressure_limit`
    /// instead of dropping the message. Default false.
    pub close_on_backpressure_limit: bool,
    /// Ping silent peers instead of closing them at once. Default true.
    pub send_pings: bool,
    /// Ping after this much inbound silence (and again each interval); `None`
    /// pings at `idle_timeout`. A peer that answers is then never idle-closed
    /// unless `idle_timeout` passes without any inbound frame. Default `None`.
    pub ping_interval: Option<Duration>,
    /// How long a pinged peer has to send anything before it is closed.
    /// Default 30 s.
    pub pong_timeout: Duration,
    /// Close (1001) every connection this long after it opened. Default `None`.
    pub max_lifetime: Option<Duration>,
    /// Time for a client to send its whole upgrade request, and for a
    /// deferred upgrade to be answered. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time the peer has to answer a close frame before the TCP connection is
    /// dropped. Default 5 s.
    pub close_timeout: Duration,
    /// Largest request head in bytes (431 past it). Default 16 KiB.
    pub max_header_bytes: usize,
    /// Most request header lines (431 past it). Default 64.
    pub max_headers: usize,
    /// Most TCP connections held at once, all workers together; past it a
    /// new connection is answered 503 and closed before any upgrade.
    /// 0: no limit (the process's file descriptor limit still applies).
    /// Default 0.
    pub max_connections: usize,
    /// Most frames in one fragmented message (1008 past it). Default 131,072
    /// (twice what Autobahn's largest fragmented cases send).
    pub max_fragments: u32,
    /// Unsent pong bytes a connection may accumulate while it reads nothing
    /// of what the server writes (1008 past it: a ping flood). Pongs
    /// otherwise pass the backpressure limit. Default 64 KiB.
    pub max_control_backlog: usize,
    /// Worker threads, each with its own event loop and listener. Default:
    /// one per core.
    pub workers: usize,
    /// Deliver a connection's publishes to itself too. Default false.
    pub publish_to_self: bool,
    /// What a slow subscriber gets by default (per topic:
    /// [`Server::set_topic_policy`]). Default [`SlowConsumer::DropNewest`].
    pub slow_consumer: SlowConsumer,
    /// Interval of keep-alive comments on `text/event-stream` responses.
    /// Default 15 s.
    pub sse_keepalive: Duration,
    /// Serve `wss://` with this configuration (see [`tls::server_config`]).
    /// Default `None`: plain TCP.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// permessage-deflate (RFC 7692), like Bun's `perMessageDeflate`: `None`
    /// (default) declines every offer. With [`Deflate`], messages of at
    /// least `threshold` bytes are compressed when the client agreed.
    pub per_message_deflate: Option<Deflate>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_payload_length: 16 * 1024 * 1024,
            idle_timeout: Duration::from_secs(120),
            backpressure_limit: 16 * 1024 * 1024,
            close_on_backpressure_limit: false,
            send_pings: true,
            ping_interval: None,
            pong_timeout: Duration::from_secs(30),
            max_lifetime: None,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_connections: 0,
            max_fragments: 1 << 17,
            max_control_backlog: 64 * 1024,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            publish_to_self: false,
            slow_consumer: SlowConsumer::DropNewest,
            sse_keepalive: Duration::from_secs(15),
            per_message_deflate: None,
            tls: None,
        }
    }
}

/// A message: text is always valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Is it a binary message?
    pub fn is_binary(&self) -> bool {
        matches!(self, Message::Binary(_))
    }
}

impl<'a> From<&'a str> for Message<'a> {
    fn from(s: &'a str) -> Self {
        Message::Text(s)
    }
}

impl<'a> From<&'a [u8]> for Message<'a> {
    fn from(b: &'a [u8]) -> Self {
        Message::Binary(b)
    }
}

/// What a send did, like the number Bun's `ws.send` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Queued for this loop turn's write with no backlog: the bytes of the frame.
    Sent(usize),
    /// Queued, but the connection already has unsent bytes (Bun's `-1`);
    /// `drain` fires when it empties.
    Backpressure,
    /// Not sent: the connection is closing or past `backpressure_limit` (Bun's `0`).
    Dropped,
}

impl SendStatus {
    /// Bun's number: bytes, `-1` for backpressure, `0` for dropped.
    pub fn as_bun(self) -> isize {
        match self {
            SendStatus::Sent(n) => n as isize,
            SendStatus::Backpressure => -1,
            SendStatus::Dropped => 0,
        }
    }
}

/// The WebSocket `readyState` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReadyState {
    /// Upgrade not finished.
    Connecting = 0,
    /// Messages flow.
    Open = 1,
    /// A close frame was sent or received.
    Closing = 2,
    /// Gone.
    Closed = 3,
}

/// An HTTP response: for a rejected upgrade or from [`Handler::fetch`].
/// The connection closes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (`Content-Length` and `Connection` are written by the server).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Stream publishes of these topics as `text/event-stream` instead of a body.
    pub(crate) event_stream: Option<Vec<Vec<u8>>>,
}

impl Response {
    /// A response with a status and a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            event_stream: None,
        }
    }

    /// A `text/event-stream` response (Server-Sent Events) subscribed to
    /// `topics`: every publish to them arrives as a `data:` event, with a
    /// keep-alive comment every `sse_keepalive`. The subscriptions end with
    /// the connection.
    pub fn event_stream<T: AsRef<[u8]>>(topics: impl IntoIterator<Item = T>) -> Self {
        let mut r = Response::new(200, Vec::new())
            .header("Cache-Control", "no-cache")
            .header("X-Accel-Buffering", "no");
        r.event_stream = Some(topics.into_iter().map(|t| t.as_ref().to_vec()).collect());
        r
    }

    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An accepted upgrade: user data, the chosen subprotocol, extra headers.
#[derive(Debug)]
pub struct Accept<D> {
    /// Data attached to the connection, reachable with [`WebSocket::data`].
    pub data: D,
    /// The subprotocol, which must be one the client offered. `None` answers
    /// without `Sec-WebSocket-Protocol` (the client's offers are never echoed).
    pub protocol: Option<String>,
    /// Extra headers for the 101 response.
    pub headers: Vec<(String, String)>,
}

impl<D> Accept<D> {
    /// Accept with this data, no subprotocol and no extra header.
    pub fn new(data: D) -> Self {
        Accept {
            data,
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Choose a subprotocol from the client's offer.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocol = Some(p.into());
        self
    }

    /// Add a header to the 101 response.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The answer of [`Handler::upgrade`].
pub enum Upgrade<D: Send + 'static> {
    /// Upgrade now.
    Accept(Accept<D>),
    /// Refuse with this response.
    Reject(Response),
    /// Answer later: the closure receives a [`PendingUpgrade`] (send it to
    /// another thread; answer within `handshake_timeout`, or the client gets 503).
    Defer(Box<dyn FnOnce(PendingUpgrade<D>) + Send>),
}

impl<D: Send + 'static> Upgrade<D> {
    /// Accept with `data`.
    pub fn accept(data: D) -> Self {
        Upgrade::Accept(Accept::new(data))
    }

    /// Reject with a status and a body.
    pub fn reject(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Upgrade::Reject(Response::new(status, body))
    }

    /// Decide later, from any thread.
    pub fn defer(f: impl FnOnce(PendingUpgrade<D>) + Send + 'static) -> Self {
        Upgrade::Defer(Box::new(f))
    }
}

/// An HTTP request head, as seen by [`Handler::upgrade`] and [`Handler::fetch`].
/// Borrowed for the duration of the call.
#[derive(Debug)]
pub struct Request<'a> {
    head: &'a proto::handshake::Request<'a>,
    route: Option<&'a str>,
    params: Vec<(&'a str, &'a str)>,
    /// The connection, for `remote_address` (a `getpeername` only when asked).
    sock: &'a mio::net::TcpStream,
}

impl<'a> Request<'a> {
    /// `GET`, `POST`, …
    pub fn method(&self) -> &'a str {
        self.head.method
    }

    /// The path without the query.
    pub fn path(&self) -> &'a str {
        self.head.path
    }

    /// The query string without `?` (empty when absent).
    pub fn query(&self) -> &'a str {
        self.head.query
    }

    /// The first header with this name (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header line, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.head.headers.iter().copied()
    }

    /// The route pattern that matched (`/room/:room_id`), if routes are set.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// A route parameter (`room_id`), raw (not percent-decoded).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The subprotocols the client offers, in its order.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.head.tokens("sec-websocket-protocol")
    }

    /// The peer's address.
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.sock.peer_addr().ok()
    }

    /// Does the client accept `text/event-stream` (an `EventSource`)?
    pub fn wants_event_stream(&self) -> bool {
        self.head.tokens("accept").any(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
    }
}

/// The application's side of the server. Every method runs on a worker
/// thread; the handler is shared by all workers, so it is `Sync`.
#[allow(unused_variables)]
pub trait Handler: Send + Sync + 'static {
    /// Data attached to each connection at upgrade.
    type Data: Send + 'static;

    /// An upgrade request that passed RFC 6455 validation: accept it (with
    /// user data, a subprotocol, headers), reject it, or defer the answer.
    fn upgrade(&self, req: &Request<'_>) -> Upgrade<Self::Data>;

    /// The connection is open; sends are allowed.
    fn open(&self, ws: &mut WebSocket<'_, Self::Data>) {}

    /// A complete message arrived.
    fn message(&self, ws: &mut WebSocket<'_, Self::Data>, msg: Message<'_>) {}

    /// The WebSocket is closed (once per opened connection): the peer's close
    /// code and reason, the code of a protocol error the server closed with,
    /// or 1006 when the connection dropped without a close frame.
    fn close(&self, ws: &mut WebSocket<'_, Self::Data>, code: u16, reason: &str) {}

    /// The connection's backlog was written out after a send reported
    /// backpressure.
    fn drain(&self, ws: &mut WebSocket<'_, Self::Data>) {}

    /// A ping arrived (the pong is sent automatically).
    fn ping(&self, ws: &mut WebSocket<'_, Self::Data>, data: &[u8]) {}

    /// A pong arrived.
    fn pong(&self, ws: &mut WebSocket<'_, Self::Data>, data: &[u8]) {}

    /// A plain HTTP request (no `Upgrade: websocket`). `None`: 426 on a
    /// WebSocket route, 404 elsewhere. Answer [`Response::event_stream`] to
    /// serve publishes as Server-Sent Events.
    fn fetch(&self, req: &Request<'_>) -> Option<Response> {
        None
    }

    /// A published message this (slow) subscriber did not get, under the
    /// topic's [`SlowConsumer`] policy. Runs after the callback that published.
    fn dropped(&self, ws: &mut WebSocket<'_, Self::Data>, topic: &[u8], msg: Message<'_>) {}

    /// `topic` got its first subscriber on this server (`active`), or lost its
    /// last: the hook for bridging topics to a broker.
    fn topic(&self, topic: &[u8], active: bool) {}
}
