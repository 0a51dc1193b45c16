//! A WebSocket's functions, by id. Inside a callback of that connection
//! (on its worker) they act on it directly; from anywhere else they go
//! through its worker's mailbox (woken once per batch under
//! `volley_server_cork`), and sends still answer like Bun at once.

use crate::current;
use crate::error::{Res, boundary, bytes, code, volley_result};
use crate::server::{
    Call, ServerState, compress_flag, message, message_in, server, server_in, volley_server,
};
use crate::types::{volley_publish_result, volley_send_stage, volley_ws};
use engine::{ConnId, Inspect, PublishResult, ReadyState, SendStatus, WebSocket};
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};

/// The server and the id, checked.
///
/// # Safety
/// `srv` must be NULL or a live server.
unsafe fn target<'a>(srv: *const volley_server, ws: volley_ws) -> Res<(Call<'a>, ConnId)> {
    // SAFETY: forwarded contract.
    let s = unsafe { server(srv) }?;
    let id = ws.id().ok_or(volley_result::Closed)?;
    Ok((s, id))
}

/// A connection as a call reaches it: directly, inside that connection's
/// own callback on its worker; otherwise through its worker's mailbox.
/// Every `volley_ws_*` entry point acts through this one type, so the
/// choice (and the server the current connection must belong to, since
/// ids repeat across servers) is made in one place: [`on_conn`].
enum Conn<'a, 'w, 'c> {
    Here(&'w mut WebSocket<'c, u64>),
    There(&'a ServerState, ConnId),
}

impl Conn<'_, '_, '_> {
    fn send(&mut self, m: engine::Message<'_>, c: Option<bool>) -> SendStatus {
        match self {
            Conn::Here(w) => match c {
                Some(c) => w.send_compressed(m, c),
                None => w.send(m),
            },
            Conn::There(s, id) => s.handle.send(*id, m, c),
        }
    }

    /// Subscribe or unsubscribe: false when refused (closing, gone, or a
    /// full mailbox).
    fn subscription(&mut self, t: &[u8], on: bool) -> bool {
        match self {
            Conn::Here(w) if w.ready_state() != ReadyState::Open => false,
            Conn::Here(w) => {
                if on {
                    w.subscribe(t);
                } else {
                    w.unsubscribe(t);
                }
                true
            }
            Conn::There(s, id) if on => s.handle.ws(*id).subscribe(t),
            Conn::There(s, id) => s.handle.ws(*id).unsubscribe(t),
        }
    }

    /// Start the closing handshake: false when it was not open (or the
    /// mailbox was full).
    fn close(&mut self, code: u16, reason: &str) -> bool {
        match self {
            Conn::Here(w) => {
                let open = w.ready_state() == ReadyState::Open;
                w.close(code, reason);
                open
            }
            Conn::There(s, id) => s.handle.ws(*id).close(code, reason),
        }
    }

    fn terminate(&mut self) -> bool {
        match self {
            Conn::Here(w) => {
                w.terminate();
                true
            }
            Conn::There(s, id) => s.handle.ws(*id).terminate(),
        }
    }

    fn control(&mut self, d: &[u8], ping: bool) -> bool {
        match self {
            Conn::Here(w) => (if ping { w.ping(d) } else { w.pong(d) }) != SendStatus::Dropped,
            Conn::There(s, id) if ping => s.handle.ws(*id).ping(d),
            Conn::There(s, id) => s.handle.ws(*id).pong(d),
        }
    }

    fn reading(&mut self, on: bool) -> bool {
        match self {
            Conn::Here(w) => {
                if on {
                    w.resume_reading();
                } else {
                    w.pause_reading();
                }
                true
            }
            Conn::There(s, id) if on => s.handle.ws(*id).resume_reading(),
            Conn::There(s, id) => s.handle.ws(*id).pause_reading(),
        }
    }

    fn set_user(&mut self, user: u64) -> bool {
        match self {
            Conn::Here(w) => {
                *w.data_mut() = user;
                true
            }
            Conn::There(s, id) => s.handle.ws(*id).set_data(user),
        }
    }

    /// Publish as this connection; None when it is not open (from
    /// another thread: its slot says so).
    fn publish(
        &mut self,
        t: &[u8],
        m: engine::Message<'_>,
        c: Option<bool>,
    ) -> Option<PublishResult> {
        match self {
            Conn::Here(w) => Some(match c {
                Some(c) => w.publish_compressed(t, m, c),
                None => w.publish(t, m),
            }),
            Conn::There(s, id) if s.handle.ws(*id).ready_state() != ReadyState::Open => None,
            Conn::There(s, id) => Some(PublishResult {
                forwarded: s.handle.publish_from(*id, t, m, c),
                ..PublishResult::default()
            }),
        }
    }

    fn ready_state(&self) -> ReadyState {
        match self {
            Conn::Here(w) => w.ready_state(),
            Conn::There(s, id) => s.handle.ws(*id).ready_state(),
        }
    }

    fn buffered_amount(&self) -> usize {
        match self {
            Conn::Here(w) => w.buffered_amount(),
            Conn::There(s, id) => s.handle.ws(*id).buffered_amount(),
        }
    }
}

