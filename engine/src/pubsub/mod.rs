//! Topics and fan-out.
//!
//! A publish encodes its frame once into a [`Prepared`] message (one
//! reference-counted buffer); every subscriber's write queue on every worker
//! holds a reference to that buffer. The global `Registry` knows, per topic,
//! how many subscribers each worker has, so a publish crosses to another
//! worker once (not once per subscriber), and only to workers that have
//! subscribers. Each worker keeps its own `LocalTopics`: topic → slab of
//! subscriber connections.

use crate::proto::frame::{MAX_HEADER, OpCode, encode_header};
use crate::{Message, close};
use slab::Slab;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// A message encoded once, to be sent or published many times
/// ([`crate::WebSocket::publish_prepared`], [`crate::ServerHandle::publish_prepared`]).
/// Cloning is a reference-count increment.
#[derive(Clone)]
pub struct Prepared(Arc<PreparedInner>);

struct PreparedInner {
    /// The whole WebSocket frame: header and payload.
    frame: Arc<[u8]>,
    header_len: u8,
    binary: bool,
    /// The same message as a `text/event-stream` event, built on first use.
    sse: OnceLock<Arc<[u8]>>,
    /// Compressed frames (RSV1, no context), one per window size 9..=15,
    /// each built on first use and shared by every subscriber that agreed
    /// to that window: a publish is deflated once per group, not per subscriber.
    deflated: [OnceLock<Arc<[u8]>>; 7],
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("len", &self.payload().len())
            .field("binary", &self.0.binary)
            .finish()
    }
}

impl Prepared {
    /// Encode a message once.
    pub fn new<'m>(msg: impl Into<Message<'m>>) -> Prepared {
        let msg = msg.into();
        let (op, payload) = match msg {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        let mut h = [0u8; MAX_HEADER];
        let n = encode_header(&mut h, true, false, op, payload.len() as u64, None);
        let mut v = Vec::with_capacity(n + payload.len());
        v.extend_from_slice(&h[..n]);
        v.extend_from_slice(payload);
        Prepared(Arc::new(PreparedInner {
            frame: v.into(),
            header_len: n as u8,
            binary: op == OpCode::Binary,
            sse: OnceLock::new(),
            deflated: Default::default(),
        }))
    }

    /// The message as it was prepared.
    pub fn message(&self) -> Message<'_> {
        let p = self.payload();
        if self.0.binary {
            Message::Binary(p)
        } else {
            // SAFETY: text was a `&str` when prepared and the bytes are immutable.
            Message::Text(unsafe { std::str::from_utf8_unchecked(p) })
        }
    }

    /// The payload bytes.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.0.frame[self.0.header_len as usize..]
    }

    /// Is the payload binary?
    pub(crate) fn is_binary(&self) -> bool {
        self.0.binary
    }

    /// The compressed frame for window `bits` (9..=15), built with
    /// `compress` (payload in, compressed frame out) by the first caller.
    pub(crate) fn deflated(&self, bits: u8, compress: impl FnOnce(&[u8]) -> Vec<u8>) -> &Arc<[u8]> {
        let slot = &self.0.deflated[usize::from(bits.clamp(9, 15) - 9)];
        slot.get_or_init(|| compress(self.payload()).into())
    }

    /// The encoded WebSocket frame (shared).
    pub(crate) fn frame(&self) -> &Arc<[u8]> {
        &self.0.frame
    }

    /// The message as one `text/event-stream` event: a `data:` line per line
    /// of the payload (binary payloads that are not UTF-8 are sent lossily).
    pub(crate) fn sse(&self) -> &Arc<[u8]> {
        self.0.sse.get_or_init(|| sse_event(self.payload()).into())
    }
}

