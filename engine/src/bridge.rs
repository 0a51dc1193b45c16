//! Topics across machines: a bridge to Redis pub/sub (feature
//! `redis-bridge`, option [`crate::Options::pubsub_bridge`]).
//!
//! Every publish made on this server also goes to the Redis channel
//! `PREFIX:TOPIC`, and this server subscribes to the channel of every topic
//! it has local subscribers for (following the first- and last-subscriber
//! edges), delivering what other servers publish to its own subscribers.
//! Volley grows no cluster protocol of its own.
//!
//! Two threads talk to Redis; workers never wait for them. Publishes reach
//! the publishing thread through a bounded queue; a full queue (Redis slow
//! or gone) drops the message *for Redis only* — local subscribers already
//! have it — and counts it (`Stats::bridge_lost`). The subscribing thread
//! reconciles its Redis subscriptions with the registry whenever a topic
//! gains its first or loses its last subscriber, and after every reconnect
//! subscribes again to every active topic. Both reconnect with backoff
//! (100 ms doubling to 5 s) and log once per outage.
//!
//! A message on the wire: `VLY1`, a flags byte (binary; compress given;
//! compress value), the 16-byte origin of the publishing server (so a
//! server skips its own publishes, which its subscribers already got), then
//! the payload. One publish is encoded once per process on the way in, like
//! a local one.

use crate::Message;
use crate::io::hub::{Hub, Relay};
use crate::pubsub::Prepared;
use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, unbounded};
use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Publishes waiting for Redis before new ones are dropped (for Redis only),
/// and the bytes they may hold together.
const QUEUE: usize = 65_536;
const QUEUE_BYTES: usize = 64 << 20;
/// Most publishes sent in one pipelined round trip.
const BATCH: usize = 512;
const MAGIC: &[u8; 4] = b"VLY1";
/// How long the subscribing thread waits for a message before it looks at
/// topic changes again (a change arriving while messages flow is seen at
/// once).
const POLL: Duration = Duration::from_millis(20);
const BINARY: u8 = 1;
const COMPRESS_GIVEN: u8 = 2;
const COMPRESS: u8 = 4;

/// Where and how to bridge: `redis://[:password@]host[:port][/prefix]`, or
/// `rediss://` for TLS. The prefix (default `volley`) names the channels:
/// `prefix:topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeUrl {
    /// The Redis URL without the prefix.
    pub redis: String,
    /// The channel prefix.
    pub prefix: String,
}

impl BridgeUrl {
    /// Parse a bridge URL.
    pub fn parse(url: &str) -> io::Result<BridgeUrl> {
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pubsub bridge {url:?}: {why}"),
            )
        };
        let rest = url
            .strip_prefix("redis://")
            .or_else(|| url.strip_prefix("rediss://"))
            .ok_or_else(|| bad("expected redis:// or rediss://"))?;
        let scheme = &url[..url.len() - rest.len()];
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let prefix = path.trim_matches('/');
        if prefix
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(bad("the prefix may not hold spaces, ? or #"));
        }
        Ok(BridgeUrl {
            redis: format!("{scheme}{authority}/"),
            prefix: if prefix.is_empty() {
                "volley".into()
            } else {
                prefix.into()
            },
        })
    }
}

struct Out {
    topic: Arc<[u8]>,
    msg: Prepared,
    compress: Option<bool>,
}

/// The running bridge, owned by the hub.
pub(crate) struct Bridge {
    out: Sender<Out>,
    ctl: Sender<Arc<[u8]>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// One "publishes are not crossing" line per outage.
    outage: AtomicBool,
    /// Payload bytes in `out`.
    queued: Arc<AtomicUsize>,
}

/// Set at start: the hub the bridge's threads deliver to, and this server's origin.
struct Ends {
    hub: Weak<Hub>,
    origin: [u8; 16],
    prefix: String,
    /// The bridge's count of payload bytes queued.
    queued: Arc<AtomicUsize>,
}

