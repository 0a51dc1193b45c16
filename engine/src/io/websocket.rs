//! The handles applications hold: [`WebSocket`] inside handlers, and
//! [`WsHandle`] from any thread.

use crate::id::ConnId;
use crate::io::conn::{Conn, Ctx};
use crate::io::hub::{Command, Hub, Inspector};
use crate::io::publish;
use crate::io::slots;
use crate::proto::frame::OpCode;
use crate::proto::session::Phase;
use crate::pubsub::{Edge, Prepared, PublishResult};
use crate::{Inspect, Message, ReadyState, SendStatus};
use slab::Slab;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A connection as handlers see it, borrowed for the duration of a handler
/// call. Sends are queued and written once per loop turn (every handler runs
/// corked), so several sends cost one `writev`.
pub struct WebSocket<'a, D> {
    pub(crate) conns: &'a mut Slab<Conn<D>>,
    pub(crate) ctx: &'a mut Ctx,
    pub(crate) key: usize,
}

impl<D> WebSocket<'_, D> {
    #[inline]
    fn conn(&mut self) -> &mut Conn<D> {
        &mut self.conns[self.key]
    }

    #[inline]
    fn conn_ref(&self) -> &Conn<D> {
        &self.conns[self.key]
    }

    /// This connection's id (see [`ConnId`]): stable for its life, never
    /// reused for another.
    pub fn id(&self) -> ConnId {
        self.ctx.id(self.key)
    }

    /// Another connection of the same worker, by id, for direct sends with
    /// no cross-thread hop (a room's members that the kernel spread onto
    /// this worker); `None` if it is gone or lives on another worker (use
    /// [`WsHandle`] there).
    pub fn peer(&mut self, id: ConnId) -> Option<WebSocket<'_, D>> {
        if id.worker() != self.ctx.me {
            return None;
        }
        let key = id.slot();
        let c = self.conns.get(key)?;
        if c.generation != id.generation() as u32
            || c.phase() == Phase::Done
            || !self.ctx.slot(key).holds(id)
        {
            return None;
        }
        Some(WebSocket {
            conns: self.conns,
            ctx: self.ctx,
            key,
        })
    }

    /// Send a message as text or binary, as it is.
    pub fn send<'m>(&mut self, msg: impl Into<Message<'m>>) -> SendStatus {
        match msg.into() {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
        }
    }

    /// Send a text message.
    pub fn send_text(&mut self, text: &str) -> SendStatus {
        let key = self.key;
        self.conns[key].send(self.ctx, key, OpCode::Text, text.as_bytes(), None)
    }

    /// Send a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> SendStatus {
        let key = self.key;
        self.conns[key].send(self.ctx, key, OpCode::Binary, data, None)
    }

    /// Send with an explicit compression choice (Bun's `send(data, compress)`):
    /// `true` compresses whenever permessage-deflate was agreed, whatever the
    /// size; `false` never compresses. Plain [`WebSocket::send`] compresses
    /// messages of at least the configured `threshold`.
    pub fn send_compressed<'m>(
        &mut self,
        msg: impl Into<Message<'m>>,
        compress: bool,
    ) -> SendStatus {
        let key = self.key;
        let (op, data) = op_of(msg.into());
        self.conns[key].send(self.ctx, key, op, data, Some(compress))
    }

    /// Send a message encoded earlier with [`Prepared::new`] (no copy, no encoding).
    pub fn send_prepared(&mut self, msg: &Prepared) -> SendStatus {
        let key = self.key;
        self.conns[key].send_prepared(self.ctx, key, msg, false)
    }

    /// Start the closing handshake. 1005 ("no status") sends a close frame
    /// without a code or reason; another code no endpoint may send (1006,
    /// 1015, 999, …) is sent as 1000; `reason` is cut to 123 bytes at a
    /// character boundary. The close handler runs when the peer answers or
    /// `close_timeout` passes.
    pub fn close(&mut self, code: u16, reason: &str) {
        let key = self.key;
        self.conns[key].start_close(self.ctx, key, code, reason);
    }

    /// Drop the TCP connection at the end of this callback, without a
    /// closing handshake. The close handler runs with 1006.
    pub fn terminate(&mut self) {
        let key = self.key;
        self.conns[key].finish(self.ctx, key);
    }

    /// Send a ping (payload cut to 125 bytes). Not subject to backpressure.
    pub fn ping(&mut self, data: &[u8]) -> SendStatus {
        self.control(OpCode::Ping, data)
    }

    /// Send an unsolicited pong (payload cut to 125 bytes).
    pub fn pong(&mut self, data: &[u8]) -> SendStatus {
        self.control(OpCode::Pong, data)
    }

    fn control(&mut self, op: OpCode, data: &[u8]) -> SendStatus {
        let key = self.key;
        control(&mut self.conns[key], self.ctx, key, op, data)
    }

    /// Run `f` with sends batched into one write. Handlers already run corked;
    /// this exists for Bun's API and is a plain call here.
    pub fn cork<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        f(self)
    }

    /// The data attached at upgrade.
    pub fn data(&self) -> &D {
        self.conn_ref()
            .data
            .as_ref()
            .expect("data is set at upgrade")
    }

    /// The data attached at upgrade, mutably.
    pub fn data_mut(&mut self) -> &mut D {
        self.conn().data.as_mut().expect("data is set at upgrade")
    }

    /// Bun's `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        ready_state(self.conn_ref().phase())
    }

    /// The peer's address (a `getpeername` call: connections do not store
    /// it); `None` on a Unix socket.
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.conn_ref().sock.peer_addr()
    }

    /// Bytes queued and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.conn_ref().out.len()
    }

    /// Stop reading from this connection: no more `message` calls until
    /// [`WebSocket::resume_reading`]; the kernel's buffers then push back on
    /// the peer.
    pub fn pause_reading(&mut self) {
        self.conn().paused = true;
    }

    /// Resume reading after [`WebSocket::pause_reading`].
    pub fn resume_reading(&mut self) {
        let key = self.key;
        resume(&mut self.conns[key], self.ctx, key);
    }

    /// Is reading paused?
    pub fn is_paused(&self) -> bool {
        self.conn_ref().paused
    }

    /// A handle to this connection that works from any thread.
    pub fn handle(&self) -> WsHandle {
        WsHandle {
            hub: self.ctx.hub.clone(),
            id: self.id(),
        }
    }

    // ---- pub/sub ----------------------------------------------------------

    /// Subscribe to a topic. Returns false if already subscribed (or closed).
    pub fn subscribe(&mut self, topic: impl AsRef<[u8]>) -> bool {
        publish::subscribe(self.conns, self.ctx, self.key, topic.as_ref(), None)
    }

    /// Unsubscribe from a topic. Returns false if not subscribed.
    pub fn unsubscribe(&mut self, topic: impl AsRef<[u8]>) -> bool {
        publish::unsubscribe(self.conns, self.ctx, self.key, topic.as_ref())
    }

    /// Is this connection subscribed to `topic`?
    pub fn is_subscribed(&self, topic: impl AsRef<[u8]>) -> bool {
        let t = topic.as_ref();
        self.conn_ref().subs().iter().any(|(n, _)| &**n == t)
    }

    /// The topics this connection is subscribed to.
    pub fn subscriptions(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.conn_ref().subs().iter().map(|(n, _)| &**n)
    }

    /// Publish to every subscriber of `topic` on every worker, except this
    /// connection (unless `publish_to_self`). The message is encoded once.
    pub fn publish<'m>(
        &mut self,
        topic: impl AsRef<[u8]>,
        msg: impl Into<Message<'m>>,
    ) -> PublishResult {
        self.publish_with(topic.as_ref(), msg.into(), None)
    }

    fn publish_with(
        &mut self,
        topic: &[u8],
        msg: Message<'_>,
        compress: Option<bool>,
    ) -> PublishResult {
        let p = Prepared::new(msg);
        self.ctx
            .hub
            .stats
            .frames_encoded
            .fetch_add(1, Ordering::Relaxed);
        let exclude = (!self.ctx.opts.publish_to_self).then_some(self.key);
        publish::publish(self.conns, self.ctx, topic, &p, exclude, compress)
    }

    /// Publish to every subscriber, this connection included when it is
    /// one: what the server's own publish does, delivered on this worker at
    /// once (for a host calling the server's publish from inside a handler).
    pub fn publish_all<'m>(
        &mut self,
        topic: impl AsRef<[u8]>,
        msg: impl Into<Message<'m>>,
        compress: Option<bool>,
    ) -> PublishResult {
        let p = Prepared::new(msg.into());
        self.ctx
            .hub
            .stats
            .frames_encoded
            .fetch_add(1, Ordering::Relaxed);
        publish::publish(self.conns, self.ctx, topic.as_ref(), &p, None, compress)
    }

    /// Publish text.
    pub fn publish_text(&mut self, topic: impl AsRef<[u8]>, text: &str) -> PublishResult {
        self.publish(topic, Message::Text(text))
    }

    /// Publish binary.
    pub fn publish_binary(&mut self, topic: impl AsRef<[u8]>, data: &[u8]) -> PublishResult {
        self.publish(topic, Message::Binary(data))
    }

    /// Publish a prepared message.
    pub fn publish_prepared(&mut self, topic: impl AsRef<[u8]>, msg: &Prepared) -> PublishResult {
        let exclude = (!self.ctx.opts.publish_to_self).then_some(self.key);
        publish::publish(self.conns, self.ctx, topic.as_ref(), msg, exclude, None)
    }

    /// Publish with an explicit compression choice (Bun's
    /// `publish(topic, data, compress)`); see [`WebSocket::send_compressed`].
    pub fn publish_compressed<'m>(
        &mut self,
        topic: impl AsRef<[u8]>,
        msg: impl Into<Message<'m>>,
        compress: bool,
    ) -> PublishResult {
        self.publish_with(topic.as_ref(), msg.into(), Some(compress))
    }
}

