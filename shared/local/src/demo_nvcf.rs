//! A stand-in for NVCF's streaming signaling, speaking what the seed portal's backend speaks to
//! it (`backend/app/nvcf.py`; `../shared/contracts`, "NVCF streaming"), so `cargo run` and the
//! tests run the real path, the bridge included:
//!
//! - `POST /sign_in` with `Authorization: Bearer <key>`, `Function-ID`, `Function-Version-ID`
//!   and `X-NVCF-ABSORB: true` → 200 `{}` and `Set-Cookie: nvcf-request-id=<id>`;
//! - the WebSocket `/sign_in` with the key, both ids and `Cookie: nvcf-request-id=<id>` of a
//!   live session of that function version → the app's signaling: it speaks first (`SYN`, as the
//!   seed's test server does), answers each text frame with `{"echo": <text>}` and each binary
//!   frame with the same bytes; a refused upgrade is answered with its HTTP status;
//! - `DELETE /sign_in` with the key, both ids, `X-NVCF-ABSORB: true` and the cookie → 200; the
//!   session's socket is closed.
//!
//! Anything else is refused (401 without the key, 400 without an id or the absorb header, 404
//! for an unknown session), and every refusal is kept in [`DemoNvcf::violations`] for the tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// A session NVCF knows.
struct NvcfSession {
    function_id: String,
    version_id: String,
    /// Set when it is stopped: its socket closes.
    stopped: watch::Sender<bool>,
    /// What the app says on its own (tests), while its socket is open.
    says: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// Its place in the order of sign-ins.
    started: u64,
}

/// The stand-in's state, shared with whoever holds it (tests).
pub struct DemoNvcf {
    key: String,
    sessions: Mutex<BTreeMap<String, NvcfSession>>,
    /// Every request that broke the contract, and why.
    pub violations: Mutex<Vec<String>>,
    /// Requests served: `POST /sign_in`, `WS /sign_in`, `DELETE /sign_in`.
    pub requests: Mutex<Vec<String>>,
    /// Text frames the app received, in order.
    pub received: Mutex<Vec<String>>,
    /// When set, sign-ins answer this status.
    pub fail_sign_in: Mutex<Option<u16>>,
    /// When set, sign-ins wait this long before answering (NVCF hanging).
    pub hang_sign_in: Mutex<Option<std::time::Duration>>,
    /// The user tokens signaling sockets were opened with (`User-Token`, `Nucleus-Token`), by
    /// header name, in order: what an app that needs the user's token reads.
    pub user_tokens: Mutex<Vec<(String, String)>>,
    /// When set, signaling upgrades wait this long before answering (NVCF hanging).
    pub hang_upgrade: Mutex<Option<std::time::Duration>>,
    /// When set, upgrades are refused with this status.
    pub refuse_upgrade: Mutex<Option<u16>>,
    /// When set, the app is a program of its own at this WebSocket URL (a real WebRTC peer, in
    /// the tests): each session's signaling socket is carried to it, frames unchanged.
    pub app_upstream: Mutex<Option<String>>,
}

/// Carries a session's signaling socket to the app at `url`, frames unchanged both ways.
async fn carry_to(
    socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    url: &str,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok((app, _)) = tokio_tungstenite::connect_async(url).await else { return };
    let (mut to_bridge, mut from_bridge) = socket.split();
    let (mut to_app, mut from_app) = app.split();
    // A side's close reaches the other with its code and reason.
    let (to_bridge_close, to_app_close) = loop {
        tokio::select! {
            _ = stopped.changed() => break (None, None),
            frame = from_bridge.next() => match frame {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => if to_app.send(m).await.is_err() { break (None, None) },
                Some(Ok(Message::Close(frame))) => break (None, frame),
                Some(Ok(_)) => {}
                _ => break (None, None),
            },
            frame = from_app.next() => match frame {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => if to_bridge.send(m).await.is_err() { break (None, None) },
                Some(Ok(Message::Close(frame))) => break (frame, None),
                Some(Ok(_)) => {}
                _ => break (None, None),
            },
        }
    };
    let _ = to_bridge.send(Message::Close(to_bridge_close)).await;
    let _ = to_app.send(Message::Close(to_app_close)).await;
}

