//! HTTP on a connection: request heads, bodies, keep-alive, plain requests
//! to the handler's `fetch`, upgrades to WebSocket (now or deferred), and
//! Server-Sent Events responses.

use super::conn::{Conn, Ctx, Pending};
use super::frames::frames;
use super::lifecycle::{guarded, hook};
use super::publish;
use super::slots;
use super::worker::{Conns, Shared};
use crate::io::request::{PendingResponse, PendingUpgrade};
use crate::proto::deflate;
use crate::proto::handshake::{self, HeadLimits, Refusal};
use crate::proto::http as h1;
use crate::proto::requests::{self, Limits, Read, ReplyMode};
use crate::proto::session::Phase;
use crate::{Accept, Fetch, Handler, Request, Response, Upgrade};
use std::sync::atomic::Ordering;

/// Feed input to the connection according to its phase, phase after phase
/// (a keep-alive connection may hold several pipelined requests, an upgrade
/// may be followed by frames); returns the bytes used. Unused bytes are kept
/// by the caller in the phases that keep input.
pub(super) fn feed<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut pos = 0;
    while pos < input.len() {
        let Some(conn) = conns.get(key) else {
            return input.len();
        };
        let n = match conn.phase() {
            Phase::Handshake if conn.http_backlogged(&ctx.opts) => {
                // Resumed by the flush that drains the answers (write.rs).
                conns[key].read_pending = true;
                return pos;
            }
            Phase::Handshake => head_input(shared, conns, ctx, key, &mut input[pos..]),
            Phase::Body => body_input(shared, conns, ctx, key, &input[pos..]),
            Phase::Open | Phase::Closing => {
                return pos + frames(shared, conns, ctx, key, &mut input[pos..]);
            }
            Phase::Deferred | Phase::Fetching => return pos,
            // Flushing, SSE, Done: the peer's bytes are read and dropped.
            Phase::Sse | Phase::Stream | Phase::Flushing | Phase::Done => return input.len(),
        };
        if n == 0 {
            break; // an incomplete head
        }
        pos += n;
    }
    pos
}

fn limits(ctx: &Ctx) -> Limits {
    Limits {
        head: HeadLimits {
            max_bytes: ctx.opts.max_header_bytes,
            max_headers: ctx.opts.max_headers,
        },
        max_body: ctx.opts.max_body_bytes,
    }
}

