//! A reference model of HTTP/1.1 body framing, written from RFC 9112's
//! grammar as directly as it reads (whole input, one rule per function),
//! for tests and fuzzing to hold [`super::http::framing`] and the
//! incremental [`super::http::BodyReader`] against. Not used to serve.

use super::handshake::Request;

/// What the model makes of a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFraming {
    /// No body.
    None,
    /// This many bytes.
    Length(u64),
    /// A chunked body.
    Chunked,
    /// Refused with this status.
    Refused(u16),
}

fn ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [f, rest @ ..] = v {
        if !ows(*f) {
            break;
        }
        v = rest;
    }
    while let [rest @ .., l] = v {
        if !ows(*l) {
            break;
        }
        v = rest;
    }
    v
}

/// RFC 9112 §6.1 and §6.3 for a request, strictly.
pub fn framing(req: &Request<'_>, max_body: usize) -> ModelFraming {
    let values = |name: &str| -> Vec<&[u8]> {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    };
    let te = values("transfer-encoding");
    let cl = values("content-length");
    if !te.is_empty() {
        // transfer-coding list: #( token ), final one `chunked`, once.
        let codings: Vec<&[u8]> = te
            .iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim)
            .filter(|c| !c.is_empty())
            .collect();
        let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
        return if !cl.is_empty()
            || req.version == 0
            || codings.is_empty()
            || codings.iter().any(|c| !c.iter().copied().all(tchar))
            || !codings.last().is_some_and(chunked)
            || codings.iter().filter(|c| chunked(c)).count() > 1
        {
            ModelFraming::Refused(400)
        } else if codings.len() > 1 {
            ModelFraming::Refused(501)
        } else {
            ModelFraming::Chunked
        };
    }
    let mut len = None;
    for v in cl {
        let v = trim(v);
        // Content-Length = 1*DIGIT, and (strictly) no leading zero.
        let ok =
            !v.is_empty() && v.iter().all(u8::is_ascii_digit) && (v.len() == 1 || v[0] != b'0');
        let n = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        match (ok, n) {
            (true, Some(n)) if len.is_none() || len == Some(n) => len = Some(n),
            _ => return ModelFraming::Refused(400),
        }
    }
    match len {
        None | Some(0) => ModelFraming::None,
        Some(n) if n > max_body as u64 => ModelFraming::Refused(413),
        Some(n) => ModelFraming::Length(n),
    }
}

/// What the model makes of a chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelBody {
    /// The body, and where it ended in the input.
    Done(Vec<u8>, usize),
    /// Valid so far; more input is needed.
    Incomplete,
    /// Refused with this status.
    Refused(u16),
}

/// The longest line (with its CRLF) either side accepts.
const MAX_LINE: usize = 4096;

/// One CRLF-terminated line at `at`: its content, and where the next
/// starts; `Err(None)` when incomplete, `Err(Some(400))` when malformed.
fn line(input: &[u8], at: usize) -> Result<(&[u8], usize), Option<u16>> {
    let rest = &input[at..];
    match rest.iter().position(|&b| b == b'\n') {
        None if rest.len() >= MAX_LINE => Err(Some(400)),
        None => Err(None),
        Some(lf) if lf + 1 > MAX_LINE => Err(Some(400)),
        Some(lf) if lf == 0 || rest[lf - 1] != b'\r' || rest[..lf - 1].contains(&b'\r') => {
            Err(Some(400))
        }
        Some(lf) => Ok((&rest[..lf - 1], at + lf + 1)),
    }
}

/// chunk-size [ chunk-ext ]: the size, or the refusal's status.
fn size_line(l: &[u8]) -> Result<u64, u16> {
    let digits = l.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(400);
    }
    if digits > 15 {
        return Err(413);
    }
    let size = u64::from_str_radix(std::str::from_utf8(&l[..digits]).map_err(|_| 400u16)?, 16)
        .map_err(|_| 400u16)?;
    // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) BWS
    let mut r = &l[digits..];
    let skip = |r: &mut &[u8]| {
        while let [b, rest @ ..] = *r {
            if !ows(*b) {
                break;
            }
            *r = rest;
        }
    };
    let token = |r: &mut &[u8]| -> bool {
        let n = r.iter().take_while(|&&b| tchar(b)).count();
        *r = &r[n..];
        n > 0
    };
    loop {
        skip(&mut r);
        match r {
            [] => return Ok(size),
            [b';', rest @ ..] => r = rest,
            _ => return Err(400),
        }
        skip(&mut r);
        if !token(&mut r) {
            return Err(400);
        }
        let before = r;
        skip(&mut r);
        if let [b'=', rest @ ..] = r {
            r = rest;
            skip(&mut r);
            if let [b'"', rest @ ..] = r {
                r = rest;
                loop {
                    match r {
                        [b'"', rest @ ..] => {
                            r = rest;
                            break;
                        }
                        [b'\\', c, rest @ ..] if field_byte(*c) => r = rest,
                        [c, rest @ ..] if field_byte(*c) && *c != b'\\' => r = rest,
                        _ => return Err(400),
                    }
                }
            } else if !token(&mut r) {
                return Err(400);
            }
        } else {
            r = before;
        }
    }
}

fn field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// field-line = field-name ":" OWS field-value OWS (no obs-fold).
fn trailer_line(l: &[u8]) -> bool {
    let name = l.iter().take_while(|&&b| tchar(b)).count();
    name > 0 && l.get(name) == Some(&b':') && l[name + 1..].iter().all(|&b| field_byte(b))
}

/// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1),
/// over the whole input at once; the body may hold at most `max` bytes.
pub fn chunked_body(input: &[u8], max: usize) -> ModelBody {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (l, next) = match line(input, at) {
            Ok(x) => x,
            Err(None) => return ModelBody::Incomplete,
            Err(Some(s)) => return ModelBody::Refused(s),
        };
        let size = match size_line(l) {
            Ok(s) => s,
            Err(s) => return ModelBody::Refused(s),
        };
        at = next;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > max as u64 {
            return ModelBody::Refused(413);
        }
        let size = size as usize;
        let avail = input.len() - at;
        if avail < size {
            return ModelBody::Incomplete;
        }
        body.extend_from_slice(&input[at..at + size]);
        at += size;
        match &input[at..] {
            [] | [b'\r'] => return ModelBody::Incomplete,
            [b'\r', b'\n', ..] => at += 2,
            _ => return ModelBody::Refused(400),
        }
    }
    loop {
        let (l, next) = match line(input, at) {
            Ok(x) => x,
            Err(None) => return ModelBody::Incomplete,
            Err(Some(s)) => return ModelBody::Refused(s),
        };
        if l.is_empty() {
            return ModelBody::Done(body, next);
        }
        if !trailer_line(l) {
            return ModelBody::Refused(400);
        }
        at = next;
    }
}
