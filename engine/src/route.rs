//! Route patterns for upgrade and HTTP requests: `/echo`, `/room/:room_id`,
//! `/static/*`. Literal segments match exactly, `:name` captures one segment,
//! a final `*` captures the rest of the path.

#[derive(Debug, Clone)]
enum Seg {
    Lit(String),
    Param(String),
    Rest,
}

#[derive(Debug, Clone)]
struct Route {
    pattern: String,
    segs: Vec<Seg>,
}

/// An ordered list of patterns; the first match wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

/// A match: the pattern and its captured parameters (raw, not percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matched<'r, 'p> {
    pub pattern: &'r str,
    pub params: Vec<(&'r str, &'p str)>,
}

impl Router {
    pub(crate) fn add(&mut self, pattern: &str) {
        let segs = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "*" => Seg::Rest,
                _ if s.starts_with(':') => Seg::Param(s[1..].to_string()),
                _ => Seg::Lit(s.to_string()),
            })
            .collect();
        self.routes.push(Route {
            pattern: pattern.to_string(),
            segs,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub(crate) fn find<'r, 'p>(&'r self, path: &'p str) -> Option<Matched<'r, 'p>> {
        'routes: for r in &self.routes {
            let mut params = Vec::new();
            let mut rest = path.trim_start_matches('/');
            for seg in &r.segs {
                if let Seg::Rest = seg {
                    params.push(("*", rest));
                    return Some(Matched {
                        pattern: &r.pattern,
                        params,
                    });
                }
                let (part, tail) = rest.split_once('/').unwrap_or((rest, ""));
                match seg {
                    Seg::Lit(l) if l == part => {}
                    Seg::Param(name) if !part.is_empty() => params.push((name.as_str(), part)),
                    _ => continue 'routes,
                }
                rest = tail;
            }
            if rest.trim_end_matches('/').is_empty() {
                return Some(Matched {
                    pattern: &r.pattern,
                    params,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_param_and_rest() {
        let mut r = Router::default();
        r.add("/echo");
        r.add("/room/:room_id");
        r.add("/files/*");
        r.add("/");
        assert_eq!(r.find("/echo").unwrap().pattern, "/echo");
        // A literal does not match a longer path, and nothing else does here.
        assert!(r.find("/echo/x").is_none());
        let m = r.find("/room/lobby").unwrap();
        assert_eq!(m.params, vec![("room_id", "lobby")]);
        // A parameter captures one non-empty segment: nothing matches.
        assert!(r.find("/room/").is_none());
        assert_eq!(r.find("/files/a/b").unwrap().params, vec![("*", "a/b")]);
        assert_eq!(r.find("/").unwrap().pattern, "/");
        assert!(r.find("/nope").is_none());
    }
}