/// The start of a request (`proto::requests` reads it): an upgrade, a
/// whole request, or one whose body is read next. Returns the bytes used
/// (0: the head is incomplete).
fn head_input<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &mut [u8],
) -> usize {
    let mut scratch = ctx.pool.get(0);
    let used = match requests::read(input, limits(ctx), &mut scratch) {
        Read::Incomplete => 0,
        Read::Refused(r) => {
            refuse(&mut conns[key], ctx, key, r);
            input.len()
        }
        Read::Upgrade(head) => upgrade(shared, conns, ctx, key, &head, input.len()),
        Read::Whole { head, body, used } => {
            fetch(shared, conns, ctx, key, &head, body);
            used
        }
        Read::Started {
            body,
            send_continue,
        } => {
            let conn = &mut conns[key];
            if send_continue {
                conn.queue_bytes(ctx, key, b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            conn.proto.sess.read_body(ctx.now);
            conn.cold().body = Some(body);
            input.len()
        }
    };
    ctx.pool.put(scratch);
    used
}

/// More of a request body; at its end, the request goes to `fetch`.
fn body_input<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    input: &[u8],
) -> usize {
    let conn = &mut conns[key];
    let Some(mut b) = conn.cold.as_mut().and_then(|c| c.body.take()) else {
        conn.finish(ctx, key);
        return input.len();
    };
    conn.trim_cold();
    // The timeout counts silence, not the length of an upload.
    conn.proto.sess.body_progress(ctx.now);
    match b.feed(input) {
        Err(r) => {
            ctx.pool.put(b.into_buf());
            refuse(conn, ctx, key, r);
            input.len()
        }
        Ok(None) => {
            conn.cold().body = Some(b);
            input.len()
        }
        Ok(Some(n)) => {
            conn.proto.sess.body_done();
            match b.request(limits(ctx).head) {
                Ok((head, body)) => fetch(shared, conns, ctx, key, &head, body),
                Err(r) => refuse(conn, ctx, key, r),
            }
            ctx.pool.put(b.into_buf());
            n
        }
    }
}

/// A complete plain request: ask the handler.
fn fetch<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    head: &handshake::Request<'_>,
    body: &[u8],
) {
    ctx.hub.stats.requests.fetch_add(1, Ordering::Relaxed);
    let conn = &mut conns[key];
    let mode = ReplyMode::of(head);
    let m = shared.router.find(head.path);
    let routed = shared.router.is_empty() || m.is_some();
    let id = ctx.id(key);
    let req = request(m, head, conn, id, body);
    let answer = hook(|| shared.handler.fetch(&req));
    drop(req);
    match answer {
        None => respond(
            conn,
            ctx,
            key,
            &Response::new(500, "internal error\n"),
            None,
        ),
        Some(Fetch::Respond(resp)) => reply(conns, ctx, key, &resp, Some(mode)),
        Some(Fetch::Pass) => {
            let resp = if routed {
                Response::new(426, "this endpoint speaks WebSocket\n")
                    .header("Upgrade", "websocket")
                    .header("Sec-WebSocket-Version", "13")
            } else {
                Response::new(404, "not found\n")
            };
            respond(conn, ctx, key, &resp, Some(mode));
        }
        Some(Fetch::Later) => await_answer(conn, ctx, key, Pending::Fetch(mode)),
        Some(Fetch::Defer(f)) => {
            await_answer(conn, ctx, key, Pending::Fetch(mode));
            let pending = PendingResponse {
                hub: ctx.hub.clone(),
                id,
                answered: false,
            };
            if hook(move || f(pending)).is_none() {
                conns[key].take_pending();
                respond(
                    &mut conns[key],
                    ctx,
                    key,
                    &Response::new(500, "internal error\n"),
                    None,
                );
            }
        }
    }
}

/// The request as handlers see it.
fn request<'a, D>(
    m: Option<crate::route::Matched<'a, 'a>>,
    head: &'a handshake::Request<'a>,
    conn: &'a Conn<D>,
    id: crate::ConnId,
    body: &'a [u8],
) -> Request<'a> {
    let (route, params) = m.map_or((None, Vec::new()), |m| (Some(m.pattern), m.params));
    Request {
        head,
        route,
        params,
        sock: &conn.sock,
        id,
        body,
        secure: conn.is_tls(),
    }
}

/// Wait for an answer from another thread (reading stops meanwhile).
fn await_answer<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, p: Pending) {
    conn.proto
        .sess
        .await_answer(matches!(p, Pending::Fetch(_)), ctx.now);
    conn.cold().pending = Some(Box::new(p));
    conn.timer_tick = 0;
    conn.arm(ctx, key);
}

/// An upgrade request: validate, negotiate, ask the handler.
fn upgrade<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    head: &handshake::Request<'_>,
    all: usize,
) -> usize {
    let conn = &mut conns[key];
    let m = shared.router.find(head.path);
    if !shared.router.is_empty() && m.is_none() {
        let resp = Response::new(404, "no WebSocket route for this path\n");
        respond(conn, ctx, key, &resp, None);
        return all;
    }
    let up = match handshake::validate_upgrade(head) {
        Ok(up) => up,
        Err(r) => {
            refuse(conn, ctx, key, r);
            return all;
        }
    };
    let pmd = ctx.opts.per_message_deflate.as_ref().and_then(|cfg| {
        let offers = head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok());
        deflate::negotiate(offers, cfg)
    });
    let id = ctx.id(key);
    let req = request(m, head, conn, id, &[]);
    let Some(answer) = hook(|| shared.handler.upgrade(&req)) else {
        respond(
            conn,
            ctx,
            key,
            &Response::new(500, "internal error\n"),
            None,
        );
        return all;
    };
    let protocols: Vec<String> = match &answer {
        Upgrade::Accept(_) => Vec::new(),
        _ => req.protocols().map(str::to_string).collect(),
    };
    let offered = |p: &Option<String>| p.as_ref().is_none_or(|p| req.protocols().any(|o| o == p));
    match answer {
        Upgrade::Accept(a) => {
            let ok = offered(&a.protocol);
            drop(req);
            open(shared, conns, ctx, key, &up.accept, ok, pmd, a);
        }
        Upgrade::Reject(resp) => {
            drop(req);
            respond(conn, ctx, key, &resp, None);
            return all;
        }
        Upgrade::Later | Upgrade::Defer(_) => {
            drop(req);
            let pending = Pending::Upgrade {
                accept: up.accept,
                protocols,
                pmd,
            };
            await_answer(conn, ctx, key, pending);
            if let Upgrade::Defer(f) = answer {
                let pending = PendingUpgrade {
                    hub: ctx.hub.clone(),
                    id,
                    answered: false,
                    _data: std::marker::PhantomData,
                };
                if hook(move || f(pending)).is_none() {
                    conns[key].take_pending();
                    let resp = Response::new(500, "internal error\n");
                    respond(&mut conns[key], ctx, key, &resp, None);
                    return all;
                }
            }
        }
    }
    head.head_len
}