/// Run `f` on connection `id` of `s`: directly when this thread is inside
/// that connection's callback, else through its worker.
fn on_conn<R>(s: &Call<'_>, id: ConnId, f: impl FnOnce(&mut Conn<'_, '_, '_>) -> R) -> R {
    on_conn_in(s, id, &current::here(), f)
}

/// [`on_conn`] for a call that has read the thread's callback state.
fn on_conn_in<R>(
    s: &Call<'_>,
    id: ConnId,
    cur: &current::Current,
    f: impl FnOnce(&mut Conn<'_, '_, '_>) -> R,
) -> R {
    let mut f = Some(f);
    let here = cur.on_ws(s.shell, id, |w| {
        let f = f.take().expect("called once");
        f(&mut Conn::Here(w))
    });
    match (here, f) {
        (Some(r), _) => r,
        (None, Some(f)) => f(&mut Conn::There(s, id)),
        (None, None) => unreachable!("on_ws returned None after calling f"),
    }
}

/// The frame of a `volley_ws_*` call that acts and reports OK or why not:
/// checks the server and the id, runs `op` (its argument checks, then the
/// action through [`on_conn`]), and turns a refusal into STOPPED, CLOSED
/// or BUSY (see [`live`]).
fn act(
    server: *const volley_server,
    ws: volley_ws,
    op: impl FnOnce(&Call<'_>, ConnId) -> Res<bool>,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: the caller's contract (NULL or a live handle).
            let (s, id) = unsafe { target(server, ws) }?;
            let ok = op(&s, id)?;
            live(&s, id, ok)
        })())
    })
}

