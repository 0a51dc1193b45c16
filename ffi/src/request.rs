//! `volley_request` views built from the engine's requests (callback mode)
//! and from queued request events (queue mode).

use crate::types::{volley_bytes, volley_header, volley_request};
use engine::Request;
use engine::queue::RequestView;

/// A request view and the arrays it points into. Boxed so its address
/// stays put while events point at it.
pub(crate) struct RequestScratch {
    pub req: volley_request,
    headers: Vec<volley_header>,
    params: Vec<volley_header>,
    protocols: Vec<volley_bytes>,
    /// The peer's address as text (callback mode formats it here).
    addr: String,
}

// SAFETY: the pointers in `req` point into this value's own vectors and
// string, or into the batch or request that the owner keeps beside it (the
// host queue holds both, and both move together); nothing here is shared.
unsafe impl Send for RequestScratch {}

fn header(k: &[u8], v: &[u8]) -> volley_header {
    volley_header {
        name: volley_bytes::of(k),
        value: volley_bytes::of(v),
    }
}

impl RequestScratch {
    fn finish(
        mut self: Box<Self>,
        method: &[u8],
        path: &[u8],
        query: &[u8],
        addr: Option<&[u8]>,
        body: &[u8],
        secure: bool,
    ) -> Box<Self> {
        let remote = match addr {
            Some(a) => volley_bytes::of(a),
            None => volley_bytes::of(self.addr.as_bytes()),
        };
        self.req = volley_request {
            method: volley_bytes::of(method),
            path: volley_bytes::of(path),
            query: volley_bytes::of(query),
            headers: self.headers.as_ptr(),
            headers_len: self.headers.len(),
            params: self.params.as_ptr(),
            params_len: self.params.len(),
            protocols: self.protocols.as_ptr(),
            protocols_len: self.protocols.len(),
            remote_address: remote,
            body: volley_bytes::of(body),
            secure,
        };
        self
    }

    fn empty() -> Box<Self> {
        Box::new(RequestScratch {
            req: volley_request {
                method: volley_bytes::EMPTY,
                path: volley_bytes::EMPTY,
                query: volley_bytes::EMPTY,
                headers: std::ptr::null(),
                headers_len: 0,
                params: std::ptr::null(),
                params_len: 0,
                protocols: std::ptr::null(),
                protocols_len: 0,
                remote_address: volley_bytes::EMPTY,
                body: volley_bytes::EMPTY,
                secure: false,
            },
            headers: Vec::new(),
            params: Vec::new(),
            protocols: Vec::new(),
            addr: String::new(),
        })
    }

    /// A view of an engine request (valid while `req` is borrowed).
    pub(crate) fn of_request(req: &Request<'_>) -> Box<Self> {
        let mut s = Self::empty();
        s.headers = req
            .headers()
            .map(|(k, v)| header(k.as_bytes(), v))
            .collect();
        s.params = req
            .params()
            .iter()
            .map(|(k, v)| header(k.as_bytes(), v.as_bytes()))
            .collect();
        s.protocols = req
            .protocols()
            .map(|p| volley_bytes::of(p.as_bytes()))
            .collect();
        s.addr = req
            .remote_address()
            .map(|a| a.to_string())
            .unwrap_or_default();
        s.finish(
            req.method().as_bytes(),
            req.path().as_bytes(),
            req.query().as_bytes(),
            None,
            req.body(),
            req.is_secure(),
        )
    }

    /// A view of a queued request (valid while its batch is).
    pub(crate) fn of_view(v: &RequestView<'_>) -> Box<Self> {
        let mut s = Self::empty();
        s.headers = v.headers().map(|(k, v)| header(k.as_bytes(), v)).collect();
        s.params = v
            .params()
            .map(|(k, v)| header(k.as_bytes(), v.as_bytes()))
            .collect();
        s.protocols = v
            .protocols()
            .map(|p| volley_bytes::of(p.as_bytes()))
            .collect();
        s.finish(
            v.method().as_bytes(),
            v.path().as_bytes(),
            v.query().as_bytes(),
            Some(v.remote_address().as_bytes()),
            v.body(),
            v.is_secure(),
        )
    }
}