/// The answer to a deferred upgrade or request arrived (on the worker).
pub(super) fn answered<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    answer: super::hub::Answer,
) {
    use super::hub::Answer;
    let conn = &mut conns[key];
    let pending = match conn.take_pending() {
        Some(p) => *p,
        None => return,
    };
    match (pending, answer) {
        (
            Pending::Upgrade {
                accept,
                protocols,
                pmd,
            },
            Answer::Upgrade(Ok(a)),
        ) => match a.data.downcast::<H::Data>() {
            Ok(data) => {
                let a = Accept {
                    data: *data,
                    protocol: a.protocol,
                    headers: a.headers,
                };
                let ok = a.protocol.as_ref().is_none_or(|p| protocols.contains(p));
                open(shared, conns, ctx, key, &accept, ok, pmd, a);
            }
            Err(_) => {
                log::error!("volley: an upgrade was accepted with data of the wrong type");
                respond(
                    conn,
                    ctx,
                    key,
                    &Response::new(500, "internal error\n"),
                    None,
                );
            }
        },
        (Pending::Upgrade { .. }, Answer::Upgrade(Err(resp)) | Answer::Respond(resp)) => {
            respond(conn, ctx, key, &resp, None)
        }
        (Pending::Fetch(f), Answer::Respond(resp) | Answer::Upgrade(Err(resp))) => {
            reply(conns, ctx, key, &resp, Some(f))
        }
        (Pending::Fetch(_), Answer::Upgrade(Ok(_))) => {
            log::error!("volley: a plain HTTP request was answered with an upgrade");
            respond(
                conn,
                ctx,
                key,
                &Response::new(500, "internal error\n"),
                None,
            );
        }
    }
}

/// Queue the 101, attach the data, and run the open handler. The 101 goes out
/// with whatever `open` sent, in one write at the end of the turn (as in
/// uWebSockets, where the upgrade is corked): a client that has read the 101
/// finds `open`'s subscriptions already in place.
#[allow(clippy::too_many_arguments)]
fn open<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    accept_key: &str,
    protocol_offered: bool,
    pmd: Option<deflate::Negotiated>,
    a: Accept<H::Data>,
) {
    let conn = &mut conns[key];
    if !protocol_offered {
        log::error!(
            "volley: upgrade chose subprotocol {:?}, which the client did not offer",
            a.protocol
        );
        let id = ctx.id(key);
        let resp = Response::new(500, "subprotocol not offered\n");
        respond(conn, ctx, key, &resp, None);
        shared.handler.upgrade_failed(id, a.data);
        return;
    }
    let headers: Vec<(String, String)> = a
        .headers
        .into_iter()
        .filter(|(n, v)| handshake::is_safe_header(n) && handshake::is_safe_header(v))
        .collect();
    let mut head = ctx.pool.get(256);
    handshake::write_switching(
        &mut head,
        accept_key,
        a.protocol.as_deref(),
        pmd.as_ref().map(|n| n.header.as_str()),
        &headers,
    );
    conn.queue_bytes(ctx, key, &head);
    ctx.pool.put(head);
    // In event-queue mode `open` runs later on the host's thread: the 101
    // waits for it there too (released when the host has handled the event).
    conn.held = shared.queue.is_some();
    conn.data = Some(a.data);
    conn.proto.open(pmd.map(|n| n.agreed), ctx.now);
    conn.timer_tick = 0;
    conn.arm(ctx, key);
    ctx.slot(key).set_state(slots::OPEN);
    ctx.hub.stats.opened.fetch_add(1, Ordering::Relaxed);
    guarded(&shared.handler, conns, ctx, key, |h, ws| h.open(ws));
    if let Some(c) = conns.get(key) {
        if c.read_pending || c.has_stash() {
            ctx.again.push(key);
        }
    }
}

