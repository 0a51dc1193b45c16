//! What the thread is doing inside a callback: the connection whose event
//! it handles (so calls on that id go straight to the connection, with no
//! cross-thread hop), and the upgrade or request it may answer in the call.
//!
//! Ids repeat across servers (the first connection of worker 0 has the
//! same id on every server), so the current connection is matched by the
//! server it belongs to *and* its id: a call on another server's
//! connection from inside a callback goes through that server.

use crate::server::volley_server;
use engine::{ConnId, Response, WebSocket};
use std::cell::Cell;

/// An answer given inside an upgrade or request callback.
pub(crate) enum Answered {
    Accept {
        user: u64,
        protocol: Option<String>,
        headers: Vec<(String, String)>,
    },
    Reject(Response),
    Respond(Response),
}

/// A thread's callback state, read once (a thread-local in a shared
/// library costs a call to `__tls_get_addr` per read: a send reads it once).
#[derive(Clone, Copy)]
pub(crate) struct Current {
    /// The server whose callback runs (compared by address, never read).
    server: *const volley_server,
    id: Option<ConnId>,
    /// The text message the callback received (already checked as UTF-8):
    /// sending it back needs no second check.
    text: (*const u8, usize),
    /// The callback's connection (event callbacks).
    ws: *mut WebSocket<'static, u64>,
    /// Where an answer goes (upgrade and request callbacks).
    answer: *mut Option<Answered>,
}

const NONE: Current = Current {
    server: std::ptr::null(),
    id: None,
    text: (std::ptr::null(), 0),
    ws: std::ptr::null_mut(),
    answer: std::ptr::null_mut(),
};

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(NONE) };
}

/// Run `f` (the C callback of `server`) with `ws` (whose id is `id`) as
/// the current connection; `text`: the text message it receives, if any.
pub(crate) fn with_ws<R>(
    server: *const volley_server,
    ws: &mut WebSocket<'_, u64>,
    id: ConnId,
    text: Option<&[u8]>,
    f: impl FnOnce() -> R,
) -> R {
    // The lifetime is erased for the thread-local; the pointer is used only
    // while this call (which holds the borrow) runs, and removed after.
    let p = (ws as *mut WebSocket<'_, u64>).cast::<WebSocket<'static, u64>>();
    let prev = CURRENT.with(|c| {
        c.replace(Current {
            server,
            id: Some(id),
            text: text.map_or((std::ptr::null(), 0), |t| (t.as_ptr(), t.len())),
            ws: p,
            answer: std::ptr::null_mut(),
        })
    });
    let r = f();
    CURRENT.with(|c| c.set(prev));
    r
}

/// Run `f` (the C callback of `server`) with a slot for the answer to
/// request `id`.
pub(crate) fn with_answer<R>(
    server: *const volley_server,
    id: ConnId,
    slot: &mut Option<Answered>,
    f: impl FnOnce() -> R,
) -> R {
    let prev = CURRENT.with(|c| {
        c.replace(Current {
            server,
            id: Some(id),
            text: (std::ptr::null(), 0),
            ws: std::ptr::null_mut(),
            answer: slot,
        })
    });
    let r = f();
    CURRENT.with(|c| c.set(prev));
    r
}

/// What this thread is doing now, for several of the questions below.
#[inline]
pub(crate) fn here() -> Current {
    CURRENT.with(Cell::get)
}

impl Current {
    /// Is this thread inside one of `server`'s callbacks (event, upgrade or
    /// request)?
    #[inline]
    pub(crate) fn in_callback_of(&self, server: &volley_server) -> bool {
        std::ptr::eq(self.server, server) && (!self.ws.is_null() || !self.answer.is_null())
    }

    /// If this thread is inside the callback of connection `id` of
    /// `server`, run `f` on it.
    #[inline]
    pub(crate) fn on_ws<R>(
        &self,
        server: &volley_server,
        id: ConnId,
        f: impl FnOnce(&mut WebSocket<'_, u64>) -> R,
    ) -> Option<R> {
        if self.id != Some(id) || self.ws.is_null() || !std::ptr::eq(self.server, server) {
            return None;
        }
        // SAFETY: `with_ws` set this pointer from a live `&mut WebSocket`
        // whose borrow spans the whole callback, and clears it when the
        // callback returns (a `Current` is read inside the call that uses
        // it, never kept); the callback's own code does not touch that
        // `&mut` while C runs, so this reborrow is the only access.
        Some(f(unsafe { &mut *self.ws }))
    }

    /// Are these bytes the text message this callback received (so known
    /// to be UTF-8)? The event's payload is read-only to the callback.
    #[inline]
    pub(crate) fn is_current_text(&self, b: &[u8]) -> bool {
        !b.is_empty() && self.text == (b.as_ptr(), b.len())
    }
}

/// Is this thread inside one of `server`'s callbacks (event, upgrade or
/// request)?
pub(crate) fn in_callback_of(server: &volley_server) -> bool {
    here().in_callback_of(server)
}

/// If this thread is inside the callback of connection `id` of `server`,
/// run `f` on it.
pub(crate) fn on_ws<R>(
    server: &volley_server,
    id: ConnId,
    f: impl FnOnce(&mut WebSocket<'_, u64>) -> R,
) -> Option<R> {
    here().on_ws(server, id, f)
}

/// If this thread is inside any event callback of `server`, run `f` on
/// that connection's view of its worker (for server-wide publishes).
pub(crate) fn on_any_ws<R>(
    server: &volley_server,
    f: impl FnOnce(&mut WebSocket<'_, u64>) -> R,
) -> Option<R> {
    let c = CURRENT.with(Cell::get);
    if c.ws.is_null() || !std::ptr::eq(c.server, server) {
        return None;
    }
    // SAFETY: as in `on_ws`.
    Some(f(unsafe { &mut *c.ws }))
}

/// If this thread is inside the upgrade or request callback of `id` of
/// `server`, give the answer there (Some(false) when one was given
/// already); None otherwise (answer through the server).
pub(crate) fn answer_here(
    server: &volley_server,
    id: ConnId,
    a: impl FnOnce() -> Answered,
) -> Option<bool> {
    let c = CURRENT.with(Cell::get);
    if c.id != Some(id) || c.answer.is_null() || !std::ptr::eq(c.server, server) {
        return None;
    }
    // SAFETY: `with_answer` points this at a local that outlives the
    // callback, and clears it when the callback returns.
    let slot = unsafe { &mut *c.answer };
    if slot.is_some() {
        return Some(false);
    }
    *slot = Some(a());
    Some(true)
}