/// Run on the connection directly (inside its callback), else ask its
/// worker and wait for the answer (never from a worker thread: two workers
/// waiting for each other would deadlock).
fn query<R: Send + 'static>(
    s: &Call<'_>,
    id: ConnId,
    direct: impl FnOnce(&mut WebSocket<'_, u64>) -> R,
    remote: impl FnOnce(&mut dyn Inspect) -> R + Send + 'static,
) -> Res<R> {
    if let Some(r) = current::on_ws(s.shell, id, direct) {
        return Ok(r);
    }
    let h = &s.handle;
    if h.on_worker_thread() {
        return Err(volley_result::WrongThread);
    }
    // A mutex and a condition variable rather than a channel: a channel
    // would give a C thread a `std::thread::Thread` handle that is never
    // freed (valgrind reports it as possibly lost).
    let slot = Arc::new((Mutex::new(Answer::Waiting), Condvar::new()));
    let theirs = slot.clone();
    let queued = h.ws(id).inspect(move |v| {
        let r = match v {
            Some(v) => Answer::Got(remote(v)),
            None => Answer::Gone,
        };
        // Dropped unrun (the server stopped), the guard below says so.
        *theirs.0.lock().unwrap_or_else(|e| e.into_inner()) = r;
        theirs.1.notify_all();
    });
    if !queued {
        return Err(volley_result::Closed);
    }
    let mut a = slot.0.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match std::mem::replace(&mut *a, Answer::Waiting) {
            Answer::Got(r) => return Ok(r),
            Answer::Gone => return Err(volley_result::Closed),
            Answer::Waiting if Arc::strong_count(&slot) == 1 => return Err(volley_result::Stopped),
            Answer::Waiting => {
                a = slot
                    .1
                    .wait_timeout(a, std::time::Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        }
    }
}

enum Answer<R> {
    Waiting,
    Got(R),
    Gone,
}

fn bun(s: SendStatus) -> i64 {
    s.as_bun() as i64
}

/// Send a message: Bun's `ws.send(data, compress)`. `ws` may also be a
/// request answered with `volley_respond_events`: text is then one event,
/// binary raw event-stream bytes.
///
/// Flags: `VOLLEY_SEND_BINARY` (else text, which must be UTF-8), and
/// `VOLLEY_SEND_COMPRESS` / `VOLLEY_SEND_NO_COMPRESS`.
///
/// Ownership: `server` borrowed; `data` borrowed for the call (copied or
/// written at once).
/// Threads: any thread.
/// Returns: Bun's number: the bytes of the frame (> 0) when queued with
/// nothing waiting; -1 when queued behind waiting bytes (backpressure: a
/// `drain` event follows when they are written); 0 when dropped (the
/// connection is closed or closing, the id is stale, or the queue is past
/// `backpressure_limit`). An error gives `-(int64_t)result` (≤ -100):
/// -VOLLEY_RESULT_NULL_PARAMETER, -VOLLEY_RESULT_INVALID_ARGUMENT (text
/// not UTF-8, unknown flag bits, or both compression flags),
/// -VOLLEY_RESULT_PANIC.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_send(
    server: *const volley_server,
    ws: volley_ws,
    data: *const u8,
    len: usize,
    flags: u32,
) -> i64 {
    boundary(-(volley_result::Panic as i64), || {
        let r: Res<i64> = (|| {
            // The thread's callback state, read once for the three
            // questions below (a send is the hot call of a host).
            let here = current::here();
            // SAFETY: documented contract.
            let s = match unsafe { server_in(server, &here) } {
                Ok(s) => s,
                // Freed: dropped, as a send after stop is on Bun.
                Err(volley_result::Stopped) => return Ok(0),
                Err(e) => return Err(e),
            };
            // SAFETY: documented contract.
            let m = unsafe { message_in(data, len, flags, &here) }?;
            let Some(id) = ws.id() else { return Ok(0) };
            let c = compress_flag(flags);
            Ok(bun(on_conn_in(&s, id, &here, |w| w.send(m, c))))
        })();
        r.unwrap_or_else(|e| -(e as i64))
    })
}

/// `volley_ws_send` with the id's two fields as separate arguments: for
/// foreign-function layers where a struct by value costs more than the
/// send (koffi in Node: 360 ns against 95 ns per call, measured).
///
/// Ownership: `server` borrowed; `data` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_ws_send` (n, -1, 0, or -result).
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_send_parts(
    server: *const volley_server,
    key: u32,
    generation: u64,
    data: *const u8,
    len: usize,
    flags: u32,
) -> i64 {
    let ws = volley_ws {
        generation,
        key,
        reserved: 0,
    };
    volley_ws_send(server, ws, data, len, flags)
}

/// Send the message staged at `stage`: its header names the connection,
/// the flags and the length, and the payload follows the header. The same
/// send as `volley_ws_send`, for foreign-function layers where each
/// argument costs: a host keeps one stage, writes each message into it
/// and passes two pointers (koffi in Node: 218 ns per call with
/// `volley_ws_send_parts`' six arguments, ~100 ns with these two, measured).
///
/// Ownership: `server` borrowed; `stage` borrowed for the call, readable
/// for `sizeof(volley_send_stage) + stage->len` bytes (any alignment).
/// Threads: any thread.
/// Returns: as `volley_ws_send` (n, -1, 0, or -result);
/// -VOLLEY_RESULT_NULL_PARAMETER when `stage` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_send_staged(
    server: *const volley_server,
    stage: *const volley_send_stage,
) -> i64 {
    if stage.is_null() {
        return -(volley_result::NullParameter as i64);
    }
    // SAFETY: documented contract: `stage` is readable for the header
    // (read unaligned) and the `len` bytes after it.
    let (st, data) = unsafe {
        (
            stage.read_unaligned(),
            stage
                .cast::<u8>()
                .add(std::mem::size_of::<volley_send_stage>()),
        )
    };
    volley_ws_send(server, st.ws, data, st.len as usize, st.flags)
}

