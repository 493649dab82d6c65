//! The streaming portal's own routes, drop-in: the seed's session scenarios
//! (`backend/app/tests/routers/test_sessions.py` of the Omniverse portal sample at c4ac093),
//! run against Portico with the NVCF stand-in, whose app is, in each scenario, the seed test's
//! own NVCF server behaviour (a WebSocket server on 127.0.0.1).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portico_core::store::memory::MemoryTable;
use portico_local::demo_nvcf::{DemoNvcf, RunningNvcf};
use portico_tests::{STREAM_API_KEY, TestApi, app_body, captured_logs, test_config};
use reqwest::Method;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const FUNCTION: &str = "20e5086a-832a-43a6-87c9-6784e2d1e4bd";
const VERSION: &str = "ba4e628b-975b-4e28-9e06-492016a94ec7";

fn path() -> String {
    format!("/sessions/{FUNCTION}/{VERSION}/sign_in")
}

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How the app behind the stand-in behaves on each signaling socket (the seed's `accept`).
#[derive(Clone, Copy)]
enum App {
    /// `SYN`, then `SYN ACK` to an `ACK`, then waits.
    SynAck,
    /// Closes at once with 1011 "Test error.".
    CloseAbnormally,
    /// Echoes every frame, text or binary.
    Echo,
}

/// A WebSocket server on 127.0.0.1 playing `app`; its URL.
async fn app_server(app: App) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                match app {
                    App::SynAck => {
                        let _ = ws.send(Message::text("SYN")).await;
                        while let Some(Ok(m)) = ws.next().await {
                            if m.to_text().ok() == Some("ACK") {
                                let _ = ws.send(Message::text("SYN ACK")).await;
                            }
                        }
                    }
                    App::CloseAbnormally => {
                        let frame = CloseFrame { code: CloseCode::Error, reason: "Test error.".into() };
                        let _ = ws.close(Some(frame)).await;
                        while ws.next().await.is_some() {}
                    }
                    App::Echo => {
                        while let Some(Ok(m)) = ws.next().await {
                            if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (url, task)
}

struct Portal {
    api: TestApi,
    nvcf: RunningNvcf,
    _app: tokio::task::JoinHandle<()>,
}

/// Portico on the NVCF stand-in whose app plays `app`, with app `viewer` (the seed's function
/// version) published; `tune` changes the configuration.
async fn portal_with(app: App, tune: impl FnOnce(&mut portico_core::Config)) -> Portal {
    let nvcf = DemoNvcf::start(STREAM_API_KEY).await.unwrap();
    let (url, app_task) = app_server(app).await;
    *nvcf.nvcf.app_upstream.lock().unwrap() = Some(url);
    let mut config = test_config();
    config.nvcf_signaling_endpoint = Some(nvcf.endpoint.clone());
    tune(&mut config);
    let api = TestApi::start_full(Arc::new(MemoryTable::new()), config, true, |_| {}).await;
    let admin = api.admin_token();
    let r = api.req(Method::PUT, "/apps/viewer", Some(&admin)).json(&app_body("viewer")).send().await.unwrap();
    assert!(r.status().is_success());
    Portal { api, nvcf, _app: app_task }
}

async fn portal(app: App) -> Portal {
    portal_with(app, |_| {}).await
}

impl Portal {
    /// `method` on the portal's path with the cookies `cookies`.
    async fn call(&self, method: Method, cookies: &str) -> reqwest::Response {
        self.api.req(method, &path(), None).header("Cookie", cookies).send().await.unwrap()
    }

    /// Starts a session as the seed's client does (the `id_token` cookie): NVCF's session id.
    async fn start(&self, token: &str) -> String {
        let r = self.call(Method::POST, &format!("id_token={token}")).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        r.headers()["nvcf-request-id"].to_str().unwrap().to_owned()
    }

    /// Opens the signaling socket with `cookies`.
    async fn open(&self, cookies: &str) -> Client {
        let url = format!("{}{}", self.api.url("").replace("http://", "ws://"), path());
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Cookie", cookies.parse().unwrap());
        tokio_tungstenite::connect_async(request).await.expect("the handshake").0
    }

    /// A session started and its socket open, NVCF's `SYN` read: NVCF's session id, the socket.
    async fn streaming(&self, token: &str) -> (String, Client) {
        let request_id = self.start(token).await;
        let mut ws = self.open(&cookies(token, &request_id)).await;
        assert_eq!(text(&mut ws).await, "SYN");
        (request_id, ws)
    }

    /// The session's state, as its owner reads it.
    async fn state(&self, request_id: &str, token: &str) -> String {
        let id = portico_streaming::direct_session_id(request_id);
        let r = self.api.req(Method::GET, &format!("/sessions/{id}"), Some(token)).send().await.unwrap();
        let view: Value = r.json().await.unwrap();
        view["state"].as_str().unwrap_or("missing").to_owned()
    }

    /// Waits (at most 5 s) until the session is in `state`.
    async fn wait_state(&self, request_id: &str, token: &str, state: &str) {
        for _ in 0..100 {
            if self.state(request_id, token).await == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the session never became {state} (it is {})", self.state(request_id, token).await);
    }

    fn nvcf_calls(&self, call: &str) -> usize {
        self.nvcf.nvcf.requests.lock().unwrap().iter().filter(|r| r.as_str() == call).count()
    }
}

fn cookies(token: &str, request_id: &str) -> String {
    format!("id_token={token}; nvcf-request-id={request_id}")
}

async fn text(ws: &mut Client) -> String {
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame in time") {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The close frame that ends `ws` (code, reason).
async fn closed(ws: &mut Client) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(WsError::Protocol(_) | WsError::Io(_))) | None => return (1006, String::new()),
            Some(Err(e)) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn a_start_sets_both_cookies_and_the_header_and_records_an_idle_session() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let r = p.call(Method::POST, &format!("id_token={token}")).await;
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["nvcf-request-id"].to_str().unwrap().to_owned();
    let set: Vec<String> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    for cookie_path in [path(), format!("/stream/{FUNCTION}/{VERSION}")] {
        assert!(
            set.iter().any(|c| c.starts_with(&format!("nvcf-request-id={request_id};"))
                && c.contains(&format!("Path={cookie_path};"))
                && c.contains("Max-Age=")),
            "{set:?}"
        );
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "idle");
    assert_eq!(body["app"], "viewer");
    assert_eq!(p.nvcf_calls("POST /sign_in"), 1);
    assert_eq!(p.state(&request_id, &token).await, "idle");
    assert!(p.nvcf.nvcf.violations.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_second_start_is_429_without_calling_nvcf() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    p.api.req(Method::GET, "/auth/me", Some(&token)).send().await.unwrap();
    p.api.calls.take();
    let request_id = p.start(&token).await;
    let calls = p.api.calls.take();
    // The app by its function version, the caller's instances, then marker, quota, instance and
    // the session itself.
    assert_eq!((calls.query, calls.get, calls.add, calls.put, calls.total()), (1, 1, 2, 2, 6));
    assert_eq!(p.call(Method::HEAD, &cookies(&token, &request_id)).await.status(), 200);
    assert_eq!(p.api.calls.take().total(), 1);
    let r = p.call(Method::POST, &format!("id_token={token}")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "Maximum number of instances reached (1).");
    assert_eq!(p.nvcf_calls("POST /sign_in"), 1);
}

#[tokio::test]
async fn signals_flow_with_nvcf_speaking_first_and_a_closed_client_leaves_the_session_idle() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let (request_id, mut ws) = p.streaming(&token).await;
    ws.send(Message::text("ACK")).await.unwrap();
    assert_eq!(text(&mut ws).await, "SYN ACK");
    assert_eq!(p.state(&request_id, &token).await, "active");
    ws.close(None).await.unwrap();
    p.wait_state(&request_id, &token, "idle").await;
    // The stream goes on over a new socket (the portal's client reconnects).
    let mut again = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(text(&mut again).await, "SYN");
    assert!(p.nvcf.nvcf.violations.lock().unwrap().is_empty());
    assert!(!captured_logs().contains(STREAM_API_KEY));
}

#[tokio::test]
async fn nvcf_closing_abnormally_closes_the_client_with_its_code_and_the_session_is_idle() {
    let p = portal(App::CloseAbnormally).await;
    let token = p.api.admin_token();
    let request_id = p.start(&token).await;
    let mut ws = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(closed(&mut ws).await, (1011, "Test error.".into()));
    p.wait_state(&request_id, &token, "idle").await;
}

#[tokio::test]
async fn a_client_closing_abnormally_leaves_the_session_idle() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let (request_id, mut ws) = p.streaming(&token).await;
    ws.send(Message::text("ACK")).await.unwrap();
    ws.close(Some(CloseFrame { code: CloseCode::Error, reason: "Test error.".into() })).await.unwrap();
    p.wait_state(&request_id, &token, "idle").await;
}

#[tokio::test]
async fn a_second_socket_is_3005_and_stopped_unknown_or_missing_sessions_are_3004_and_3000() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let (request_id, mut first) = p.streaming(&token).await;
    let mut second = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(closed(&mut second).await, (3005, "Client is connected already.".into()));
    // The first one is untouched.
    first.send(Message::text("ACK")).await.unwrap();
    assert_eq!(text(&mut first).await, "SYN ACK");

    let mut unknown = p.open(&cookies(&token, "not-a-session")).await;
    assert_eq!(closed(&mut unknown).await, (3004, "Session with the specified ID not found.".into()));
    let mut no_cookie = p.open(&format!("id_token={token}")).await;
    let expected = "Session ID is not specified (missing nvcf-request-id cookie).";
    assert_eq!(closed(&mut no_cookie).await, (3000, expected.into()));
    // Another user's session is not found either.
    let other = p.api.token("mallory");
    let mut theirs = p.open(&cookies(&other, &request_id)).await;
    assert_eq!(closed(&mut theirs).await.0, 3004);

    first.close(None).await.unwrap();
    p.wait_state(&request_id, &token, "idle").await;
    let r = p.call(Method::DELETE, &cookies(&token, &request_id)).await;
    assert_eq!(r.status(), 200);
    let mut stopped = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(closed(&mut stopped).await, (3004, "Session with the specified ID not found.".into()));
}

#[tokio::test]
async fn stopping_closes_the_socket_with_3010_clears_the_cookies_and_gives_the_quota_back() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let (request_id, mut ws) = p.streaming(&token).await;
    let r = p.call(Method::DELETE, &cookies(&token, &request_id)).await;
    assert_eq!(r.status(), 200);
    let set: Vec<String> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set.iter().filter(|c| c.starts_with("nvcf-request-id=;") && c.contains("Max-Age=0")).count(), 2);
    assert_eq!(closed(&mut ws).await, (3010, "Stopped by client.".into()));
    assert_eq!(p.state(&request_id, &token).await, "stopped");
    assert_eq!(p.nvcf_calls("DELETE /sign_in"), 1);
    assert_eq!(p.nvcf.nvcf.sessions_live(), 0);
    // The instance is back: a new start is allowed.
    p.start(&token).await;
}