impl Ends {
    /// A publish left the queue.
    fn took(&self, o: Out) -> Out {
        self.queued
            .fetch_sub(o.msg.payload().len(), Ordering::AcqRel);
        o
    }
}

impl Bridge {
    /// Connect lazily: the threads start now and keep trying.
    pub(crate) fn start(url: &BridgeUrl, hub: &Arc<Hub>) -> io::Result<Arc<Bridge>> {
        let client = redis::Client::open(url.redis.as_str()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("pubsub bridge: {e}"))
        })?;
        let (out_tx, out_rx) = bounded(QUEUE);
        let (ctl_tx, ctl_rx) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let ends = Arc::new(Ends {
            hub: Arc::downgrade(hub),
            origin: origin(),
            prefix: url.prefix.clone(),
            queued: queued.clone(),
        });
        let bridge = Arc::new(Bridge {
            out: out_tx,
            ctl: ctl_tx,
            stop: stop.clone(),
            threads: Mutex::new(Vec::new()),
            outage: AtomicBool::new(false),
            queued,
        });
        let weak = Arc::downgrade(&bridge);
        let publisher = {
            let (client, ends, stop, weak) =
                (client.clone(), ends.clone(), stop.clone(), weak.clone());
            std::thread::Builder::new()
                .name("volley-bridge-out".into())
                .spawn(move || publishing(client, out_rx, ends, stop, weak))?
        };
        let subscriber = std::thread::Builder::new()
            .name("volley-bridge-in".into())
            .spawn(move || subscribing(client, ctl_rx, ends, stop))?;
        *bridge.threads.lock().unwrap_or_else(|e| e.into_inner()) = vec![publisher, subscriber];
        Ok(bridge)
    }

    fn lost(&self, hub: &Hub, n: u64) {
        hub.stats.bridge_lost.fetch_add(n, Ordering::Relaxed);
        if !self.outage.swap(true, Ordering::AcqRel) {
            log::warn!(
                "volley: pubsub bridge: publishes are not crossing to Redis (counted in stats.bridge_lost)"
            );
        }
    }
}

/// The loop's view of the bridge (it names no bridge type).
impl Relay for Bridge {
    /// A publish made here: queue it for Redis (never waiting).
    fn publish(&self, hub: &Hub, topic: &[u8], msg: &Prepared, compress: Option<bool>) {
        let len = msg.payload().len();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > QUEUE_BYTES {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.lost(hub, 1);
            return;
        }
        let o = Out {
            topic: Arc::from(topic),
            msg: msg.clone(),
            compress,
        };
        if self.out.try_send(o).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.lost(hub, 1);
        }
    }

    /// A topic gained its first or lost its last local subscriber.
    fn topic_changed(&self, name: &Arc<[u8]>) {
        let _ = self.ctl.send(name.clone());
    }

    /// Ask both threads to stop (they notice within 100 ms).
    fn signal_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stop both threads and wait for them.
    fn shutdown(&self) {
        self.signal_stop();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// 16 bytes that tell this server's publishes from every other server's.
fn origin() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i as u64);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

fn encode(o: &Out, origin: &[u8; 16]) -> Vec<u8> {
    let payload = o.msg.message();
    let mut flags = 0;
    if payload.is_binary() {
        flags |= BINARY;
    }
    if let Some(c) = o.compress {
        flags |= COMPRESS_GIVEN | if c { COMPRESS } else { 0 };
    }
    let bytes = payload.as_bytes();
    let mut v = Vec::with_capacity(21 + bytes.len());
    v.extend_from_slice(MAGIC);
    v.push(flags);
    v.extend_from_slice(origin);
    v.extend_from_slice(bytes);
    v
}

