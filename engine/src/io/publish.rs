//! Pub/sub on a worker: subscriptions, and publishes delivered to local
//! subscribers and handed once to each other worker that has some.

use super::conn::{Conn, Ctx, Deferred, Offer};
use crate::proto::session::Phase;
use crate::pubsub::{Edge, Local, Prepared, PublishResult};
use slab::Slab;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
        ctx.events.push(Deferred::TopicEdge {
            topic: t.name.clone(),
            active: true,
        });
    }
    let counted = counted.map(|(t, _)| t);
    let conn = &mut conns[key];
    let usable = matches!(conn.phase(), Phase::Open | Phase::Sse);
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
                ctx.events.push(Deferred::TopicEdge {
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
        ctx.events.push(Deferred::TopicEdge {
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
    hub.bridge_out(topic, msg, compress);
    let mut res = deliver_local(conns, ctx, topic, msg, exclude, compress);
    let shared = match ctx.topics.map.get(topic) {
        Some(l) => Some(l.topic.clone()),
        None => hub.registry.get(topic),
    };
    if let Some(t) = shared {
        res.forwarded = hub.publish_to_workers(&t, msg, compress, Some(ctx.me), None);
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
