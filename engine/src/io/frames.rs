//! Frames: decoding client frames in place, inflating compressed messages
//! under the size cap, and dispatching messages, pings, pongs and closes.

use super::conn::Ctx;
use super::lifecycle::{guarded, report_close};
use super::worker::{Conns, Shared};
use crate::Handler;
use crate::proto::ProtocolError;
use crate::proto::deflate::Inflater;
use crate::proto::frame::OpCode;
use crate::proto::inbound::{self, Received};
use crate::proto::session::{Phase, Reaction};
use std::sync::atomic::Ordering;

/// Decode frames and dispatch them; stops early when the handler pauses
/// reading or the connection stops taking messages.
pub(super) fn frames<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut pos = 0;
    // The payload of a message that spanned reads, between decoding and
    // the handler's return.
    let mut held = Vec::new();
    while pos < input.len() {
        let conn = &mut conns[key];
        if conn.paused || !matches!(conn.phase(), Phase::Open | Phase::Closing) {
            return pos;
        }
        let limits = if conn.pmd.is_some() {
            &ctx.limits_pmd
        } else {
            &ctx.limits
        };
        let (used, ev) = match inbound::next(&mut conn.dec, &mut input[pos..], limits, &mut held) {
            Ok(Some(found)) => found,
            Ok(None) => return input.len(),
            Err(e) => {
                fail(shared, conns, ctx, key, e);
                return input.len();
            }
        };
        pos += used;
        match ev {
            Received::Compressed { text, deflated } => {
                inflate_and_dispatch(shared, conns, ctx, key, text, deflated)
            }
            ev => dispatch(shared, conns, ctx, key, ev),
        }
        if held.capacity() > 0 {
            // Back to the worker's pool: an idle connection holds no buffer.
            ctx.pool.put(std::mem::take(&mut held));
        }
    }
    pos
}

/// The peer broke a rule: close with its code.
fn fail<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    e: crate::proto::ProtocolError,
) {
    let c = (e.close_code(), e.reason());
    close_with(shared, conns, ctx, key, c, c);
}

/// Send our close frame (`sent`), tell the handler (`reported`), then write
/// out and shut down.
fn close_with<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    sent: (u16, &str),
    reported: (u16, &str),
) {
    conns[key].send_close_frame(ctx, key, sent.0, sent.1);
    report_close(&shared.handler, conns, ctx, key, reported.0, reported.1);
    let conn = &mut conns[key];
    if conn.phase() != Phase::Done {
        conn.flush_and_shut(ctx, key);
    }
}

/// A compressed message: inflate it under `max_payload_length` (a bomb
/// stops at the cap, 1009), with the connection's own inflater or, without
/// context takeover, the worker's; dispatch what it is.
fn inflate_and_dispatch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    text: bool,
    deflated: &[u8],
) {
    let conn = &mut conns[key];
    let Some(a) = conn.pmd else {
        return fail(shared, conns, ctx, key, ProtocolError::ReservedBitsSet);
    };
    let cap = ctx.opts.max_payload_length;
    let mut out = ctx.pool.get(deflated.len().saturating_mul(3).min(cap));
    let inflater = if a.client_no_context_takeover {
        ctx.shared_inflater(a.client_window_bits)
    } else {
        conn.cold()
            .inflater
            .get_or_insert_with(|| Inflater::new(a.client_window_bits, false))
    };
    match inbound::inflate(text, deflated, inflater, cap, &mut out) {
        Ok(ev) => dispatch(shared, conns, ctx, key, ev),
        Err(e) => fail(shared, conns, ctx, key, e),
    }
    ctx.pool.put(out);
}

/// What the peer sent, told to the handler and answered as the session
/// decides ([`Session::received`](crate::proto::session::Session::received)).
/// Inlined into the read loop, so that an event is matched where it is made.
#[inline(always)]
fn dispatch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    ev: Received<'_>,
) {
    let h = &shared.handler;
    let conn = &mut conns[key];
    match conn.sess.received(ev, ctx.opts.max_control_backlog) {
        Reaction::Message(m) => {
            ctx.hub.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            guarded(h, conns, ctx, key, |h, ws| h.message(ws, m));
        }
        Reaction::Discard => {}
        Reaction::Ping { payload, pong } => {
            if pong {
                conn.queue_frame(ctx, key, OpCode::Pong, payload);
            }
            guarded(h, conns, ctx, key, |h, ws| h.ping(ws, payload));
        }
        Reaction::Pong(payload) => guarded(h, conns, ctx, key, |h, ws| h.pong(ws, payload)),
        Reaction::Close { code, reason } => {
            close_with(shared, conns, ctx, key, (code, ""), (code, reason));
        }
        Reaction::Fail(e) => fail(shared, conns, ctx, key, e),
    }
}
