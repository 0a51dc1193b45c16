//! Stopping: the listener goes; then, stopping gracefully, open WebSockets
//! get 1001 (stopping now, every connection is dropped) and the worker exits
//! once its connections are gone or `close_timeout` has passed; stopping
//! the listener only, it exits when its last connection ends by itself.

use super::hub;
use super::worker::Worker;
use crate::Handler;
use crate::proto::close;
use crate::proto::session::Phase;
use std::sync::atomic::Ordering;

impl<H: Handler> Worker<H> {
    /// Has a stop request come that this worker has not acted on yet? (The
    /// loop then does not sleep; once acted on, it sleeps as usual while
    /// connections finish, until the last goes or the close deadline.)
    pub(super) fn stop_pending(&self) -> bool {
        match self.ctx.hub.stopping.load(Ordering::Acquire) {
            hub::RUNNING => false,
            hub::STOP_LISTENING => self.listener.is_some(),
            hub::STOP_GRACEFUL => self.stop_deadline.is_none(),
            _ => true,
        }
    }

    /// The server is stopping: true when the worker may exit.
    pub(super) fn stopping(&mut self) -> bool {
        let level = self.ctx.hub.stopping.load(Ordering::Acquire);
        let now_please = level == hub::STOP_NOW;
        if let Some(l) = self.listener.take() {
            // Out of the poll before it closes: the other workers hold
            // duplicates of a shared listener, which keep it open.
            let _ = super::worker::deregister_listener(&self.poll, &l);
            drop(l);
            self.ctx.hub.listener_closed();
            // Idle HTTP connections (between keep-alive requests, or not
            // started) would otherwise hold even a listen-only stop until
            // their handshake timeout: they go now, as nginx and Bun do.
            let idle: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| c.phase() == Phase::Handshake && !c.read_pending && !c.has_stash())
                .map(|(k, _)| k)
                .collect();
            for key in idle {
                self.conns[key].finish(&mut self.ctx, key);
                self.settle(key);
            }
        }
        if level >= hub::STOP_GRACEFUL && self.stop_deadline.is_none() {
            self.stop_deadline = Some(self.ctx.now + self.ctx.opts.close_timeout);
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                let conn = &mut self.conns[key];
                match conn.phase() {
                    Phase::Open if !now_please => conn.start_close(
                        &mut self.ctx,
                        key,
                        close::GOING_AWAY,
                        "server shutting down",
                    ),
                    Phase::Closing | Phase::Flushing | Phase::Done => {}
                    _ => conn.finish(&mut self.ctx, key),
                }
                self.settle(key);
            }
            self.flush_dirty();
        }
        if now_please
            || self.conns.is_empty()
            || self.stop_deadline.is_some_and(|d| self.ctx.now >= d)
        {
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                self.conns[key].finish(&mut self.ctx, key);
                self.settle(key);
            }
            self.ctx.dirty.clear();
            self.publish_stats_now();
            return true;
        }
        false
    }
}

impl<H: Handler> Drop for Worker<H> {
    fn drop(&mut self) {
        if self.listener.take().is_some() {
            self.ctx.hub.listener_closed();
        }
    }
}
