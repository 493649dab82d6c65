//! The streaming portal's signaling socket, drop-in: the WebSocket its web client opens on
//! `/sessions/{function_id}/{function_version_id}/sign_in` (the Omniverse portal sample's
//! `connect_to_stream`). The socket is held here and NVCF's signaling socket is opened for it,
//! with the key, both ids, the session cookie, the client's query and `User-Agent`; frames go
//! both ways unchanged (text and binary, no envelope; NVCF may speak first), and when one side
//! closes, the other is closed with the same code and reason.
//!
//! Why not the relay: API Gateway's WebSocket API cannot give the portal's client what it
//! reads (a close code: `$connect` refuses with an HTTP status only and `DeleteConnection`
//! sends none; the server speaking first). So on AWS this runs in the bridge service, behind a
//! load balancer that CloudFront sends this one path's upgrades to (infra/README), and in the
//! emulator on the same path of the same listener as the HTTP API.
//!
//! Close codes, as the portal's: 3000 no `nvcf-request-id` cookie; 3004 no such live session
//! of the caller's; 3005 another socket holds it; 3008 NVCF's signaling did not answer in time;
//! 3010 the session ended (stopped by its owner or an administrator, or `session_ttl` passed;
//! the reason says which); NVCF refusing the upgrade drops the socket (the client reads 1006).
//! A refused handshake (no or a bad token, another origin) is an HTTP 401/403.
//!
//! A socket holds its session (`active`) under a lease it renews while it lives, so a bridge
//! task that dies leaves a session that counts as idle once the lease passes: the client can
//! come back, or the sweeper ends it after `session_idle_timeout`. While it holds the session
//! it reads its record every [`WATCH`] (to see an end decided elsewhere, should NVCF's side not
//! close at once); NVCF closing its side is read at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use portico_core::{Error, Services};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::Sessions;
use crate::bridge_queue::TaskProtection;
use crate::clients::NoPusher;
use crate::nvcf::{NvcfSignaling, REQUEST_ID_COOKIE};

mod carry;

/// How often a held session's record is read.
pub const WATCH: Duration = Duration::from_secs(5);
/// How often both sockets are pinged: CloudFront closes a WebSocket quiet for 10 minutes, and a
/// client gone without a word (a laptop asleep) must not keep its session held.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// A client silent (not even a pong) for this long is gone.
const CLIENT_SILENCE: Duration = Duration::from_secs(75);
/// How long a socket's hold on its session lasts unless renewed (renewed at half of it).
pub const LEASE_SECONDS: i64 = 90;

/// The portal's ID token cookie.
const ID_TOKEN_COOKIE: &str = "id_token";
/// The headers an app's stream reads the user's token from.
static USER_TOKEN: http::HeaderName = http::HeaderName::from_static("user-token");
static NUCLEUS_TOKEN: http::HeaderName = http::HeaderName::from_static("nucleus-token");

/// `(function_id, function_version_id)` if `path` is the portal's signaling path.
pub fn signaling_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/sessions/")?.strip_suffix("/sign_in")?;
    let (function_id, version_id) = rest.split_once('/')?;
    let fine = portico_core::apps::is_platform_id;
    (fine(function_id) && fine(version_id)).then_some((function_id, version_id))
}

/// The portal's signaling sockets, served by whoever holds the listener (the bridge service,
/// the emulator).
pub struct DirectStreams {
    services: Arc<Services>,
    nvcf: NvcfSignaling,
    /// The bridge task's scale-in protection, held while it carries a socket.
    protection: Option<TaskProtection>,
    /// Set when the process stops: every socket is closed (1001) and its session let go.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Sockets being served.
    active: std::sync::atomic::AtomicUsize,
}

impl DirectStreams {
    pub fn new(services: Arc<Services>, nvcf: NvcfSignaling) -> DirectStreams {
        DirectStreams {
            services,
            nvcf,
            protection: None,
            stopping: tokio::sync::watch::channel(false).0,
            active: Default::default(),
        }
    }

    /// The same, holding `protection` while any socket is carried (the bridge service).
    pub fn with_protection(mut self, protection: TaskProtection) -> DirectStreams {
        self.protection = Some(protection);
        self
    }