/// What a server does with a subscriber whose queue is past
/// `backpressure_limit` when a publish arrives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowConsumer {
    /// Skip the new message for that subscriber (Bun's behaviour).
    #[default]
    DropNewest,
    /// Evict the oldest queued published messages to make room for the new one.
    DropOldest,
    /// Close the subscriber with this code (1008 or 1013 are the usual ones).
    Close(u16),
    /// Keep only the latest message of this topic for the subscriber; it is
    /// sent when the queue drains. For state feeds (prices, positions).
    Conflate,
}

impl SlowConsumer {
    /// Close with 1013 (try again later).
    pub const CLOSE: SlowConsumer = SlowConsumer::Close(close::TRY_AGAIN_LATER);
}

/// What one publish did. Counts cover the publishing worker's subscribers;
/// subscribers on other workers are reached asynchronously (`forwarded`
/// workers) and show up in [`crate::Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishResult {
    /// Subscribers whose queue took the message with no backlog.
    pub delivered: usize,
    /// Subscribers whose queue took it behind a backlog (or conflated it).
    pub backpressured: usize,
    /// Subscribers that did not get it (past the limit, or closed for it).
    pub dropped: usize,
    /// Other workers the publish was handed to.
    pub forwarded: usize,
}

/// One Server-Sent Event carrying `payload` as its data: a `data:` field
/// per line. CR, LF and CRLF all end a line (as an event-stream parser
/// reads them), so no payload can start a field of its own.
pub(crate) fn sse_event(payload: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(payload);
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut rest = &*text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&rest.as_bytes()[..end]);
        out.push(b'\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    out.push(b'\n');
    out
}

/// A topic as the whole server sees it.
pub(crate) struct Topic {
    pub name: Arc<[u8]>,
    /// Subscribers (WebSocket and SSE) per worker: decides where a publish goes.
    pub per_worker: Box<[AtomicU32]>,
    /// Subscribers in all; 0 → 1 and 1 → 0 only under the registry's write lock.
    total: AtomicU32,
    pub policy: SlowConsumer,
}

/// All topics with at least one subscriber.
pub(crate) struct Registry {
    map: RwLock<HashMap<Arc<[u8]>, Arc<Topic>>>,
    policies: RwLock<HashMap<Vec<u8>, SlowConsumer>>,
    default_policy: SlowConsumer,
    workers: usize,
}

/// A subscriber count changed across zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    None,
    First,
    Last,
}

impl Registry {
    pub(crate) fn new(workers: usize, default_policy: SlowConsumer) -> Self {
        Registry {
            map: RwLock::new(HashMap::new()),
            policies: RwLock::new(HashMap::new()),
            default_policy,
            workers,
        }
    }

    pub(crate) fn get(&self, name: &[u8]) -> Option<Arc<Topic>> {
        self.map.read().expect("registry lock").get(name).cloned()
    }

