//! The local emulator of API Gateway's WebSocket API.
//!
//! An upgrade request on the WebSocket path gets a connection id and goes to the handler's
//! `$connect` first, as on API Gateway: anything but 2xx refuses the handshake with that
//! status. Text frames become `$default` events, the end of the socket a `$disconnect`
//! event; each event is the JSON API Gateway sends, parsed into the Lambda event type and
//! handled by the same function code ([`portico_core::lambda::handle_ws`]). The Management
//! API (`PostToConnection`, `DeleteConnection`) is [`LocalConnections`], which writes to the
//! real sockets. Like API Gateway: text frames only (a binary frame closes with 1003), frames
//! up to 32 KB and messages up to 128 KB (larger ones close with 1009); a text message that
//! is not UTF-8 closes with 1007 (RFC 6455 §8.1), before any function sees it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use portico_core::web::WebSocketApi;
use portico_streaming::MAX_FRAME_BYTES;
use portico_streaming::push::{ConnectionPusher, PushError};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

enum Outgoing {
    Text(String),
    Close,
}

/// Open connections, by id: the emulated Management API.
#[derive(Default)]
pub struct LocalConnections {
    open: Mutex<HashMap<String, mpsc::UnboundedSender<Outgoing>>>,
    lost: Mutex<std::collections::HashSet<String>>,
}

impl LocalConnections {
    /// Loses a connection silently, as API Gateway sometimes does: no `$disconnect`, but
    /// every later post to it is a 410 Gone (for tests of the relay's clean-up).
    pub fn lose(&self, id: &str) {
        self.lost.lock().expect("connections").insert(id.to_owned());
    }

    fn send(&self, id: &str, message: Outgoing) -> Result<(), PushError> {
        if self.lost.lock().expect("connections").contains(id) {
            return Err(PushError::Gone);
        }
        let open = self.open.lock().expect("connections");
        match open.get(id) {
            Some(tx) if tx.send(message).is_ok() => Ok(()),
            _ => Err(PushError::Gone),
        }
    }

    /// How many connections are open.
    pub fn count(&self) -> usize {
        self.open.lock().expect("connections").len()
    }
}

