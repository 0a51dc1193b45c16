//! The handles applications hold: [`WebSocket`] inside handlers, and
//! [`WsHandle`] from any thread.

use super::conn::{Conn, Ctx, Event, Offer, Phase};
use super::{Command, Hub};
use crate::proto::frame::OpCode;
use crate::pubsub::{Edge, Local, Prepared, PublishResult};
use crate::{Message, ReadyState, SendStatus};
use slab::Slab;
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
        let (op, data) = match msg.into() {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        self.conns[key].send(self.ctx, key, op, data, Some(compress))
    }

    /// Send a message encoded earlier with [`Prepared::new`] (no copy, no encoding).
    pub fn send_prepared(&mut self, msg: &Prepared) -> SendStatus {
        let key = self.key;
        self.conns[key].send_prepared(self.ctx, key, msg)
    }

    /// Start the closing handshake. An illegal `code` (1005, 1006, 1015, …)
    /// is sent as 1000; `reason` is cut to 123 bytes. The close handler runs
    /// when the peer answers or `close_timeout` passes.
    pub fn close(&mut self, code: u16, reason: &str) {
        let key = self.key;
        self.conns[key].start_close(self.ctx, key, code, reason);
    }

    /// Drop the TCP connection now, without a closing handshake. The close
    /// handler runs with 1006.
    pub fn terminate(&mut self) {
        self.conn().phase = Phase::Done;
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
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Open {
            return SendStatus::Dropped;
        }
        let data = &data[..data.len().min(125)];
        conn.queue_frame(self.ctx, key, op, data);
        SendStatus::Sent(2 + data.len())
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
        match self.conn_ref().phase {
            Phase::Handshake | Phase::Deferred => ReadyState::Connecting,
            Phase::Open | Phase::Sse => ReadyState::Open,
            Phase::Closing => ReadyState::Closing,
            Phase::Flushing | Phase::Done => ReadyState::Closed,
        }
    }

    /// The peer's address (a `getpeername` call: connections do not store it).
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.conn_ref().sock.peer_addr().ok()
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
        let conn = &mut self.conns[key];
        if conn.paused {
            conn.paused = false;
            self.ctx.again.push(key);
        }
    }

    /// Is reading paused?
    pub fn is_paused(&self) -> bool {
        self.conn_ref().paused
    }

    /// A handle to this connection that works from any thread.
    pub fn handle(&self) -> WsHandle {
        WsHandle {
            hub: self.ctx.hub.clone(),
            worker: self.ctx.me as u32,
            key: self.key as u32,
            generation: self.conn_ref().generation,
        }
    }

    // ---- pub/sub ----------------------------------------------------------

    /// Subscribe to a topic. Returns false if already subscribed (or closed).
    pub fn subscribe(&mut self, topic: impl AsRef<[u8]>) -> bool {
        subscribe(self.conns, self.ctx, self.key, topic.as_ref(), None)
    }

    /// Unsubscribe from a topic. Returns false if not subscribed.
    pub fn unsubscribe(&mut self, topic: impl AsRef<[u8]>) -> bool {
        unsubscribe(self.conns, self.ctx, self.key, topic.as_ref())
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
        publish(self.conns, self.ctx, topic, &p, exclude, compress)
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
        publish(self.conns, self.ctx, topic.as_ref(), msg, exclude, None)
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

/// Subscribe `key` to `topic` on this worker. `counted`: the registry was
/// already told (a subscribe from another thread).
pub(crate) fn subscribe<D>(
    conns: &mut Slab<Conn<D>>,
    ctx: &mut Ctx,
    key: usize,
    topic: &[u8],
    counted: Option<(Arc<crate::pubsub::Topic>, bool)>,
) -> bool {
    if let Some((t, true)) = &counted {
        ctx.events.push(Event::TopicEdge {
            topic: t.name.clone(),
            active: true,
        });
    }
    let counted = counted.map(|(t, _)| t);
    let conn = &mut conns[key];
    let usable = matches!(conn.phase, Phase::Open | Phase::Sse);
    if !usable || conn.subs().iter().any(|(n, _)| &**n == topic) {
        if let Some(t) = counted {
            uncount(ctx, &t);
        }
        return false;
    }
    let t = match counted {
        Some(t) => t,
        None => {
            let (t, edge) = ctx.hub.registry.add(topic, ctx.me);
            if edge == Edge::First {
                ctx.events.push(Event::TopicEdge {
                    topic: t.name.clone(),
                    active: true,
                });
            }
            t
        }
    };
    let local = ctx
        .topics
        .map
        .entry(t.name.clone())
        .or_insert_with(|| Local {
            topic: t.clone(),
            subs: Slab::new(),
        });
    let slot = local.subs.insert((key as u32, conn.generation));
    conn.cold()
        .subs
        .push((local.topic.name.clone(), slot as u32));
    true
}

/// Take back a registry count (a cross-thread subscribe that did not happen).
pub(crate) fn uncount(ctx: &mut Ctx, t: &Arc<crate::pubsub::Topic>) {
    if ctx.hub.registry.remove(t, ctx.me) == Edge::Last {
        ctx.events.push(Event::TopicEdge {
            topic: t.name.clone(),
            active: false,
        });
    }
}

pub(crate) fn unsubscribe<D>(
    conns: &mut Slab<Conn<D>>,
    ctx: &mut Ctx,
    key: usize,
    topic: &[u8],
) -> bool {
    let conn = &mut conns[key];
    let Some(i) = conn.subs().iter().position(|(n, _)| &**n == topic) else {
        return false;
    };
    let (name, slot) = conn.cold().subs.swap_remove(i);
    conn.trim_cold();
    let local = ctx
        .topics
        .map
        .get_mut(&name)
        .expect("local topic of a subscription");
    local.subs.remove(slot as usize);
    let t = local.topic.clone();
    if local.subs.is_empty() {
        ctx.topics.map.remove(&name);
    }
    uncount(ctx, &t);
    true
}

/// Deliver to this worker's subscribers and forward to the other workers
/// that have some.
pub(crate) fn publish<D>(
    conns: &mut Slab<Conn<D>>,
    ctx: &mut Ctx,
    topic: &[u8],
    msg: &Prepared,
    exclude: Option<usize>,
    compress: Option<bool>,
) -> PublishResult {
    let hub = ctx.hub.clone();
    hub.stats.publishes.fetch_add(1, Ordering::Relaxed);
    let mut res = deliver_local(conns, ctx, topic, msg, exclude, compress);
    let shared = match ctx.topics.map.get(topic) {
        Some(l) => Some(l.topic.clone()),
        None => hub.registry.get(topic),
    };
    if let Some(t) = shared {
        for (w, n) in t.per_worker.iter().enumerate() {
            if w != ctx.me && n.load(Ordering::Acquire) > 0 {
                hub.command(
                    w,
                    Command::Publish {
                        topic: t.name.clone(),
                        msg: msg.clone(),
                        compress,
                    },
                );
                res.forwarded += 1;
            }
        }
    }
    res
}

/// Local subscribers from which a publish shares one compressed frame even
/// with connections that keep their own compression context.
const GROUP_MIN: usize = 4;

/// Offer a message to every local subscriber of `topic`.
pub(crate) fn deliver_local<D>(
    conns: &mut Slab<Conn<D>>,
    ctx: &mut Ctx,
    topic: &[u8],
    msg: &Prepared,
    exclude: Option<usize>,
    compress: Option<bool>,
) -> PublishResult {
    let mut res = PublishResult::default();
    let (name, policy) = match ctx.topics.map.get(topic) {
        Some(l) => {
            ctx.scratch.clear();
            ctx.scratch.extend(l.subs.iter().map(|(_, s)| *s));
            (l.topic.name.clone(), l.topic.policy)
        }
        None => return res,
    };
    let subs = std::mem::take(&mut ctx.scratch);
    // Enough subscribers here that one shared compressed frame wins over
    // compressing per connection (measured: one 1 KiB deflate costs about
    // as much as queueing the shared frame to ~50 subscribers).
    let group = subs.len() >= GROUP_MIN;
    for &(key, generation) in &subs {
        let key = key as usize;
        if Some(key) == exclude {
            continue;
        }
        let Some(conn) = conns.get_mut(key) else {
            continue;
        };
        if conn.generation != generation {
            continue;
        }
        match conn.offer(ctx, key, &name, policy, msg, compress, group) {
            Offer::Delivered => res.delivered += 1,
            Offer::Backpressured => res.backpressured += 1,
            Offer::Dropped => res.dropped += 1,
            Offer::Skipped => {}
        }
    }
    ctx.scratch = subs;
    let stats = &ctx.hub.stats;
    stats.delivered.fetch_add(
        (res.delivered + res.backpressured) as u64,
        Ordering::Relaxed,
    );
    if res.dropped > 0 {
        stats
            .dropped
            .fetch_add(res.dropped as u64, Ordering::Relaxed);
    }
    res
}

/// A connection handle for any thread: sends, closes, subscribes through the
/// connection's worker (queued, then the worker is woken). Operations on a
/// connection that has gone are ignored. The outcome of a send (backpressure
/// or drop) is not reported across threads.
#[derive(Clone)]
pub struct WsHandle {
    hub: Arc<Hub>,
    worker: u32,
    key: u32,
    generation: u32,
}

impl std::fmt::Debug for WsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsHandle")
            .field("worker", &self.worker)
            .field("key", &self.key)
            .finish()
    }
}

