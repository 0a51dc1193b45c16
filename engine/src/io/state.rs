//! What a connection's state looks like from outside its worker: the
//! result of a send ([`SendStatus`], Bun's number), the `readyState`, and the
//! queries another thread may ask of it ([`Inspect`]). Plain values, below
//! the loop's files that produce them and the handler-facing views that
//! return them.

use crate::id::ConnId;
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