impl<D: Send + 'static> Inspect for WebSocket<'_, D> {
    fn id(&self) -> ConnId {
        WebSocket::id(self)
    }
    fn ready_state(&self) -> ReadyState {
        WebSocket::ready_state(self)
    }
    fn remote_address(&self) -> Option<SocketAddr> {
        WebSocket::remote_address(self)
    }
    fn buffered_amount(&self) -> usize {
        WebSocket::buffered_amount(self)
    }
    fn is_subscribed(&self, topic: &[u8]) -> bool {
        WebSocket::is_subscribed(self, topic)
    }
    fn subscriptions(&self) -> Vec<Vec<u8>> {
        WebSocket::subscriptions(self).map(<[u8]>::to_vec).collect()
    }
    fn data_any(&mut self) -> Option<&mut dyn Any> {
        self.conn().data.as_mut().map(|d| d as &mut dyn Any)
    }
}

pub(crate) fn op_of(msg: Message<'_>) -> (OpCode, &[u8]) {
    match msg {
        Message::Text(t) => (OpCode::Text, t.as_bytes()),
        Message::Binary(b) => (OpCode::Binary, b),
    }
}

pub(crate) fn ready_state(phase: Phase) -> ReadyState {
    match phase {
        Phase::Handshake | Phase::Deferred | Phase::Body | Phase::Fetching => {
            ReadyState::Connecting
        }
        Phase::Open | Phase::Sse | Phase::Stream => ReadyState::Open,
        Phase::Closing => ReadyState::Closing,
        Phase::Flushing | Phase::Done => ReadyState::Closed,
    }
}

