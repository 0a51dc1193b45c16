//! Answers to upgrades and HTTP requests: inside their callback, or later
//! from any thread (queue mode always answers later).

use crate::current::{self, Answered};
use crate::error::{Res, boundary, bytes, code, cstr, invalid, volley_result};
use crate::server::{Call, server, volley_server};
use crate::types::{volley_bytes, volley_header, volley_ws};
use engine::{Accept, Response};
use std::ffi::c_char;

/// Headers from C: names and values must be UTF-8 without CR, LF or NUL.
///
/// # Safety
/// `h` points to `n` headers whose byte views are valid.
unsafe fn headers(h: *const volley_header, n: usize) -> Res<Vec<(String, String)>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if h.is_null() {
        return Err(volley_result::NullParameter);
    }
    // SAFETY: the caller's array of `n`.
    let list = unsafe { std::slice::from_raw_parts(h, n) };
    list.iter()
        .map(|h| {
            // SAFETY: each view is valid for the call.
            let k = unsafe { crate::error::text(h.name.data, h.name.len) }?;
            // SAFETY: as above.
            let v = unsafe { crate::error::text(h.value.data, h.value.len) }?;
            let bad = |s: &str| s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
            if k.is_empty() || !k.bytes().all(engine::proto::http::is_tchar) || bad(v) {
                return Err(invalid(format!(
                    "header {k:?}: the name must be a token, the value free of CR, LF and NUL"
                )));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn response(status: u16, headers: Vec<(String, String)>, body: &[u8]) -> Res<Response> {
    if !(100..=999).contains(&status) || status == 101 {
        return Err(volley_result::InvalidArgument);
    }
    let mut r = Response::new(status, body.to_vec());
    r.headers = headers;
    Ok(r)
}

/// Give the answer: in the callback that asked, or through the server.
fn answer(s: &Call<'_>, ws: volley_ws, a: Answered) -> Res {
    let id = ws.id().ok_or(volley_result::NotPending)?;
    if let Answered::Respond(r) = &a {
        if r.is_streamed() {
            // Sends by id may follow at once, even inside the callback.
            s.handle.open_event_stream(id);
        }
    }
    let mut a = Some(a);
    match current::answer_here(s.shell, id, || a.take().expect("answered once")) {
        Some(true) => return Ok(()),
        Some(false) => return Err(volley_result::NotPending),
        None => {}
    }
    let a = a.take().expect("not given in the callback");
    let queued = match a {
        Answered::Accept {
            user,
            protocol,
            headers,
        } => s.handle.accept_upgrade(
            id,
            Accept {
                data: user,
                protocol,
                headers,
            },
        ),
        Answered::Reject(r) => s.handle.reject_upgrade(id, r),
        Answered::Respond(r) => s.handle.respond(id, r),
    };
    if queued {
        Ok(())
    } else {
        Err(volley_result::Busy)
    }
}

/// Accept an upgrade: the WebSocket opens with `user` as its user value,
/// `protocol` as its subprotocol (NUL-terminated, one the client offered,
/// or NULL for none) and `headers` added to the 101.
/// In the upgrade callback, or later from any thread within
/// `handshake_timeout_ms` (then the client gets 503). A later answer for a
/// connection that has gone is ignored.
///
/// Ownership: `server` borrowed; `protocol`, `headers` borrowed for the
/// call (copied).
/// Threads: any thread.
/// Returns: VOLLEY_RESULT_OK; NULL_PARAMETER; INVALID_ARGUMENT (a header
/// name or a protocol that is not a token, a header value with CR, LF or
/// NUL, text that is not UTF-8; `volley_last_error` says which); NOT_PENDING (answered
/// already in this callback, or a zero id); BUSY (mailbox full).
#[unsafe(no_mangle)]
pub extern "C" fn volley_upgrade_accept(
    server: *const volley_server,
    ws: volley_ws,
    user: u64,
    protocol: *const c_char,
    headers: *const volley_header,
    headers_len: usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let p = unsafe { cstr(protocol) }?.map(str::to_string);
            if let Some(p) = &p {
                // RFC 6455 §4.1: a subprotocol is a token. (That the client
                // offered it is checked where the offer is known: a choice
                // it did not offer answers 500.)
                if p.is_empty() || !p.bytes().all(engine::proto::http::is_tchar) {
                    return Err(invalid(format!("subprotocol {p:?} is not a token")));
                }
            }
            // SAFETY: documented contract.
            let h = unsafe { self::headers(headers, headers_len) }?;
            answer(
                &s,
                ws,
                Answered::Accept {
                    user,
                    protocol: p,
                    headers: h,
                },
            )
        })())
    })
}

