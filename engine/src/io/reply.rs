//! What a handler answers to a request: a [`Response`] (a refused upgrade,
//! or a plain request's reply) or an [`Accept`] (an upgrade, with the
//! connection's data). Plain values: the hub carries them between threads,
//! the request views produce them.

use std::any::Any;

/// An HTTP response: for a rejected upgrade, or from [`crate::Handler::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (`Content-Length` and `Connection` are written by the server).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Stream publishes of these topics as `text/event-stream` instead of a body.
    pub(crate) event_stream: Option<Vec<Vec<u8>>>,
    /// The body follows later, by id ([`Response::stream`]).
    pub(crate) stream: bool,
}

impl Response {
    /// A response with a status and a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            event_stream: None,
            stream: false,
        }
    }

    /// A response whose body follows: after this answer, the request's id
    /// takes sends from any thread ([`crate::ServerHandle::send`]; text and
    /// binary both go out as the bytes given) until it is closed, which ends
    /// the body and the connection (the body is delimited by the close, as
    /// HTTP/1.1 allows). Its `Content-Type` header is kept (default
    /// `application/octet-stream`). Bun streams a `ReadableStream` body so.
    pub fn stream(status: u16) -> Self {
        let mut r = Response::new(status, Vec::new());
        r.stream = true;
        r
    }

    /// Is the body sent later by id (a [`Response::stream`] or an
    /// [`Response::event_stream`])?
    pub fn is_streamed(&self) -> bool {
        self.stream || self.event_stream.is_some()
    }

    /// A `text/event-stream` response (Server-Sent Events) subscribed to
    /// `topics`: every publish to them arrives as a `data:` event, with a
    /// keep-alive comment every `sse_keepalive`. The subscriptions end with
    /// the connection.
    pub fn event_stream<T: AsRef<[u8]>>(topics: impl IntoIterator<Item = T>) -> Self {
        let mut r = Response::new(200, Vec::new())
            .header("Cache-Control", "no-cache")
            .header("X-Accel-Buffering", "no");
        r.event_stream = Some(topics.into_iter().map(|t| t.as_ref().to_vec()).collect());
        r
    }

    /// The topics of an event-stream response.
    pub fn event_stream_topics(&self) -> Option<&[Vec<u8>]> {
        self.event_stream.as_deref()
    }

    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An accepted upgrade: user data, the chosen subprotocol, extra headers.
#[derive(Debug)]
pub struct Accept<D> {
    /// Data attached to the connection, reachable with [`crate::WebSocket::data`].
    pub data: D,
    /// The subprotocol, which must be one the client offered. `None` answers
    /// without `Sec-WebSocket-Protocol` (the client's offers are never echoed).
    pub protocol: Option<String>,
    /// Extra headers for the 101 response.
    pub headers: Vec<(String, String)>,
}

impl<D> Accept<D> {
    /// Accept with this data, no subprotocol and no extra header.
    pub fn new(data: D) -> Self {
        Accept {
            data,
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Choose a subprotocol from the client's offer.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocol = Some(p.into());
        self
    }

    /// Add a header to the 101 response.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn boxed(self) -> Accept<Box<dyn Any + Send>>
    where
        D: Send + 'static,
    {
        Accept {
            data: Box::new(self.data),
            protocol: self.protocol,
            headers: self.headers,
        }
    }
}
