//! Writing: a connection's queue to its socket (through the TLS session
//! when there is one), `drain` when a backlog empties, the orderly end of a
//! connection's output.

use super::conn::Conn;
use super::out::Pool;
use super::tls;
use super::worker::Worker;
use crate::Handler;
use crate::proto::session::Phase;
use std::io;
use std::net::Shutdown;

impl<H: Handler> Worker<H> {
    pub(super) fn flush(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if conn.held && conn.phase() == Phase::Open {
            return; // the host has not run `open` yet
        }
        let before = conn.out.len();
        let res = if conn.is_tls() {
            flush_tls(conn, &mut self.ctx.pool)
        } else {
            conn.out.flush(&mut conn.sock, &mut self.ctx.pool)
        };
        let written = before - conn.out.len();
        if let Ok(all_out) = res {
            conn.note_flush(&mut self.ctx, key, written, all_out);
        }
        self.ctx.written += written as u64;
        self.ctx.queued_delta -= written as i64;
        self.ctx.slot(key).set_queued(conn.out.len());
        match res {
            Ok(true) => {
                conn.proto.sess.peer_read();
                if conn.has_conflated() {
                    // The queue drained: the latest conflated messages go now.
                    conn.release_conflated(&mut self.ctx, key);
                    if !conn.out.is_empty() {
                        return;
                    }
                }
                if std::mem::take(&mut conn.backlogged) && conn.phase() == Phase::Open {
                    self.guarded(key, |h, ws| h.drain(ws));
                    self.fire_events();
                }
                let Some(conn) = self.conns.get_mut(key) else {
                    return;
                };
                if conn.phase() == Phase::Flushing && !conn.shut && conn.out.is_empty() {
                    shut(conn);
                }
                if conn.phase() == Phase::Handshake && conn.read_pending {
                    // Answers to pipelined requests drained: read on.
                    self.ctx.again.push(key);
                }
            }
            Ok(false) => {
                conn.backlogged = true;
                if written > 0 {
                    // The peer reads: its pongs are going out.
                    conn.proto.sess.peer_read();
                }
            }
            Err(_) => self.eof(key),
        }
    }

    /// Write out every connection this turn touched, and reap the finished.
    pub(super) fn flush_dirty(&mut self) {
        while let Some(key) = self.ctx.dirty.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.phase() != Phase::Done {
                self.flush(key);
            }
            self.settle(key);
        }
    }
}

/// Everything is out: end the write side. A TLS connection first says
/// `close_notify`, and shuts down only once that record is on the wire
/// (until then the connection stays here, retried on the next writable
/// event or timer).
fn shut<D>(conn: &mut Conn<D>) {
    if let Some(cold) = conn.cold.as_mut() {
        if let Some(s) = cold.tls.as_mut() {
            if !std::mem::replace(&mut cold.tls_notified, true) {
                s.send_close_notify();
            }
            if !matches!(tls::write_out(s, &mut conn.sock), Ok(true)) {
                return;
            }
        }
    }
    conn.shut = true;
    let _ = conn.sock.shutdown(Shutdown::Write);
}

/// Flush a TLS connection: the queue's plaintext into the session (as much
/// as its buffer takes), the session's ciphertext to the socket, until one
/// of them pushes back. `Ok(true)`: everything is on the wire.
fn flush_tls<D>(conn: &mut Conn<D>, pool: &mut Pool) -> io::Result<bool> {
    let s = conn
        .cold
        .as_mut()
        .and_then(|c| c.tls.as_mut())
        .ok_or_else(|| io::Error::other("TLS connection without a session"))?;
    loop {
        let emptied = conn.out.flush(&mut tls::Plain(s), pool)?;
        if !tls::write_out(s, &mut conn.sock)? {
            return Ok(false);
        }
        if emptied {
            return Ok(true);
        }
    }
}