impl WsHandle {
    fn cmd(&self, c: Command) -> bool {
        self.hub.command(self.worker as usize, c)
    }

    /// Queue a message for this connection. False if the server has stopped.
    pub fn send<'m>(&self, msg: impl Into<Message<'m>>) -> bool {
        self.send_prepared(&Prepared::new(msg))
    }

    /// Queue a prepared message for this connection.
    pub fn send_prepared(&self, msg: &Prepared) -> bool {
        self.cmd(Command::Send {
            key: self.key,
            generation: self.generation,
            msg: msg.clone(),
        })
    }

    /// Start the closing handshake.
    pub fn close(&self, code: u16, reason: &str) -> bool {
        self.cmd(Command::Close {
            key: self.key,
            generation: self.generation,
            code,
            reason: reason.into(),
        })
    }

    /// Subscribe to a topic. A publish made after this call returns, from
    /// any thread, reaches the connection.
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> bool {
        let (t, edge) = self.hub.registry.add(topic.as_ref(), self.worker as usize);
        self.cmd(Command::Subscribe {
            key: self.key,
            generation: self.generation,
            topic: t,
            first: edge == Edge::First,
        })
    }

    /// Unsubscribe from a topic.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> bool {
        self.cmd(Command::Unsubscribe {
            key: self.key,
            generation: self.generation,
            topic: topic.as_ref().into(),
        })
    }

    /// Resume reading (after `pause_reading` in a handler).
    pub fn resume_reading(&self) -> bool {
        self.cmd(Command::Resume {
            key: self.key,
            generation: self.generation,
        })
    }
}