/// Queue a ping or pong (payload cut to 125 bytes), past backpressure.
pub(crate) fn control<D>(
    conn: &mut Conn<D>,
    ctx: &mut Ctx,
    key: usize,
    op: OpCode,
    data: &[u8],
) -> SendStatus {
    if conn.phase() != Phase::Open {
        return SendStatus::Dropped;
    }
    let data = &data[..data.len().min(125)];
    conn.queue_frame(ctx, key, op, data);
    SendStatus::Sent(2 + data.len())
}

pub(crate) fn resume<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize) {
    if conn.paused {
        conn.paused = false;
        ctx.again.push(key);
    }
}

/// A connection handle for any thread: sends, closes, subscribes through
/// the connection's worker (queued, then the worker is woken: at once, or
/// once per batch inside [`crate::ServerHandle::cork`]). Sends answer like Bun at once,
/// from the connection's slot (see [`SendStatus`]); operations on a
/// connection that has gone are refused.
#[derive(Clone)]
pub struct WsHandle {
    pub(crate) hub: Arc<Hub>,
    pub(crate) id: ConnId,
}

impl std::fmt::Debug for WsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WsHandle").field(&self.id).finish()
    }
}

impl WsHandle {
    /// Queue a command for the connection's worker: false for a stale id
    /// (the slot says the connection is gone) or a full mailbox.
    fn cmd(&self, c: Command) -> bool {
        self.ready_state() != ReadyState::Closed && self.hub.command(self.id.worker(), c).is_ok()
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Send a message: `Sent(n)`, `Backpressure` (bytes are already waiting;
    /// `drain` follows), or `Dropped` (closed, or past the limit).
    pub fn send<'m>(&self, msg: impl Into<Message<'m>>) -> SendStatus {
        let (op, data) = op_of(msg.into());
        self.hub.send(self.id, op, data, None)
    }

    /// Send with an explicit compression choice.
    pub fn send_compressed<'m>(&self, msg: impl Into<Message<'m>>, compress: bool) -> SendStatus {
        let (op, data) = op_of(msg.into());
        self.hub.send(self.id, op, data, Some(compress))
    }