/// `volley_ws_publish` with the id's two fields as separate arguments (see
/// `volley_ws_send_parts`), returning how many other workers it reached.
///
/// Ownership: `server` borrowed; `topic`, `data` borrowed for the call.
/// Threads: any thread.
/// Returns: the subscribers delivered to on this worker (inside the
/// connection's callback) plus the workers forwarded to, or
/// `-(int64_t)result` as `volley_ws_publish` reports it.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_publish_parts(
    server: *const volley_server,
    key: u32,
    generation: u64,
    topic: *const u8,
    topic_len: usize,
    data: *const u8,
    len: usize,
    flags: u32,
) -> i64 {
    let ws = volley_ws {
        generation,
        key,
        reserved: 0,
    };
    let mut r = volley_publish_result::default();
    match volley_ws_publish(server, ws, topic, topic_len, data, len, flags, &mut r) {
        volley_result::Ok => (r.delivered + r.backpressured + r.forwarded) as i64,
        e => -(e as i64),
    }
}

/// Send text (UTF-8): `volley_ws_send` with `VOLLEY_SEND_TEXT` and `flags`.
///
/// Ownership: `server` borrowed; `text` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_ws_send` (n, -1, 0, or -result).
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_send_text(
    server: *const volley_server,
    ws: volley_ws,
    text: *const u8,
    len: usize,
    flags: u32,
) -> i64 {
    volley_ws_send(
        server,
        ws,
        text,
        len,
        flags & !crate::types::VOLLEY_SEND_BINARY,
    )
}

/// Send binary: `volley_ws_send` with `VOLLEY_SEND_BINARY` and `flags`.
///
/// Ownership: `server` borrowed; `data` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_ws_send` (n, -1, 0, or -result).
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_send_binary(
    server: *const volley_server,
    ws: volley_ws,
    data: *const u8,
    len: usize,
    flags: u32,
) -> i64 {
    volley_ws_send(
        server,
        ws,
        data,
        len,
        flags | crate::types::VOLLEY_SEND_BINARY,
    )
}

/// Publish to `topic` as this connection: every subscriber but itself
/// (unless `publish_to_self`), on every worker. Bun's `ws.publish`.
/// In the connection's callback, `*result` counts this worker's
/// subscribers; elsewhere the workers it was handed to (`forwarded`).
///
/// Ownership: `server` borrowed; `topic`, `data` borrowed for the call;
/// `*result` (may be NULL) written.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (text not
/// UTF-8, or flags as for `volley_ws_send`); CLOSED (stale id, or the
/// connection is closing); STOPPED (the server has stopped).
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_publish(
    server: *const volley_server,
    ws: volley_ws,
    topic: *const u8,
    topic_len: usize,
    data: *const u8,
    len: usize,
    flags: u32,
    result: *mut volley_publish_result,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let (s, id) = unsafe { target(server, ws) }?;
            // SAFETY: documented contract.
            let t = unsafe { bytes(topic, topic_len) }?;
            // SAFETY: documented contract.
            let m = unsafe { message(data, len, flags) }?;
            let c = compress_flag(flags);
            if s.handle.is_stopped() {
                return Err(volley_result::Stopped);
            }
            // A publish "as" a connection that is gone (or closing) is
            // refused, not sent on its behalf.
            let r = on_conn(&s, id, |w| w.publish(t, m, c)).ok_or(volley_result::Closed)?;
            // SAFETY: the caller's struct, or NULL.
            if let Some(out) = unsafe { result.as_mut() } {
                *out = volley_publish_result {
                    delivered: r.delivered as u64,
                    backpressured: r.backpressured as u64,
                    dropped: r.dropped as u64,
                    forwarded: r.forwarded as u64,
                };
            }
            Ok(())
        })())
    })
}

