//! The server object: creation (callback or queue mode), stopping, the
//! queue's file descriptor and poll, publishing, counters.

use crate::current;
use crate::error::{Res, arg, boundary, bytes, code, invalid, volley_result};
use crate::handler::{CHandler, Callbacks};
use crate::options;
use crate::request::RequestScratch;
use crate::types::{
    VOLLEY_EVENT_ACTIVE, VOLLEY_EVENT_BINARY, VOLLEY_SEND_BINARY, VOLLEY_SEND_COMPRESS,
    VOLLEY_SEND_NO_COMPRESS, VOLLEY_STOP_LISTEN_ONLY, VOLLEY_STOP_NO_WAIT, VOLLEY_STOP_NOW,
    volley_bytes, volley_event, volley_event_kind, volley_handlers, volley_options,
    volley_publish_result, volley_stats, volley_ws,
};
use crate::wire::{Fields, VOLLEY_PACKED_MIN_BUFFER, pack};
use engine::queue::{Batch, Event, EventQueue};
use engine::{Message, PublishResult, Server, ServerBuilder, ServerHandle};
use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A server (opaque). Created by `volley_server_new`, freed by
/// `volley_server_free`.
///
/// What C holds is this small handle, which is never deallocated: the
/// server's state behind it is. Every call enters through [`server`], which
/// counts itself in `in_flight` (calls made inside this server's own
/// callbacks are not counted: the workers that run them are joined before
/// the state goes) and refuses with STOPPED once `freed` is set; free sets
/// `freed`, waits for the calls in flight, then drops the state. So a call
/// racing or following free gets STOPPED and never touches freed memory,
/// and a second free is a no-op.
pub struct volley_server {
    state: AtomicPtr<ServerState>,
    in_flight: AtomicUsize,
    freed: AtomicBool,
}

/// Handles of freed servers, kept (and reachable) for the life of the
/// process: a stale pointer from C still lands on a live `freed` flag.
static RETIRED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A server's state: what the handle points at until it is freed.
pub(crate) struct ServerState {
    pub(crate) handle: ServerHandle,
    server: Mutex<Option<Server>>,
    port: u16,
    /// Queue mode: the host's end.
    queue: Option<Mutex<HostQueue>>,
    polls: AtomicU64,
    polled: AtomicU64,
}

/// The queue, the batches handed out, and where the next poll starts.
struct HostQueue {
    queue: EventQueue,
    batches: Vec<Batch>,
    batch: usize,
    event: usize,
    /// The thread that polls (see [`this_thread`]): its outermost uncork
    /// ends a batch.
    poller: usize,
    /// Boxed: events point at the requests, which must not move when the
    /// vector grows.
    #[allow(clippy::vec_box)]
    requests: Vec<Box<RequestScratch>>,
}

/// This thread, as a number no other live thread has: the address of a
/// thread-local (`std::thread::current()` would allocate a handle that the
/// main thread never frees, which valgrind reports).
fn this_thread() -> usize {
    thread_local!(static MARK: u8 = const { 0 });
    MARK.with(|m| m as *const u8 as usize)
}

/// A server from a pointer, held for the call.
///
/// # Safety
/// `p` must be NULL or a handle from `volley_server_new` (freed or not:
/// handles are never deallocated).
pub(crate) unsafe fn server<'a>(p: *const volley_server) -> Res<Call<'a>> {
    // SAFETY: forwarded contract.
    unsafe { server_in(p, &current::here()) }
}

/// [`server`] for a call that has read the thread's callback state.
///
/// # Safety
/// As [`server`]; `here` is this thread's state, read in this call.
pub(crate) unsafe fn server_in<'a>(
    p: *const volley_server,
    here: &current::Current,
) -> Res<Call<'a>> {
    // SAFETY: forwarded contract (a handle, once made, is never deallocated).
    let shell = unsafe { arg(p) }?;
    let counted = !here.in_callback_of(shell);
    if counted {
        shell.in_flight.fetch_add(1, Ordering::SeqCst);
    }
    // Counted before looking: free sets `freed` before it waits for
    // `in_flight` to reach zero (both SeqCst), so either we see `freed`
    // or free sees us and waits. The guard owns the count from here (its
    // drop gives it back, on the refusals too).
    let mut call = Call {
        shell,
        state: std::ptr::null(),
        counted,
    };
    if shell.freed.load(Ordering::SeqCst) {
        return Err(volley_result::Stopped);
    }
    call.state = shell.state.load(Ordering::Acquire);
    if call.state.is_null() {
        return Err(volley_result::Stopped);
    }
    Ok(call)
}

