//! HTTP requests and upgrades, as the connection's protocol state reads
//! them (`proto::connection`), to the handler: plain requests to `fetch`,
//! upgrades to `upgrade` (validated, permessage-deflate negotiated), the
//! answers now or from another thread, keep-alive's new ids, and streamed
//! and Server-Sent Events responses. The bytes of every answer, and the
//! session's moves, are `Connection`'s; the ids, slots, timers, stats and
//! hooks are the loop's, here.

use super::conn::{Conn, Ctx, Pending};
use super::lifecycle::{guarded, hook};
use super::publish;
use super::slots;
use super::worker::{Conns, Shared};
use crate::io::request::{PendingResponse, PendingUpgrade};
use crate::proto::connection::Answer;
use crate::proto::deflate;
use crate::proto::handshake::{self, Refusal};
use crate::proto::requests::ReplyMode;
use crate::{Accept, Fetch, Handler, Request, Response, Upgrade};
use std::sync::atomic::Ordering;

/// A complete plain request: ask the handler.
pub(super) fn fetch<H: Handler>(
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

/// An upgrade request: validate, negotiate, ask the handler. Refused, the
/// connection reads nothing more; accepted, the bytes after the head are
/// its first frames; deferred, they wait for the answer.
pub(super) fn upgrade<H: Handler>(
    shared: &Shared<H>,
    conns: &mut Conns<H::Data>,
    ctx: &mut Ctx,
    key: usize,
    head: &handshake::Request<'_>,
) {
    let conn = &mut conns[key];
    let m = shared.router.find(head.path);
    if !shared.router.is_empty() && m.is_none() {
        let resp = Response::new(404, "no WebSocket route for this path\n");
        respond(conn, ctx, key, &resp, None);
        return;
    }
    let up = match handshake::validate_upgrade(head) {
        Ok(up) => up,
        Err(r) => {
            refuse(conn, ctx, key, r);
            return;
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
        return;
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
                }
            }
        }
    }
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
    // In event-queue mode `open` runs later on the host's thread: the 101
    // waits for it there too (released when the host has handled the event).
    conn.held = shared.queue.is_some();
    conn.data = Some(a.data);
    let now = ctx.now;
    let (proto, mut wire) = conn.wire(ctx, key);
    let protocol = a.protocol.as_deref();
    proto.accept(accept_key, protocol, pmd.as_ref(), &headers, now, &mut wire);
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
    let topics = resp.event_stream.as_deref();
    let kind = resp
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("content-type") && handshake::is_safe_header(v))
        .map_or("application/octet-stream", |(_, v)| v.as_str());
    let conn = &mut conns[key];
    let now = ctx.now;
    let (proto, mut wire) = conn.wire(ctx, key);
    proto.stream(
        resp.status,
        &resp.headers,
        topics.is_some(),
        kind,
        now,
        &mut wire,
    );
    ctx.pool.put(conn.take_stash());
    // Sends by id reach it from now on (the answering thread may have said so already).
    ctx.slot(key).set_state(slots::OPEN);
    conn.timer_tick = 0;
    conn.arm(ctx, key);
    for t in topics.unwrap_or_default() {
        publish::subscribe(conns, ctx, key, t, None);
    }
}

/// Refuse a request that broke a rule, and close.
fn refuse<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize, r: Refusal) {
    let (now, t) = (ctx.now, ctx.timeouts);
    let (proto, mut wire) = conn.wire(ctx, key);
    proto.refuse(r, now, &t, &mut wire);
    shut(conn, ctx, key);
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
    let answer = Answer {
        status: resp.status,
        headers: &resp.headers,
        body: &resp.body,
        mode,
    };
    let (now, t, stopping) = (ctx.now, ctx.timeouts, ctx.hub.is_stopping());
    let (proto, mut wire) = conn.wire(ctx, key);
    if !proto.respond(answer, stopping, now, &t, &mut wire) {
        shut(conn, ctx, key);
        return;
    }
    let id = ctx.occupy(key);
    conn.generation = id.generation() as u32;
    conn.timer_tick = 0;
    conn.arm(ctx, key);
    if conn.has_stash() || conn.read_pending {
        ctx.again.push(key);
    }
}

/// The last bytes are queued and the session flushing: drop unread input
/// and close within the close limit.
pub(super) fn shut<D>(conn: &mut Conn<D>, ctx: &mut Ctx, key: usize) {
    ctx.pool.put(conn.take_stash());
    conn.mark_dirty(ctx, key);
    conn.arm(ctx, key);
}
