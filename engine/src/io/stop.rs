//! Stopping: the listener goes, open WebSockets get 1001 (or, stopping now,
//! every connection is dropped), and the worker exits once its connections
//! are gone or `close_timeout` has passed.

use super::conn::Phase;
use super::hub;
use super::worker::Worker;
use crate::Handler;
use crate::proto::close;
use std::sync::atomic::Ordering;

impl<H: Handler> Worker<H> {
    /// The server is stopping: true when the worker may exit.
    pub(super) fn stopping(&mut self) -> bool {
        let now_please = self.ctx.hub.stopping.load(Ordering::Acquire) == hub::STOP_NOW;
        if self.stop_deadline.is_none() {
            if let Some(mut l) = self.listener.take() {
                let _ = self.poll.registry().deregister(&mut l);
            }
            self.stop_deadline = Some(self.ctx.now + self.ctx.opts.close_timeout);
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                let conn = &mut self.conns[key];
                match conn.phase {
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
