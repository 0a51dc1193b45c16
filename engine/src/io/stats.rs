//! The server's counters: written by the workers (relaxed atomics, most
//! once per loop turn), read by anyone.

use std::sync::atomic::{AtomicU64, AtomicUsize};

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
    /// HTTP requests (not upgrades) handled since start.
    pub requests: AtomicU64,
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
    /// Commands refused by a full worker mailbox (see `Options::mailbox_bytes`).
    pub mailbox_full: AtomicU64,
    /// Bytes written to sockets.
    pub bytes_out: AtomicU64,
    /// Bytes queued and not yet written, all connections together (updated
    /// once per loop turn).
    pub buffered: AtomicU64,
    /// Publishes sent to Redis (`Options::pubsub_bridge`).
    pub bridged_out: AtomicU64,
    /// Messages from other processes delivered here through Redis.
    pub bridged_in: AtomicU64,
    /// Publishes that could not cross to Redis (unreachable, or too slow
    /// for the bridge's queue); local subscribers got them.
    pub bridge_lost: AtomicU64,
}
