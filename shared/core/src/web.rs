//! HTTP, independent of how requests arrive (Lambda, the emulator, tests): a route group is
//! a [`RouteGroup`]; [`serve`] wraps it with CORS, error mapping and access logging.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::apps::Precondition;
use crate::{Config, Error, codes};

/// A request as route groups see it.
pub type ApiRequest = http::Request<Bytes>;
/// A response: a JSON text body, or empty.
pub type ApiResponse = http::Response<String>;

/// One Lambda function's routes.
#[async_trait::async_trait]
pub trait RouteGroup: Send + Sync {
    /// The function's name (`functions/<name>`).
    fn name(&self) -> &'static str;
    /// API Gateway route keys sent to this function (`"ANY /apps/{proxy+}"`, `"$default"`).
    fn route_keys(&self) -> Vec<String>;
    fn config(&self) -> &Config;
    /// Handles one request. Errors become JSON error responses in [`serve`].
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error>;

    /// The answer when a response would exceed what Lambda can return (`size` > `limit`
    /// bytes, after compression): a clear error instead of the platform's bare 502.
    fn oversized(&self, size: usize, limit: usize) -> ApiResponse {
        error_response(&Error::ResponseTooLarge { size, limit })
    }
}

const PREFLIGHT_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const PREFLIGHT_HEADERS: &str = "authorization, content-type, if-match, if-none-match, idempotency-key";
// A macro, so the one literal also goes into `EXPOSED_HEADERS` (`concat!` takes literals only).
macro_rules! ignored_fields_header {
    () => {
        "portico-ignored-fields"
    };
}
/// The response header listing request fields the RPC gateway ignored
/// (`rpc_unknown_fields = "ignore"`): names only, never values.
pub const IGNORED_FIELDS_HEADER: &str = ignored_fields_header!();
const EXPOSED_HEADERS: &str = concat!("etag, location, ", ignored_fields_header!(), ", retry-after, x-request-id");

/// Serves one request through `group`, within its span (`request`: request id, route and,
/// once authenticated, `principal`; every store, secret and upstream call is a child span):
/// CORS preflight and headers, errors as `{"code","message"}`, one access log line (never
/// headers or bodies).
pub async fn serve(group: &dyn RouteGroup, req: ApiRequest) -> ApiResponse {
    use tracing::Instrument as _;
    let none = RequestMeta::default();
    let meta = req.extensions().get::<RequestMeta>().unwrap_or(&none);
    let span = tracing::info_span!(
        "request",
        request_id = %meta.request_id,
        route = %meta.route_key,
        principal = tracing::field::Empty,
    );
    serve_in_span(group, req).instrument(span).await
}

async fn serve_in_span(group: &dyn RouteGroup, req: ApiRequest) -> ApiResponse {
    let started = Instant::now();
    let config = group.config();
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let allowed_origin = origin.as_deref().filter(|o| origin_allowed(config, o)).map(str::to_owned);
    let is_preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    let mut response = if is_preflight {
        match &allowed_origin {
            Some(_) => preflight(),
            None => error_response(&Error::Forbidden("origin is not allowed by CORS".into())),
        }
    } else {
        match group.route(&req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    };
    retry_after(&mut response);
    if let Some(o) = allowed_origin.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    }
    if !config.allowed_origins.is_empty() {
        response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
    }
    let none = RequestMeta::default();
    let meta = req.extensions().get::<RequestMeta>().unwrap_or(&none);
    if !meta.request_id.is_empty()
        && let Ok(id) = HeaderValue::from_str(&meta.request_id)
    {
        response.headers_mut().insert("x-request-id", id);
    }
    // One line per request, within the request's span (which names the caller once known);
    // never a header, a body or a query (they may carry secrets).
    tracing::info!(
        function = group.name(),
        request_id = %meta.request_id,
        route = %meta.route_key,
        method = %req.method(),
        path = req.uri().path(),
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Seconds a client is asked to wait before retrying a 503 or a 429 (`Retry-After`): long
/// enough for a store or upstream blip to pass, short enough not to strand a user.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Adds `Retry-After` to an answer that asks the client to come back later (503, 429), in
/// whatever shape its body is (Portico's errors, the RPC gateway's, OGDC's), unless the
/// route set its own.
fn retry_after(response: &mut ApiResponse) {
    let later = [StatusCode::SERVICE_UNAVAILABLE, StatusCode::TOO_MANY_REQUESTS];
    if later.contains(&response.status()) && !response.headers().contains_key(header::RETRY_AFTER) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
}

/// Notes the authenticated caller of the request being served in its span, so its log lines
/// (the access log's among them) name who it was. A username is no secret; outside a
/// request's span this does nothing.
pub fn note_caller(username: &str) {
    tracing::Span::current().record("principal", tracing::field::display(username));
}

/// What API Gateway says of a request (its id and the route it matched), put in the
/// request's extensions by the Lambda glue.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub route_key: String,
}

fn origin_allowed(config: &Config, origin: &str) -> bool {
    config.allowed_origins.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
}

fn preflight() -> ApiResponse {
    let mut r = empty(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(PREFLIGHT_METHODS));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(PREFLIGHT_HEADERS));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// The response for `err`. Server-side details are logged here and never sent.
pub fn error_response(err: &Error) -> ApiResponse {
    log_server_side(err);
    let mut r = json(err.status(), &err.body());
    if matches!(err, Error::Unauthorized(_)) {
        bearer_challenge(&mut r);
    }
    r
}

/// FastAPI's error body, which the compatibility routes of FastAPI services (OGDC, the
/// streaming portal) answer with.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DetailError {
    pub detail: String,
}

