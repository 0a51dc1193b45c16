//! Timeouts, the IO half: the wheel says which connections' deadlines
//! passed, the connection (`proto::connection`, asking its session) does
//! what is due for each and writes what that takes (slowloris heads and
//! bodies, deferred answers, pings, idle peers, lifetimes, closing
//! handshakes, event-stream keep-alives), and this file does the rest:
//! tell the handler, drop, shut down.

use super::http_phase::shut;
use super::worker::Worker;
use crate::Handler;
use crate::proto::close;
use crate::proto::connection::Expired;

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

    /// A deadline of the connection's may have passed: the connection does
    /// what is due (`Connection::on_timeout`), the loop what it leaves.
    fn timeout(&mut self, key: usize) {
        let (now, t) = (self.ctx.now, self.ctx.timeouts);
        let conn = &mut self.conns[key];
        let stalled = conn.stalled_since();
        let (proto, mut wire) = conn.wire(&mut self.ctx, key);
        match proto.on_timeout(now, stalled, &t, &mut wire) {
            Expired::Nothing => {}
            Expired::Drop { report } => {
                // No close frame: it could not be written.
                if report {
                    self.report_close(key, close::ABNORMAL, "send timeout");
                }
                self.conns[key].finish(&mut self.ctx, key);
            }
            Expired::Answered => {
                conn.take_pending();
                shut(conn, &mut self.ctx, key);
            }
            Expired::Idle => {
                // The peer is silent: say why, but do not wait for an answer.
                self.report_close(key, close::ABNORMAL, "idle timeout");
                self.conns[key].flush_and_shut(&mut self.ctx, key);
            }
        }
    }
}
