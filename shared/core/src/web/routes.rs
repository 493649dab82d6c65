//! Route groups on axum. A route is declared once, on its handler: `#[utoipa::path]` names its
//! method, path, parameters, answers and errors, and `utoipa_axum::routes!` puts the handler in
//! the group's router and the operation in its OpenAPI paths. From that one declaration come
//! the dispatch, the 405 with `Allow` for a known path, the operation in the document, and the
//! API Gateway route keys the emulator mounts and the SAM template must deploy.
//!
//! A [`Routes`] is a [`RouteGroup`], so it runs wherever a route group runs: in Lambda
//! ([`crate::lambda`]), in the emulator, and in process (the console).

use std::collections::BTreeSet;

use axum::extract::{FromRequest, FromRequestParts};
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{HeaderValue, Method, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use utoipa_axum::router::OpenApiRouter;

use super::{ApiRequest, ApiResponse, RawPath, RouteGroup, error_response};
use crate::{Config, Error};

/// A route group: its handlers' router and the operations they declare.
pub struct Routes {
    name: &'static str,
    config: Config,
    router: axum::Router,
    /// API Gateway's route keys for the declared paths, and any the group adds.
    keys: Vec<String>,
    /// Keys the group adds that take work to list, listed when asked (the emulator, the
    /// template check), never on a Lambda function's start.
    more_keys: Option<Box<dyn Fn() -> Vec<String> + Send + Sync>>,
    /// Paths under a prefix whose clients expect another error shape, and the shape.
    error_shape: Option<(&'static str, ErrorShape)>,
    /// The answer to a response too large for Lambda, in the group's shape.
    oversized: Option<fn(usize, usize) -> ApiResponse>,
}

/// An error in the shape some clients expect (OGDC's `{"detail"}`, ...).
pub type ErrorShape = fn(&Error) -> ApiResponse;

/// Marks the answer of a path or method no route serves, with its error, so a group can
/// shape it as the clients of that path expect.
#[derive(Clone)]
struct Unrouted(Error);

impl Routes {
    /// The group `name` of `routes` over `state`: a path no route serves is Portico's 404, a
    /// method a path does not serve its 405 (with `Allow`).
    pub fn new<S>(name: &'static str, config: &Config, state: S, routes: OpenApiRouter<S>) -> Routes
    where
        S: Clone + Send + Sync + 'static,
    {
        let (router, openapi) = routes.split_for_parts();
        let router = router.method_not_allowed_fallback(method_not_allowed).fallback(no_route).with_state(state);
        // Only the declared paths are kept: the document is the generator's (`openapi_document`).
        let keys = route_keys(openapi.paths.paths.keys().map(String::as_str));
        Routes { name, config: config.clone(), router, keys, more_keys: None, error_shape: None, oversized: None }
    }

    /// Answers a path under `prefix` that no route serves (or a method it does not) with
    /// `shape` (handlers under it shape their own errors).
    pub fn with_error_shape(mut self, prefix: &'static str, shape: ErrorShape) -> Routes {
        self.error_shape = Some((prefix, shape));
        self
    }

    /// Also sends API Gateway's `keys` to this group (`$default`, for the function that answers
    /// any path no other route serves).
    pub fn with_route_keys(mut self, keys: &[&str]) -> Routes {
        self.keys.extend(keys.iter().map(|k| (*k).to_owned()));
        self
    }

    /// Also sends the keys `list` lists to this group, listed when they are asked for.
    pub fn with_route_keys_from(mut self, list: impl Fn() -> Vec<String> + Send + Sync + 'static) -> Routes {
        self.more_keys = Some(Box::new(list));
        self
    }

    /// Answers a response over what Lambda carries (`size` > `limit` bytes) with `answer`
    /// (else Portico's `{"code", "message"}`).
    pub fn with_oversized(mut self, answer: fn(usize, usize) -> ApiResponse) -> Routes {
        self.oversized = Some(answer);
        self
    }
}

/// API Gateway route keys serving `paths`: `ANY /<first>` for a one-segment path and
/// `ANY /<first>/{proxy+}` for a longer one, so each function receives its paths' families
/// and answers 404/405 itself, as the emulator does.
pub fn route_keys<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for path in paths {
        let mut segments = path.trim_start_matches('/').splitn(2, '/');
        let first = segments.next().unwrap_or_default();
        keys.insert(match segments.next() {
            Some(_) => format!("ANY /{first}/{{proxy+}}"),
            None => format!("ANY /{first}"),
        });
    }
    keys.into_iter().collect()
}

#[async_trait::async_trait]
impl RouteGroup for Routes {
    fn name(&self) -> &'static str {
        self.name
    }

    fn route_keys(&self) -> Vec<String> {
        let mut keys = self.keys.clone();
        keys.extend(self.more_keys.as_ref().map(|list| list()).unwrap_or_default());
        keys
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn oversized(&self, size: usize, limit: usize) -> ApiResponse {
        match self.oversized {
            Some(answer) => answer(size, limit),
            None => error_response(&Error::ResponseTooLarge { size, limit }),
        }
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let mut req = req.clone();
        *req.uri_mut() = routed_uri(&req)?;
        let under_shape = self.error_shape.filter(|(prefix, _)| req.uri().path().starts_with(prefix));
        let response =
            self.router.clone().oneshot(req.map(axum::body::Body::from)).await.unwrap_or_else(|e| match e {});
        if let (Some((_, shape)), Some(Unrouted(e))) = (under_shape, response.extensions().get::<Unrouted>()) {
            return Ok(shape(e));
        }
        let (mut parts, body) = response.into_parts();
        // The router sets the body's length; whoever sends it (Lambda, the emulator, after
        // compressing it) sets its own.
        parts.headers.remove(header::CONTENT_LENGTH);
        let bytes = body.collect().await.map_err(|e| Error::Internal(format!("a response body: {e}")))?.to_bytes();
        let text =
            String::from_utf8(bytes.to_vec()).map_err(|_| Error::Internal("a response body is not text".into()))?;
        if let Some(allow) = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()) {
            // axum lists HEAD beside GET; Portico's `Allow` names the methods its routes declare.
            let declared: Vec<&str> = allow.split(',').map(str::trim).filter(|m| *m != "HEAD").collect();
            if let Ok(v) = HeaderValue::from_str(&declared.join(", ")) {
                parts.headers.insert(header::ALLOW, v);
            }
        }
        Ok(http::Response::from_parts(parts, text))
    }
}

/// The URI the router matches: the path as API Gateway decoded it ([`RawPath`]), empty
/// segments dropped (`/apps/` is `/apps`), each segment percent-encoded again so that the
/// router's path parameters decode to what API Gateway decoded; the query kept.
fn routed_uri(req: &ApiRequest) -> Result<http::Uri, Error> {
    let path = req.extensions().get::<RawPath>().map_or(req.uri().path(), |p| p.0.as_str());
    let mut uri = String::with_capacity(path.len() + 1);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        uri.push('/');
        uri.extend(form_urlencoded::byte_serialize(segment.as_bytes()).map(|s| if s == "+" { "%20" } else { s }));
    }
    if uri.is_empty() {
        uri.push('/');
    }
    if let Some(query) = req.uri().query() {
        uri.push('?');
        uri.push_str(query);
    }
    uri.parse().map_err(|_| super::no_route(req))
}