/// Decode a bridged message: `None` for ours, or for what is no bridged message.
fn decode<'a>(b: &'a [u8], origin: &[u8; 16]) -> Option<(Message<'a>, Option<bool>)> {
    if b.len() < 21 || &b[..4] != MAGIC || &b[5..21] == origin {
        return None;
    }
    let flags = b[4];
    let payload = &b[21..];
    let msg = if flags & BINARY != 0 {
        Message::Binary(payload)
    } else {
        Message::Text(std::str::from_utf8(payload).ok()?)
    };
    let compress = (flags & COMPRESS_GIVEN != 0).then_some(flags & COMPRESS != 0);
    Some((msg, compress))
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    /// Sleep (in slices, watching `stop`); false when stopping.
    fn wait(&mut self, stop: &AtomicBool) -> bool {
        let mut left = self.0;
        while left > Duration::ZERO {
            if stop.load(Ordering::Acquire) {
                return false;
            }
            let step = left.min(Duration::from_millis(50));
            std::thread::sleep(step);
            left -= step;
        }
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        !stop.load(Ordering::Acquire)
    }
}

fn publishing(
    client: redis::Client,
    rx: Receiver<Out>,
    ends: Arc<Ends>,
    stop: Arc<AtomicBool>,
    bridge: Weak<Bridge>,
) {
    let mut backoff = Backoff::new();
    let mut batch: Vec<Out> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Acquire) {
        let mut con = match client.get_connection_with_timeout(Duration::from_secs(2)) {
            Ok(c) => c,
            Err(e) => {
                log::debug!("volley: pubsub bridge: publisher: {e}");
                // Not connected: what waits cannot cross; count it, keep the queue moving.
                drop_waiting(&rx, &ends, &bridge);
                if !backoff.wait(&stop) {
                    return;
                }
                continue;
            }
        };
        let _ = con.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
        backoff = Backoff::new();
        if let Some(b) = bridge.upgrade() {
            if b.outage.swap(false, Ordering::AcqRel) {
                log::info!("volley: pubsub bridge: publishing to Redis again");
            }
        }
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(o) => batch.push(ends.took(o)),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(o) => batch.push(ends.took(o)),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            for o in &batch {
                let mut channel = Vec::with_capacity(ends.prefix.len() + 1 + o.topic.len());
                channel.extend_from_slice(ends.prefix.as_bytes());
                channel.push(b':');
                channel.extend_from_slice(&o.topic);
                pipe.cmd("PUBLISH")
                    .arg(channel)
                    .arg(encode(o, &ends.origin))
                    .ignore();
            }
            let sent = batch.len() as u64;
            let result: redis::RedisResult<()> = pipe.query(&mut con);
            batch.clear();
            let Some(hub) = ends.hub.upgrade() else {
                return;
            };
            match result {
                Ok(()) => {
                    hub.stats.bridged_out.fetch_add(sent, Ordering::Relaxed);
                }
                Err(e) => {
                    log::debug!("volley: pubsub bridge: publish: {e}");
                    if let Some(b) = bridge.upgrade() {
                        b.lost(&hub, sent);
                    }
                    break; // reconnect
                }
            }
        }
    }
}

fn drop_waiting(rx: &Receiver<Out>, ends: &Ends, bridge: &Weak<Bridge>) {
    let mut n = 0;
    while let Ok(o) = rx.try_recv() {
        ends.took(o);
        n += 1;
    }
    if n > 0 {
        if let (Some(hub), Some(b)) = (ends.hub.upgrade(), bridge.upgrade()) {
            b.lost(&hub, n);
        }
    }
}

