//! Results, their messages, and the panic boundary around every entry point.

use std::ffi::c_char;
use std::panic::{self, AssertUnwindSafe};

/// What a call did. Numbers are grouped by hundreds and never reused; a
/// retired one stays here as a comment. Functions that take a result back
/// from C take a `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum volley_result {
    /// Done.
    Ok = 0,
    /// A pointer argument was NULL.
    NullParameter = 100,
    /// An argument is out of range or malformed (a close code, text that is
    /// not UTF-8, an option value).
    InvalidArgument = 101,
    /// The call needs the connection's worker thread (inside one of its
    /// callbacks) and was made elsewhere.
    WrongThread = 102,
    /// A callback-mode call on a queue-mode server, or the other way round.
    WrongMode = 103,
    /// The struct size given is smaller than any this library knows.
    AbiMismatch = 104,
    /// The connection is closed, or the id is stale.
    Closed = 200,
    /// The upgrade or request was already answered (or never asked).
    NotPending = 201,
    /// Binding, reading a file, or another system call failed.
    Io = 300,
    /// The TLS certificate or key could not be used.
    Tls = 301,
    /// The worker's mailbox is full (see `mailbox_bytes`): try later.
    Busy = 302,
    /// The server has stopped.
    Stopped = 303,
    /// A Rust panic was caught at the boundary (a bug in Volley).
    Panic = 900,
}

impl volley_result {
    fn message(self) -> &'static [u8] {
        match self {
            volley_result::Ok => b"ok\0",
            volley_result::NullParameter => b"a pointer argument was NULL\0",
            volley_result::InvalidArgument => b"an argument is out of range or malformed\0",
            volley_result::WrongThread => {
                b"the call needs the connection's worker thread (inside its callback)\0"
            }
            volley_result::WrongMode => b"not available in this server's mode\0",
            volley_result::AbiMismatch => b"a struct size this library does not know\0",
            volley_result::Closed => b"the connection is closed (or the id is stale)\0",
            volley_result::NotPending => b"already answered, or never asked\0",
            volley_result::Io => b"a system call failed\0",
            volley_result::Tls => b"the TLS certificate or key could not be used\0",
            volley_result::Busy => b"the worker's mailbox is full; try again later\0",
            volley_result::Stopped => b"the server has stopped\0",
            volley_result::Panic => b"a panic was caught at the C boundary (a bug in Volley)\0",
        }
    }

    fn from_u32(code: u32) -> Option<volley_result> {
        use volley_result::*;
        [
            Ok,
            NullParameter,
            InvalidArgument,
            WrongThread,
            WrongMode,
            AbiMismatch,
            Closed,
            NotPending,
            Io,
            Tls,
            Busy,
            Stopped,
            Panic,
        ]
        .into_iter()
        .find(|r| *r as u32 == code)
    }
}

/// A static, NUL-terminated English sentence for a result code.
///
/// Ownership: the string is static; never free it.
/// Threads: any thread.
/// Returns: the message, or "unknown result" for a number that is no result.
#[unsafe(no_mangle)]
pub extern "C" fn volley_error_message(code: u32) -> *const c_char {
    volley_result::from_u32(code)
        .map_or(&b"unknown result\0"[..], volley_result::message)
        .as_ptr()
        .cast()
}

thread_local! {
    /// The detail of the last refusal on this thread (`volley_last_error`).
    static LAST_ERROR: std::cell::RefCell<std::ffi::CString> =
        std::cell::RefCell::new(std::ffi::CString::default());
}

/// Refuse an argument, saying which and why (read back with
/// `volley_last_error`).
pub(crate) fn invalid(what: impl Into<String>) -> volley_result {
    set_last_error(what);
    volley_result::InvalidArgument
}

/// Record the detail of a refusal for `volley_last_error`.
pub(crate) fn set_last_error(what: impl Into<String>) {
    let mut m = what.into();
    m.retain(|c| c != '\0');
    let c = std::ffi::CString::new(m).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// The detail of the last call on this thread that was refused with one
/// (e.g. "volley_options.slow_consumer: 4 is not a volley_slow_consumer"),
/// or "" when none was. Like `errno`, successful calls leave it as it is;
/// not every refusal sets it (the result code always says what failed).
///
/// Ownership: the string belongs to this thread; it stays valid until this
/// thread's next call into the library. Never free it.
/// Threads: any thread; each thread has its own.
/// Returns: a NUL-terminated string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn volley_last_error() -> *const c_char {
    boundary(c"".as_ptr(), || LAST_ERROR.with(|l| l.borrow().as_ptr()))
}

/// Run an entry point's body; a panic becomes `on_panic`.
pub(crate) fn boundary<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            log::error!("volley: a panic was caught at the C boundary");
            on_panic
        }
    }
}

/// `?` for results: the body of an entry point returns `Result<_, volley_result>`.
pub(crate) type Res<T = ()> = Result<T, volley_result>;

/// Fold a body's `Res` into the C return value.
pub(crate) fn code(r: Res) -> volley_result {
    match r {
        Ok(()) => volley_result::Ok,
        Err(e) => e,
    }
}

/// A reference from a pointer, or `NullParameter`.
///
/// # Safety
/// A non-NULL `p` must point to a valid `T` for the life of the returned reference.
pub(crate) unsafe fn arg<'a, T>(p: *const T) -> Res<&'a T> {
    // SAFETY: the caller's contract: non-NULL means valid.
    unsafe { p.as_ref() }.ok_or(volley_result::NullParameter)
}

/// A byte slice from a pointer and a length (NULL is fine when len is 0).
///
/// # Safety
/// A non-NULL `p` must point to `len` readable bytes for the life of the slice.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Res<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(volley_result::NullParameter);
    }
    // SAFETY: the caller's contract: `p` points to `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Text from a pointer and a length: it must be UTF-8.
///
/// # Safety
/// As for [`bytes`].
pub(crate) unsafe fn text<'a>(p: *const u8, len: usize) -> Res<&'a str> {
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(p, len) }?;
    std::str::from_utf8(b).map_err(|_| volley_result::InvalidArgument)
}

/// A NUL-terminated string (NULL gives `None`).
///
/// # Safety
/// A non-NULL `p` must point to a NUL-terminated string.
pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Res<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract: NUL-terminated.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| volley_result::InvalidArgument)
}
