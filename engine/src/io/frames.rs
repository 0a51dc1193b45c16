//! Frames: decoding client frames in place, inflating compressed messages
//! under the size cap, and dispatching messages, pings, pongs and closes.

use super::conn::Ctx;
use super::lifecycle::{guarded, report_close};
use super::worker::{Conns, Shared};
use crate::proto::close;
use crate::proto::decoder::{Kind, Step};
use crate::proto::frame::OpCode;
use crate::proto::session::Phase;
use crate::{Handler, Message};
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
    while pos < input.len() {
        let conn = &mut conns[key];
        if conn.paused || !matches!(conn.phase, Phase::Open | Phase::Closing) {
            return pos;
        }
        let limits = if conn.pmd.is_some() {
            &ctx.limits_pmd
        } else {
            &ctx.limits
        };
        match conn.dec.decode(&mut input[pos..], limits) {
            Err(e) => {
                fail(shared, conns, ctx, key, e);
                return input.len();
            }
            Ok(Step::NeedMore) => return input.len(),
            Ok(Step::InPlace {
                consumed,
                kind,
                range,
                compressed,
            }) => {
                let start = pos;
                pos += consumed;
                let payload = &input[start..][range];
                if compressed {
                    inflate_and_dispatch(shared, conns, ctx, key, kind, payload);
                } else {
                    dispatch(shared, conns, ctx, key, kind, payload);
                }
            }
            Ok(Step::Buffered {
                consumed,
                kind,
                compressed,
            }) => {
                pos += consumed;
                let buf = conn.dec.take_buffer(kind);
                if compressed {
                    inflate_and_dispatch(shared, conns, ctx, key, kind, &buf);
                } else {
                    dispatch(shared, conns, ctx, key, kind, &buf);
                }
                // Back to the worker's pool: an idle connection holds no buffer.
                ctx.pool.put(buf);
            }
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
    if conn.phase != Phase::Done {
        conn.flush_and_shut(ctx, key);
    }
}

/// A compressed message: inflate it under `max_payload_length` (a bomb
/// stops at the cap, 1009), check text, dispatch.
fn inflate_and_dispatch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    kind: Kind,
    payload: &[u8],
) {
    use crate::proto::ProtocolError;
    use crate::proto::deflate::{InflateError, Inflater};
    let conn = &mut conns[key];
    let Some(a) = conn.pmd else {
        return fail(shared, conns, ctx, key, ProtocolError::ReservedBitsSet);
    };
    let cap = ctx.opts.max_payload_length;
    let mut out = ctx.pool.get(payload.len().saturating_mul(3).min(cap));
    let res = if a.client_no_context_takeover {
        ctx.shared_inflater(a.client_window_bits)
            .inflate(payload, &mut out, cap)
    } else {
        conn.cold()
            .inflater
            .get_or_insert_with(|| Inflater::new(a.client_window_bits, false))
            .inflate(payload, &mut out, cap)
    };
    let err = match res {
        Err(InflateError::TooBig) => Some(ProtocolError::MessageTooBig),
        Err(InflateError::Corrupt) => Some(ProtocolError::BadCompressedData),
        Ok(()) if kind == Kind::Text && crate::proto::utf8::validate(&out).is_err() => {
            Some(ProtocolError::InvalidUtf8)
        }
        Ok(()) => None,
    };
    match err {
        Some(e) => fail(shared, conns, ctx, key, e),
        None => dispatch(shared, conns, ctx, key, kind, &out),
    }
    ctx.pool.put(out);
}

fn dispatch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    kind: Kind,
    payload: &[u8],
) {
    let h = &shared.handler;
    let conn = &mut conns[key];
    match kind {
        Kind::Text | Kind::Binary => {
            if conn.phase != Phase::Open {
                return; // after our close frame, data is read and dropped
            }
            let msg = if kind == Kind::Text {
                // SAFETY: the decoder validated this payload as UTF-8 (whole, or
                // streamed across fragments with the end checked) before
                // reporting a text message; see proto::decoder.
                Message::Text(unsafe { std::str::from_utf8_unchecked(payload) })
            } else {
                Message::Binary(payload)
            };
            ctx.hub.stats.messages_in.fetch_add(1, Ordering::Relaxed);
            guarded(h, conns, ctx, key, |h, ws| h.message(ws, msg));
        }
        Kind::Ping => {
            // Pongs get through whatever the data backlog, but a peer that
            // pings while reading nothing (flushes make no progress) is
            // closed once its unsent pongs pass `max_control_backlog`.
            if conn.phase == Phase::Open {
                if let Err(e) = conn
                    .control
                    .ping(payload.len(), ctx.opts.max_control_backlog)
                {
                    return fail(shared, conns, ctx, key, e);
                }
                conn.queue_frame(ctx, key, OpCode::Pong, payload);
            }
            guarded(h, conns, ctx, key, |h, ws| h.ping(ws, payload));
        }
        Kind::Pong => guarded(h, conns, ctx, key, |h, ws| h.pong(ws, payload)),
        Kind::Close => match close::parse(payload) {
            // Echo the code (RFC 6455 §5.5.1); an empty close gets an empty one.
            Ok((code, reason)) => {
                let reason = reason.to_string();
                close_with(shared, conns, ctx, key, (code, ""), (code, &reason));
            }
            Err(bad) => fail(shared, conns, ctx, key, bad.into()),
        },
    }
}