#[tokio::test]
async fn an_administrator_ends_a_session_with_3010_and_session_ttl_times_one_out() {
    let p = portal(App::SynAck).await;
    let (admin, user) = (p.api.admin_token(), p.api.token("ana"));
    let grant = serde_json::json!({"group": "", "action": "session.start"});
    for (method, at, body) in [
        (Method::POST, "/admin/roles", Some(serde_json::json!({"name": "streamer"}))),
        (Method::POST, "/admin/roles/streamer/permissions", Some(grant)),
        (Method::POST, "/admin/users", Some(serde_json::json!({"username": "ana"}))),
        (Method::PUT, "/admin/users/ana/roles/streamer", None),
    ] {
        let mut r = p.api.req(method, at, Some(&admin));
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let (request_id, mut ws) = p.streaming(&user).await;
    let id = portico_streaming::direct_session_id(&request_id);
    let r = p.api.req(Method::DELETE, &format!("/sessions/{id}"), Some(&admin)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(closed(&mut ws).await, (3010, "Terminated by a system administrator.".into()));

    let p = portal_with(App::SynAck, |c| c.session_ttl = 2).await;
    let token = p.api.admin_token();
    let (request_id, mut ws) = p.streaming(&token).await;
    assert_eq!(closed(&mut ws).await, (3010, "Timed out.".into()));
    assert_eq!(p.state(&request_id, &token).await, "stopped");
    assert_eq!(p.nvcf_calls("DELETE /sign_in"), 1);
}

#[tokio::test]
async fn frames_go_both_ways_unchanged_and_the_sub_protocol_is_echoed() {
    let p = portal(App::Echo).await;
    let token = p.api.admin_token();
    let request_id = p.start(&token).await;
    let url = format!("{}{}?peer_id=7", p.api.url("").replace("http://", "ws://"), path());
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Cookie", cookies(&token, &request_id).parse().unwrap());
    request.headers_mut().insert("Sec-WebSocket-Protocol", "x-nv-sessionid.abc".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "x-nv-sessionid.abc");
    ws.send(Message::text(r#"{"peer_msg": {"peer_id": 1}}"#)).await.unwrap();
    assert_eq!(text(&mut ws).await, r#"{"peer_msg": {"peer_id": 1}}"#);
    ws.send(Message::binary(vec![0u8, 159, 255])).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
        Some(Ok(Message::Binary(b))) => assert_eq!(b.as_ref(), &[0u8, 159, 255]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn who_may_start_stop_and_connect() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    // No credentials: 401 for the routes, and the handshake is refused.
    assert_eq!(p.call(Method::POST, "").await.status(), 401);
    let url = format!("{}{}", p.api.url("").replace("http://", "ws://"), path());
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A user without `session.start`: 403; a function version no app streams: 404.
    let r = p.call(Method::POST, &format!("id_token={}", p.api.token("bob"))).await;
    assert_eq!(r.status(), 403);
    let r = p
        .api
        .req(Method::POST, &format!("/sessions/{FUNCTION}/0000/sign_in"), None)
        .header("Cookie", format!("id_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], "Application not found.");
    // A page of another origin cannot use the cookie.
    let r = p
        .api
        .req(Method::POST, &path(), None)
        .header("Cookie", format!("id_token={token}"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A bearer works as well as the cookie.
    let r = p.api.req(Method::POST, &path(), Some(&token)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["nvcf-request-id"].to_str().unwrap().to_owned();
    // Stopping: no cookie 400, another's or an unknown session 404 (FastAPI's `detail`).
    let r = p.call(Method::DELETE, &format!("id_token={token}")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], "nvcf-request-id must be specified in cookies.");
    let r = p.call(Method::DELETE, &cookies(&p.api.token("mallory"), &request_id)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], "Session not found.");
    assert_eq!(p.call(Method::HEAD, &cookies(&token, &request_id)).await.status(), 200);
    assert_eq!(p.call(Method::HEAD, &cookies(&token, "nope")).await.status(), 404);
    assert_eq!(p.nvcf_calls("DELETE /sign_in"), 0);
}

#[tokio::test]
async fn a_raw_session_on_sessions_opens_the_portal_path_with_a_ticket_and_the_relay_refuses_it() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let body = serde_json::json!({"app": "viewer", "raw": true});
    let r = p.api.req(Method::POST, "/sessions", Some(&token)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let started: Value = r.json().await.unwrap();
    let ws_url = started["ws_url"].as_str().unwrap();
    assert!(ws_url.contains(&format!("/sessions/{FUNCTION}/{VERSION}/sign_in?ticket=")), "{ws_url}");
    // No cookie, no bearer: the ticket names the session; frames are NVCF's own.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    assert_eq!(text(&mut ws).await, "SYN");
    ws.send(Message::text("ACK")).await.unwrap();
    assert_eq!(text(&mut ws).await, "SYN ACK");
    // A ticket serves once.
    match tokio_tungstenite::connect_async(ws_url).await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // The relay does not carry this session: a fresh ticket opens the portal's path again.
    ws.close(None).await.unwrap();
    let id = started["session_id"].as_str().unwrap();
    let mut request_id = String::new();
    for _ in 0..100 {
        let r = p.api.req(Method::POST, &format!("/sessions/{id}/tickets"), Some(&token)).send().await.unwrap();
        if r.status() == 201 {
            request_id = r.json::<Value>().await.unwrap()["ws_url"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(request_id.contains("/sign_in?ticket="), "{request_id}");
    let ticket = request_id.rsplit("ticket=").next().unwrap();
    let relay = format!("{}?ticket={ticket}", p.api.platform.services.config.relay_url);
    match tokio_tungstenite::connect_async(relay.as_str()).await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 409),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn the_sweeper_ends_an_idle_session_at_nvcf_too_and_a_dead_holder_frees_it_when_its_lease_passes() {
    let p = portal_with(App::SynAck, |c| c.session_idle_timeout = 0).await;
    let token = p.api.admin_token();
    let request_id = p.start(&token).await;
    assert_eq!(p.nvcf.nvcf.sessions_live(), 1);
    assert_eq!(p.api.platform.relay().sweep().await.unwrap(), 1);
    assert_eq!(p.state(&request_id, &token).await, "stopped");
    assert_eq!(p.nvcf.nvcf.sessions_live(), 0, "NVCF's session ended with it");

    let p = portal(App::SynAck).await;
    let (request_id, holder) = p.streaming(&token).await;
    // The holder's bridge task dies: nobody renews its lease, which runs out.
    let table = p.api.services.table.clone();
    let key = portico_streaming::session_key(&portico_streaming::direct_session_id(&request_id));
    let item = table.get(&key).await.unwrap().unwrap();
    let mut session: portico_streaming::Session = item.doc().unwrap();
    session.direct.as_mut().unwrap().lease_until = Some(portico_core::store::now_epoch() - 1);
    let stale = item.with_doc(&session);
    table.put(stale, portico_core::store::Condition::Always).await.unwrap();
    let mut again = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(text(&mut again).await, "SYN");
    assert_eq!(p.state(&request_id, &token).await, "active");
    drop(holder);
}

#[tokio::test]
async fn the_bridge_service_serves_the_portal_socket_on_its_own_port_with_a_health_check() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    let request_id = p.start(&token).await;
    // What the bridge service runs behind its load balancer, on a port of its own.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let nvcf = p.api.platform.streaming.nvcf.clone().unwrap();
    let streams = Arc::new(portico_streaming::direct::DirectStreams::new(p.api.services.clone(), nvcf));
    let bridge = tokio::spawn(portico_streaming::direct::serve(listener, Arc::clone(&streams)));
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(reqwest::get(format!("http://{addr}/apps")).await.unwrap().status(), 404);
    let mut request = format!("ws://{addr}{}", path()).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", cookies(&token, &request_id).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(text(&mut ws).await, "SYN");
    ws.send(Message::text("ACK")).await.unwrap();
    assert_eq!(text(&mut ws).await, "SYN ACK");
    // Stopped through the API (a Lambda function on AWS): the bridge's socket learns it.
    let r = p.call(Method::DELETE, &cookies(&token, &request_id)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(closed(&mut ws).await, (3010, "Stopped by client.".into()));

    // The task stops (ECS's SIGTERM): its sockets are let go and closed with 1001; the client
    // reconnects (here, to the emulator's listener) and finds its session free.
    let request_id = p.start(&token).await;
    let mut request = format!("ws://{addr}{}", path()).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", cookies(&token, &request_id).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(text(&mut ws).await, "SYN");
    streams.stop();
    assert_eq!(closed(&mut ws).await, (1001, "Going away".into()));
    assert_eq!(p.state(&request_id, &token).await, "idle");
    // Stopping, it takes no more: the load balancer's check fails, a new socket is refused.
    assert_eq!(reqwest::get(format!("http://{addr}/health")).await.unwrap().status(), 503);
    let mut request = format!("ws://{addr}{}", path()).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", cookies(&token, &request_id).parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(streams.active(), 0);
    let mut again = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(text(&mut again).await, "SYN");
    bridge.abort();
}

#[tokio::test]
async fn nvcf_refusing_or_hanging_gives_the_portal_its_codes_and_holds_nothing() {
    let p = portal_with(App::SynAck, |c| c.stream_launch_timeout_ms = 300).await;
    let token = p.api.admin_token();
    let id_token = format!("id_token={token}");
    // The sign-in: refused (502, its 5xx 503), hanging (408), each in FastAPI's shape.
    *p.nvcf.nvcf.fail_sign_in.lock().unwrap() = Some(403);
    let r = p.call(Method::POST, &id_token).await;
    assert_eq!(r.status(), 502);
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
    *p.nvcf.nvcf.fail_sign_in.lock().unwrap() = Some(500);
    assert_eq!(p.call(Method::POST, &id_token).await.status(), 503);
    *p.nvcf.nvcf.fail_sign_in.lock().unwrap() = None;
    *p.nvcf.nvcf.hang_sign_in.lock().unwrap() = Some(Duration::from_secs(3));
    let r = p.call(Method::POST, &id_token).await;
    assert_eq!(r.status(), 408);
    let expected = "Failed to start a streaming session with a timeout -- try again later.";
    assert_eq!(r.json::<Value>().await.unwrap()["detail"], expected);
    *p.nvcf.nvcf.hang_sign_in.lock().unwrap() = None;
    // Nothing was held: the one instance allowed starts now.
    let request_id = p.start(&token).await;

    // The signaling socket: NVCF refusing the upgrade drops the client's (1006); hanging, 3008.
    *p.nvcf.nvcf.refuse_upgrade.lock().unwrap() = Some(403);
    let mut ws = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(closed(&mut ws).await.0, 1006);
    p.wait_state(&request_id, &token, "idle").await;
    *p.nvcf.nvcf.refuse_upgrade.lock().unwrap() = None;
    *p.nvcf.nvcf.hang_upgrade.lock().unwrap() = Some(Duration::from_secs(3));
    let mut ws = p.open(&cookies(&token, &request_id)).await;
    let expected = "Failed to connect a streaming session with a timeout -- try again later.";
    assert_eq!(closed(&mut ws).await, (3008, expected.into()));
    p.wait_state(&request_id, &token, "idle").await;
    *p.nvcf.nvcf.hang_upgrade.lock().unwrap() = None;
    let mut ws = p.open(&cookies(&token, &request_id)).await;
    assert_eq!(text(&mut ws).await, "SYN");
    assert!(!captured_logs().contains(STREAM_API_KEY));
}

#[tokio::test]
async fn an_app_that_needs_the_users_token_gets_it_when_the_socket_opens() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    // The seed's apps carry `authentication_type`; an OPENID app's stream gets the user's token.
    let mut app = app_body("viewer");
    app["authentication_type"] = "OPENID".into();
    let r = p.api.req(Method::PUT, "/apps/viewer", Some(&token)).json(&app).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (request_id, ws) = p.streaming(&token).await;
    // (Apps before, `NONE` by default, sent none: this is the first.)
    assert_eq!(*p.nvcf.nvcf.user_tokens.lock().unwrap(), vec![("user-token".to_owned(), token.clone())]);
    drop(ws);
    let r = p.call(Method::DELETE, &cookies(&token, &request_id)).await;
    assert_eq!(r.status(), 200);

    // A NUCLEUS app's, its `nucleus_token` cookie.
    app["authentication_type"] = "NUCLEUS".into();
    let r = p.api.req(Method::PUT, "/apps/viewer", Some(&token)).json(&app).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let request_id = p.start(&token).await;
    let mut ws = p.open(&format!("{}; nucleus_token=nucleus-abc", cookies(&token, &request_id))).await;
    assert_eq!(text(&mut ws).await, "SYN");
    assert_eq!(p.nvcf.nvcf.user_tokens.lock().unwrap()[1], ("nucleus-token".to_owned(), "nucleus-abc".to_owned()));
    app["authentication_type"] = "SAML".into();
    let r = p.api.req(Method::PUT, "/apps/viewer", Some(&token)).json(&app).send().await.unwrap();
    assert_eq!(r.status(), 400, "an unknown kind is refused");
    assert!(!captured_logs().contains("nucleus-abc"));
}

#[tokio::test]
async fn an_app_published_before_the_function_index_is_found_and_indexed() {
    let p = portal(App::SynAck).await;
    let token = p.api.admin_token();
    // As an older version stored it: no index entry for its function version.
    let table = p.api.services.table.clone();
    let key = portico_core::store::Key::new("APP", "viewer");
    let mut item = table.get(&key).await.unwrap().expect("the app as stored");
    assert!(item.index_key.is_some());
    item.index_key = None;
    table.put(item, portico_core::store::Condition::Always).await.unwrap();
    p.start(&token).await;
    assert!(table.get(&key).await.unwrap().unwrap().index_key.is_some(), "indexed on the way");
}
