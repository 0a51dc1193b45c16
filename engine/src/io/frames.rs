//! Frames: the peer's bytes given to the connection's protocol state
//! ([`Connection::next_event`](crate::proto::connection::Connection::next_event),
//! which decodes, inflates, checks, answers pings and echoes closes
//! itself), and what it says the handler is to hear, told.

use super::conn::Ctx;
use super::lifecycle::{guarded, report_close};
use super::worker::{Conns, Shared};
use crate::Handler;
use crate::proto::connection::Event;
use crate::proto::session::Phase;
use std::sync::atomic::Ordering;

/// Decode frames and tell the handler; stops early when the handler pauses
/// reading or the connection stops taking frames.
pub(super) fn frames<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut pos = 0;
    // The payload of a message that spanned reads, or of an inflated one,
    // between decoding and the handler's return.
    let mut held = Vec::new();
    let mut inflated = Vec::new();
    while pos < input.len() {
        let conn = &mut conns[key];
        if conn.paused || !matches!(conn.phase(), Phase::Open | Phase::Closing) {
            return pos;
        }
        let (proto, mut wire) = conn.wire(ctx, key);
        let next = proto.next_event(
            &mut input[pos..],
            &shared.frames,
            &mut held,
            &mut inflated,
            &mut wire,
        );
        let Some((used, ev)) = next else {
            return input.len();
        };
        pos += used;
        tell(shared, conns, ctx, key, ev);
        // Back to the worker's pool: an idle connection holds no buffer.
        if held.capacity() > 0 {
            ctx.pool.put(std::mem::take(&mut held));
        }
        if inflated.capacity() > 0 {
            ctx.pool.put(std::mem::take(&mut inflated));
        }
    }
    pos
}

/// What the peer sent, told to the handler. Inlined into the read loop, so
/// that an event is matched where it is made.
#[inline(always)]
fn tell<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    ev: Event<'_>,
) {
    let h = &shared.handler;
    match ev {
        Event::Message(m) => {
            ctx.hub.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            guarded(h, conns, ctx, key, |h, ws| h.message(ws, m));
        }
        Event::Dropped => {}
        Event::Ping(payload) => guarded(h, conns, ctx, key, |h, ws| h.ping(ws, payload)),
        Event::Pong(payload) => guarded(h, conns, ctx, key, |h, ws| h.pong(ws, payload)),
        // Our close frame is queued: tell the handler, then write out and
        // shut down.
        Event::Closed { code, reason } => closed(h, conns, ctx, key, code, reason),
        Event::Failed { code, reason } => closed(h, conns, ctx, key, code, reason),
    }
}

fn closed<H: Handler>(
    h: &H,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    code: u16,
    reason: &str,
) {
    report_close(h, conns, ctx, key, code, reason);
    let conn = &mut conns[key];
    if conn.phase() != Phase::Done {
        conn.flush_and_shut(ctx, key);
    }
}