async fn method_not_allowed(method: Method) -> axum::response::Response {
    unrouted(Error::MethodNotAllowed { method })
}

async fn no_route(method: Method, uri: http::Uri) -> axum::response::Response {
    unrouted(Error::NotFound(format!("no route for {method} {}", uri.path())))
}

fn unrouted(e: Error) -> axum::response::Response {
    let mut r = e.clone().into_response();
    r.extensions_mut().insert(Unrouted(e));
    r
}

impl IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        error_response(&self).into_response()
    }
}

/// The whole request as route groups read it (headers, extensions, the body as bytes), for
/// the helpers of [`super`] (`bearer`, `json_body`, `precondition`, ...).
pub struct Request(pub ApiRequest);

impl<S: Send + Sync> FromRequest<S> for Request {
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        // The body arrived whole (Lambda's event, the emulator's capped read): no limit here.
        let bytes: Bytes =
            body.collect().await.map_err(|e| Error::Internal(format!("a request body: {e}")))?.to_bytes();
        Ok(Request(http::Request::from_parts(parts, bytes)))
    }
}

/// Path parameters (`{slug}`), as API Gateway decoded them; one that cannot be read is a path
/// no route serves.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParams(value)),
            Err(_) => Err(Error::NotFound(format!("no route for {} {}", parts.method, parts.uri.path()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_are_each_first_segments_family() {
        let paths = ["/apps", "/apps/{slug}", "/healthz", "/docs", "/docs/{asset}", "/auth/token", "/auth/me"];
        assert_eq!(
            route_keys(paths.into_iter()),
            [
                "ANY /apps",
                "ANY /apps/{proxy+}",
                "ANY /auth/{proxy+}",
                "ANY /docs",
                "ANY /docs/{proxy+}",
                "ANY /healthz"
            ]
        );
    }

    #[test]
    fn the_routed_path_is_api_gateways_decoded_one_encoded_per_segment() {
        let mut req = ApiRequest::new(Bytes::new());
        *req.uri_mut() = "/apps/caf%C3%A9?limit=2".parse().unwrap();
        req.extensions_mut().insert(RawPath("/admin/users/ana@lab.example/roles/a b//".into()));
        let uri = routed_uri(&req).unwrap();
        assert_eq!(uri.path(), "/admin/users/ana%40lab.example/roles/a%20b");
        assert_eq!(uri.query(), Some("limit=2"));
    }
}