/// One call's hold on a server: its state stays alive until this drops.
pub(crate) struct Call<'a> {
    pub(crate) shell: &'a volley_server,
    state: *const ServerState,
    counted: bool,
}

impl std::ops::Deref for Call<'_> {
    type Target = ServerState;
    fn deref(&self) -> &ServerState {
        // SAFETY: non-null (checked in `server`) and kept alive by the
        // count (or by running in this server's callback) until we drop.
        unsafe { &*self.state }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.shell.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Create a server, bind it and start its workers.
///
/// With `handlers`, callback mode: the handlers run on the worker threads
/// with `userdata`. With `handlers` NULL, event-queue mode: every event
/// waits for `volley_server_poll`, and `volley_server_fd` becomes readable
/// when some do.
///
/// Ownership: `*out` is owned by the caller; free it with
/// `volley_server_free`. `options` (NULL: defaults) and `handlers` are
/// borrowed for the call (the handler table is copied). `userdata` is the
/// caller's: the library only passes it to the handlers, on worker threads.
/// Threads: any thread; not from a callback of another server's worker
/// (it would block that worker while this one starts).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER (`out`); ABI_MISMATCH
/// (`struct_size` too small); INVALID_ARGUMENT (an option out of range);
/// TLS (unusable certificate or key); IO (the address cannot be bound).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_new(
    options: *const volley_options,
    handlers: *const volley_handlers,
    userdata: *mut c_void,
    out: *mut *mut volley_server,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            if out.is_null() {
                return Err(volley_result::NullParameter);
            }
            // SAFETY: documented contract of `options`.
            let cfg = unsafe { options::config(options) }?;
            let mut b = ServerBuilder::default().bind(cfg.addr).options(cfg.opts);
            if let Some(path) = cfg.unix {
                b = b.bind_unix(path);
            }
            for r in &cfg.routes {
                b = b.route(r);
            }
            // The handle first: callbacks receive its address, and wait
            // (`set_ready`) until the state behind it is in place.
            let shell = Box::new(volley_server {
                state: AtomicPtr::new(std::ptr::null_mut()),
                in_flight: AtomicUsize::new(0),
                freed: AtomicBool::new(false),
            });
            let (state, callbacks) = if handlers.is_null() {
                let (server, queue) = b.serve_queue().map_err(io_error)?;
                let state = ServerState {
                    handle: server.handle(),
                    port: server.local_addr().port(),
                    server: Mutex::new(Some(server)),
                    queue: Some(Mutex::new(HostQueue {
                        queue,
                        batches: Vec::new(),
                        batch: 0,
                        event: 0,
                        poller: 0,
                        requests: Vec::new(),
                    })),
                    polls: AtomicU64::new(0),
                    polled: AtomicU64::new(0),
                };
                (state, None)
            } else {
                // SAFETY: documented contract of `handlers`.
                let h = unsafe { handler_table(handlers) }?;
                let ptr = (&*shell as *const volley_server).cast_mut();
                let callbacks = Arc::new(Callbacks::new(h, userdata, ptr));
                let server = b.serve(CHandler(callbacks.clone())).map_err(io_error)?;
                let state = ServerState {
                    handle: server.handle(),
                    port: server.local_addr().port(),
                    server: Mutex::new(Some(server)),
                    queue: None,
                    polls: AtomicU64::new(0),
                    polled: AtomicU64::new(0),
                };
                (state, Some(callbacks))
            };
            shell
                .state
                .store(Box::into_raw(Box::new(state)), Ordering::Release);
            if let Some(c) = callbacks {
                c.set_ready();
            }
            // SAFETY: `out` checked non-NULL above; the caller owns it.
            unsafe { *out = Box::into_raw(shell) };
            Ok(())
        })())
    })
}

fn io_error(e: std::io::Error) -> volley_result {
    log::error!("volley: {e}");
    // e.g. "Address in use (os error 98)", for volley_last_error.
    crate::error::set_last_error(e.to_string());
    volley_result::Io
}

/// The handler table, at the caller's `struct_size`.
///
/// # Safety
/// `h` points to at least `struct_size` bytes of a `volley_handlers`.
unsafe fn handler_table(h: *const volley_handlers) -> Res<volley_handlers> {
    // SAFETY: `struct_size` is the first field.
    let size = unsafe { (*h).struct_size } as usize;
    if size < offset_of!(volley_handlers, on_upgrade) {
        return Err(volley_result::AbiMismatch);
    }
    let mut t = volley_handlers {
        struct_size: size_of::<volley_handlers>() as u32,
        on_upgrade: None,
        on_request: None,
        on_open: None,
        on_message: None,
        on_close: None,
        on_drain: None,
        on_ping: None,
        on_pong: None,
        on_dropped: None,
        on_topic: None,
    };
    let n = size.min(size_of::<volley_handlers>());
    // SAFETY: a prefix of the same layout (fields are added at the end only).
    unsafe {
        std::ptr::copy_nonoverlapping(
            h.cast::<u8>(),
            (&mut t as *mut volley_handlers).cast::<u8>(),
            n,
        )
    };
    Ok(t)
}