/// A FastAPI-shaped refusal.
pub fn detail(status: StatusCode, message: &str) -> ApiResponse {
    json(status, &DetailError { detail: message.to_owned() })
}

/// Portico's error `e` in FastAPI's shape: the same status, its message as `detail`.
pub fn as_detail(e: &Error) -> ApiResponse {
    log_server_side(e);
    let mut r = detail(e.status(), &e.to_string());
    if e.status() == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Logs the server-side detail of `err` (an internal fault, an unavailable dependency), which
/// its response never carries; callers' mistakes are not logged.
pub fn log_server_side(err: &Error) {
    match err {
        Error::Internal(detail) => tracing::error!(detail = %detail, "internal error"),
        Error::Unavailable(detail) => tracing::warn!(detail = %detail, "dependency unavailable"),
        _ => {}
    }
}

/// Adds the `WWW-Authenticate` challenge a 401 carries (RFC 6750).
pub fn bearer_challenge(r: &mut ApiResponse) {
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portico\""));
}

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> ApiResponse {
    let body = serde_json::to_string(value).expect("response values serialize");
    let mut r = http::Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A response without a body.
pub fn empty(status: StatusCode) -> ApiResponse {
    let mut r = http::Response::new(String::new());
    *r.status_mut() = status;
    r
}

/// Sets the `ETag` header to the strong tag of revision `rev`.
pub fn with_etag(mut r: ApiResponse, rev: &str) -> ApiResponse {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{rev}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// The request's path as API Gateway handed it to the function (the event's `rawPath`):
/// API Gateway's HTTP API percent-decodes it before routing, so `/apps/usd%2Dvalidate` arrives
/// as `/apps/usd-validate` and `/apps/a%2Fb` as `/apps/a/b`. The Lambda glue puts it in the
/// request's extensions; the request's URI is no substitute, as `lambda_http` percent-encodes
/// the decoded path again to make one (`/apps/caf%C3%A9` for `/apps/café`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawPath(pub String);

/// The path's non-empty segments, as API Gateway decoded them ([`RawPath`]; a request made in
/// process has none, and its URI's path is taken as it is): `/apps/` and `/apps` are both
/// `["apps"]`.
pub fn segments(req: &ApiRequest) -> Vec<&str> {
    let path = req.extensions().get::<RawPath>().map_or(req.uri().path(), |p| p.0.as_str());
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The error for a path no route serves.
pub fn no_route(req: &ApiRequest) -> Error {
    Error::NotFound(format!("no route for {} {}", req.method(), req.uri().path()))
}

/// The value of cookie `name` among `headers`' `Cookie`s, if sent and not empty.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The bearer token of the `Authorization` header.
pub fn bearer(req: &ApiRequest) -> Result<&str, Error> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(Error::Unauthorized("the Authorization header must be 'Bearer <token>'".into())),
    }
}

/// The JSON body as `T`: 413 past `config.max_body_bytes`, 415 unless the content type is
/// JSON, 400 for malformed JSON or a body that is not an object of `T`'s shape. Messages
/// name the field, never the submitted value ([`crate::input`]).
pub fn json_body<T: DeserializeOwned>(req: &ApiRequest, config: &Config) -> Result<T, Error> {
    if req.body().len() > config.max_body_bytes {
        return Err(Error::PayloadTooLarge { limit: config.max_body_bytes });
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json")) {
        return Err(Error::UnsupportedMediaType("the body must be JSON (Content-Type: application/json)".into()));
    }
    crate::input::request_object(req.body()).map_err(|e| match e {
        crate::input::InputError::Syntax(m) => Error::bad_request(codes::INVALID_JSON, m),
        crate::input::InputError::Shape { message, field } => {
            Error::BadRequest { code: codes::INVALID_BODY, message, field }
        }
    })
}

/// The parameters of the query string `raw`, decoded; refuses names outside `known`, repeated
/// names, and escapes that do not decode to UTF-8 (what [`Query`] and [`PagedQuery`] read).
pub fn query_pairs(raw: &str, known: &[&str]) -> Result<Vec<(String, String)>, Error> {
    if !decodes_to_text(raw) {
        return Err(Error::bad_request(codes::INVALID_QUERY, "the query string is not UTF-8 once percent-decoded"));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        if !known.contains(&name.as_ref()) {
            return Err(Error::bad_request(
                codes::INVALID_QUERY,
                format!("unknown query parameter '{name}' (known: {})", known.join(", ")),
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(Error::bad_request(codes::INVALID_QUERY, format!("query parameter '{name}' is repeated")));
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// Which records a listing with an `all` switch shows (`GET /sessions`, `GET /jobs`).
pub enum Scope {
    /// The caller's own; no filter.
    Own,
    /// `all=true`, for administrators: every record, with these `filters` (name, value).
    All(Vec<(String, String)>),
}

/// The listing's scope from its `all` switch and its `filters` (name, value if given):
/// `all=true` needs an administrator and takes the filters; without it a filter is refused
/// (it would silently filter nothing).
pub fn scope(
    all: Option<&str>,
    filters: &[(&str, &Option<String>)],
    who: &crate::authz::Principal,
) -> Result<Scope, Error> {
    let given = || filters.iter().filter_map(|(n, v)| v.as_ref().map(|v| ((*n).to_owned(), v.clone())));
    if all == Some("true") {
        who.require_admin()?;
        Ok(Scope::All(given().collect()))
    } else if given().next().is_some() {
        Err(Error::bad_request(codes::INVALID_QUERY, "filters need all=true (administrators)"))
    } else {
        Ok(Scope::Own)
    }
}

/// Whether `raw`'s percent-escapes decode to UTF-8 (where they do not, `form_urlencoded` puts
/// U+FFFD: a value other than the one sent, read silently). Splitting at `&` and `=` (ASCII)
/// never cuts a character, so the whole decodes to text exactly when each part does.
pub fn decodes_to_text(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// The page size from a `limit` parameter: default when absent, clamped to the maximum (also
/// when it is beyond any integer type: a positive integer is never refused).
pub fn page_limit(limit: Option<&str>, config: &Config) -> Result<u32, Error> {
    match limit {
        None => Ok(config.page_size_default),
        Some(v) => match v.parse::<u64>() {
            Ok(0) => Err(Error::bad_request(codes::INVALID_QUERY, "'limit' must be a positive integer")),
            Ok(n) => Ok(n.min(config.page_size_max as u64) as u32),
            Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Ok(config.page_size_max),
            Err(_) => Err(Error::bad_request(codes::INVALID_QUERY, "'limit' must be a positive integer")),
        },
    }
}

/// The `If-Match` / `If-None-Match` preconditions of a write.
pub fn precondition(req: &ApiRequest) -> Result<Precondition, Error> {
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(&name)
            .map(|v| v.to_str().map_err(|_| Error::bad_request(codes::INVALID_HEADER, format!("{name} is malformed"))))
            .transpose()
    };
    if let Some(v) = header_str(header::IF_MATCH)? {
        if v.trim() == "*" {
            return Ok(Precondition::IfMatchAny);
        }
        return entity_tags(v)
            .map(Precondition::IfMatch)
            .ok_or_else(|| Error::bad_request(codes::INVALID_HEADER, "If-Match must list quoted entity tags"));
    }
    match header_str(header::IF_NONE_MATCH)? {
        Some(v) if v.trim() == "*" => Ok(Precondition::IfNoneMatchAny),
        Some(_) => Err(Error::bad_request(codes::INVALID_HEADER, "only 'If-None-Match: *' is supported on writes")),
        None => Ok(Precondition::None),
    }
}

/// The entity tags of an `If-Match` list (RFC 9110 §8.8.3, §5.6.1): strong tags without their
/// quotes; weak ones whole (`W/"x"`), so they never match strongly (§13.1.1). A tag may hold a
/// comma; empty list elements are skipped. `None` when malformed or empty.
fn entity_tags(list: &str) -> Option<Vec<String>> {
    let ows = [' ', '\t'];
    let mut tags = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(q) => (true, q),
            None => (false, rest),
        };
        let (tag, after) = quoted.strip_prefix('"')?.split_once('"')?;
        tags.push(if weak { format!("W/\"{tag}\"") } else { tag.to_owned() });
        rest = after.trim_start_matches(ows);
        if !rest.is_empty() {
            rest = rest.strip_prefix(',')?;
        }
    }
    (!tags.is_empty()).then_some(tags)
}

/// One WebSocket API event, as the relay sees it (from Lambda or the emulator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// `$connect`, with the `ticket` query parameter.
    Connect { connection_id: String, ticket: Option<String> },
    /// `$default`: a text message.
    Message { connection_id: String, body: String },
    /// `$disconnect`.
    Disconnect { connection_id: String },
}

/// A WebSocket API's routes. The answer is the HTTP status of the route's response: on
/// `$connect`, anything but 2xx refuses the connection.
#[async_trait::async_trait]
pub trait WebSocketApi: Send + Sync {
    async fn handle(&self, event: WsEvent) -> u16;
}

mod query;
pub mod routes;

pub use query::{NoFilters, PagedQuery, Query};
pub use routes::{PathParams, Request, Routes};

#[cfg(test)]
mod props;
