//! Reading: bytes from sockets (through the TLS session when there is one)
//! into the connection's current phase, with a read budget per connection
//! and a stash for input a phase cannot take yet.

use super::input::feed;
use super::worker::Worker;
use crate::Handler;
use crate::proto::close;
use crate::proto::session::Phase;
use std::io::{self, Read};

/// Reads per connection per readiness event before others get a turn.
const READ_BUDGET: usize = 8;

impl<H: Handler> Worker<H> {
    /// Read what the socket has. `closed`: the event also reported the
    /// peer's FIN or RST, which brings no further edge, so read on to the
    /// end instead of stopping at a short read.
    pub(super) fn readable(&mut self, key: usize, closed: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.hup |= closed;
        let closed = conn.hup;
        if closed && conn.phase() == Phase::Deferred {
            // An upgrade waiting for its answer whose client hung up: it
            // can never open. Drop it now (a late accept then gives the
            // host its data back through `upgrade_failed`) rather than
            // open a connection nobody is on.
            return self.eof(key);
        }
        if conn.paused || conn.phase().awaits_answer() || conn.http_backlogged(&self.ctx.opts) {
            conn.read_pending = true;
            return;
        }
        if self.throttle(key) {
            return;
        }
        for _ in 0..READ_BUDGET {
            let conn = &mut self.conns[key];
            let n = match conn.sock.read(&mut self.rbuf) {
                Ok(0) => return self.eof(key),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.eof(key),
            };
            conn.note_read(self.ctx.now);
            if conn.is_tls() {
                if !self.tls_input(key, n) {
                    return;
                }
            } else {
                self.input(key, n, false);
            }
            self.fire_events();
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            // Answer this read now: one write for everything its messages
            // sent, without waiting for the other ready sockets of this turn.
            if conn.dirty && conn.phase() != Phase::Done {
                conn.dirty = false;
                self.flush(key);
                if !self.conns.contains(key) {
                    return;
                }
            }
            let conn = &mut self.conns[key];
            if conn.phase() == Phase::Done {
                return;
            }
            if conn.hup && conn.phase() == Phase::Deferred {
                return self.eof(key); // as above: the request came with its FIN
            }
            if conn.paused || conn.phase().awaits_answer() || conn.http_backlogged(&self.ctx.opts) {
                conn.read_pending = true;
                return;
            }
            // A short read drained the socket: the next byte brings a new edge.
            if n < self.rbuf.len() && !closed {
                return;
            }
        }
        self.ctx.again.push(key);
    }

    /// Handle `n` bytes of plaintext: at the start of `rbuf`, or of `tbuf`
    /// when they came out of a TLS session.
    pub(super) fn input(&mut self, key: usize, n: usize, from_tls: bool) {
        let buf = if from_tls {
            &mut self.tbuf
        } else {
            &mut self.rbuf
        };
        if self.conns[key].has_stash() {
            self.conns[key].stash_mut().extend_from_slice(&buf[..n]);
            self.feed_stash(key);
            return;
        }
        let used = feed(
            &self.shared,
            &mut self.conns,
            &mut self.ctx,
            key,
            &mut buf[..n],
        );
        if let Some(conn) = self.conns.get_mut(key) {
            if used < n && conn.phase().keeps_input() {
                conn.stash_mut().extend_from_slice(&buf[used..n]);
            }
        }
    }

    /// `n` bytes of ciphertext at the start of `rbuf`: through the session,
    /// plaintext to [`Worker::input`]. False when the connection ended.
    fn tls_input(&mut self, key: usize, n: usize) -> bool {
        let mut pos = 0;
        while pos < n {
            let Some(s) = self.conns[key].cold.as_mut().and_then(|c| c.tls.as_mut()) else {
                return false;
            };
            let mut cipher = &self.rbuf[pos..n];
            let read = s.read_tls(&mut cipher);
            pos = n - cipher.len();
            let state = read.map_err(|_| ()).and_then(|_| {
                s.process_new_packets()
                    .map_err(|e| log::debug!("volley: TLS: {e}"))
            });
            let Ok(state) = state else {
                // The alert (if any) goes out with a best-effort flush.
                if matches!(self.conns[key].phase(), Phase::Open | Phase::Closing) {
                    self.report_close(key, close::ABNORMAL, "");
                }
                let conn = &mut self.conns[key];
                conn.proto.sess.stop_messages();
                self.flush(key);
                if let Some(c) = self.conns.get_mut(key) {
                    c.finish(&mut self.ctx, key);
                }
                return false;
            };
            let mut plain = state.plaintext_bytes_to_read();
            let peer_closed = state.peer_has_closed();
            while plain > 0 {
                let Some(s) = self.conns[key].cold.as_mut().and_then(|c| c.tls.as_mut()) else {
                    return false;
                };
                let p = match s.reader().read(&mut self.tbuf) {
                    Ok(0) | Err(_) => break,
                    Ok(p) => p,
                };
                plain -= p.min(plain);
                self.input(key, p, true);
                if self.conns.get(key).is_none_or(|c| c.phase() == Phase::Done) {
                    return false;
                }
            }
            if peer_closed {
                self.eof(key);
                return false;
            }
        }
        // Handshake records or alerts to answer with.
        let conn = &mut self.conns[key];
        if conn
            .cold
            .as_ref()
            .and_then(|c| c.tls.as_ref())
            .is_some_and(|s| s.wants_write())
        {
            conn.mark_dirty(&mut self.ctx, key);
        }
        true
    }

    /// Feed what the stash holds (an incomplete head that grew, pipelined
    /// requests, input left while paused or awaiting an answer).
    pub(super) fn feed_stash(&mut self, key: usize) {
        let mut stash = self.conns[key].take_stash();
        let used = feed(
            &self.shared,
            &mut self.conns,
            &mut self.ctx,
            key,
            &mut stash,
        );
        if let Some(conn) = self.conns.get_mut(key) {
            if used < stash.len() && conn.phase().keeps_input() {
                stash.drain(..used);
                conn.put_stash(stash);
                return;
            }
        }
        self.ctx.pool.put(stash);
    }

    /// Connections resumed, answered, or out of read budget: input they
    /// kept, then the socket.
    pub(super) fn read_again(&mut self) {
        let mut again = std::mem::take(&mut self.ctx.again);
        for key in again.drain(..) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.paused || conn.phase().awaits_answer() || conn.http_backlogged(&self.ctx.opts) {
                continue;
            }
            conn.read_pending = false;
            if conn.has_stash() {
                self.feed_stash(key);
                self.fire_events();
            }
            if self
                .conns
                .get(key)
                .is_some_and(|c| !c.paused && c.phase() != Phase::Done)
            {
                self.readable(key, false);
            }
            self.settle(key);
        }
        if self.ctx.again.is_empty() {
            self.ctx.again = again; // keep the allocation
        }
    }

    /// The peer's end of the stream (or a read error).
    pub(super) fn eof(&mut self, key: usize) {
        if matches!(self.conns[key].phase(), Phase::Open | Phase::Closing) {
            self.report_close(key, close::ABNORMAL, "");
        }
        self.conns[key].finish(&mut self.ctx, key);
    }
}