fn subscribing(
    client: redis::Client,
    ctl: Receiver<Arc<[u8]>>,
    ends: Arc<Ends>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Backoff::new();
    let mut down_logged = false;
    while !stop.load(Ordering::Acquire) {
        let mut con = match client.get_connection_with_timeout(Duration::from_secs(2)) {
            Ok(c) => c,
            Err(e) => {
                if !down_logged {
                    log::warn!("volley: pubsub bridge: cannot subscribe at Redis ({e}); retrying");
                    down_logged = true;
                }
                if !backoff.wait(&stop) {
                    return;
                }
                continue;
            }
        };
        backoff = Backoff::new();
        if down_logged {
            log::info!("volley: pubsub bridge: subscribed at Redis again");
            down_logged = false;
        }
        let mut ps = con.as_pubsub();
        if ps.set_read_timeout(Some(POLL)).is_err() {
            continue;
        }
        let mut have: HashSet<Vec<u8>> = HashSet::new();
        let channel = |t: &[u8]| [ends.prefix.as_bytes(), b":", t].concat();
        // After (re)connecting: every topic with local subscribers.
        let Some(hub) = ends.hub.upgrade() else {
            return;
        };
        let mut todo: Vec<Vec<u8>> = hub
            .registry
            .names()
            .into_iter()
            .map(|t| t.to_vec())
            .collect();
        drop(hub);
        'connected: loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            loop {
                match ctl.try_recv() {
                    Ok(t) => todo.push(t.to_vec()),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if !todo.is_empty() {
                let Some(hub) = ends.hub.upgrade() else {
                    return;
                };
                // Answers to (UN)SUBSCRIBE may take longer than a poll.
                let _ = ps.set_read_timeout(Some(Duration::from_secs(5)));
                for t in todo.drain(..) {
                    let want = hub.registry.count(&t) > 0;
                    let ok = match (want, have.contains(&t)) {
                        (true, false) => ps.subscribe(channel(&t)).map(|()| {
                            have.insert(t.clone());
                        }),
                        (false, true) => ps.unsubscribe(channel(&t)).map(|()| {
                            have.remove(&t);
                        }),
                        _ => Ok(()),
                    };
                    if let Err(e) = ok {
                        log::warn!("volley: pubsub bridge: {e}; reconnecting");
                        down_logged = true;
                        break 'connected;
                    }
                }
                if ps.set_read_timeout(Some(POLL)).is_err() {
                    break;
                }
            }
            match ps.get_message() {
                Ok(msg) => {
                    let name = msg.get_channel_name().as_bytes();
                    let Some(topic) = name
                        .strip_prefix(ends.prefix.as_bytes())
                        .and_then(|t| t.strip_prefix(b":"))
                    else {
                        continue;
                    };
                    let payload: Vec<u8> = msg.get_payload().unwrap_or_default();
                    let Some((m, compress)) = decode(&payload, &ends.origin) else {
                        continue;
                    };
                    let Some(hub) = ends.hub.upgrade() else {
                        return;
                    };
                    hub.stats.bridged_in.fetch_add(1, Ordering::Relaxed);
                    hub.publish_bridged(topic, &Prepared::new(m), compress);
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    log::warn!("volley: pubsub bridge: lost the subscription ({e}); reconnecting");
                    down_logged = true;
                    break;
                }
            }
        }
        if !backoff.wait(&stop) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_redis_url_and_the_prefix() {
        let u = BridgeUrl::parse("redis://127.0.0.1:6379/myapp").unwrap();
        assert_eq!(
            (u.redis.as_str(), u.prefix.as_str()),
            ("redis://127.0.0.1:6379/", "myapp")
        );
        let u = BridgeUrl::parse("rediss://:secret@host").unwrap();
        assert_eq!(
            (u.redis.as_str(), u.prefix.as_str()),
            ("rediss://:secret@host/", "volley")
        );
        assert!(BridgeUrl::parse("http://x").is_err());
        assert!(BridgeUrl::parse("redis:///p").is_err());
    }

    #[test]
    fn messages_keep_their_kind_and_compression_and_ours_are_skipped() {
        let ours = [1u8; 16];
        let o = Out {
            topic: Arc::from(&b"t"[..]),
            msg: Prepared::new(Message::Binary(&[0, 1, 2])),
            compress: Some(true),
        };
        let wire = encode(&o, &ours);
        assert_eq!(
            decode(&wire, &[2u8; 16]),
            Some((Message::Binary(&[0, 1, 2]), Some(true)))
        );
        assert_eq!(decode(&wire, &ours), None);
        let o = Out {
            compress: None,
            msg: Prepared::new("héllo"),
            ..o
        };
        let wire = encode(&o, &ours);
        assert_eq!(
            decode(&wire, &[0u8; 16]),
            Some((Message::Text("héllo"), None))
        );
        assert_eq!(decode(b"garbage", &ours), None);
    }
}