/// Refuse an upgrade with an HTTP response (status 100–999 but 101, extra
/// headers, a body); the connection closes after it.
///
/// Ownership: `server` borrowed; `headers`, `body` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_upgrade_accept`; INVALID_ARGUMENT for a bad status.
#[unsafe(no_mangle)]
pub extern "C" fn volley_upgrade_reject(
    server: *const volley_server,
    ws: volley_ws,
    status: u16,
    headers: *const volley_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let h = unsafe { self::headers(headers, headers_len) }?;
            // SAFETY: documented contract.
            let b = unsafe { bytes(body, body_len) }?;
            answer(&s, ws, Answered::Reject(response(status, h, b)?))
        })())
    })
}

/// Answer a plain HTTP request. The connection stays open for the client's
/// next request unless it asked otherwise (HTTP/1.0, `Connection: close`);
/// `Content-Length` and `Connection` are written by the library.
/// In the request callback, or later from any thread within
/// `request_timeout_ms` (then 503).
///
/// Ownership: `server` borrowed; `headers`, `body` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_upgrade_reject`.
#[unsafe(no_mangle)]
pub extern "C" fn volley_respond(
    server: *const volley_server,
    ws: volley_ws,
    status: u16,
    headers: *const volley_header,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let h = unsafe { self::headers(headers, headers_len) }?;
            // SAFETY: documented contract.
            let b = unsafe { bytes(body, body_len) }?;
            answer(&s, ws, Answered::Respond(response(status, h, b)?))
        })())
    })
}

/// Answer a plain HTTP request with a head now and its body later (Bun's
/// `ReadableStream` response): the request's id then takes `volley_ws_send`
/// at once (in order after this answer), text and binary both written as
/// the bytes given, and `volley_ws_close` ends the body and the connection
/// (the body is delimited by the close; no `Content-Length`). A
/// `Content-Type` in `headers` is kept (default `application/octet-stream`).
/// A send after the client left returns 0.
///
/// Ownership: `server` borrowed; `headers` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_respond`.
#[unsafe(no_mangle)]
pub extern "C" fn volley_respond_stream(
    server: *const volley_server,
    ws: volley_ws,
    status: u16,
    headers: *const volley_header,
    headers_len: usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let h = unsafe { self::headers(headers, headers_len) }?;
            if !(200..=599).contains(&status) || status == 204 || status == 304 {
                return Err(volley_result::InvalidArgument);
            }
            let mut r = Response::stream(status);
            r.headers.extend(h);
            answer(&s, ws, Answered::Respond(r))
        })())
    })
}

/// Answer a plain HTTP request with a Server-Sent Events stream of
/// `topics` (none is fine): every publish to them arrives as a `data:`
/// event, with a keep-alive comment every `sse_keepalive_ms`, until the
/// client leaves. The request's id then takes `volley_ws_send` at once (in
/// order after this answer): text goes out as one event (a `data:` field
/// per line), binary as the bytes given (already event-stream formatted);
/// `volley_ws_close` ends the response. A send after the client left
/// returns 0.
///
/// Ownership: `server` borrowed; `headers`, `topics` borrowed for the call.
/// Threads: any thread.
/// Returns: as `volley_respond`.
#[unsafe(no_mangle)]
pub extern "C" fn volley_respond_events(
    server: *const volley_server,
    ws: volley_ws,
    status: u16,
    headers: *const volley_header,
    headers_len: usize,
    topics: *const volley_bytes,
    topics_len: usize,
) -> volley_result {
    boundary(volley_result::Panic, || {
        code((|| {
            // SAFETY: documented contract.
            let s = unsafe { self::server(server) }?;
            // SAFETY: documented contract.
            let h = unsafe { self::headers(headers, headers_len) }?;
            let list: &[volley_bytes] = if topics_len == 0 {
                &[]
            } else if topics.is_null() {
                return Err(volley_result::NullParameter);
            } else {
                // SAFETY: the caller's array of `topics_len` views.
                unsafe { std::slice::from_raw_parts(topics, topics_len) }
            };
            let names = list
                .iter()
                // SAFETY: each view is valid for the call.
                .map(|t| unsafe { bytes(t.data, t.len) }.map(<[u8]>::to_vec))
                .collect::<Res<Vec<_>>>()?;
            let mut r = Response::event_stream(names);
            r.status = status;
            if !(200..=299).contains(&status) {
                return Err(volley_result::InvalidArgument);
            }
            r.headers.extend(h);
            answer(&s, ws, Answered::Respond(r))
        })())
    })
}