    /// Count one more subscriber on `worker`.
    pub(crate) fn add(&self, name: &[u8], worker: usize) -> (Arc<Topic>, Edge) {
        if let Some(t) = self.get(name) {
            let mut n = t.total.load(Ordering::Acquire);
            while n > 0 {
                match t
                    .total
                    .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        t.per_worker[worker].fetch_add(1, Ordering::AcqRel);
                        return (t, Edge::None);
                    }
                    Err(now) => n = now,
                }
            }
        }
        let mut map = self.map.write().expect("registry lock");
        let t = map
            .entry(Arc::from(name))
            .or_insert_with_key(|k| {
                let policy = self
                    .policies
                    .read()
                    .expect("policy lock")
                    .get(name)
                    .copied()
                    .unwrap_or(self.default_policy);
                Arc::new(Topic {
                    name: k.clone(),
                    per_worker: (0..self.workers).map(|_| AtomicU32::new(0)).collect(),
                    total: AtomicU32::new(0),
                    policy,
                })
            })
            .clone();
        let was = t.total.fetch_add(1, Ordering::AcqRel);
        t.per_worker[worker].fetch_add(1, Ordering::AcqRel);
        (t, if was == 0 { Edge::First } else { Edge::None })
    }

    /// Count one subscriber less on `worker`.
    pub(crate) fn remove(&self, t: &Arc<Topic>, worker: usize) -> Edge {
        t.per_worker[worker].fetch_sub(1, Ordering::AcqRel);
        let mut n = t.total.load(Ordering::Acquire);
        while n > 1 {
            match t
                .total
                .compare_exchange_weak(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Edge::None,
                Err(now) => n = now,
            }
        }
        let mut map = self.map.write().expect("registry lock");
        if t.total.fetch_sub(1, Ordering::AcqRel) == 1 {
            map.remove(&t.name);
            Edge::Last
        } else {
            Edge::None
        }
    }

    /// Every topic with subscribers now.
    #[cfg_attr(not(feature = "redis-bridge"), allow(dead_code))]
    pub(crate) fn names(&self) -> Vec<Arc<[u8]>> {
        self.map
            .read()
            .expect("registry lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Subscribers of a topic, all workers together.
    pub(crate) fn count(&self, name: &[u8]) -> usize {
        self.get(name)
            .map_or(0, |t| t.total.load(Ordering::Acquire) as usize)
    }

    /// Set the slow-consumer policy of a topic (applies from its next
    /// creation; a topic with subscribers keeps the policy it started with).
    pub(crate) fn set_policy(&self, name: &[u8], p: SlowConsumer) {
        self.policies
            .write()
            .expect("policy lock")
            .insert(name.to_vec(), p);
    }
}

/// A worker's view of one topic: its local subscribers.
pub(crate) struct Local {
    pub topic: Arc<Topic>,
    /// (connection key, generation) per subscription slot.
    pub subs: Slab<(u32, u32)>,
}

/// A worker's topics.
#[derive(Default)]
pub(crate) struct LocalTopics {
    pub map: HashMap<Arc<[u8]>, Local>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_encodes_once_and_reads_back() {
        let p = Prepared::new("héllo");
        assert_eq!(p.message(), Message::Text("héllo"));
        assert_eq!(&p.frame()[..2], &[0x81, 6]);
        let q = p.clone();
        assert!(Arc::ptr_eq(p.frame(), q.frame()));
        assert_eq!(&**Prepared::new("a\nb").sse(), b"data: a\ndata: b\n\n");
        // A bare CR ends a line too: no payload injects a field of its own.
        assert_eq!(
            &**Prepared::new("a\revent: x\r\nb\n").sse(),
            b"data: a\ndata: event: x\ndata: b\ndata: \n\n"
        );
    }

    #[test]
    fn registry_counts_edges_and_removes_empty_topics() {
        let r = Registry::new(2, SlowConsumer::DropNewest);
        let (t, e) = r.add(b"t", 0);
        assert_eq!(e, Edge::First);
        let (t2, e) = r.add(b"t", 1);
        assert_eq!(e, Edge::None);
        assert!(Arc::ptr_eq(&t, &t2));
        assert_eq!(r.count(b"t"), 2);
        assert_eq!(r.remove(&t, 0), Edge::None);
        assert_eq!(r.remove(&t, 1), Edge::Last);
        assert_eq!(r.count(b"t"), 0);
        assert!(r.get(b"t").is_none());
        let (t3, e) = r.add(b"t", 0);
        assert_eq!(e, Edge::First);
        assert!(!Arc::ptr_eq(&t, &t3));
    }

    #[test]
    fn registry_is_consistent_under_concurrent_churn() {
        let r = Arc::new(Registry::new(4, SlowConsumer::DropNewest));
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let name = [b'a' + (i % 3) as u8];
                        let (t, _) = r.add(&name, w);
                        r.remove(&t, w);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for n in [b"a", b"b", b"c"] {
            assert_eq!(r.count(n), 0);
        }
        assert!(r.map.read().unwrap().is_empty());
    }
}
