//! Glue between Lambda (`lambda_http`) and a [`RouteGroup`]: the only code that knows Lambda
//! events. The emulator calls [`handle`] too, so local runs take the same path.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Request, Response, service_fn};

use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_http::lambda_runtime::LambdaEvent;

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use crate::web::{RawPath, RequestMeta, RouteGroup, WebSocketApi, WsEvent, serve};

/// Largest response payload a synchronous Lambda invocation returns (6 MB), less room for
/// the status and headers around the body.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 - 16 * 1024;

/// Bodies smaller than this are sent as they are even to clients that accept gzip.
const GZIP_MIN_BYTES: usize = 1024;

/// Serves one Lambda HTTP request through `group`: the body gzip-compressed when the client
/// accepts it, and a clear error instead of a response Lambda cannot return.
pub async fn handle(group: &dyn RouteGroup, req: Request) -> Response<Body> {
    let meta = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => RequestMeta {
            request_id: c.request_id.clone().unwrap_or_default(),
            route_key: c.route_key.clone().unwrap_or_default(),
        },
        _ => RequestMeta::default(),
    };
    let raw_path = req.raw_http_path().to_owned();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(meta);
    if !raw_path.is_empty() {
        parts.extensions.insert(RawPath(raw_path));
    }
    let gzip = accepts_gzip(&parts.headers);
    let req = http::Request::from_parts(parts, Bytes::copy_from_slice(&body));
    let (mut parts, text) = serve(group, req).await.into_parts();
    let body = if gzip && text.len() >= GZIP_MIN_BYTES {
        parts.headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
        parts.headers.append(http::header::VARY, http::HeaderValue::from_static("accept-encoding"));
        Body::Binary(compress(text.as_bytes()))
    } else if text.is_empty() {
        Body::Empty
    } else {
        Body::Text(text)
    };
    let size = payload_size(&body);
    if size > MAX_RESPONSE_BYTES {
        tracing::warn!(size, limit = MAX_RESPONSE_BYTES, "response too large for Lambda");
        return group.oversized(size, MAX_RESPONSE_BYTES).map(Body::Text);
    }
    Response::from_parts(parts, body)
}

fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers.get_all(http::header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    // Level 1: JSON still shrinks about tenfold, at a fraction of the default level's time.
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// The body's size in the invocation's response JSON: base64 for binary, escaped text.
fn payload_size(body: &Body) -> usize {
    match body {
        Body::Binary(b) => b.len().div_ceil(3) * 4,
        Body::Text(t) => t.len() + t.bytes().map(escape_extra).sum::<usize>(),
        _ => 0,
    }
}

/// Bytes JSON escaping adds to `b`: one for `\"`, `\\` and the short escapes, five for `\u00XX`.
fn escape_extra(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
        0..=0x1f => 5,
        _ => 0,
    }
}

/// Runs `group` as a Lambda function (the whole `main` of an HTTP function).
pub async fn run(group: impl RouteGroup + 'static) -> Result<(), lambda_http::Error> {
    let group = Arc::new(group);
    lambda_http::run(service_fn(move |req: Request| {
        let group = Arc::clone(&group);
        async move { Ok::<_, lambda_http::Error>(handle(group.as_ref(), req).await) }
    }))
    .await
}

/// A function's start: logging set up as Lambda expects, the configuration loaded, the
/// platform's services built. Start-up failures show their detail (never a secret value);
/// requests never do.
pub async fn services() -> Result<crate::Services, lambda_http::Error> {
    init_tracing();
    let config = crate::Config::load()?;
    Ok(crate::Services::from_config(config).await.map_err(|e| format!("start-up failed: {e:?}"))?)
}

/// Runs a scheduled function (an EventBridge rule's target): `make` builds its state once, at
/// start-up, from the process's services; every event runs `task` over it and answers
/// `{key: <the count it returns>}`.
pub async fn run_scheduled<T, M, F, Fut>(key: &'static str, make: M, task: F) -> Result<(), lambda_http::Error>
where
    T: Send + Sync + 'static,
    M: FnOnce(Arc<crate::Services>) -> T,
    F: Fn(Arc<T>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<usize, crate::Error>> + Send,
{
    use lambda_http::lambda_runtime::{self, LambdaEvent};
    let state = Arc::new(make(Arc::new(services().await?)));
    let task = Arc::new(task);
    lambda_runtime::run(lambda_runtime::service_fn(move |_: LambdaEvent<serde_json::Value>| {
        let (state, task) = (Arc::clone(&state), Arc::clone(&task));
        async move {
            let count = task(state).await.map_err(|e| format!("{key}: the run failed: {e:?}"))?;
            Ok::<_, lambda_http::Error>(serde_json::json!({ key: count }))
        }
    }))
    .await
}

/// Logs as Lambda expects: JSON when the function's log format is JSON
/// (`AWS_LAMBDA_LOG_FORMAT`, set by the SAM template), each line with the invocation's
/// request id; level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`.
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}

/// The relay's view of an API Gateway WebSocket event; `None` for events it does not handle.
pub fn ws_event(event: ApiGatewayWebsocketProxyRequest) -> Option<WsEvent> {
    let ctx = event.request_context;
    let connection_id = ctx.connection_id?;
    match ctx.route_key.as_deref()? {
        "$connect" => {
            let ticket = event.query_string_parameters.first("ticket").map(str::to_owned);
            Some(WsEvent::Connect { connection_id, ticket })
        }
        "$disconnect" => Some(WsEvent::Disconnect { connection_id }),
        // API Gateway passes text frames only; a binary one arrives base64-encoded.
        _ if event.is_base64_encoded => Some(WsEvent::Message { connection_id, body: String::new() }),
        _ => Some(WsEvent::Message { connection_id, body: event.body.unwrap_or_default() }),
    }
}

/// Handles one API Gateway WebSocket event with `api`.
pub async fn handle_ws(api: &dyn WebSocketApi, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let status = match ws_event(event) {
        Some(e) => api.handle(e).await,
        None => 400,
    };
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status as i64;
    response
}

/// Runs `api` as the WebSocket API's Lambda function (on lambda_runtime: lambda_http
/// misreads some WebSocket events).
pub async fn run_websocket(api: impl WebSocketApi + 'static) -> Result<(), lambda_http::Error> {
    let api = Arc::new(api);
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let api = Arc::clone(&api);
            async move { Ok::<_, lambda_http::Error>(handle_ws(api.as_ref(), event.payload).await) }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size is what the invocation's JSON carries: a body of quotes is not five times larger.
    #[test]
    fn payload_size_counts_json_escapes_as_serde_writes_them() {
        for text in ["plain", "a \"quoted\" \\ path\n", "\u{1}\u{1f}\t\r\u{8}\u{c}", "\"\"\"\"\""] {
            let escaped = serde_json::to_string(text).unwrap().len() - 2;
            assert_eq!(payload_size(&Body::Text(text.into())), escaped, "{text:?}");
        }
        assert_eq!(payload_size(&Body::Binary(vec![0; 4])), 8, "base64");
    }
}