/// A message from C: bytes and send flags (text must be UTF-8).
///
/// # Safety
/// `data` points to `len` readable bytes (or is NULL with `len` 0).
pub(crate) unsafe fn message<'a>(data: *const u8, len: usize, flags: u32) -> Res<Message<'a>> {
    // SAFETY: forwarded contract.
    unsafe { message_in(data, len, flags, &current::here()) }
}

/// [`message`] for a call that has read the thread's callback state.
///
/// # Safety
/// As [`message`].
pub(crate) unsafe fn message_in<'a>(
    data: *const u8,
    len: usize,
    flags: u32,
    here: &current::Current,
) -> Res<Message<'a>> {
    const KNOWN: u32 = VOLLEY_SEND_BINARY | VOLLEY_SEND_COMPRESS | VOLLEY_SEND_NO_COMPRESS;
    if flags & !KNOWN != 0 {
        return Err(invalid(format!(
            "send flags: unknown bits {:#x}",
            flags & !KNOWN
        )));
    }
    if flags & VOLLEY_SEND_COMPRESS != 0 && flags & VOLLEY_SEND_NO_COMPRESS != 0 {
        return Err(invalid(
            "send flags: VOLLEY_SEND_COMPRESS and VOLLEY_SEND_NO_COMPRESS together",
        ));
    }
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(data, len) }?;
    if flags & VOLLEY_SEND_BINARY != 0 {
        Ok(Message::Binary(b))
    } else if here.is_current_text(b) {
        // SAFETY: the engine checked these very bytes as UTF-8 before the
        // callback that is sending them got them; they are read-only to it.
        Ok(Message::Text(unsafe { std::str::from_utf8_unchecked(b) }))
    } else {
        simdutf8::basic::from_utf8(b)
            .map(Message::Text)
            .map_err(|_| volley_result::InvalidArgument)
    }
}

/// The compression choice in send flags.
pub(crate) fn compress_flag(flags: u32) -> Option<bool> {
    if flags & VOLLEY_SEND_COMPRESS != 0 {
        Some(true)
    } else if flags & VOLLEY_SEND_NO_COMPRESS != 0 {
        Some(false)
    } else {
        None
    }
}

/// Stop the server and free it: every connection is dropped at once (close
/// handlers and events see 1006), pending upgrades and requests are
/// abandoned, undrained events are discarded. For a graceful end, call
/// `volley_server_stop` first.
///
/// Ownership: takes `server` (from `volley_server_new`). Its state is freed
/// once the calls other threads have in flight on it return (a
/// `volley_server_join` returns at once, the server being stopped); a call
/// that starts afterwards, and a second free, are safe: the call returns
/// VOLLEY_RESULT_STOPPED (0 for sends, 3 for ready states), the free does
/// nothing. (The small handle itself is kept for that.) NULL is a no-op.
/// Threads: any thread, also a callback of this server: the workers cannot
/// wait for themselves, so the state is then freed on another thread once
/// the callback has returned and they have exited.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_free(server: *mut volley_server) {
    boundary((), || {
        if server.is_null() {
            return;
        }
        // SAFETY: a handle from volley_server_new (never deallocated).
        let shell: &'static volley_server = unsafe { &*server };
        if shell.freed.swap(true, Ordering::SeqCst) {
            return; // freed already
        }
        RETIRED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(server as usize);
        let p = shell.state.load(Ordering::Acquire);
        if p.is_null() {
            return;
        }
        // SAFETY: set by volley_server_new; only this (first) free takes it.
        let state = unsafe { &*p };
        state.handle.stop_now();
        let finish = move || {
            // Calls that started before `freed` was set finish first.
            let mut spins = 0u32;
            while shell.in_flight.load(Ordering::SeqCst) > 0 {
                spins += 1;
                if spins < 100 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            let p = shell.state.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !p.is_null() {
                // SAFETY: the Box made by volley_server_new, taken once.
                drop(unsafe { Box::from_raw(p) });
            }
        };
        if state.handle.on_worker_thread() || current::in_callback_of(shell) {
            std::thread::spawn(finish);
        } else {
            finish();
        }
    })
}

