//! Where the library's log records go: the engine's warnings and errors (a
//! TLS configuration that failed, a deferred answer dropped, a handler that
//! panicked and was caught at the boundary, …) to the host instead of
//! nowhere (and panics to the host's log instead of its stderr).
//!
//! A host gives a callback, called on whatever thread logs (worker threads
//! included), or none: records then wait in a bounded queue the host takes
//! them from on its own thread (`volley_log_take`), which is what runtimes
//! with a global lock need (a worker blocking on Python's GIL while the
//! host thread waits for that worker would deadlock).

use crate::error::{boundary, volley_result};
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::Mutex;

/// A log record for the host: `level` (1 error, 2 warn, 3 info, 4 debug,
/// 5 trace), the message as UTF-8 (`len` bytes, not NUL-terminated, valid
/// during the call only).
pub type volley_log_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, msg: *const u8, len: usize)>;

/// Records kept for `volley_log_take` before the oldest are dropped.
const QUEUED: usize = 1024;

struct Sink {
    callback: volley_log_fn,
    userdata: *mut c_void,
    queue: VecDeque<(u32, String)>,
}

// SAFETY: `userdata` is only handed back to the host's callback, which the
// host declared callable from any thread (see `volley_set_log`).
unsafe impl Send for Sink {}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        let level = r.level() as u32;
        let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = g.as_mut() else { return };
        match s.callback {
            Some(cb) => {
                let ud = s.userdata;
                drop(g); // the callback may log or set the sink again
                // SAFETY: the host's function, with its userdata and a
                // message valid for the call.
                unsafe { cb(ud, level, msg.as_ptr(), msg.len()) };
            }
            None => {
                if s.queue.len() >= QUEUED {
                    s.queue.pop_front();
                }
                s.queue.push_back((level, msg));
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Send the library's log records to `callback(userdata, level, msg, len)`,
/// or, with `callback` NULL, keep them (up to 1,024, then the oldest go)
/// for `volley_log_take`. `level`: the most verbose level passed on (0 off,
/// 1 error, 2 warn, 3 info, 4 debug, 5 trace). Once set, a panic caught at
/// the boundary is logged as an error record instead of printed on stderr.
/// Process-wide; call again to change it.
///
/// Ownership: `userdata` is the caller's, passed back to `callback`.
/// Threads: any thread. `callback` is called on the thread that logs,
/// worker threads included, and must not block on a lock those hold (use
/// the queue form where a global lock is involved: Python, Node).
/// Returns: VOLLEY_RESULT_OK; INVALID_ARGUMENT (`level` over 5).
#[unsafe(no_mangle)]
pub extern "C" fn volley_set_log(
    callback: volley_log_fn,
    userdata: *mut c_void,
    level: u32,
) -> volley_result {
    boundary(volley_result::Panic, || {
        let filter = match level {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            5 => log::LevelFilter::Trace,
            _ => {
                return crate::error::invalid(format!("volley_set_log: level {level} is not 0..5"));
            }
        };
        {
            let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
            let queue = g.take().map(|s| s.queue).unwrap_or_default();
            *g = Some(Sink {
                callback,
                userdata,
                queue,
            });
        }
        // Fails only when the logger is set already (ours, or the host's
        // own `log` logger in a Rust host linking this library).
        if log::set_logger(&LOGGER).is_ok() {
            std::panic::set_hook(Box::new(|info| {
                log::error!("volley: panic: {info}");
            }));
        }
        log::set_max_level(filter);
        volley_result::Ok
    })
}

/// Take the oldest record kept by the queue form of `volley_set_log`: its
/// level into `*level`, its message (UTF-8) into `buf`, cut to `cap` bytes.
///
/// Ownership: `buf` (`cap` bytes) and `*level` are the caller's, written
/// during the call.
/// Threads: any thread (typically the host's own, on each event batch).
/// Returns: the message's full length (more than `cap`: it was cut), or 0
/// when no record waits (also for NULL `buf` or `level`).
#[unsafe(no_mangle)]
pub extern "C" fn volley_log_take(level: *mut u32, buf: *mut u8, cap: usize) -> usize {
    boundary(0, || {
        if level.is_null() || (buf.is_null() && cap > 0) {
            return 0;
        }
        let rec = SINK
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|s| s.queue.pop_front());
        let Some((l, msg)) = rec else { return 0 };
        let n = msg.len().min(cap);
        // SAFETY: the caller's `level`, and `buf` with room for `cap` >= n.
        unsafe {
            *level = l;
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf, n);
        }
        msg.len()
    })
}
