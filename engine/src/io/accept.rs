//! Accepting: new connections (TCP or Unix) from the worker's listener.

use super::conn::Conn;
use super::sock::Stream;
use super::tls;
use super::worker::{WAKER, Worker};
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

impl<H: Handler> Worker<H> {
    pub(super) fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok(mut sock) => {
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
                            return self.retry_accept();
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the clients stay in the
                    // backlog; try again shortly (the listener is edge
                    // triggered: no new edge comes for them).
                    if self.accept_retry.is_none() {
                        log::warn!("volley: accept failed: {e} (retrying every {RETRY:?})");
                    }
                    return self.retry_accept();
                }
            }
        }
    }

    fn retry_accept(&mut self) {
        self.accept_retry = Some(self.ctx.now + RETRY);
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
            conn.tls = true;
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
