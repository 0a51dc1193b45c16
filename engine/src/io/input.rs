//! Input: the peer's bytes given to the connection's protocol state
//! ([`Connection::next_event`](crate::proto::connection::Connection::next_event),
//! which reads request heads and bodies, decodes frames, inflates, checks,
//! refuses, answers pings and echoes closes itself), and what it says the
//! handler is to hear, told: requests and upgrades to `http_phase.rs`,
//! messages and control frames to the `Handler`.

use super::conn::Ctx;
use super::http_phase::{fetch, shut, upgrade};
use super::lifecycle::{guarded, report_close};
use super::worker::{Conns, Shared};
use crate::Handler;
use crate::proto::connection::Incoming;
use crate::proto::session::Phase;
use std::sync::atomic::Ordering;

/// Feed input to the connection, event after event (a keep-alive
/// connection may hold several pipelined requests, an upgrade may be
/// followed by frames); returns the bytes used. Stops early when the
/// handler pauses reading, when answers queued on a keep-alive connection
/// pass the limit, or when the connection reads nothing for now; unused
/// bytes are kept by the caller in the phases that keep input.
pub(super) fn feed<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut pos = 0;
    // A message that spanned reads, a gathered request body, or an
    // inflated message, between reading and the handler's return.
    let mut held = Vec::new();
    let mut inflated = Vec::new();
    while pos < input.len() {
        let Some(conn) = conns.get_mut(key) else {
            return input.len();
        };
        match conn.phase() {
            Phase::Handshake if conn.http_backlogged(&ctx.opts) => {
                // Resumed by the flush that drains the answers (write.rs).
                conn.read_pending = true;
                return pos;
            }
            Phase::Open | Phase::Closing if conn.paused => return pos,
            _ => {}
        }
        let now = ctx.now;
        let (proto, mut wire) = conn.wire(ctx, key);
        let (used, ev) = proto.next_event(
            &mut input[pos..],
            &shared.limits,
            &mut held,
            &mut inflated,
            now,
            &mut wire,
        );
        let Some(ev) = ev else {
            return pos + used;
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
    ev: Incoming<'_>,
) {
    let h = &shared.handler;
    match ev {
        Incoming::Message(m) => {
            ctx.hub.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            guarded(h, conns, ctx, key, |h, ws| h.message(ws, m));
        }
        Incoming::Dropped => {}
        Incoming::Ping(payload) => guarded(h, conns, ctx, key, |h, ws| h.ping(ws, payload)),
        Incoming::Pong(payload) => guarded(h, conns, ctx, key, |h, ws| h.pong(ws, payload)),
        // Our close frame is queued: tell the handler, then write out and
        // shut down.
        Incoming::Closed { code, reason } => closed(h, conns, ctx, key, code, reason),
        Incoming::Failed { code, reason } => closed(h, conns, ctx, key, code, reason),
        Incoming::Upgrade(head) => upgrade(shared, conns, ctx, key, &head),
        Incoming::Request { head, body } => fetch(shared, conns, ctx, key, &head, body),
        // The refusal is queued and the connection flushing.
        Incoming::Refused => shut(&mut conns[key], ctx, key),
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