impl Drop for ServerState {
    fn drop(&mut self) {
        let s = self
            .server
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = s {
            s.stop_now();
        }
        if let Some(q) = self.queue.as_mut() {
            let q = q.get_mut().unwrap_or_else(|e| e.into_inner());
            q.requests.clear();
            for b in q.batches.drain(..) {
                q.queue.recycle(b);
            }
        }
    }
}

/// Stop the server: with `VOLLEY_STOP_GRACEFUL` (0), stop accepting and
/// send close 1001 to every WebSocket, giving them `close_timeout_ms` to
/// finish; with `VOLLEY_STOP_NOW`, drop every connection at once; with
/// `VOLLEY_STOP_LISTEN_ONLY`, stop accepting and let open connections end
/// by themselves (a later call without it closes them). Then wait
/// for the workers to exit, unless `VOLLEY_STOP_NO_WAIT` is given or the
/// call comes from one of this server's callbacks (which cannot wait for
/// their own thread). In queue mode the close events are then waiting for
/// `volley_server_poll`. The server stays allocated until `volley_server_free`.
///
/// Ownership: `server` is borrowed for the call.
/// Threads: any thread (see above for callbacks). With `VOLLEY_STOP_NO_WAIT`
/// (and without `VOLLEY_STOP_LISTEN_ONLY`) it is async-signal-safe: it
/// only sets the stop level and writes each worker's wake-up descriptor
/// (no lock, no allocation), so a SIGINT/SIGTERM handler may call it while
/// `volley_server_join` waits on the main thread. No other function of
/// this library is async-signal-safe.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (unknown flag
/// bits); STOPPED (freed).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_stop(server: *mut volley_server, flags: u32) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            const KNOWN: u32 = VOLLEY_STOP_NOW | VOLLEY_STOP_NO_WAIT | VOLLEY_STOP_LISTEN_ONLY;
            if flags & !KNOWN != 0 {
                return Err(invalid(format!(
                    "volley_server_stop: unknown flag bits {:#x}",
                    flags & !KNOWN
                )));
            }
            if flags & VOLLEY_STOP_NO_WAIT != 0 && flags & VOLLEY_STOP_LISTEN_ONLY == 0 {
                // The async-signal-safe path: a request, no waiting.
                s.handle.signal_stop(flags & VOLLEY_STOP_NOW != 0);
                return Ok(());
            }
            if flags & VOLLEY_STOP_NOW != 0 {
                s.handle.stop_now();
            } else if flags & VOLLEY_STOP_LISTEN_ONLY != 0 {
                s.handle.stop_listening();
            } else {
                s.handle.stop();
            }
            if flags & VOLLEY_STOP_NO_WAIT == 0 && !s.handle.on_worker_thread() {
                join(&s);
            }
            Ok(())
        })())
    })
}

fn join(s: &ServerState) {
    if let Some(srv) = s.server.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        srv.join();
    }
}

/// Block until the server has stopped (something called
/// `volley_server_stop`). Several threads may wait at once.
///
/// Ownership: `server` is borrowed for the call.
/// Threads: any thread but this server's workers (WRONG_THREAD there).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; WRONG_THREAD.
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_join(server: *mut volley_server) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            if s.handle.on_worker_thread() {
                return Err(volley_result::WrongThread);
            }
            join(&s);
            Ok(())
        })())
    })
}

/// Is the server running (false once every worker has exited, after a
/// stop)? In queue mode, events may still wait for `volley_server_poll`.
///
/// Ownership: `server` is borrowed for the call.
/// Threads: any thread.
/// Returns: the answer; false for a NULL `server`.
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_is_running(server: *const volley_server) -> bool {
    boundary(false, || {
        // SAFETY: documented contract.
        unsafe { self::server(server) }.is_ok_and(|s| {
            s.server
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|srv| !srv.is_stopped())
        })
    })
}

/// The port the server listens on (the real one when `port` was 0).
///
/// Ownership: `server` is borrowed for the call.
/// Threads: any thread.
/// Returns: the port; 0 for a NULL `server` and for one on a Unix socket
/// (`unix_path`).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_port(server: *const volley_server) -> u16 {
    boundary(0, || {
        // SAFETY: documented contract.
        unsafe { self::server(server) }.map_or(0, |s| s.port)
    })
}

