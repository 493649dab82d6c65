//! The emulated HTTP API: a request to the route's function, through the event API Gateway
//! would send, within Lambda's payload limits.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use lambda_http::Body;
use lambda_http::request::LambdaRequest;
use portico_core::web::RouteGroup;
use serde_json::{Map, Value, json};

use crate::routing::Route;
use crate::{MAX_INVOKE_REQUEST_BYTES, MAX_INVOKE_RESPONSE_BYTES, limits, path};

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
