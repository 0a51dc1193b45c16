//! Timeouts, the IO half: the wheel says which connections' deadlines
//! passed, `proto::session` says what is due for each (slowloris heads and
//! bodies, deferred answers, pings, idle peers, lifetimes, closing
//! handshakes, event-stream keep-alives), and this file does it.

use super::http_phase::respond;
use super::worker::Worker;
use crate::Handler;
use crate::Response;
use crate::proto::close;
use crate::proto::session::Due;
use crate::proto::session::Phase;

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

    /// Do what the connection's clock says is due (proto::session decides).
    fn timeout(&mut self, key: usize) {
        let now = self.ctx.now;
        let conn = &mut self.conns[key];
        let due = conn
            .proto
            .sess
            .due(conn.stalled_since(), &self.ctx.timeouts, now);
        match due {
            Due::Nothing => {}
            Due::SendTimeout => {
                // No close frame: it could not be written.
                if matches!(conn.phase(), Phase::Open | Phase::Closing) {
                    self.report_close(key, close::ABNORMAL, "send timeout");
                }
                self.conns[key].finish(&mut self.ctx, key);
            }
            Due::Drop => conn.finish(&mut self.ctx, key),
            Due::Answer(status, body) => {
                conn.take_pending();
                respond(conn, &mut self.ctx, key, &Response::new(status, body), None);
            }
            Due::Lifetime => {
                conn.start_close(&mut self.ctx, key, close::GOING_AWAY, "max lifetime")
            }
            Due::Idle => {
                // The peer is silent: say why, but do not wait for an answer.
                conn.send_close_frame(&mut self.ctx, key, close::GOING_AWAY, "idle timeout");
                self.report_close(key, close::ABNORMAL, "idle timeout");
                self.conns[key].flush_and_shut(&mut self.ctx, key);
            }
            Due::Ping => {
                let (proto, mut wire) = conn.wire(&mut self.ctx, key);
                proto.keepalive_ping(now, &mut wire);
            }
            Due::KeepAlive => {
                conn.queue_bytes(&mut self.ctx, key, b": keep-alive\n\n");
                conn.proto.sess.kept_alive(now);
            }
        }
    }
}