/// Subscribe to a topic. From another thread it takes effect on the
/// connection's worker; a publish made after this returns reaches it.
///
/// Ownership: `server` and `topic` borrowed for the call.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK (also when already subscribed); NULL_PARAMETER;
/// CLOSED; BUSY (mailbox full).
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_subscribe(
    server: *const volley_server,
    ws: volley_ws,
    topic: *const u8,
    topic_len: usize,
) -> volley_result {
    subscription(server, ws, topic, topic_len, true)
}

/// Unsubscribe from a topic.
///
/// Ownership: `server` and `topic` borrowed for the call.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK (also when not subscribed); NULL_PARAMETER;
/// CLOSED; BUSY.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_unsubscribe(
    server: *const volley_server,
    ws: volley_ws,
    topic: *const u8,
    topic_len: usize,
) -> volley_result {
    subscription(server, ws, topic, topic_len, false)
}

fn subscription(
    server: *const volley_server,
    ws: volley_ws,
    topic: *const u8,
    topic_len: usize,
    on: bool,
) -> volley_result {
    act(server, ws, |s, id| {
        // SAFETY: documented contract.
        let t = unsafe { bytes(topic, topic_len) }?;
        Ok(on_conn(s, id, |w| w.subscription(t, on)))
    })
}

/// Why a call was refused: STOPPED when the server has stopped, CLOSED
/// when the connection is gone or closing (retrying never helps), BUSY
/// when its worker's mailbox was full (retrying may).
fn live(s: &ServerState, id: ConnId, ok: bool) -> Res {
    if ok {
        Ok(())
    } else if s.handle.is_stopped() {
        Err(volley_result::Stopped)
    } else if matches!(
        s.handle.ws(id).ready_state(),
        ReadyState::Closing | ReadyState::Closed
    ) {
        Err(volley_result::Closed)
    } else {
        Err(volley_result::Busy)
    }
}

/// Is the connection subscribed to `topic`? Known on its worker: from
/// another thread this asks the worker and waits for the answer.
///
/// Ownership: `server`, `topic` borrowed; `*out` written.
/// Threads: any thread but this server's workers, except inside the
/// connection's own callback (WRONG_THREAD).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED; WRONG_THREAD.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_is_subscribed(
    server: *const volley_server,
    ws: volley_ws,
    topic: *const u8,
    topic_len: usize,
    out: *mut bool,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let (s, id) = unsafe { target(server, ws) }?;
            // SAFETY: documented contract.
            let t = unsafe { bytes(topic, topic_len) }?;
            if out.is_null() {
                return Err(volley_result::NullParameter);
            }
            let owned = t.to_vec();
            let r = query(
                &s,
                id,
                |w| w.is_subscribed(t),
                move |v| v.is_subscribed(&owned),
            )?;
            // SAFETY: checked non-NULL.
            unsafe { *out = r };
            Ok(())
        })())
    })
}

/// A topic, for `volley_ws_subscriptions`.
pub type volley_topic_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, topic: *const u8, len: usize)>;

/// Call `each(userdata, topic, len)` for every topic the connection is
/// subscribed to (the bytes are valid during that call only).
///
/// Ownership: `server` borrowed; `userdata` passed through.
/// Threads: as `volley_ws_is_subscribed` (`each` runs on the calling thread).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER (`each`); CLOSED; WRONG_THREAD.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_subscriptions(
    server: *const volley_server,
    ws: volley_ws,
    each: volley_topic_fn,
    userdata: *mut c_void,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let (s, id) = unsafe { target(server, ws) }?;
            let each = each.ok_or(volley_result::NullParameter)?;
            let topics = query(
                &s,
                id,
                |w| w.subscriptions().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                |v| v.subscriptions(),
            )?;
            for t in topics {
                // SAFETY: the caller's function, with its userdata and a
                // slice valid for the call.
                unsafe { each(userdata, t.as_ptr(), t.len()) };
            }
            Ok(())
        })())
    })
}

