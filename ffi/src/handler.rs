//! Callback mode: the engine's handler calls the C functions, on the
//! worker threads.

use crate::current::{self, Answered};
use crate::request::RequestScratch;
use crate::server::volley_server;
use crate::types::{
    VOLLEY_EVENT_ACTIVE, VOLLEY_EVENT_BINARY, volley_bytes, volley_callback, volley_event,
    volley_event_kind, volley_handlers, volley_ws,
};
use engine::{Accept, Fetch, Handler, Message, Request, Response, Upgrade, WebSocket};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The C side's `userdata` and server pointer: the C caller promised they
/// may be used from the worker threads.
#[derive(Clone, Copy)]
struct Ptrs {
    userdata: *mut c_void,
    server: *mut volley_server,
}

// SAFETY: `volley_server_new` documents that `userdata` is handed to the
// callbacks on the worker threads; the server pointer is ours and lives
// until every worker has exited (`volley_server_free` joins them first).
unsafe impl Send for Ptrs {}
// SAFETY: as above; the pointers are only passed on, never dereferenced here.
unsafe impl Sync for Ptrs {}

/// The engine's handler in callback mode (the server keeps a second
/// reference, to release the callbacks once it is set up).
pub(crate) struct CHandler(pub(crate) Arc<Callbacks>);

pub(crate) struct Callbacks {
    h: volley_handlers,
    ptrs: Ptrs,
    /// Callbacks wait until `volley_server_new` has finished setting up
    /// the server they receive (the flag is the fast path afterwards).
    ready_flag: AtomicBool,
    ready: Mutex<bool>,
    ready_cv: Condvar,
}

impl Callbacks {
    pub(crate) fn new(
        h: volley_handlers,
        userdata: *mut c_void,
        server: *mut volley_server,
    ) -> Self {
        Callbacks {
            h,
            ptrs: Ptrs { userdata, server },
            ready_flag: AtomicBool::new(false),
            ready: Mutex::new(false),
            ready_cv: Condvar::new(),
        }
    }

    pub(crate) fn set_ready(&self) {
        *self.ready.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.ready_flag.store(true, Ordering::Release);
        self.ready_cv.notify_all();
    }

