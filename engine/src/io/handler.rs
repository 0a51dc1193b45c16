//! The application's side: the [`Handler`] trait and the small types its
//! methods see.

use crate::id::ConnId;
use crate::io::request::{Fetch, Request, Upgrade};
use crate::io::websocket::WebSocket;
use crate::proto::message::Message;
use std::any::Any;
use std::net::SocketAddr;

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

/// A connection looked at from another thread ([`crate::WsHandle::inspect`]):
/// the queries that need its worker.
pub trait Inspect {
    /// The connection's id.
    fn id(&self) -> ConnId;
    /// Bun's `readyState`.
    fn ready_state(&self) -> ReadyState;
    /// The peer's address.
    fn remote_address(&self) -> Option<SocketAddr>;
    /// Bytes queued and not yet written.
    fn buffered_amount(&self) -> usize;
    /// Is the connection subscribed to `topic`?
    fn is_subscribed(&self, topic: &[u8]) -> bool;
    /// The topics it is subscribed to.
    fn subscriptions(&self) -> Vec<Vec<u8>>;
    /// Its data (the handler's `Data`), to downcast.
    fn data_any(&mut self) -> Option<&mut dyn Any>;
}

/// The application's side of the server. Every method runs on a worker
/// thread; the handler is shared by all workers, so it is `Sync`.
#[allow(unused_variables)]
pub trait Handler: Send + Sync + 'static {
    /// Data attached to each connection at upgrade.
    type Data: Send + 'static;

    /// An upgrade request that passed RFC 6455 validation: accept it (with
    /// user data, a subprotocol, headers), reject it, or answer later.
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

    /// A plain HTTP request (no `Upgrade: websocket`), body read. Answer now
    /// ([`Fetch::Respond`], with [`crate::Response::event_stream`] for
    /// Server-Sent Events), later from any thread ([`Fetch::Defer`],
    /// [`Fetch::Later`]), or [`Fetch::Pass`]: 426 on a WebSocket route, 404
    /// elsewhere. Keep-alive connections bring their next request after the
    /// answer.
    fn fetch(&self, req: &Request<'_>) -> Fetch {
        Fetch::Pass
    }

    /// An upgrade was accepted with `data` (by
    /// [`crate::ServerHandle::accept_upgrade`], a deferred answer, or a
    /// subprotocol the client did not offer: 500) but never opened: the
    /// client had left, the handshake timed out, or the answer was refused.
    /// The data comes back here (the default drops it), so a host that
    /// keeps per-connection state for every upgrade it accepted can free
    /// it; no `open` or `close` follows for this id.
    fn upgrade_failed(&self, id: crate::ConnId, data: Self::Data) {
        let _ = (id, data);
    }

    /// A published message this (slow) subscriber did not get, under the
    /// topic's [`crate::SlowConsumer`] policy. Runs after the callback that published.
    fn dropped(&self, ws: &mut WebSocket<'_, Self::Data>, topic: &[u8], msg: Message<'_>) {}

    /// `topic` got its first subscriber on this server (`active`), or lost its
    /// last: the hook for bridging topics to a broker.
    fn topic(&self, topic: &[u8], active: bool) {}
}