/// Bun's `ws.cork(cb)`: run `f(userdata)` with this thread's sends to `server` batched
/// (one write per connection, one wake-up per worker). Inside callbacks
/// sends are batched already; this is for other threads.
///
/// Ownership: `server` borrowed; `userdata` passed through.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_cork(
    server: *const volley_server,
    ws: volley_ws,
    f: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
    userdata: *mut c_void,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            let _ = ws;
            let f = f.ok_or(volley_result::NullParameter)?;
            s.handle.cork();
            struct Uncork<'a>(&'a engine::ServerHandle);
            impl Drop for Uncork<'_> {
                fn drop(&mut self) {
                    self.0.uncork();
                }
            }
            let _u = Uncork(&s.handle);
            // SAFETY: the caller's function with its userdata.
            unsafe { f(userdata) };
            Ok(())
        })())
    })
}

/// Start the closing handshake with `code` (1000, 3000–4999, or another
/// code a server may send) and a UTF-8 `reason` of at most 123 bytes, or
/// with `code` 1005 and an empty reason: a close frame without a status
/// code (how a proxy forwards a peer's close that had none).
/// The close event follows when the peer answers (or `close_timeout_ms`).
/// On a request answered with `volley_respond_events`, ends the response
/// (what is queued is written, then the connection closes).
///
/// Ownership: `server`, `reason` borrowed for the call.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (code not
/// sendable, reason not UTF-8 or too long); CLOSED; BUSY.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_close(
    server: *const volley_server,
    ws: volley_ws,
    code: u16,
    reason: *const u8,
    reason_len: usize,
) -> volley_result {
    act(server, ws, |s, id| {
        // SAFETY: documented contract.
        let r = unsafe { crate::error::text(reason, reason_len) }?;
        let no_status = code == engine::close::NO_STATUS && r.is_empty();
        if !(engine::close::is_sendable(code) || no_status) || r.len() > 123 {
            return Err(volley_result::InvalidArgument);
        }
        Ok(on_conn(s, id, |w| w.close(code, r)))
    })
}

/// Drop the connection now, without a closing handshake (close event: 1006).
///
/// Ownership: `server` borrowed.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED (stale id, or closing);
/// BUSY (mailbox full: retry); STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_terminate(
    server: *const volley_server,
    ws: volley_ws,
) -> volley_result {
    act(server, ws, |s, id| Ok(on_conn(s, id, |w| w.terminate())))
}

/// Send a ping (payload cut to 125 bytes); not subject to backpressure.
///
/// Ownership: `server`, `data` borrowed for the call.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED (stale id, or closing);
/// BUSY (mailbox full: retry); STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_ping(
    server: *const volley_server,
    ws: volley_ws,
    data: *const u8,
    len: usize,
) -> volley_result {
    control(server, ws, data, len, true)
}

/// Send an unsolicited pong (payload cut to 125 bytes).
///
/// Ownership: `server`, `data` borrowed for the call.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED (stale id, or closing);
/// BUSY (mailbox full: retry); STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_pong(
    server: *const volley_server,
    ws: volley_ws,
    data: *const u8,
    len: usize,
) -> volley_result {
    control(server, ws, data, len, false)
}

fn control(
    server: *const volley_server,
    ws: volley_ws,
    data: *const u8,
    len: usize,
    ping: bool,
) -> volley_result {
    act(server, ws, |s, id| {
        // SAFETY: documented contract.
        let d = unsafe { bytes(data, len) }?;
        Ok(on_conn(s, id, |w| w.control(d, ping)))
    })
}

/// Stop reading from the connection: no more message events until
/// `volley_ws_resume`; the peer is then held back by TCP.
///
/// Ownership: `server` borrowed.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED (stale id, or closing);
/// BUSY (mailbox full: retry); STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_pause(server: *const volley_server, ws: volley_ws) -> volley_result {
    reading(server, ws, false)
}

/// Resume reading after `volley_ws_pause`.
///
/// Ownership: `server` borrowed.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED (stale id, or closing);
/// BUSY (mailbox full: retry); STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_resume(server: *const volley_server, ws: volley_ws) -> volley_result {
    reading(server, ws, true)
}

