//! A connection's life and the guarded calls into the handler: closing
//! reports (once per opened WebSocket), panics caught at every call,
//! events fired after the callback that caused them, and removal.

use super::conn::{Ctx, Deferred};
use super::publish;
use super::slots;
use super::worker::{Conns, Worker};
use crate::Handler;
use crate::io::websocket::WebSocket;
use crate::proto::close;
use crate::proto::session::Phase;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;

impl<H: Handler> Worker<H> {
    /// Run the close handler once for an opened connection.
    pub(super) fn report_close(&mut self, key: usize, code: u16, reason: &str) {
        report_close(
            &self.shared.handler,
            &mut self.conns,
            &mut self.ctx,
            key,
            code,
            reason,
        );
    }

    /// Remove a connection that reached `Done`.
    pub(super) fn settle(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase() != Phase::Done {
            return;
        }
        self.report_close(key, close::ABNORMAL, "");
        // Subscriptions end with the connection (an SSE stream, or one
        // never reported; a reported WebSocket has none left).
        end_subscriptions(&mut self.conns, &mut self.ctx, key);
        let mut conn = self.conns.remove(key);
        self.ctx.slot(key).set_state(slots::CLOSED);
        self.ctx.queued_delta -= conn.out.len() as i64;
        conn.out.clear(&mut self.ctx.pool);
        let _ = self.poll.registry().deregister(&mut conn.sock);
        self.ctx
            .hub
            .stats
            .connections
            .fetch_sub(1, Ordering::Relaxed);
        self.fire_events();
    }

    /// Tell the handler what happened during the last callback.
    pub(super) fn fire_events(&mut self) {
        fire_events(&self.shared.handler, &mut self.conns, &mut self.ctx);
    }

    /// A guarded handler call on connection `key`.
    pub(super) fn guarded(&mut self, key: usize, f: impl FnOnce(&H, &mut WebSocket<'_, H::Data>)) {
        guarded(&self.shared.handler, &mut self.conns, &mut self.ctx, key, f);
    }
}

/// Tell the handler what happened during the last callback (a drop for a
/// slow subscriber, a topic's first or last subscriber).
pub(super) fn fire_events<H: Handler>(h: &H, conns: &mut Conns<H::Data>, ctx: &mut Ctx) {
    while !ctx.events.is_empty() {
        let events = std::mem::take(&mut ctx.events);
        for ev in events {
            match ev {
                Deferred::Dropped {
                    key,
                    generation,
                    topic,
                    msg,
                } => {
                    let live = conns
                        .get(key)
                        .is_some_and(|c| c.generation == generation && c.phase() == Phase::Open);
                    if live {
                        guarded(h, conns, ctx, key, |h, ws| {
                            h.dropped(ws, &topic, msg.message())
                        });
                    }
                }
                Deferred::TopicEdge { topic, active } => {
                    ctx.hub.bridge_topic(&topic);
                    if hook(|| h.topic(&topic, active)).is_none() {
                        log::error!("volley: topic handler panicked");
                    }
                }
            }
        }
    }
}

/// Run the close handler once for an opened connection.
pub(super) fn report_close<H: Handler>(
    h: &H,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    code: u16,
    reason: &str,
) {
    let conn = &mut conns[key];
    if !conn.proto.sess.report_close() {
        return;
    }
    ctx.slot(key).set_state(slots::CLOSED);
    let phase = conn.phase();
    if phase == Phase::Open || phase == Phase::Closing {
        conn.proto.sess.stop_messages(); // sends are refused inside the close handler
    }
    let mut ws = WebSocket { conns, ctx, key };
    if panic::catch_unwind(AssertUnwindSafe(|| h.close(&mut ws, code, reason))).is_err() {
        log::error!("volley: close handler panicked");
    }
    // Subscriptions end with the close handler (as on Bun/uWebSockets),
    // not when the socket is finally reaped: a peer that is slow to send
    // its FIN must not keep counting in `subscriber_count`, nor keep
    // receiving a topic's publishes encoded for it in the meantime.
    end_subscriptions(conns, ctx, key);
    if phase == Phase::Done {
        conns[key].proto.sess.finish();
    }
}

/// Unsubscribe connection `key` from every topic it is on.
fn end_subscriptions<D>(conns: &mut Conns<D>, ctx: &mut Ctx, key: usize) {
    while let Some((topic, _)) = conns[key].subs().last().cloned() {
        publish::unsubscribe(conns, ctx, key, &topic);
    }
}

/// Run a handler callback. A panic in it closes this connection with 1011;
/// the worker and every other connection keep running.
pub(super) fn guarded<H: Handler>(
    h: &H,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    f: impl FnOnce(&H, &mut WebSocket<'_, H::Data>),
) {
    let ok = panic::catch_unwind(AssertUnwindSafe(|| {
        f(h, &mut WebSocket { conns, ctx, key })
    }))
    .is_ok();
    if ok {
        return;
    }
    log::error!("volley: handler panicked; closing the connection with 1011");
    let Some(conn) = conns.get_mut(key) else {
        return;
    };
    if matches!(conn.phase(), Phase::Open | Phase::Closing) {
        conn.send_close_frame(ctx, key, close::INTERNAL_ERROR, "internal error");
        report_close(h, conns, ctx, key, close::INTERNAL_ERROR, "internal error");
        let conn = &mut conns[key];
        if conn.phase() != Phase::Done {
            conn.flush_and_shut(ctx, key);
        }
    }
}

/// Call a request hook (upgrade, fetch, topic); a panic becomes `None`.
pub(super) fn hook<R>(f: impl FnOnce() -> R) -> Option<R> {
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    if r.is_err() {
        log::error!("volley: hook panicked");
    }
    r.ok()
}
