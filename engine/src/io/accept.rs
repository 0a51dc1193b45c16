//! Accepting: new connections (TCP or Unix) from the worker's listener.

use super::conn::Conn;
use super::sock::Stream;
use super::tls;
use super::worker::{WAKER, Worker, deregister_listener, register_listener};
use crate::Handler;
use crate::id::MAX_SLOTS;
use mio::{Interest, Token};
use std::io::{self, Write};
use std::sync::atomic::Ordering;

/// How long `accept` waits before trying again after running out of
/// descriptors (or table room).
const RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// The answer to a connection past `max_connections`.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 28\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections, retry\n";

/// The most connections one listener event takes in a burst.
const BURST_MAX: usize = 64;

impl<H: Handler> Worker<H> {
    /// The listener is ready: take up to the budget's connections. The
    /// budget is one, so that a connection arriving alone is taken without
    /// a second `accept4` that finds the queue empty (the listener is level
    /// triggered and is reported again while more wait); it doubles, up to
    /// `BURST_MAX`, while the listener is ready turn after turn with the
    /// budget used up (a burst), and falls back to one when the queue runs
    /// dry.
    pub(super) fn accept(&mut self) {
        if self.accept_full_turn != 0 && self.accept_full_turn + 1 == self.turn_no {
            self.accept_budget = (self.accept_budget * 2).min(BURST_MAX);
        } else {
            self.accept_budget = 1;
        }
        let mut taken = 0;
        while taken < self.accept_budget {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok(mut sock) => {
                    taken += 1;
                    self.accept_failing = false;
                    let max = self.ctx.opts.max_connections;
                    if max > 0 && self.ctx.hub.stats.connections.load(Ordering::Relaxed) >= max {
                        // Refused before reading a byte. A plain client gets a
                        // short 503; a TLS port cannot speak before a
                        // handshake it has no room for, so it only closes
                        // (a plaintext answer there would be garbage to the
                        // client's TLS stack).
                        self.ctx.hub.stats.refused.fetch_add(1, Ordering::Relaxed);
                        if self.ctx.opts.tls.is_none() {
                            let _ = sock.write(OVERLOADED);
                        }
                        continue;
                    }
                    if let Err(e) = self.adopt(sock) {
                        log::warn!("volley: new connection: {e}");
                        if e.kind() == io::ErrorKind::OutOfMemory {
                            // The table is full: the rest wait in the backlog.
                            return self.pause_accept();
                        }
                    }
                }
                // Taken by another worker, or none left: the budget was not
                // used up, so the next event takes one at a time again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the clients stay in the
                    // backlog; try again shortly (said once per spell).
                    if !self.accept_failing {
                        log::warn!("volley: accept failed: {e} (retrying every {RETRY:?})");
                    }
                    self.accept_failing = true;
                    return self.pause_accept();
                }
            }
        }
        self.accept_full_turn = self.turn_no;
    }

    /// Stop taking connections for `RETRY`: the listener leaves the poll
    /// (level triggered, it would report the waiting clients every turn).
    fn pause_accept(&mut self) {
        if let Some(l) = self.listener.as_ref() {
            let _ = deregister_listener(&self.poll, l);
        }
        self.accept_retry = Some(self.ctx.now + RETRY);
    }

    /// `RETRY` passed: the listener back in the poll, which reports it at
    /// once if clients still wait.
    pub(super) fn resume_accept(&mut self) {
        let Some(l) = self.listener.as_ref() else {
            return;
        };
        if let Err(e) = register_listener(&self.poll, l, self.shared_listener) {
            log::warn!("volley: listener: {e} (retrying every {RETRY:?})");
            self.accept_retry = Some(self.ctx.now + RETRY);
        }
    }

    /// Take a new connection (from the listener, or accepted elsewhere: the
    /// fuzzing harness's): it starts reading its request like any other.
    pub(crate) fn adopt(&mut self, mut sock: Stream) -> io::Result<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if key >= WAKER.0 || key >= MAX_SLOTS {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "connection table full",
            ));
        }
        let session = match &self.ctx.opts.tls {
            Some(cfg) => Some(Box::new(tls::session(cfg)?)),
            None => None,
        };
        self.poll.registry().register(
            &mut sock,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let id = self.ctx.occupy(key);
        let conn = entry.insert(Conn::new(sock, id.generation() as u32, self.ctx.now));
        if session.is_some() {
            conn.cold().tls = session;
        }
        conn.arm(&mut self.ctx, key);
        self.ctx
            .hub
            .stats
            .connections
            .fetch_add(1, Ordering::Relaxed);
        Ok(key)
    }
}
