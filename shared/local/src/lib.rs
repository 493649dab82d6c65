//! The local emulator of API Gateway's HTTP API (payload format 2.0).
//!
//! Each request becomes the JSON event API Gateway would send, is parsed by `lambda_http`
//! exactly as on Lambda, and is handled in-process by the function's own handler
//! ([`portico_core::lambda::handle`]). Routes are the functions' API Gateway route keys,
//! selected as API Gateway selects them (most specific first, `$default` last), on the path
//! percent-decoded as API Gateway decodes it ([`path`]).
//!
//! The platform's limits apply where a deployment applies them: API Gateway's 10 MB body and
//! 10 KB head (`limits`), then Lambda's 6 MB synchronous invocation payload, counted on the
//! event's JSON going in (a binary body base64-encoded, headers and all) and on the
//! function's response coming out.
//!
//! The same listener serves the WebSocket API ([`ws::WsApi`]) on `Upgrade: websocket` requests
//! to its path.

pub mod demo;
pub mod demo_argo;
pub mod demo_store;
pub mod kubernetes;
mod limits;
pub mod path;
pub mod ws;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use lambda_http::request::LambdaRequest;
use portico_core::Services;
use portico_core::web::RouteGroup;
pub use portico_rpc::gateway::Gateway as RpcGateway;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

/// API Gateway's HTTP API payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// API Gateway's HTTP API quota on the request line and header values together.
pub const MAX_HEAD_BYTES: usize = 10 * 1024;

/// Lambda's synchronous invocation payload, going in: the event's JSON. Lambda refuses a
/// larger one ("Request must be smaller than 6291456 bytes for the InvokeFunction
/// operation"), and API Gateway answers the client 413.
pub const MAX_INVOKE_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// Lambda's synchronous invocation payload, coming out: the response's JSON (the runtime's
/// post of a larger one fails, "Exceeded maximum allowed payload size (6291556 bytes)", and
/// API Gateway answers the client 500 `{"message":"Internal Server Error"}`).
pub const MAX_INVOKE_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// Every HTTP route group of Portico, over one set of services and the RPC gateway.
pub fn route_groups(services: Arc<Services>, rpc: Arc<RpcGateway>) -> Vec<Arc<dyn RouteGroup>> {
    vec![
        Arc::new(portico_apps::AppsApi::routes(Arc::clone(&services))),
        Arc::new(portico_auth::AuthApi::routes(Arc::clone(&services))),
        Arc::new(portico_admin::AdminApi::routes(Arc::clone(&services))),
        Arc::new(portico_sessions::SessionsApi::routes(Arc::clone(&services))),
        Arc::new(portico_jobs::JobsApi::routes(Arc::clone(&services))),
        Arc::new(portico_console::Console::new(Arc::clone(&services))),
        Arc::new(portico_rpc_api::RpcApi::routes(services, rpc)),
    ]
}

/// The whole OpenAPI document for `config`, from what each route group declares on its
/// handlers and the RPC methods of the configured descriptors: what `openapi.json` holds for
/// the default configuration, and the apps function serves.
pub fn openapi_document(config: &portico_core::Config) -> Result<utoipa::openapi::OpenApi, String> {
    let mut api = portico_core::openapi::spec();
    portico_core::openapi::add_declared(&mut api, portico_apps::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_auth::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_admin::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_sessions::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_jobs::declared().into_openapi());
    portico_core::openapi::add_declared(&mut api, portico_rpc_api::declared().into_openapi());
    let descriptors = portico_rpc::descriptors::Descriptors::configured(config).map_err(|e| e.to_string())?;
    portico_rpc::openapi::add_methods(&mut api, &descriptors);
    Ok(api)
}

/// The RPC gateway for `config` (descriptors, reflection, channels), as the rpc function
/// builds it at a cold start.
pub async fn rpc_gateway(config: &portico_core::Config) -> Result<Arc<RpcGateway>, String> {
    RpcGateway::new(config).await.map(Arc::new)
}

/// The path of the emulated WebSocket API.
pub const WS_PATH: &str = "/ws";

/// What one emulator serves: the HTTP API and, optionally, a WebSocket API.
pub struct Gateway {
    pub http: HttpApi,
    pub ws: Option<ws::WsApi>,
}

impl From<HttpApi> for Gateway {
    fn from(http: HttpApi) -> Self {
        Gateway { http, ws: None }
    }
}

