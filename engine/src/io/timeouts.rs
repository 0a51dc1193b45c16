//! Timeouts: handshakes and request bodies (slowloris), deferred answers,
//! idle connections and their pings, lifetimes, closing handshakes,
//! Server-Sent Events keep-alives.

use super::conn::{Phase, hard_idle, ping_interval, pong_wait};
use super::http_phase::respond;
use super::worker::Worker;
use crate::Handler;
use crate::Response;
use crate::proto::close;
use crate::proto::frame::OpCode;

impl<H: Handler> Worker<H> {
    pub(super) fn timers(&mut self) {
        let mut expired = std::mem::take(&mut self.expired);
        self.ctx.wheel.expire(self.ctx.now, &mut expired);
        for (tick, (key, generation)) in expired.drain(..) {
            let key = key as usize;
            match self.conns.get_mut(key) {
                Some(c) if c.generation == generation && u64::from(c.timer_tick) == tick => {
                    c.timer_tick = 0
                }
                _ => continue, // stale entry
            }
            self.timeout(key);
            if let Some(c) = self.conns.get_mut(key) {
                c.arm(&mut self.ctx, key);
            }
            self.settle(key);
        }
        self.expired = expired;
    }

    fn timeout(&mut self, key: usize) {
        let now = self.ctx.now;
        let opts = self.ctx.opts.clone();
        let conn = &mut self.conns[key];
        if conn.send_deadline(&opts).is_some_and(|d| now >= d) && conn.phase != Phase::Done {
            // Nothing queued has moved for send_timeout: the peer is gone
            // (or never reads). No close frame: it could not be written.
            if matches!(conn.phase, Phase::Open | Phase::Closing) {
                self.report_close(key, close::ABNORMAL, "send timeout");
            }
            self.conns[key].finish(&mut self.ctx, key);
            return;
        }
        match conn.phase {
            Phase::Handshake => {
                if now >= conn.since + opts.handshake_timeout {
                    // Slowloris, or a keep-alive connection gone quiet: drop
                    // without a word.
                    conn.finish(&mut self.ctx, key);
                }
            }
            Phase::Body => {
                if now >= conn.since + opts.handshake_timeout {
                    respond(
                        conn,
                        &mut self.ctx,
                        key,
                        &Response::new(408, "request body timed out\n"),
                        None,
                    );
                }
            }
            Phase::Deferred | Phase::Fetching => {
                let limit = if conn.phase == Phase::Deferred {
                    opts.handshake_timeout
                } else {
                    opts.request_timeout
                };
                if now >= conn.since + limit {
                    conn.take_pending();
                    let what = if conn.phase == Phase::Deferred {
                        "upgrade timed out\n"
                    } else {
                        "request timed out\n"
                    };
                    respond(conn, &mut self.ctx, key, &Response::new(503, what), None);
                }
            }
            Phase::Closing | Phase::Flushing => {
                if conn.aux.is_none_or(|d| now >= d) {
                    conn.finish(&mut self.ctx, key);
                }
            }
            Phase::Done | Phase::Stream => {}
            Phase::Sse => {
                let last = conn.aux.unwrap_or(conn.since);
                if !opts.sse_keepalive.is_zero() && now >= last + opts.sse_keepalive {
                    conn.queue_bytes(&mut self.ctx, key, b": keep-alive\n\n");
                    conn.aux = Some(now);
                }
            }
            Phase::Open => {
                if opts.max_lifetime.is_some_and(|l| now >= conn.since + l) {
                    conn.start_close(&mut self.ctx, key, close::GOING_AWAY, "max lifetime");
                    return;
                }
                let pong_late = conn
                    .awaiting_pong()
                    .zip(pong_wait(&opts))
                    .is_some_and(|(p, w)| now >= p + w);
                let idle = hard_idle(&opts).is_some_and(|i| now >= conn.last_read + i);
                if pong_late || idle {
                    // The peer is silent: say why, but do not wait for an answer.
                    conn.send_close_frame(&mut self.ctx, key, close::GOING_AWAY, "idle timeout");
                    self.report_close(key, close::ABNORMAL, "idle timeout");
                    self.conns[key].flush_and_shut(&mut self.ctx, key);
                    return;
                }
                if conn.awaiting_pong().is_none()
                    && ping_interval(&opts).is_some_and(|i| now >= conn.last_read + i)
                {
                    conn.queue_frame(&mut self.ctx, key, OpCode::Ping, b"");
                    conn.aux = Some(now);
                }
            }
        }
    }
}