/// Event-queue mode: the file descriptor that becomes readable when events
/// wait. Watch it with epoll/kqueue/poll, libuv or asyncio; the library
/// reads it (do not read or close it yourself).
///
/// Ownership: `server` is borrowed; `*out` is written; the descriptor
/// belongs to the server and closes with `volley_server_free`.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; WRONG_MODE (callback mode).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_fd(server: *const volley_server, out: *mut i32) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            let q = s.queue.as_ref().ok_or(volley_result::WrongMode)?;
            if out.is_null() {
                return Err(volley_result::NullParameter);
            }
            let fd = q.lock().unwrap_or_else(|e| e.into_inner()).queue.fd();
            // SAFETY: checked non-NULL; the caller's int.
            unsafe { *out = fd };
            Ok(())
        })())
    })
}

/// Event-queue mode: move up to `max` waiting events into `events`,
/// without blocking. Their pointers (payloads, requests) stay valid until
/// the next `volley_server_poll` on this server (or its free): nothing is
/// copied twice. When it fills all `max`, more may wait: call again (the
/// descriptor is readable again only when new events arrive). Events of one
/// connection come in order.
///
/// As Bun runs `open` before the client sees its upgrade, a WebSocket's 101
/// waits for the host to handle its `OPEN` event: it goes out, after what
/// the host sent or subscribed while handling it, at the next poll on this
/// server or at the polling thread's outermost `volley_server_uncork`. End
/// each batch with one of them (a host that corks around its handling, as
/// `volley_server_cork` advises, does).
///
/// Ownership: `server` is borrowed; `events` (room for `max`) and `*count`
/// are the caller's, written during the call.
/// Threads: any one thread at a time (calls are serialised); usually the
/// host's event-loop thread.
/// Returns: VOLLEY_RESULT_OK with `*count` set (0: nothing waits);
/// NULL_PARAMETER; WRONG_MODE (callback mode).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_poll(
    server: *const volley_server,
    events: *mut volley_event,
    max: usize,
    count: *mut usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            let q = s.queue.as_ref().ok_or(volley_result::WrongMode)?;
            if count.is_null() || (events.is_null() && max > 0) {
                return Err(volley_result::NullParameter);
            }
            let out: &mut [volley_event] = if max == 0 {
                &mut []
            } else {
                // SAFETY: the caller provides room for `max` events.
                unsafe { std::slice::from_raw_parts_mut(events, max) }
            };
            let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
            let n = q.poll(out);
            if n > 0 {
                s.polls.fetch_add(1, Ordering::Relaxed);
                s.polled.fetch_add(n as u64, Ordering::Relaxed);
            }
            // SAFETY: checked non-NULL.
            unsafe { *count = n };
            Ok(())
        })())
    })
}

/// An `Open` handed out: its 101 goes when the host has handled it.
fn note_open(queue: &mut EventQueue, ev: &Event<'_>) {
    if let Event::Open { id, .. } = ev {
        queue.opened(*id);
    }
}

impl HostQueue {
    /// Forget what the last poll handed out, which is no longer borrowed;
    /// the host has handled it (the 101s of its opens may go).
    fn release(&mut self) {
        self.queue.release_opened();
        self.poller = this_thread();
        for b in self.batches.drain(..self.batch) {
            self.queue.recycle(b);
        }
        self.batch = 0;
        self.requests.clear();
    }

    /// The next event, if any (taking more batches when these are used up).
    fn next(&mut self) -> Option<(usize, usize)> {
        loop {
            if self.batch == self.batches.len() {
                let before = self.batches.len();
                self.queue.take(&mut self.batches);
                if self.batches.len() == before {
                    return None;
                }
            }
            if self.event < self.batches[self.batch].len() {
                return Some((self.batch, self.event));
            }
            self.batch += 1;
            self.event = 0;
        }
    }

    fn poll(&mut self, out: &mut [volley_event]) -> usize {
        self.release();
        let mut n = 0;
        while n < out.len() {
            let Some((b, e)) = self.next() else { break };
            let ev = self.batches[b].event(e);
            note_open(&mut self.queue, &ev);
            out[n] = convert(ev, &mut self.requests);
            self.event += 1;
            n += 1;
        }
        n
    }

    fn poll_packed(&mut self, out: &mut [u8]) -> (usize, usize) {
        self.release();
        let (mut used, mut n) = (0, 0);
        while let Some((b, e)) = self.next() {
            let ev = self.batches[b].event(e);
            let Some(len) = pack(&fields(&ev), &mut out[used..]) else {
                break;
            };
            note_open(&mut self.queue, &ev);
            used += len;
            self.event += 1;
            n += 1;
        }
        (used, n)
    }
}

