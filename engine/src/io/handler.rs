//! The application's side: the [`Handler`] trait.

use crate::io::request::{Fetch, Request, Upgrade};
use crate::io::websocket::WebSocket;
use crate::proto::message::Message;

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
