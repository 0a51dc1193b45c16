//! HTTP as handlers see it: the request (for upgrades and plain requests)
//! and the answers a hook gives, now or later (the answers' values are in
//! `reply.rs`).

use crate::id::ConnId;
use crate::io::hub::{Answer, Command, Hub};
use crate::io::reply::{Accept, Response};
use crate::proto;
use std::net::SocketAddr;
use std::sync::Arc;

/// The answer of [`crate::Handler::upgrade`].
pub enum Upgrade<D: Send + 'static> {
    /// Upgrade now.
    Accept(Accept<D>),
    /// Refuse with this response.
    Reject(Response),
    /// Answer later: the closure receives a [`PendingUpgrade`] (send it to
    /// another thread; answer within `handshake_timeout`, or the client gets 503).
    Defer(Box<dyn FnOnce(PendingUpgrade<D>) + Send>),
    /// Answer later by id, from any thread: [`crate::ServerHandle::accept_upgrade`]
    /// or [`crate::ServerHandle::reject_upgrade`] with [`Request::id`]
    /// (within `handshake_timeout`, or the client gets 503).
    Later,
}

impl<D: Send + 'static> Upgrade<D> {
    /// Accept with `data`.
    pub fn accept(data: D) -> Self {
        Upgrade::Accept(Accept::new(data))
    }

    /// Reject with a status and a body.
    pub fn reject(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Upgrade::Reject(Response::new(status, body))
    }

    /// Decide later, from any thread.
    pub fn defer(f: impl FnOnce(PendingUpgrade<D>) + Send + 'static) -> Self {
        Upgrade::Defer(Box::new(f))
    }
}

/// The answer of [`crate::Handler::fetch`] to a plain HTTP request.
pub enum Fetch {
    /// Answer now (the connection stays open for the next request unless the
    /// client asked otherwise).
    Respond(Response),
    /// Answer later: the closure receives a [`PendingResponse`] to answer
    /// from any thread within `request_timeout` (else 503).
    Defer(Box<dyn FnOnce(PendingResponse) + Send>),
    /// Answer later by id from any thread:
    /// [`crate::ServerHandle::respond`] with [`Request::id`].
    Later,
    /// Not handled here: 426 on a WebSocket route, 404 elsewhere.
    Pass,
}

impl Fetch {
    /// Decide later, from any thread.
    pub fn defer(f: impl FnOnce(PendingResponse) + Send + 'static) -> Self {
        Fetch::Defer(Box::new(f))
    }
}

impl From<Response> for Fetch {
    fn from(r: Response) -> Self {
        Fetch::Respond(r)
    }
}

impl From<Option<Response>> for Fetch {
    fn from(r: Option<Response>) -> Self {
        r.map_or(Fetch::Pass, Fetch::Respond)
    }
}

/// An HTTP request head (and body), as seen by [`crate::Handler::upgrade`]
/// and [`crate::Handler::fetch`]. Borrowed for the duration of the call.
#[derive(Debug)]
pub struct Request<'a> {
    pub(crate) head: &'a proto::handshake::Request<'a>,
    pub(crate) route: Option<&'a str>,
    pub(crate) params: Vec<(&'a str, &'a str)>,
    /// The connection, for `remote_address` (a `getpeername` only when asked).
    pub(crate) sock: &'a crate::io::sock::Stream,
    pub(crate) id: ConnId,
    pub(crate) body: &'a [u8],
    pub(crate) secure: bool,
}

impl<'a> Request<'a> {
    /// This request's id: the connection's id if it becomes a WebSocket,
    /// and the id to answer a deferred request with from any thread.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// `GET`, `POST`, …
    pub fn method(&self) -> &'a str {
        self.head.method
    }

    /// The path without the query.
    pub fn path(&self) -> &'a str {
        self.head.path
    }

    /// The query string without `?` (empty when absent).
    pub fn query(&self) -> &'a str {
        self.head.query
    }

    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub fn version(&self) -> u8 {
        self.head.version
    }

    /// Did the request come over TLS?
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The first header with this name (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.head
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header line, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.head.headers.iter().copied()
    }

    /// The route pattern that matched (`/room/:room_id`), if routes are set.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// A route parameter (`room_id`), raw (not percent-decoded).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Every route parameter, in pattern order.
    pub fn params(&self) -> &[(&'a str, &'a str)] {
        &self.params
    }

    /// The subprotocols the client offers, in its order.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.head.tokens("sec-websocket-protocol")
    }

    /// The peer's address (`None` on a Unix socket).
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Does the client accept `text/event-stream` (an `EventSource`)?
    pub fn wants_event_stream(&self) -> bool {
        self.head.tokens("accept").any(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
    }

    /// Is this a WebSocket upgrade request?
    pub fn is_upgrade(&self) -> bool {
        self.head.wants_websocket()
    }

    /// The request body (`Content-Length` or chunked, decoded; empty for an
    /// upgrade).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Deliver an answer to the connection's worker. If the worker is gone (the
/// server stopped) or its mailbox is full, nothing more can be done: the
/// connection times out (503) or is already closed.
fn deliver(hub: &Arc<Hub>, id: ConnId, answer: Answer) -> bool {
    let ok = hub
        .command(
            id.worker(),
            Command::Answer {
                id,
                answer: Box::new(answer),
            },
        )
        .is_ok();
    if !ok {
        log::warn!("volley: answer for {id:?} not delivered (server stopping or mailbox full)");
    }
    ok
}

/// A deferred upgrade: answer it from any thread with [`PendingUpgrade::accept`]
/// or [`PendingUpgrade::reject`]. Dropped unanswered, the client gets 500.
pub struct PendingUpgrade<D: Send + 'static> {
    pub(crate) hub: Arc<Hub>,
    pub(crate) id: ConnId,
    pub(crate) answered: bool,
    pub(crate) _data: std::marker::PhantomData<fn(D)>,
}

impl<D: Send + 'static> PendingUpgrade<D> {
    /// The request's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Accept the upgrade.
    pub fn accept(mut self, a: Accept<D>) {
        self.answered = true;
        deliver(&self.hub, self.id, Answer::Upgrade(Ok(a.boxed())));
    }

    /// Reject the upgrade with this response.
    pub fn reject(mut self, response: Response) {
        self.answered = true;
        deliver(&self.hub, self.id, Answer::Upgrade(Err(response)));
    }
}

impl<D: Send + 'static> Drop for PendingUpgrade<D> {
    fn drop(&mut self) {
        if !self.answered {
            let r = Response::new(500, "upgrade was not answered\n");
            deliver(&self.hub, self.id, Answer::Upgrade(Err(r)));
        }
    }
}

/// A deferred HTTP answer: [`PendingResponse::respond`] from any thread.
/// Dropped unanswered, the client gets 500.
pub struct PendingResponse {
    pub(crate) hub: Arc<Hub>,
    pub(crate) id: ConnId,
    pub(crate) answered: bool,
}

impl PendingResponse {
    /// The request's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Answer the request.
    pub fn respond(mut self, r: Response) {
        self.answered = true;
        deliver(&self.hub, self.id, Answer::Respond(r));
    }
}

impl Drop for PendingResponse {
    fn drop(&mut self) {
        if !self.answered {
            let r = Response::new(500, "request was not answered\n");
            deliver(&self.hub, self.id, Answer::Respond(r));
        }
    }
}
