//! Route keys as API Gateway reads them, and its choice of the most specific matching route.

use std::sync::Arc;

use http::Method;
use portico_core::web::RouteGroup;
use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// How specific a matching route is; API Gateway picks the most specific. Fields compare in
/// order: any route beats `$default`; a full match (no greedy `{x+}`) beats a greedy one,
/// however many literal segments the greedy one has (`POST /{a}/{b}` takes `POST /admin/x`
/// from `ANY /admin/{proxy+}`, as AWS documents); then more literal segments; then a named
/// method beats `ANY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Specificity {
    not_default: bool,
    exact: bool,
    literals: usize,
    method: bool,
}

pub(crate) struct Route {
    pub(crate) key: String,
    method: Option<Method>,
    /// `None` for `$default`.
    segments: Option<Vec<Segment>>,
    pub(crate) group: Arc<dyn RouteGroup>,
}

impl Route {
    pub(crate) fn parse(key: String, group: Arc<dyn RouteGroup>) -> Route {
        if key == "$default" {
            return Route { key, method: None, segments: None, group };
        }
        let (method, path) = key.split_once(' ').expect("route keys are 'METHOD /path' or '$default'");
        let method = (method != "ANY").then(|| method.parse().expect("route key method"));
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(p) => match p.strip_suffix('+') {
                    Some(g) => Segment::Greedy(g.to_owned()),
                    None => Segment::Param(p.to_owned()),
                },
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        Route { key, method, segments: Some(segments), group }
    }

    /// Path parameters if the route matches; API Gateway's specificity as a sort key.
    pub(crate) fn matches(&self, request_method: &Method, path: &str) -> Option<(Map<String, Value>, Specificity)> {
        if self.method.as_ref().is_some_and(|m| m != request_method) {
            return None;
        }
        let default = Specificity { not_default: false, exact: false, literals: 0, method: false };
        let Some(segments) = &self.segments else {
            return Some((Map::new(), default));
        };
        let method = self.method.is_some();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = Map::new();
        let mut literals = 0;
        for (i, seg) in segments.iter().enumerate() {
            match seg {
                Segment::Greedy(name) => {
                    if parts.len() <= i {
                        return None;
                    }
                    params.insert(name.clone(), Value::String(parts[i..].join("/")));
                    return Some((params, Specificity { not_default: true, exact: false, literals, method }));
                }
                Segment::Literal(l) if parts.get(i) == Some(&l.as_str()) => literals += 1,
                Segment::Param(name) if parts.get(i).is_some() => {
                    params.insert(name.clone(), Value::String(parts[i].to_owned()));
                }
                _ => return None,
            }
        }
        (parts.len() == segments.len())
            .then_some((params, Specificity { not_default: true, exact: true, literals, method }))
    }
}