    #[inline]
    fn wait_ready(&self) {
        if self.ready_flag.load(Ordering::Acquire) {
            return;
        }
        let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        while !*r {
            r = self.ready_cv.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn call(&self, cb: volley_callback, ev: &volley_event) {
        if let Some(f) = cb {
            self.wait_ready();
            // SAFETY: a C function the caller registered, called with its
            // userdata, our server, and an event valid for the call.
            unsafe { f(self.ptrs.userdata, self.ptrs.server, ev) };
        }
    }

    /// An event on a connection, with the connection current for the call.
    fn event(
        &self,
        cb: volley_callback,
        kind: volley_event_kind,
        ws: &mut WebSocket<'_, u64>,
        text: Option<&[u8]>,
        fill: impl FnOnce(&mut volley_event),
    ) {
        if cb.is_none() {
            return;
        }
        let id = ws.id();
        let mut ev = volley_event::new(kind);
        ev.ws = volley_ws::from_id(id);
        ev.user = *ws.data();
        fill(&mut ev);
        current::with_ws(self.ptrs.server, ws, id, text, || self.call(cb, &ev));
    }

    /// An upgrade or request event; what the C callback answered, if it did.
    fn ask(
        &self,
        cb: volley_callback,
        kind: volley_event_kind,
        req: &Request<'_>,
    ) -> Option<Answered> {
        let scratch = RequestScratch::of_request(req);
        let mut ev = volley_event::new(kind);
        ev.ws = volley_ws::from_id(req.id());
        ev.request = &scratch.req;
        let mut answer = None;
        current::with_answer(self.ptrs.server, req.id(), &mut answer, || {
            self.call(cb, &ev)
        });
        answer
    }
}

fn message_flags(m: &Message<'_>) -> u32 {
    if m.is_binary() {
        VOLLEY_EVENT_BINARY
    } else {
        0
    }
}

impl Handler for CHandler {
    type Data = u64;

    fn upgrade(&self, req: &Request<'_>) -> Upgrade<u64> {
        self.0.upgrade(req)
    }
    fn fetch(&self, req: &Request<'_>) -> Fetch {
        self.0.fetch(req)
    }
    fn open(&self, ws: &mut WebSocket<'_, u64>) {
        self.0.open(ws)
    }
    fn message(&self, ws: &mut WebSocket<'_, u64>, msg: Message<'_>) {
        self.0.message(ws, msg)
    }
    fn close(&self, ws: &mut WebSocket<'_, u64>, code: u16, reason: &str) {
        self.0.close(ws, code, reason)
    }
    fn upgrade_failed(&self, id: engine::ConnId, user: u64) {
        // The one terminal event for an accepted upgrade that never opened:
        // a close event (1006, "upgrade failed") with the user value given.
        let cb = self.0.h.on_close;
        if cb.is_none() {
            return;
        }
        let reason = b"upgrade failed";
        let mut ev = volley_event::new(volley_event_kind::Close);
        ev.ws = volley_ws::from_id(id);
        ev.user = user;
        ev.code = 1006;
        ev.data = volley_bytes::of(reason);
        self.0.call(cb, &ev);
    }
    fn drain(&self, ws: &mut WebSocket<'_, u64>) {
        self.0.drain(ws)
    }
    fn ping(&self, ws: &mut WebSocket<'_, u64>, data: &[u8]) {
        self.0.ping(ws, data)
    }
    fn pong(&self, ws: &mut WebSocket<'_, u64>, data: &[u8]) {
        self.0.pong(ws, data)
    }
    fn dropped(&self, ws: &mut WebSocket<'_, u64>, topic: &[u8], msg: Message<'_>) {
        self.0.dropped(ws, topic, msg)
    }
    fn topic(&self, topic: &[u8], active: bool) {
        self.0.topic(topic, active)
    }
}

impl Callbacks {
    pub(crate) fn upgrade(&self, req: &Request<'_>) -> Upgrade<u64> {
        if self.h.on_upgrade.is_none() {
            return Upgrade::accept(0);
        }
        match self.ask(self.h.on_upgrade, volley_event_kind::Upgrade, req) {
            Some(Answered::Accept {
                user,
                protocol,
                headers,
            }) => Upgrade::Accept(Accept {
                data: user,
                protocol,
                headers,
            }),
            Some(Answered::Reject(r)) => Upgrade::Reject(r),
            Some(Answered::Respond(_)) => {
                Upgrade::Reject(Response::new(500, "an upgrade was answered as a request\n"))
            }
            None => Upgrade::Later,
        }
    }

    fn fetch(&self, req: &Request<'_>) -> Fetch {
        if self.h.on_request.is_none() {
            return Fetch::Pass;
        }
        match self.ask(self.h.on_request, volley_event_kind::Request, req) {
            Some(Answered::Respond(r) | Answered::Reject(r)) => Fetch::Respond(r),
            Some(Answered::Accept { .. }) => {
                Fetch::Respond(Response::new(500, "a request was answered as an upgrade\n"))
            }
            None => Fetch::Later,
        }
    }

    fn open(&self, ws: &mut WebSocket<'_, u64>) {
        self.event(self.h.on_open, volley_event_kind::Open, ws, None, |_| {});
    }

    fn message(&self, ws: &mut WebSocket<'_, u64>, msg: Message<'_>) {
        let text = (!msg.is_binary()).then(|| msg.as_bytes());
        self.event(
            self.h.on_message,
            volley_event_kind::Message,
            ws,
            text,
            |ev| {
                ev.data = volley_bytes::of(msg.as_bytes());
                ev.flags = message_flags(&msg);
            },
        );
    }

    fn close(&self, ws: &mut WebSocket<'_, u64>, code: u16, reason: &str) {
        self.event(self.h.on_close, volley_event_kind::Close, ws, None, |ev| {
            ev.code = u32::from(code);
            ev.data = volley_bytes::of(reason.as_bytes());
        });
    }

    fn drain(&self, ws: &mut WebSocket<'_, u64>) {
        self.event(self.h.on_drain, volley_event_kind::Drain, ws, None, |_| {});
    }

    fn ping(&self, ws: &mut WebSocket<'_, u64>, data: &[u8]) {
        self.event(self.h.on_ping, volley_event_kind::Ping, ws, None, |ev| {
            ev.data = volley_bytes::of(data);
        });
    }

    fn pong(&self, ws: &mut WebSocket<'_, u64>, data: &[u8]) {
        self.event(self.h.on_pong, volley_event_kind::Pong, ws, None, |ev| {
            ev.data = volley_bytes::of(data);
        });
    }

    fn dropped(&self, ws: &mut WebSocket<'_, u64>, topic: &[u8], msg: Message<'_>) {
        self.event(
            self.h.on_dropped,
            volley_event_kind::Dropped,
            ws,
            None,
            |ev| {
                ev.topic = volley_bytes::of(topic);
                ev.data = volley_bytes::of(msg.as_bytes());
                ev.flags = message_flags(&msg);
            },
        );
    }

    fn topic(&self, topic: &[u8], active: bool) {
        let mut ev = volley_event::new(volley_event_kind::Topic);
        ev.topic = volley_bytes::of(topic);
        ev.flags = if active { VOLLEY_EVENT_ACTIVE } else { 0 };
        self.call(self.h.on_topic, &ev);
    }
}