/// An HTTP answer: a body, or an event stream.
pub(super) fn reply<D>(
    conns: &mut Conns<D>,
    ctx: &mut Ctx,
    key: usize,
    resp: &Response,
    mode: Option<ReplyMode>,
) {
    if resp.is_streamed() {
        start_stream(conns, ctx, key, resp);
    } else {
        respond(&mut conns[key], ctx, key, resp, mode);
    }
}

/// Answer with a head and no body yet: an event stream (`text/event-stream`
/// headers, subscribed to its topics) or a streamed body. Sends by id then
/// write to it until it is closed.
fn start_stream<D>(conns: &mut Conns<D>, ctx: &mut Ctx, key: usize, resp: &Response) {
    let mut out = Vec::new();
    let topics = resp.event_stream.as_deref();
    let conn = &mut conns[key];
    if topics.is_some() {
        handshake::write_stream_head(&mut out, resp.status, &resp.headers, "text/event-stream");
        out.extend_from_slice(b": volley\n\n");
    } else {
        let kind = resp
            .headers
            .iter()
            .find(|(n, v)| n.eq_ignore_ascii_case("content-type") && handshake::is_safe_header(v))
            .map_or("application/octet-stream", |(_, v)| v.as_str());
        handshake::write_stream_head(&mut out, resp.status, &resp.headers, kind);
    }
    conn.queue_bytes(ctx, key, &out);
    ctx.pool.put(conn.take_stash());
    // Sends by id reach it from now on (the answering thread may have said so already).
    ctx.slot(key).set_state(slots::OPEN);
    conn.proto.sess.stream(topics.is_some(), ctx.now);
    conn.timer_tick = 0;
    conn.arm(ctx, key);
    for t in topics.unwrap_or_default() {
        publish::subscribe(conns, ctx, key, t, None);
    }
}

/// Refuse a request that broke a rule, and close.
fn refuse<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, r: Refusal) {
    let mut out = Vec::new();
    h1::write_refusal(&mut out, r);
    finish_with(conn, ctx, key, &out);
}

/// Write a response. With `mode` saying keep-alive, the connection then
/// waits for its next request (a new id: [`crate::ConnId`]); otherwise it
/// closes after the response.
pub(super) fn respond<D>(
    conn: &mut Conn<D>,
    ctx: &mut Ctx,
    key: usize,
    resp: &Response,
    mode: Option<ReplyMode>,
) {
    let keep = mode.is_some_and(|f| f.keep_alive) && !ctx.hub.is_stopping();
    let mut out = ctx.pool.get(128 + resp.body.len());
    h1::write_response(
        &mut out,
        resp.status,
        &resp.headers,
        &resp.body,
        keep,
        mode.is_some_and(|f| f.head_only),
    );
    if !keep {
        finish_with(conn, ctx, key, &out);
        ctx.pool.put(out);
        return;
    }
    conn.queue_bytes(ctx, key, &out);
    ctx.pool.put(out);
    let id = ctx.occupy(key);
    conn.generation = id.generation() as u32;
    conn.proto.sess.next_request(ctx.now);
    conn.timer_tick = 0;
    conn.arm(ctx, key);
    if conn.has_stash() || conn.read_pending {
        ctx.again.push(key);
    }
}

/// Send the last bytes and close after them.
fn finish_with<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, bytes: &[u8]) {
    conn.queue_bytes(ctx, key, bytes);
    ctx.pool.put(conn.take_stash());
    conn.flush_and_shut(ctx, key);
}