    /// Closes every socket (1001, "Going away": the portal's client reconnects, to another
    /// task), each session let go first so the reconnect finds it free.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether [`DirectStreams::stop`] was called: new sockets are refused (503), and the load
    /// balancer's health check fails so it sends none.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Sockets still being served (to wait for on the way out).
    pub fn active(&self) -> usize {
        self.active.load(std::sync::atomic::Ordering::SeqCst)
    }
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// What the handshake told about the socket.
struct Call {
    owner: String,
    function_id: String,
    version_id: String,
    request_id: Option<String>,
    query: String,
    user_agent: Option<String>,
    /// The caller's token (its bearer or `id_token` cookie; none with a ticket), for an app that
    /// needs it (`OPENID`).
    token: Option<String>,
    /// The `nucleus_token` cookie, for an app that needs it (`NUCLEUS`).
    nucleus: Option<String>,
}

fn refused(status: StatusCode, e: &Error) -> http::Response<Full<Bytes>> {
    portico_core::web::log_server_side(e);
    let body = serde_json::json!({"detail": e.to_string()}).to_string();
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

impl DirectStreams {
    /// Whether `req` opens the portal's signaling socket.
    pub fn wants<B>(&self, req: &http::Request<B>) -> bool {
        signaling_path(req.uri().path()).is_some()
            && req
                .headers()
                .get(http::header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    fn sessions(&self) -> Sessions<'_> {
        Sessions {
            table: self.services.table.as_ref(),
            pusher: &NoPusher,
            config: &self.services.config,
            nvcf: Some(&self.nvcf),
        }
    }

    /// The handshake: the caller authenticated (bearer or `id_token` cookie, from this origin
    /// or an allowed one), the client's `Sec-WebSocket-Protocol` echoed; then the socket's
    /// life, in a task of its own.
    pub async fn upgrade<B: Send + 'static>(self: Arc<Self>, mut req: http::Request<B>) -> http::Response<Full<Bytes>> {
        let Some((function_id, version_id)) = signaling_path(req.uri().path()) else {
            return refused(StatusCode::NOT_FOUND, &Error::NotFound("no such socket".into()));
        };
        if self.is_stopping() {
            let e = Error::Unavailable("this bridge task is stopping; connect again".into());
            return refused(e.status(), &e);
        }
        let (function_id, version_id) = (function_id.to_owned(), version_id.to_owned());
        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
            return refused(StatusCode::BAD_REQUEST, &Error::bad_request("invalid_body", "not a WebSocket handshake"));
        };
        let mut head = http::Request::new(Bytes::new());
        *head.method_mut() = req.method().clone();
        *head.uri_mut() = req.uri().clone();
        *head.headers_mut() = req.headers().clone();
        if !self.services.origin_allowed(head.headers()) {
            let e = Error::Forbidden("a socket opened from another origin".into());
            return refused(e.status(), &e);
        }
        let (query, ticket) = split_ticket(req.uri().query().unwrap_or(""));
        let headers = req.headers();
        let (owner, request_id, token) = match self.caller(&head, ticket.as_deref()).await {
            Ok(found) => found,
            Err(e) => return refused(e.status(), &e),
        };
        let call = Call {
            owner,
            function_id,
            version_id,
            request_id,
            query,
            user_agent: headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
            token,
            nucleus: portico_core::web::cookie(headers, "nucleus_token").map(str::to_owned),
        };
        let protocol = headers.get(http::header::SEC_WEBSOCKET_PROTOCOL).cloned();
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                    self.stream(socket, call).await;
                }
                Err(e) => tracing::warn!(error = %e, "the portal's socket could not be upgraded"),
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut r = http::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(http::header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept.parse().expect("an accept key is a header value"));
        // The portal's streaming library requires its sub-protocol back.
        if let Some(protocol) = protocol {
            h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        r
    }

    /// Who opens the socket, and NVCF's session it names: the caller's bearer or `id_token`
    /// cookie with the `nvcf-request-id` cookie, or a client ticket of the session (a client
    /// that sends no cookies: `POST /sessions` with `"raw": true`); and the token it came with.
    async fn caller(
        &self,
        head: &portico_core::web::ApiRequest,
        ticket: Option<&str>,
    ) -> Result<(String, Option<String>, Option<String>), Error> {
        let headers = head.headers();
        let credentials = headers.contains_key(http::header::AUTHORIZATION)
            || portico_core::web::cookie(headers, ID_TOKEN_COOKIE).is_some();
        if let (false, Some(_)) = (credentials, ticket) {
            let sessions = self.sessions();
            let (id, side) = sessions.redeem(ticket).await?;
            let (session, _) = sessions.get(&id).await?;
            let request_id = session.direct.filter(|_| side == crate::Side::Client).map(|d| d.request_id);
            let request_id = request_id.ok_or_else(|| Error::Unauthorized("not a ticket for this socket".into()))?;
            return Ok((session.owner, Some(request_id), None));
        }
        let who = self.services.principal_by_cookie(head, ID_TOKEN_COOKIE).await?;
        let token = match portico_core::web::bearer(head) {
            Ok(bearer) => Some(bearer.to_owned()),
            Err(_) => portico_core::web::cookie(headers, ID_TOKEN_COOKIE).map(str::to_owned),
        };
        Ok((who.username, portico_core::web::cookie(headers, REQUEST_ID_COOKIE).map(str::to_owned), token))
    }
}

/// The query without its `ticket` (which is Portico's, not NVCF's), and the ticket.
fn split_ticket(query: &str) -> (String, Option<String>) {
    let mut ticket = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("ticket=") {
            Some(t) => {
                ticket = Some(t.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    (kept.join("&"), ticket)
}

/// Serves the portal's signaling sockets on `listener` until the process stops (the bridge
/// service, behind its load balancer): upgrades on the signaling path; `GET /health` answers
/// 200 for the load balancer's checks; anything else is 404.
pub async fn serve(listener: tokio::net::TcpListener, streams: Arc<DirectStreams>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let streams = Arc::clone(&streams);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let streams = Arc::clone(&streams);
                async move {
                    let answer = if streams.wants(&req) {
                        streams.upgrade(req).await
                    } else if req.uri().path() == "/health" && !streams.is_stopping() {
                        http::Response::new(Full::new(Bytes::from_static(b"ok")))
                    } else if req.uri().path() == "/health" {
                        refused(StatusCode::SERVICE_UNAVAILABLE, &Error::Unavailable("stopping".into()))
                    } else {
                        refused(StatusCode::NOT_FOUND, &Error::NotFound("no such path".into()))
                    };
                    Ok::<_, std::convert::Infallible>(answer)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