/// A running stand-in: its state and its `ws://` endpoint; dropping it stops the server.
pub struct RunningNvcf {
    pub nvcf: Arc<DemoNvcf>,
    pub endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningNvcf {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Answer = http::Response<Full<Bytes>>;
/// A refused call: its status and why.
type Refusal = (StatusCode, String);

fn answer(status: StatusCode, body: &str) -> Answer {
    let mut r = http::Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    portico_core::web::cookie(headers, name).map(str::to_owned)
}

impl DemoNvcf {
    /// Serves the stand-in on 127.0.0.1, expecting `key`.
    pub async fn start(key: &str) -> std::io::Result<RunningNvcf> {
        let nvcf = Arc::new(DemoNvcf {
            key: key.to_owned(),
            sessions: Mutex::new(BTreeMap::new()),
            violations: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
            fail_sign_in: Mutex::new(None),
            hang_sign_in: Mutex::new(None),
            refuse_upgrade: Mutex::new(None),
            hang_upgrade: Mutex::new(None),
            user_tokens: Mutex::new(Vec::new()),
            app_upstream: Mutex::new(None),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("ws://{}", listener.local_addr()?);
        let state = Arc::clone(&nvcf);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                // As a WebSocket server does: small frames go out at once.
                let _ = stream.set_nodelay(true);
                while connections.try_join_next().is_some() {}
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move {
                            let hang = match *req.method() {
                                Method::POST => *state.hang_sign_in.lock().expect("demo nvcf"),
                                Method::GET => *state.hang_upgrade.lock().expect("demo nvcf"),
                                _ => None,
                            };
                            if let Some(hang) = hang {
                                tokio::time::sleep(hang).await;
                            }
                            Ok::<_, std::convert::Infallible>(state.serve(req))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(RunningNvcf { nvcf, endpoint, task })
    }

    fn refuse(&self, status: StatusCode, why: String) -> Answer {
        self.violations.lock().expect("demo nvcf").push(why.clone());
        answer(status, &serde_json::json!({"detail": why}).to_string())
    }

    /// The contract's checks for every call: the key, both ids; the absorb header for the HTTP
    /// calls; the ids of the function version.
    fn check(&self, headers: &HeaderMap, absorb: bool) -> Result<(String, String), Refusal> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if header("authorization").as_deref() != Some(format!("Bearer {}", self.key).as_str()) {
            return Err((StatusCode::UNAUTHORIZED, "no valid API key".into()));
        }
        let (Some(function), Some(version)) = (header("function-id"), header("function-version-id")) else {
            return Err((StatusCode::BAD_REQUEST, "Function-ID and Function-Version-ID are required".into()));
        };
        if absorb && header("x-nvcf-absorb").as_deref() != Some("true") {
            return Err((StatusCode::BAD_REQUEST, "X-NVCF-ABSORB: true is required".into()));
        }
        Ok((function, version))
    }

    /// The live session the cookie names, of that function version.
    fn session_of(
        &self,
        headers: &HeaderMap,
        ids: &(String, String),
    ) -> Result<(String, watch::Receiver<bool>), Refusal> {
        let Some(id) = cookie(headers, "nvcf-request-id") else {
            return Err((StatusCode::BAD_REQUEST, "the nvcf-request-id cookie is required".into()));
        };
        let sessions = self.sessions.lock().expect("demo nvcf");
        match sessions.get(&id) {
            Some(s) if s.function_id == ids.0 && s.version_id == ids.1 && !*s.stopped.borrow() => {
                Ok((id, s.stopped.subscribe()))
            }
            _ => Err((StatusCode::NOT_FOUND, format!("no live session {id} of this function version"))),
        }
    }

    fn serve(self: Arc<Self>, mut req: http::Request<hyper::body::Incoming>) -> Answer {
        let upgrade =
            req.headers().get(http::header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        let verb = if upgrade { "WS".to_owned() } else { req.method().to_string() };
        self.requests.lock().expect("demo nvcf").push(format!("{verb} {}", req.uri().path()));
        if req.uri().path() != "/sign_in" {
            return self.refuse(StatusCode::NOT_FOUND, format!("no {}", req.uri().path()));
        }
        let ids = match self.check(req.headers(), !upgrade) {
            Ok(ids) => ids,
            Err((status, why)) => return self.refuse(status, why),
        };
        match (req.method().clone(), upgrade) {
            (Method::POST, false) => {
                if let Some(status) = *self.fail_sign_in.lock().expect("demo nvcf") {
                    return answer(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), "{}");
                }
                let id = uuid::Uuid::new_v4().to_string();
                let (stopped, _) = watch::channel(false);
                let mut sessions = self.sessions.lock().expect("demo nvcf");
                let started = sessions.len() as u64;
                let session = NvcfSession { function_id: ids.0, version_id: ids.1, stopped, says: None, started };
                sessions.insert(id.clone(), session);
                drop(sessions);
                let mut r = answer(StatusCode::OK, "{}");
                let set = format!("nvcf-request-id={id}; Path=/; HttpOnly");
                r.headers_mut().insert(http::header::SET_COOKIE, set.parse().expect("a cookie header"));
                r
            }
            (Method::DELETE, false) => {
                // Ending a session already ended (from NVCF's side, say) changes nothing.
                let known = cookie(req.headers(), "nvcf-request-id").and_then(|id| {
                    let sessions = self.sessions.lock().expect("demo nvcf");
                    sessions.get(&id).filter(|s| s.function_id == ids.0 && s.version_id == ids.1).map(|s| {
                        s.stopped.send_replace(true);
                    })
                });
                match known {
                    Some(()) => answer(StatusCode::OK, "{}"),
                    None => match self.session_of(req.headers(), &ids) {
                        Ok(_) => answer(StatusCode::OK, "{}"),
                        Err((status, why)) => self.refuse(status, why),
                    },
                }
            }
            (Method::GET, true) => {
                let (id, stopped) = match self.session_of(req.headers(), &ids) {
                    Ok(found) => found,
                    Err((status, why)) => return self.refuse(status, why),
                };
                for name in ["user-token", "nucleus-token"] {
                    if let Some(value) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
                        self.user_tokens.lock().expect("demo nvcf").push((name.to_owned(), value.to_owned()));
                    }
                }
                if let Some(status) = *self.refuse_upgrade.lock().expect("demo nvcf") {
                    return answer(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), "{}");
                }
                let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
                    return self.refuse(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key".into());
                };
                let (says, said) = tokio::sync::mpsc::unbounded_channel();
                if let Some(session) = self.sessions.lock().expect("demo nvcf").get_mut(&id) {
                    session.says = Some(says);
                }
                let on_upgrade = hyper::upgrade::on(&mut req);
                let state = Arc::clone(&self);
                tokio::spawn(async move {
                    if let Ok(upgraded) = on_upgrade.await {
                        let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                        let upstream = state.app_upstream.lock().expect("demo nvcf").clone();
                        match upstream {
                            Some(url) => carry_to(socket, &url, stopped).await,
                            None => state.app(socket, stopped, said).await,
                        }
                    }
                });
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let mut r = answer(StatusCode::SWITCHING_PROTOCOLS, "");
                let h = r.headers_mut();
                h.remove(http::header::CONTENT_TYPE);
                h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
                h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
                h.insert("sec-websocket-accept", accept.parse().expect("an accept key"));
                r
            }
            (method, _) => self.refuse(StatusCode::METHOD_NOT_ALLOWED, format!("{method} /sign_in")),
        }
    }

    /// The app's signaling: `SYN` first, then an echo of each frame, until the session stops or
    /// the bridge leaves.
    async fn app(
        &self,
        socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        mut stopped: watch::Receiver<bool>,
        mut said: tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let (mut sink, mut stream) = socket.split();
        if sink.send(Message::text("SYN")).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = stopped.changed() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
                Some(text) = said.recv() => {
                    if sink.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        self.received.lock().expect("demo nvcf").push(text.to_string());
                        let echo = serde_json::json!({"echo": text.as_str()}).to_string();
                        if sink.send(Message::text(echo)).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if sink.send(Message::Binary(bytes)).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// Has every live session's app send `text` on its own (a stream's frames, say).
    pub fn say(&self, text: &str) {
        for session in self.sessions.lock().expect("demo nvcf").values() {
            if let Some(says) = &session.says {
                let _ = says.send(text.to_owned());
            }
        }
    }

    /// Ends every live session from NVCF's side (the app's stream ending): their sockets close.
    pub fn stop_all(&self) {
        for session in self.sessions.lock().expect("demo nvcf").values() {
            session.stopped.send_replace(true);
        }
    }

    /// The sessions signed in (`nvcf-request-id`s), in the order they started.
    pub fn session_ids(&self) -> Vec<String> {
        let sessions = self.sessions.lock().expect("demo nvcf");
        let mut ids: Vec<(u64, String)> = sessions.iter().map(|(id, s)| (s.started, id.clone())).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// How many sessions are live (signed in, not stopped).
    pub fn sessions_live(&self) -> usize {
        self.sessions.lock().expect("demo nvcf").values().filter(|s| !*s.stopped.borrow()).count()
    }
}