fn reading(server: *const volley_server, ws: volley_ws, on: bool) -> volley_result {
    act(server, ws, |s, id| {
        on_conn(s, id, |w| {
            if w.ready_state() == ReadyState::Closed {
                return Err(volley_result::Closed);
            }
            Ok(w.reading(on))
        })
    })
}

/// Set the connection's user value (returned in every event).
///
/// Ownership: `server` borrowed.
/// Threads: any thread (from elsewhere it takes effect on the worker, in
/// order with other calls from the same thread).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED (stale id, or closing);
/// BUSY (mailbox full: retry); STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_set_user(
    server: *const volley_server,
    ws: volley_ws,
    user: u64,
) -> volley_result {
    act(server, ws, |s, id| Ok(on_conn(s, id, |w| w.set_user(user))))
}

/// The connection's user value.
///
/// Ownership: `server` borrowed; `*out` written.
/// Threads: as `volley_ws_is_subscribed`.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; CLOSED; WRONG_THREAD.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_user(
    server: *const volley_server,
    ws: volley_ws,
    out: *mut u64,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let (s, id) = unsafe { target(server, ws) }?;
            if out.is_null() {
                return Err(volley_result::NullParameter);
            }
            let u = query(
                &s,
                id,
                |w| *w.data(),
                |v| {
                    v.data_any()
                        .and_then(|d| d.downcast_ref::<u64>().copied())
                        .unwrap_or(0)
                },
            )?;
            // SAFETY: checked non-NULL.
            unsafe { *out = u };
            Ok(())
        })())
    })
}

/// Bun's `readyState`: 0 connecting, 1 open, 2 closing, 3 closed (also for
/// a stale id or a NULL server). Never blocks.
///
/// Ownership: `server` borrowed.
/// Threads: any thread.
/// Returns: the state.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_ready_state(server: *const volley_server, ws: volley_ws) -> u32 {
    boundary(3, || {
        // SAFETY: documented contract.
        let Ok((s, id)) = (unsafe { target(server, ws) }) else {
            return 3;
        };
        on_conn(&s, id, |w| w.ready_state()) as u32
    })
}

/// Bytes waiting to be written: queued on the connection and in flight to
/// its worker. Never blocks (0 for a closed connection).
///
/// Ownership: `server` borrowed.
/// Threads: any thread.
/// Returns: the byte count.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_buffered_amount(server: *const volley_server, ws: volley_ws) -> usize {
    boundary(0, || {
        // SAFETY: documented contract.
        let Ok((s, id)) = (unsafe { target(server, ws) }) else {
            return 0;
        };
        on_conn(&s, id, |w| w.buffered_amount())
    })
}

/// The peer's address as text (`127.0.0.1:4242`), NUL-terminated, into
/// `buf` of `cap` bytes; `*len` gets its length without the NUL. Event-queue
/// hosts have it in the upgrade event's request already.
///
/// Ownership: `server` borrowed; `buf` and `*len` written.
/// Threads: as `volley_ws_is_subscribed`.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (`cap` too
/// small: `*len` still says how much is needed); CLOSED; WRONG_THREAD.
#[unsafe(no_mangle)]
pub extern "C" fn volley_ws_remote_address(
    server: *const volley_server,
    ws: volley_ws,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let (s, id) = unsafe { target(server, ws) }?;
            if len.is_null() || (buf.is_null() && cap > 0) {
                return Err(volley_result::NullParameter);
            }
            let a = query(
                &s,
                id,
                |w| w.remote_address().map(|a| a.to_string()),
                |v| v.remote_address().map(|a| a.to_string()),
            )?
            .unwrap_or_default();
            // SAFETY: checked non-NULL.
            unsafe { *len = a.len() };
            if cap < a.len() + 1 {
                return Err(volley_result::InvalidArgument);
            }
            // SAFETY: `buf` has `cap` >= len + 1 writable bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(a.as_ptr(), buf, a.len());
                *buf.add(a.len()) = 0;
            }
            Ok(())
        })())
    })
}