    /// Send a prepared message.
    pub fn send_prepared(&self, msg: &Prepared) -> SendStatus {
        self.hub.send_prepared(self.id, msg)
    }

    /// Send a ping (payload cut to 125 bytes).
    pub fn ping(&self, data: &[u8]) -> bool {
        self.control(OpCode::Ping, data)
    }

    /// Send an unsolicited pong (payload cut to 125 bytes).
    pub fn pong(&self, data: &[u8]) -> bool {
        self.control(OpCode::Pong, data)
    }

    fn control(&self, op: OpCode, data: &[u8]) -> bool {
        let data = &data[..data.len().min(125)];
        let id = self.id;
        self.live()
            && self
                .hub
                .push_control(id.worker(), data, |at| Command::Control {
                    id,
                    op,
                    at,
                    len: data.len(),
                })
                .is_ok()
    }

    fn live(&self) -> bool {
        self.ready_state() == ReadyState::Open
    }

    /// Start the closing handshake.
    pub fn close(&self, code: u16, reason: &str) -> bool {
        self.live()
            && self.cmd(Command::Close {
                id: self.id,
                code,
                reason: reason.into(),
            })
    }

    /// Drop the connection without a closing handshake (close handler: 1006).
    pub fn terminate(&self) -> bool {
        self.ready_state() != ReadyState::Closed && self.cmd(Command::Terminate { id: self.id })
    }

    /// Subscribe to a topic. A publish made after this call returns, from
    /// any thread, reaches the connection.
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> bool {
        if !self.live() {
            return false;
        }
        let (t, edge) = self.hub.registry.add(topic.as_ref(), self.id.worker());
        let c = Command::Subscribe {
            id: self.id,
            topic: t.clone(),
            first: edge == Edge::First,
        };
        if self.cmd(c) {
            return true;
        }
        self.hub.registry.remove(&t, self.id.worker());
        false
    }

    /// Unsubscribe from a topic.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> bool {
        self.live()
            && self.cmd(Command::Unsubscribe {
                id: self.id,
                topic: topic.as_ref().into(),
            })
    }

    /// Stop reading from the connection.
    pub fn pause_reading(&self) -> bool {
        self.cmd(Command::Pause { id: self.id })
    }

    /// Resume reading (after `pause_reading`).
    pub fn resume_reading(&self) -> bool {
        self.cmd(Command::Resume { id: self.id })
    }

    /// Replace the connection's data; `D` must be the handler's `Data`.
    pub fn set_data<D: Send + 'static>(&self, data: D) -> bool {
        self.cmd(Command::SetData {
            id: self.id,
            data: Box::new(data),
        })
    }

    /// Bun's `readyState`, as of now (from the connection's slot).
    pub fn ready_state(&self) -> ReadyState {
        match self.hub.slot(self.id).map(|s| s.state_of(self.id)) {
            Some(slots::CONNECTING) => ReadyState::Connecting,
            Some(slots::OPEN) => ReadyState::Open,
            Some(slots::CLOSING) => ReadyState::Closing,
            _ => ReadyState::Closed,
        }
    }

    /// Bytes waiting: queued on the connection and in flight to its worker.
    pub fn buffered_amount(&self) -> usize {
        self.hub.slot(self.id).map_or(0, |s| s.buffered(self.id))
    }

    /// Run `f` on the connection's worker with a view of it (`None` if it
    /// has gone): for what only the worker knows (address, subscriptions,
    /// data). False if it could not be queued.
    pub fn inspect(&self, f: impl FnOnce(Option<&mut dyn Inspect>) + Send + 'static) -> bool {
        let f: Inspector = Box::new(f);
        // Woken at once even inside a cork: the caller may be waiting.
        self.hub
            .command_now(self.id.worker(), Command::Inspect { id: self.id, f })
            .is_ok()
    }
}