/// Event-queue mode, for hosts that read memory faster than they call
/// functions (JavaScript, Python): move waiting events into `buf` as
/// packed records, with one call. Each record, little-endian, 8-byte
/// aligned:
///
/// | offset | size | field |
/// |---|---|---|
/// | `VOLLEY_RECORD_KIND` (0) | 1 | kind (`volley_event_kind`) |
/// | `VOLLEY_RECORD_FLAGS` (1) | 1 | flags: `VOLLEY_EVENT_BINARY`, `VOLLEY_EVENT_ACTIVE`, `VOLLEY_PACKED_*_BY_ADDRESS` |
/// | `VOLLEY_RECORD_CODE` (2) | 2 | close code |
/// | `VOLLEY_RECORD_KEY` (4) | 4 | `volley_ws.key` |
/// | `VOLLEY_RECORD_GENERATION` (8) | 8 | `volley_ws.generation` |
/// | `VOLLEY_RECORD_USER` (16) | 8 | user value |
/// | `VOLLEY_RECORD_DATA_LEN` (24) | 4 | payload length |
/// | `VOLLEY_RECORD_TOPIC_LEN` (28) | 4 | topic length |
/// | `VOLLEY_RECORD_HEADER` (32) | … | payload, then topic: inline, or an 8-byte address when longer than `VOLLEY_PACKED_INLINE_MAX` (flags say which) |
///
/// The record's length is `VOLLEY_RECORD_HEADER` plus both fields, rounded
/// up to `VOLLEY_RECORD_ALIGN`. For
/// upgrade and request events the payload is the request, packed: method,
/// path, query as (u32 length, bytes); headers and route parameters as a
/// u32 count of such fields, names and values alternating; subprotocols
/// likewise; then the peer's address, a field that is "s" over TLS and
/// empty otherwise, and the body. Addresses stay valid until the next poll
/// on this server (copy them out with `volley_copy`). Inline payloads are a
/// second copy of small messages; large ones are not copied again. The
/// 101s of the `OPEN` events it hands out wait as `volley_server_poll`
/// says.
///
/// Ownership: `server` borrowed; `buf` (`cap` bytes) is the caller's,
/// written during the call.
/// Threads: any one thread at a time (calls are serialised with
/// `volley_server_poll`, whose events it shares).
/// Returns: the bytes written (0: nothing waits; close to `cap`: call again),
/// or `-(int64_t)result`: -VOLLEY_RESULT_NULL_PARAMETER, -WRONG_MODE,
/// -INVALID_ARGUMENT (`cap` below `VOLLEY_PACKED_MIN_BUFFER`), -PANIC.
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_poll_packed(
    server: *const volley_server,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    boundary(-(volley_result::Panic as i64), || {
        let r: Res<i64> = (|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            let q = s.queue.as_ref().ok_or(volley_result::WrongMode)?;
            if buf.is_null() {
                return Err(volley_result::NullParameter);
            }
            if cap < VOLLEY_PACKED_MIN_BUFFER {
                return Err(volley_result::InvalidArgument);
            }
            // SAFETY: the caller provides `cap` writable bytes.
            let out = unsafe { std::slice::from_raw_parts_mut(buf, cap) };
            let (used, n) = q.lock().unwrap_or_else(|e| e.into_inner()).poll_packed(out);
            if n > 0 {
                s.polls.fetch_add(1, Ordering::Relaxed);
                s.polled.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(used as i64)
        })();
        r.unwrap_or_else(|e| -(e as i64))
    })
}

/// Copy `len` bytes from `address` (a by-address field of the last packed
/// poll) into `dst`.
///
/// Ownership: `dst` is the caller's (`len` bytes), written during the call;
/// `address` must come from the last `volley_server_poll_packed` of a live
/// server, with its length.
/// Threads: the thread that polls.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn volley_copy(dst: *mut u8, address: u64, len: usize) -> volley_result {
    boundary(volley_result::Panic, || {
        if len == 0 {
            return volley_result::Ok;
        }
        if dst.is_null() || address == 0 {
            return volley_result::NullParameter;
        }
        // SAFETY: the caller's contract: `address` is a live field of the
        // last poll with `len` bytes, `dst` has room for them.
        unsafe { std::ptr::copy_nonoverlapping(address as usize as *const u8, dst, len) };
        volley_result::Ok
    })
}