/// Portico's whole API over `services`: every HTTP route group, and the relay as the
/// WebSocket API at [`WS_PATH`]. Replaces the services' pusher with the emulator's sockets,
/// so build the services, then call this before sharing them.
pub fn portico_gateway(mut services: Services, rpc: Arc<RpcGateway>) -> (Gateway, Arc<Services>) {
    let connections = Arc::new(ws::LocalConnections::default());
    services.pusher = connections.clone();
    let services = Arc::new(services);
    let ws = ws::WsApi {
        path: WS_PATH.into(),
        handler: Arc::new(portico_sessions::RelayApi::new(Arc::clone(&services))),
        connections,
    };
    (Gateway { http: HttpApi::new(route_groups(Arc::clone(&services), rpc)), ws: Some(ws) }, services)
}

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
struct Specificity {
    not_default: bool,
    exact: bool,
    literals: usize,
    method: bool,
}

struct Route {
    key: String,
    method: Option<Method>,
    /// `None` for `$default`.
    segments: Option<Vec<Segment>>,
    group: Arc<dyn RouteGroup>,
}

impl Route {
    fn parse(key: String, group: Arc<dyn RouteGroup>) -> Route {
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
    fn matches(&self, request_method: &Method, path: &str) -> Option<(Map<String, Value>, Specificity)> {
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

/// The HTTP API: route keys to route groups.
pub struct HttpApi {
    routes: Vec<Route>,
}

impl HttpApi {
    pub fn new(groups: Vec<Arc<dyn RouteGroup>>) -> HttpApi {
        let routes = groups
            .into_iter()
            .flat_map(|g| g.route_keys().into_iter().map(move |k| Route::parse(k, Arc::clone(&g))))
            .collect();
        HttpApi { routes }
    }

    /// Adds `group`'s routes (a demo upstream mounted beside Portico's own).
    pub fn add(&mut self, group: Arc<dyn RouteGroup>) {
        self.routes.extend(group.route_keys().into_iter().map(|k| Route::parse(k, Arc::clone(&group))));
    }

    /// The event API Gateway would send for this request, parsed as Lambda parses it, then
    /// handled by the route's function.
    pub async fn invoke(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        body: Bytes,
        source: SocketAddr,
        local: SocketAddr,
    ) -> http::Response<Bytes> {
        let path = match path::raw_path(uri.path()) {
            Ok(p) => p,
            Err(why) => return limits::refusal(limits::Refusal::Path(why)),
        };
        let Some((route, params)) = self
            .routes
            .iter()
            .filter_map(|r| r.matches(method, &path).map(|(p, score)| (r, p, score)))
            .max_by_key(|(_, _, score)| *score)
            .map(|(r, p, _)| (r, p))
        else {
            // What API Gateway answers when no route matches.
            return plain(StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#);
        };
        let event = event(&route.key, method, (&path, uri), headers, &body, params, (source, local));
        let size = limits::json_size(&event);
        if size > MAX_INVOKE_REQUEST_BYTES {
            return limits::refusal(limits::Refusal::Invocation(size));
        }
        let request: http::Request<Body> = match serde_json::from_value::<LambdaRequest>(event) {
            Ok(r) => r.into(),
            Err(e) => {
                tracing::error!(error = %e, "emulator built an event lambda_http cannot read");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal Server Error"}"#);
            }
        };
        let response = portico_core::lambda::handle(route.group.as_ref(), request).await;
        let size = limits::response_size(&response);
        if size > MAX_INVOKE_RESPONSE_BYTES {
            tracing::error!(
                size,
                limit = MAX_INVOKE_RESPONSE_BYTES,
                "the function's response is over Lambda's payload"
            );
            return plain(StatusCode::INTERNAL_SERVER_ERROR, r#"{"message":"Internal Server Error"}"#);
        }
        let (parts, body) = response.into_parts();
        let bytes = match body {
            Body::Empty => Bytes::new(),
            Body::Text(t) => Bytes::from(t),
            Body::Binary(b) => Bytes::from(b),
            _ => Bytes::new(),
        };
        http::Response::from_parts(parts, bytes)
    }
}

fn plain(status: StatusCode, body: &'static str) -> http::Response<Bytes> {
    let mut r = http::Response::new(Bytes::from_static(body.as_bytes()));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// An HTTP API payload 2.0 event for a request to `uri`, whose path API Gateway decoded to
/// `raw_path`.
fn event(
    route_key: &str,
    method: &Method,
    (raw_path, uri): (&str, &http::Uri),
    headers: &HeaderMap,
    body: &[u8],
    path_params: Map<String, Value>,
    (source, local): (SocketAddr, SocketAddr),
) -> Value {
    let mut joined: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        // API Gateway sets these itself; a client's values never reach the function.
        if matches!(name.as_str(), "host" | "x-forwarded-proto" | "x-forwarded-port" | "x-forwarded-for") {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_owned())));
            continue;
        }
        match joined.get_mut(name.as_str()) {
            Some(Value::String(v)) => {
                v.push(',');
                v.push_str(&value);
            }
            _ => {
                joined.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let raw_query = uri.query().unwrap_or("");
    let mut query: Map<String, Value> = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let (body, base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, body)), true),
    };
    let now = time::OffsetDateTime::now_utc();
    let user_agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // API Gateway's Host is its own domain name; the emulator's is the address it listens on.
    let host = local.to_string();
    joined.insert("host".into(), Value::String(host.clone()));
    joined.insert("x-forwarded-proto".into(), Value::String("http".into()));
    joined.insert("x-forwarded-for".into(), Value::String(source.ip().to_string()));
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "cookies": if cookies.is_empty() { Value::Null } else { Value::Array(cookies) },
        "headers": joined,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "pathParameters": if path_params.is_empty() { Value::Null } else { Value::Object(path_params) },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": method.as_str(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format(time::macros::format_description!(
                "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
            )).unwrap_or_default(),
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// A running emulator; dropping it stops the server and its connections.
pub struct Running {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `gateway` on `127.0.0.1:port` (port 0: any free port).
pub async fn start(gateway: impl Into<Gateway>, port: u16) -> std::io::Result<Running> {
    start_on(TcpListener::bind(("127.0.0.1", port)).await?, gateway)
}

/// Serves `gateway` on a bound listener (to know the port before building the services).
pub fn start_on(listener: TcpListener, gateway: impl Into<Gateway>) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let gateway = gateway.into();
    let api = Arc::new(gateway.http);
    let ws = gateway.ws.map(Arc::new);
    let task = tokio::spawn(async move {
        // Connection tasks live in this set, so aborting the server aborts them too.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            let (api, ws) = (Arc::clone(&api), ws.clone());
            connections.spawn(async move {
                let mut stream = stream;
                if let Some(refusal) = limits::refused_head(&stream).await {
                    limits::answer_raw(&mut stream, refusal).await;
                    return;
                }
                let service = hyper::service::service_fn(move |req| {
                    let (api, ws) = (Arc::clone(&api), ws.clone());
                    async move {
                        Ok::<_, Infallible>(match ws {
                            Some(ws) if ws.wants(&req) => ws.upgrade(req, peer).await,
                            _ => handle(&api, req, peer, addr).await,
                        })
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(Running { addr, task })
}

async fn handle(
    api: &HttpApi,
    req: http::Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
) -> http::Response<Full<Bytes>> {
    // Every request's head is checked here; the first on a connection was also checked raw,
    // before hyper parsed it (see `limits::refused_head`), so hyper's own limits never answer.
    if let Some(refusal) = limits::head_refusal(&req) {
        return refusal.map(Full::new);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_PAYLOAD_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return limits::refusal(limits::Refusal::Payload).map(Full::new),
    };
    api.invoke(&parts.method, &parts.uri, &parts.headers, body, peer, local).await.map(Full::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::web::{ApiRequest, ApiResponse, json as json_response};
    use portico_core::{Config, Error};
    use std::collections::BTreeMap;

    /// A route group: its name, its route keys, and its answer.
    struct Fake(&'static str, &'static [&'static str], Box<dyn Fn(&ApiRequest) -> ApiResponse + Send + Sync>, Config);

    #[async_trait::async_trait]
    impl RouteGroup for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn route_keys(&self) -> Vec<String> {
            self.1.iter().map(|k| k.to_string()).collect()
        }
        fn config(&self) -> &Config {
            &self.3
        }
        async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
            Ok((self.2)(req))
        }
    }

    /// Answers with its name and the request's path parameters, as the function saw them.
    fn echo(name: &'static str, keys: &'static [&'static str]) -> Arc<dyn RouteGroup> {
        let answer = move |req: &ApiRequest| {
            use lambda_http::RequestExt;
            let params: BTreeMap<String, String> =
                req.path_parameters().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            json_response(StatusCode::OK, &json!({"group": name, "params": params}))
        };
        Arc::new(Fake(name, keys, Box::new(answer), Config::default()))
    }

    /// `ANY /big`, answering with a body of `body` bytes and a header of `header` bytes.
    fn big(body: usize, header: usize) -> Arc<dyn RouteGroup> {
        let answer = move |_: &ApiRequest| {
            let mut r = http::Response::new("a".repeat(body));
            r.headers_mut().insert("x-pad", "p".repeat(header).parse().unwrap());
            r
        };
        Arc::new(Fake("big", &["ANY /big"], Box::new(answer), Config::default()))
    }

    async fn call(api: &HttpApi, method: Method, path: &str) -> (StatusCode, Value) {
        call_with(api, method, path, Bytes::new()).await
    }

    async fn call_with(api: &HttpApi, method: Method, path: &str, body: Bytes) -> (StatusCode, Value) {
        let uri: http::Uri = path.parse().unwrap();
        let here = "127.0.0.1:9".parse().unwrap();
        let r = api.invoke(&method, &uri, &HeaderMap::new(), body, here, here).await;
        (r.status(), serde_json::from_slice(r.body()).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn routes_match_the_path_as_api_gateway_decodes_it() {
        let api = HttpApi::new(vec![
            echo("apps", &["ANY /apps/{proxy+}"]),
            echo("users", &["GET /users/{id}", "ANY /users/{proxy+}"]),
        ]);
        let (_, b) = call(&api, Method::GET, "/apps/usd%2Dvalidate").await;
        assert_eq!(b["params"], json!({"proxy": "usd-validate"}));
        let (_, b) = call(&api, Method::GET, "/users/caf%C3%A9").await;
        assert_eq!(b["params"], json!({"id": "café"}), "path parameters are decoded");
        let (_, b) = call(&api, Method::GET, "/users/a%2Fb").await;
        assert_eq!(b["params"], json!({"proxy": "a/b"}), "a decoded '/' separates segments");
        let (s, b) = call(&api, Method::GET, "/users/%FF").await;
        assert_eq!((s, &b["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_path")));
    }

    #[tokio::test]
    async fn lambdas_payload_limits_apply_to_the_event_and_to_the_response() {
        let api = HttpApi::new(vec![echo("echo", &["ANY /echo"])]);
        // The event's JSON carries the body escaped: 3.2 MB of quotes are 6.4 MB in it.
        let quotes = Bytes::from(vec![b'"'; 3_200_000]);
        let (s, b) = call_with(&api, Method::POST, "/echo", quotes).await;
        assert_eq!((s, &b["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large")), "{b}");
        let (s, _) = call_with(&api, Method::POST, "/echo", Bytes::from(vec![b'a'; 6_000_000])).await;
        assert_eq!(s, StatusCode::OK, "under the limit with the rest of the event");

        let body = portico_core::lambda::MAX_RESPONSE_BYTES - 10;
        assert_eq!(call(&HttpApi::new(vec![big(body, 1024)]), Method::GET, "/big").await.0, StatusCode::OK);
        let (s, b) = call(&HttpApi::new(vec![big(body, 20 * 1024)]), Method::GET, "/big").await;
        assert_eq!((s, b), (StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "Internal Server Error"})));
    }

    #[tokio::test]
    async fn routes_are_chosen_as_api_gateway_chooses_them() {
        let api = HttpApi::new(vec![
            echo("apps", &["ANY /apps", "ANY /apps/{proxy+}"]),
            echo("users", &["GET /users/{id}", "ANY /users/{proxy+}"]),
        ]);
        let (s, b) = call(&api, Method::GET, "/apps").await;
        assert_eq!((s, b["group"].as_str()), (StatusCode::OK, Some("apps")));
        let (_, b) = call(&api, Method::PUT, "/apps/a/b").await;
        assert_eq!(b["params"], json!({"proxy": "a/b"}));
        let (_, b) = call(&api, Method::GET, "/users/7").await;
        assert_eq!(b["params"], json!({"id": "7"}), "an exact route beats a greedy one");
        let (_, b) = call(&api, Method::DELETE, "/users/7").await;
        assert_eq!(b["params"], json!({"proxy": "7"}), "a method-specific route only takes its method");
        let (_, b) = call(&api, Method::POST, "/users/7").await;
        assert_eq!(b["group"], "users");
        let shadowing = HttpApi::new(vec![echo("admin", &["ANY /admin/{proxy+}"]), echo("pairs", &["POST /{a}/{b}"])]);
        let (_, b) = call(&shadowing, Method::POST, "/admin/users").await;
        assert_eq!(b["group"], "pairs", "a full match beats a greedy one with more literals");
        let (s, b) = call(&api, Method::GET, "/elsewhere").await;
        assert_eq!((s, b), (StatusCode::NOT_FOUND, json!({"message": "Not Found"})), "API Gateway's own 404");

        let api = HttpApi::new(vec![echo("fallback", &["$default"]), echo("apps", &["ANY /apps"])]);
        assert_eq!(call(&api, Method::GET, "/elsewhere").await.1["group"], "fallback");
        assert_eq!(call(&api, Method::GET, "/apps").await.1["group"], "apps");
    }
}