#[async_trait::async_trait]
impl ConnectionPusher for LocalConnections {
    async fn post(&self, connection_id: &str, data: &str) -> Result<(), PushError> {
        self.send(connection_id, Outgoing::Text(data.to_owned()))
    }

    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        match self.send(connection_id, Outgoing::Close) {
            Ok(()) | Err(PushError::Gone) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A WebSocket API at a path of the emulator.
pub struct WsApi {
    pub path: String,
    pub handler: Arc<dyn WebSocketApi>,
    pub connections: Arc<LocalConnections>,
}

fn new_connection_id() -> String {
    // API Gateway's ids look like "L0SM9cOFvHcCIhw=": 10 random bytes, base64.
    base64::engine::general_purpose::STANDARD.encode(&uuid::Uuid::new_v4().as_bytes()[..10])
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The event API Gateway sends for `route` on connection `id`.
fn event(
    route: &str,
    id: &str,
    connected_at: i64,
    source: SocketAddr,
    headers: &HeaderMap,
    query: &str,
    body: Option<&str>,
) -> Value {
    let mut joined: Map<String, Value> = Map::new();
    for (name, value) in headers {
        joined.insert(name.as_str().to_owned(), Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    let mut params: Map<String, Value> = Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        params.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut event = json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": "local",
            "connectedAt": connected_at,
            "requestTimeEpoch": now_ms(),
            "requestId": uuid::Uuid::new_v4().to_string(),
            "domainName": "127.0.0.1",
            "connectionId": id,
            "apiId": "local-ws",
            "identity": { "sourceIp": source.ip().to_string() },
        },
        "isBase64Encoded": false,
    });
    if route == "$connect" {
        event["headers"] = Value::Object(joined);
        if !params.is_empty() {
            event["queryStringParameters"] = Value::Object(params);
        }
    }
    if let Some(b) = body {
        event["body"] = Value::String(b.to_owned());
        event["requestContext"]["messageId"] = Value::String(uuid::Uuid::new_v4().simple().to_string());
    }
    event
}

impl WsApi {
    async fn call(&self, event: Value) -> u16 {
        match serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event) {
            Ok(e) => portico_core::lambda::handle_ws(self.handler.as_ref(), e).await.status_code as u16,
            Err(e) => {
                tracing::error!(error = %e, "emulator built a WebSocket event the Lambda type cannot read");
                500
            }
        }
    }

    /// Whether `req` asks for this API.
    pub fn wants(&self, req: &http::Request<Incoming>) -> bool {
        req.uri().path() == self.path
            && req
                .headers()
                .get(http::header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// `$connect`, then the handshake and the connection's life.
    pub async fn upgrade(
        self: Arc<Self>,
        mut req: http::Request<Incoming>,
        source: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
            return status(StatusCode::BAD_REQUEST);
        };
        let id = new_connection_id();
        let connected_at = now_ms();
        let query = req.uri().query().unwrap_or("").to_owned();
        let headers = req.headers().clone();
        let code = self.call(event("$connect", &id, connected_at, source, &headers, &query, None)).await;
        if !(200..300).contains(&code) {
            return status(StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.connections.open.lock().expect("connections").insert(id.clone(), tx);
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(limits())).await;
                    self.serve(socket, rx, &id, connected_at, source, &headers).await;
                }
                Err(e) => tracing::warn!(error = %e, "WebSocket upgrade failed"),
            }
            self.connections.open.lock().expect("connections").remove(&id);
            self.call(event("$disconnect", &id, connected_at, source, &headers, "", None)).await;
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut r = http::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
        h.insert("sec-websocket-accept", accept.parse().expect("accept key is a header value"));
        r
    }

    async fn serve(
        &self,
        socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
        id: &str,
        connected_at: i64,
        source: SocketAddr,
        headers: &HeaderMap,
    ) {
        let (mut sink, mut stream) = socket.split();
        let close =
            |code: CloseCode, reason: &'static str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
        loop {
            tokio::select! {
                out = outgoing.recv() => match out {
                    Some(Outgoing::Text(text)) => {
                        if sink.send(Message::text(text)).await.is_err() {
                            break;
                        }
                    }
                    Some(Outgoing::Close) | None => {
                        let _ = sink.send(close(CloseCode::Normal, "closed by the server")).await;
                        break;
                    }
                },
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        self.call(event("$default", id, connected_at, source, headers, "", Some(text.as_str()))).await;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let _ = sink.send(close(CloseCode::Unsupported, "Binary frames are not supported")).await;
                        break;
                    }
                    Some(Ok(Message::Ping(p))) => {
                        let _ = sink.send(Message::Pong(p)).await;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(WsError::Capacity(_))) => {
                        let _ = sink.send(close(CloseCode::Size, "Message too big")).await;
                        break;
                    }
                    Some(Err(WsError::Utf8(_))) => {
                        let _ = sink.send(close(CloseCode::Invalid, "Text frames must be UTF-8")).await;
                        break;
                    }
                    Some(Err(_)) | None => break,
                },
            }
        }
    }
}

/// API Gateway's WebSocket quotas: frames up to 32 KB, messages (frames joined) up to 128 KB.
/// Past either the socket closes with 1009. A message over the relay's 32 KB within them
/// reaches the relay, which answers `too_large` and keeps the socket.
fn limits() -> WebSocketConfig {
    WebSocketConfig::default().max_frame_size(Some(MAX_FRAME_BYTES)).max_message_size(Some(MAX_MESSAGE_BYTES))
}

/// API Gateway's WebSocket message quota.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

fn status(code: StatusCode) -> http::Response<Full<Bytes>> {
    let reason = code.canonical_reason().unwrap_or("refused");
    let body = json!({"code": reason.to_ascii_lowercase().replace(' ', "_"), "message": reason}).to_string();
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r
}