fn fields<'a>(ev: &Event<'a>) -> Fields<'a> {
    use volley_event_kind as K;
    let binary = |b: bool| if b { VOLLEY_EVENT_BINARY } else { 0 };
    let f = |kind, id: engine::ConnId, user, data: &'a [u8]| Fields {
        kind,
        flags: 0,
        code: 0,
        ws: volley_ws::from_id(id),
        user,
        data,
        topic: &[],
    };
    match *ev {
        Event::Upgrade { id, request } => f(K::Upgrade, id, 0, request.as_bytes()),
        Event::Request { id, request } => f(K::Request, id, 0, request.as_bytes()),
        Event::Open { id, user } => f(K::Open, id, user, &[]),
        Event::Message {
            id,
            user,
            data,
            binary: b,
        } => Fields {
            flags: binary(b),
            ..f(K::Message, id, user, data)
        },
        Event::Close {
            id,
            user,
            code,
            reason,
        } => Fields {
            code,
            ..f(K::Close, id, user, reason)
        },
        Event::Drain { id, user } => f(K::Drain, id, user, &[]),
        Event::Ping { id, user, data } => f(K::Ping, id, user, data),
        Event::Pong { id, user, data } => f(K::Pong, id, user, data),
        Event::Dropped {
            id,
            user,
            topic,
            data,
            binary: b,
        } => Fields {
            flags: binary(b),
            topic,
            ..f(K::Dropped, id, user, data)
        },
        Event::Topic { topic, active } => Fields {
            kind: K::Topic,
            flags: if active { VOLLEY_EVENT_ACTIVE } else { 0 },
            code: 0,
            ws: volley_ws::NONE,
            user: 0,
            data: &[],
            topic,
        },
    }
}

/// An engine event as C sees it.
#[allow(clippy::vec_box)] // see `HostQueue::requests`
fn convert(ev: Event<'_>, requests: &mut Vec<Box<RequestScratch>>) -> volley_event {
    let f = fields(&ev);
    let mut e = volley_event::new(f.kind);
    e.flags = f.flags;
    e.code = u32::from(f.code);
    e.ws = f.ws;
    e.user = f.user;
    e.topic = volley_bytes::of(f.topic);
    match ev {
        Event::Upgrade { request, .. } | Event::Request { request, .. } => {
            let r = RequestScratch::of_view(&request);
            e.request = &r.req;
            requests.push(r);
        }
        _ => e.data = volley_bytes::of(f.data),
    }
    e
}

fn publish_result(r: PublishResult) -> volley_publish_result {
    volley_publish_result {
        delivered: r.delivered as u64,
        backpressured: r.backpressured as u64,
        dropped: r.dropped as u64,
        forwarded: r.forwarded as u64,
    }
}

/// Publish to every subscriber of `topic` on every worker; the message is
/// encoded once. From a callback, this worker's subscribers get it at once
/// and are counted in `*result`; elsewhere `*result` counts the workers it
/// was handed to (`forwarded`).
///
/// Ownership: `server` borrowed; `topic` and `data` borrowed for the call
/// (copied); `*result` (may be NULL) written.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (text that
/// is not UTF-8, or flags as for `volley_ws_send`); STOPPED (the server
/// has stopped).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_publish(
    server: *const volley_server,
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
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let t = unsafe { bytes(topic, topic_len) }?;
            // SAFETY: documented contract.
            let m = unsafe { message(data, len, flags) }?;
            let compress = compress_flag(flags);
            if s.handle.is_stopped() {
                return Err(volley_result::Stopped);
            }
            let r = current::on_any_ws(s.shell, |ws| ws.publish_all(t, m, compress))
                .unwrap_or_else(|| {
                    let forwarded = match compress {
                        Some(c) => s.handle.publish_compressed(t, m, c),
                        None => s.handle.publish(t, m),
                    };
                    PublishResult {
                        forwarded,
                        ..PublishResult::default()
                    }
                });
            // SAFETY: the caller's struct, or NULL.
            if let Some(out) = unsafe { result.as_mut() } {
                *out = publish_result(r);
            }
            Ok(())
        })())
    })
}

/// Close the idle HTTP connections: keep-alive ones between requests (no
/// request arriving, no answer pending or being written). WebSockets,
/// requests in flight and the listener are untouched, as with Bun's
/// `closeIdleConnections`. Waits for each worker's turn (up to 5 s).
///
/// Ownership: `server` borrowed; `*closed` written (may be NULL).
/// Threads: any thread but this server's workers (WRONG_THREAD: a worker
/// would wait for itself).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; WRONG_THREAD; STOPPED.
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_close_idle(
    server: *const volley_server,
    closed: *mut usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            let n = s
                .handle
                .close_idle_connections()
                .ok_or(volley_result::WrongThread)?;
            // SAFETY: the caller's out-parameter, or NULL.
            if let Some(out) = unsafe { closed.as_mut() } {
                *out = n;
            }
            Ok(())
        })())
    })
}

/// How many subscribers (WebSocket and Server-Sent Events) `topic` has,
/// all workers together.
///
/// Ownership: `server` and `topic` borrowed; `*out` written.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_subscriber_count(
    server: *const volley_server,
    topic: *const u8,
    topic_len: usize,
    out: *mut usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let t = unsafe { bytes(topic, topic_len) }?;
            if out.is_null() {
                return Err(volley_result::NullParameter);
            }
            // SAFETY: checked non-NULL.
            unsafe { *out = s.handle.subscriber_count(t) };
            Ok(())
        })())
    })
}

/// Set what a slow subscriber of `topic` gets (applies when the topic next
/// goes from no subscriber to one): a `volley_slow_consumer`, with the close
/// code for `VOLLEY_SLOW_CONSUMER_CLOSE`.
///
/// Ownership: `server` and `topic` borrowed for the call.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (unknown
/// policy, or a close code a server may not send).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_set_topic_policy(
    server: *const volley_server,
    topic: *const u8,
    topic_len: usize,
    policy: u32,
    close_code: u16,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let t = unsafe { bytes(topic, topic_len) }?;
            let p = options::slow_consumer(policy, close_code)?;
            s.handle.set_topic_policy(t, p);
            Ok(())
        })())
    })
}

/// Read the counters into `*out`, up to its `struct_size` (set it first).
///
/// Ownership: `server` borrowed; `*out` written.
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; ABI_MISMATCH (`struct_size` 0).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_stats(
    server: *const volley_server,
    out: *mut volley_stats,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            if out.is_null() {
                return Err(volley_result::NullParameter);
            }
            // SAFETY: `struct_size` is the first field of the caller's struct.
            let size = unsafe { (*out).struct_size } as usize;
            if size < size_of::<u64>() * 2 {
                return Err(volley_result::AbiMismatch);
            }
            let st = s.handle.stats();
            let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let v = volley_stats {
                struct_size: size.min(size_of::<volley_stats>()) as u32,
                connections: st.connections.load(Ordering::Relaxed) as u64,
                opened: l(&st.opened),
                refused: l(&st.refused),
                messages_in: l(&st.messages_in),
                requests: l(&st.requests),
                publishes: l(&st.publishes),
                frames_encoded: l(&st.frames_encoded),
                compressions: l(&st.compressions),
                delivered: l(&st.delivered),
                dropped: l(&st.dropped),
                mailbox_full: l(&st.mailbox_full),
                bytes_out: l(&st.bytes_out),
                buffered: l(&st.buffered),
                polls: l(&s.polls),
                polled_events: l(&s.polled),
                bridged_out: l(&st.bridged_out),
                bridged_in: l(&st.bridged_in),
                bridge_lost: l(&st.bridge_lost),
            };
            let n = size.min(size_of::<volley_stats>());
            // SAFETY: the caller's struct has `size` writable bytes; we
            // write a prefix of the same layout.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (&v as *const volley_stats).cast::<u8>(),
                    out.cast::<u8>(),
                    n,
                )
            };
            Ok(())
        })())
    })
}

/// Batch this thread's sends, publishes and answers to `server`: until
/// the matching `volley_server_uncork`, each worker they go to is woken
/// once, at the end, instead of once per call. An event-queue host corks
/// around the handling of each poll's events. Nests. The cork is this
/// thread's and this server's: sends to another server, and from other
/// threads, are not held back, and freeing the server ends it (a cork
/// left open on a freed server holds nothing back).
///
/// Ownership: `server` borrowed.
/// Threads: any thread (not needed inside callbacks, which run corked).
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; STOPPED (freed).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_cork(server: *const volley_server) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            s.handle.cork();
            Ok(())
        })())
    })
}

/// End a `volley_server_cork`: the outermost wakes every worker sent to.
/// In event-queue mode, the outermost uncork on the polling thread also
/// ends the batch: the 101s of the connections whose `OPEN` events were
/// handed out go now, after what their open handling sent (see
/// `volley_server_poll`). An uncork without a cork does nothing.
///
/// Ownership: `server` borrowed.
/// Threads: the thread that corked.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; STOPPED (freed: its corks
/// ended with it).
#[unsafe(no_mangle)]
pub extern "C" fn volley_server_uncork(server: *const volley_server) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            if let Some(q) = &s.queue {
                if s.handle.cork_depth() == 1 {
                    let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
                    if q.poller == this_thread() {
                        q.queue.release_opened();
                    }
                }
            }
            s.handle.uncork();
            Ok(())
        })())
    })
}
