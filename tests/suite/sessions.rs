//! Streaming sessions end to end: REST through the emulator, the relay through its WebSocket
//! API with real WebSocket clients, and a fake stream host on 127.0.0.1.

use std::sync::{Arc, Mutex};

use futures_util::SinkExt;
use portico_core::Config;
use portico_core::store::memory::MemoryTable;
use portico_core::store::{Condition, Counter, Item, Key, Page, Query, StoreError, Table};
use portico_streaming::Session;
use portico_tests::{FakeServer, STREAM_API_KEY, TestApi, Ws, app_body, captured_logs, test_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A launch request the fake stream host received: (Authorization header, body).
type Launch = (Option<String>, Value);

struct Env {
    api: TestApi,
    launches: Arc<Mutex<Vec<Launch>>>,
    /// The status the fake platform lists for the "viewer" app's function.
    status: Arc<Mutex<&'static str>>,
    _host: FakeServer,
    /// Everything the API answered, for the API-key check.
    seen: Mutex<Vec<String>>,
}

async fn env(tune: impl FnOnce(&mut Config)) -> Env {
    env_on(Arc::new(MemoryTable::new()), tune).await
}

/// A tuning that allows each user `sessions` sessions (`quota_sessions`) and each app
/// `instances` instances (`max_app_instances_count`).
fn room_for(sessions: i64, instances: i64) -> impl FnOnce(&mut Config) {
    move |c| {
        c.quota_sessions = sessions;
        c.max_app_instances_count = instances;
    }
}

async fn env_on(table: Arc<dyn Table>, tune: impl FnOnce(&mut Config)) -> Env {
    let launches: Arc<Mutex<Vec<Launch>>> = Arc::default();
    let status: Arc<Mutex<&'static str>> = Arc::new(Mutex::new("ACTIVE"));
    let (record, listed) = (Arc::clone(&launches), Arc::clone(&status));
    let viewer = app_body("viewer");
    let host = FakeServer::start(Arc::new(move |method, path, auth, body| match (method, path) {
        ("GET", "/list") => {
            assert_eq!(auth, Some(format!("Bearer {STREAM_API_KEY}").as_str()));
            let function = json!({
                "id": viewer["function_id"], "versionId": viewer["function_version_id"], "status": *listed.lock().unwrap(),
            });
            (200, json!({"functions": [function, {"id": "x", "versionId": "y", "status": "ERROR"}]}).to_string())
        }
        ("POST", p) if p.ends_with("/sessions") => {
            record.lock().unwrap().push((auth.map(str::to_owned), serde_json::from_slice(body).unwrap()));
            (200, "{}".into())
        }
        _ => (404, "{}".into()),
    }))
    .await;
    let mut config = test_config();
    config.stream_launch_url = Some(format!("{}/functions", host.url));
    config.stream_functions_url = Some(format!("{}/list", host.url));
    config.nvcf_cache_ttl = 0;
    tune(&mut config);
    let api = TestApi::start(table, config).await;
    let admin = api.admin_token();
    let admin_call = |m: Method, p: &str, b: Option<Value>| {
        let mut r = api.req(m, p, Some(&admin));
        if let Some(b) = b {
            r = r.json(&b);
        }
        r.send()
    };
    admin_call(Method::PUT, "/apps/viewer", Some(app_body("viewer"))).await.unwrap();
    admin_call(Method::POST, "/admin/roles", Some(json!({"name": "streamer"}))).await.unwrap();
    let grant = json!({"group": "", "action": "session.start"});
    admin_call(Method::POST, "/admin/roles/streamer/permissions", Some(grant)).await.unwrap();
    for user in ["bob", "eve"] {
        admin_call(Method::POST, "/admin/users", Some(json!({"username": user}))).await.unwrap();
        admin_call(Method::PUT, &format!("/admin/users/{user}/roles/streamer"), None).await.unwrap();
    }
    Env { api, launches, status, _host: host, seen: Mutex::default() }
}

impl Env {
    async fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.api.req(method, path, Some(&self.api.token(user)));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn start(&self, user: &str) -> Value {
        let (status, body) = self.call(Method::POST, "/sessions", user, Some(json!({"app": "viewer"}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// A session of `user` with its client and host joined and linked: (id, client, host).
    async fn linked(&self, user: &str) -> (String, Ws, Ws) {
        let started = self.start(user).await;
        let id = started["session_id"].as_str().unwrap().to_owned();
        let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
        let (mut host, _) = Ws::join(&self.host_url(&id)).await;
        client.expect("peer_joined").await;
        host.expect("peer_joined").await;
        (id, client, host)
    }

    /// The host's relay URL from the launch request of `session`.
    fn host_url(&self, session: &str) -> String {
        let launches = self.launches.lock().unwrap();
        let (_, body) = launches.iter().find(|(_, b)| b["session_id"] == session).expect("launched");
        body["relay_url"].as_str().unwrap().to_owned()
    }

    async fn session(&self, id: &str) -> Session {
        let item = self.api.services.table.get(&portico_streaming::session_key(id)).await.unwrap().unwrap();
        serde_json::from_str(item.s("doc").unwrap()).unwrap()
    }
}

on_both_stores! {
    a_full_signaling_exchange_with_messages_buffered_before_the_host_joins => full_signaling_exchange,
    session_quota_holds_under_fifty_concurrent_starts => fifty_concurrent_starts,
    the_sweeper_ends_idle_sessions_and_reads_only_live_ones => sweeper_ends_idle_sessions,
    signals_stay_in_order_while_the_peer_joins => order_holds_while_the_peer_joins,
}

/// The HTTP status of a refused WebSocket handshake.
async fn refused(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected failure: {e}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

async fn full_signaling_exchange(table: Arc<dyn Table>) {
    let env = env_on(table, |_| {}).await;
    let started = env.start("bob").await;
    let id = started["session_id"].as_str().unwrap();
    assert_eq!(started["expires_in"], 60);

    // The fake host was asked to join, with the server-held key and a single-use host ticket.
    let (auth, launch) = env.launches.lock().unwrap()[0].clone();
    assert_eq!(auth.as_deref(), Some(format!("Bearer {STREAM_API_KEY}").as_str()));
    assert_eq!(launch["session_id"], id);
    assert_ne!(launch["ticket"], started["ticket"]);

    let (mut client, welcome) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    assert_eq!((welcome["side"].as_str(), welcome["peer"].as_bool()), (Some("client"), Some(false)));
    client.signal(json!({"sdp": "offer-sdp", "kind": "offer"})).await;
    for i in 0..3 {
        client.signal(json!({"candidate": format!("client-ice-{i}")})).await;
    }
    let (status, s) = env.call(Method::GET, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!((status, s["state"].as_str()), (StatusCode::OK, Some("connecting")));

    let (mut host, welcome) = Ws::join(&env.host_url(id)).await;
    assert_eq!((welcome["side"].as_str(), welcome["peer"].as_bool()), (Some("host"), Some(true)));
    host.expect("peer_joined").await;
    client.expect("peer_joined").await;
    // Buffered before the host joined: all of it, in order.
    assert_eq!(host.expect_signal().await, json!({"sdp": "offer-sdp", "kind": "offer"}));
    for i in 0..3 {
        assert_eq!(host.expect_signal().await, json!({"candidate": format!("client-ice-{i}")}));
    }
    host.signal(json!({"sdp": "answer-sdp", "kind": "answer"})).await;
    for i in 0..2 {
        host.signal(json!({"candidate": format!("host-ice-{i}")})).await;
    }
    assert_eq!(client.expect_signal().await, json!({"sdp": "answer-sdp", "kind": "answer"}));
    for i in 0..2 {
        assert_eq!(client.expect_signal().await, json!({"candidate": format!("host-ice-{i}")}));
    }
    client.signal(json!({"candidate": "late-client-ice"})).await;
    assert_eq!(host.expect_signal().await, json!({"candidate": "late-client-ice"}));
    // A sender's own sequence number reaches the peer untouched, for reordering.
    client.send(json!({"type": "signal", "data": {"candidate": "numbered"}, "seq": 41})).await;
    let numbered = host.expect("signal").await;
    assert_eq!((numbered["data"]["candidate"].as_str(), numbered["seq"].as_u64()), (Some("numbered"), Some(41)));
    let (_, s) = env.call(Method::GET, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!(s["state"], "active");
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 1);

    // The owner ends it: both sides are told and closed, the quota is released.
    let (status, _) = env.call(Method::DELETE, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for ws in [&mut client, &mut host] {
        let last = ws.closed().await;
        assert_eq!(last.last().map(|v| v["type"].clone()), Some(json!("session_ended")));
    }
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0);
    let (_, s) = env.call(Method::GET, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!((s["state"].as_str(), s["ended_reason"].as_str()), (Some("stopped"), Some("stopped_by_owner")));

    // The key went to the launch endpoint only.
    let everything =
        [env.seen.lock().unwrap().join("\n"), client.seen.join("\n"), host.seen.join("\n"), captured_logs()];
    for text in everything {
        assert!(!text.contains(STREAM_API_KEY), "the API key leaked");
    }
}

#[tokio::test]
async fn tickets_are_single_use_and_refused_when_missing_wrong_or_expired() {
    let env = env(|_| {}).await;
    let relay = env.api.services.config.relay_url.clone();
    assert_eq!(refused(&relay).await, 401);
    assert_eq!(refused(&format!("{relay}?ticket=")).await, 401);
    assert_eq!(refused(&format!("{relay}?ticket=not-a-ticket")).await, 401);
    let started = env.start("bob").await;
    let url = started["ws_url"].as_str().unwrap();
    let first = Ws::open(url).await;
    assert_eq!(refused(url).await, 401, "a replayed ticket");
    drop(first);

    let expiring = self::env(|c| c.session_ticket_ttl = 0).await;
    let started = expiring.start("bob").await;
    assert_eq!(refused(started["ws_url"].as_str().unwrap()).await, 401, "an expired ticket");
}

#[tokio::test]
async fn nobody_joins_or_sees_another_users_session() {
    let env = env(|_| {}).await;
    let started = env.start("bob").await;
    let id = started["session_id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/sessions/{id}")),
        (Method::DELETE, format!("/sessions/{id}")),
        (Method::POST, format!("/sessions/{id}/tickets")),
    ] {
        let (status, body) = env.call(method.clone(), &path, "eve", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "eve: {method} {path} {body}");
    }
    let (_, mine) = env.call(Method::GET, "/sessions", "eve", None).await;
    assert_eq!(mine["items"], json!([]));
    let (status, _) = env.call(Method::GET, "/sessions?all=true", "eve", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, all) = env.call(Method::GET, "/sessions?all=true&owner=bob", "ada", None).await;
    assert_eq!(all["items"][0]["id"], id);
    // Without session.start on the app's group: refused, nothing launched.
    let (status, _) = env.call(Method::POST, "/sessions", "mallory", Some(json!({"app": "viewer"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = env.call(Method::POST, "/sessions", "bob", Some(json!({"app": "no-such-app"}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_field")));
    assert_eq!(env.launches.lock().unwrap().len(), 1);
}

async fn fifty_concurrent_starts(table: Arc<dyn Table>) {
    let env = Arc::new(env_on(table, room_for(3, 100)).await);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let env = Arc::clone(&env);
            tokio::spawn(
                async move { env.call(Method::POST, "/sessions", "bob", Some(json!({"app": "viewer"}))).await },
            )
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (status, body) => {
                assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("quota_exceeded")))
            }
        }
    }
    assert_eq!(created, 3);
    assert_eq!(env.launches.lock().unwrap().len(), 3);
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 3);
}

#[tokio::test]
async fn one_live_session_per_app_by_default() {
    let env = env(|_| {}).await;
    env.start("bob").await;
    let (status, body) = env.call(Method::POST, "/sessions", "bob", Some(json!({"app": "viewer"}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("quota_exceeded")));
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 1, "the refused start gave its reservation back");
}

#[tokio::test]
async fn a_client_leaving_idles_the_session_and_may_come_back() {
    let env = env(|_| {}).await;
    let (id, mut client, mut host) = env.linked("bob").await;
    let id = id.as_str();

    client.socket.close(None).await.unwrap();
    host.expect("peer_left").await;
    let (_, s) = env.call(Method::GET, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!(s["state"], "idle");
    // Signals to an absent client wait for it.
    host.signal(json!({"note": "while you were away"})).await;
    let (status, fresh) = env.call(Method::POST, &format!("/sessions/{id}/tickets"), "bob", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (mut back, welcome) = Ws::join(fresh["ws_url"].as_str().unwrap()).await;
    assert_eq!(welcome["peer"], true);
    back.expect("peer_joined").await;
    host.expect("peer_joined").await;
    assert_eq!(back.expect_signal().await, json!({"note": "while you were away"}));

    // The host leaving ends it for the client, and releases the quota.
    host.socket.close(None).await.unwrap();
    let last = back.closed().await;
    assert_eq!(last.last().map(|v| v["reason"].clone()), Some(json!("host_left")));
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0);
}

#[tokio::test]
async fn a_gone_peer_found_by_post_to_connection_ends_the_session() {
    let env = env(|_| {}).await;
    let (id, mut client, _host) = env.linked("bob").await;
    let id = id.as_str();
    // The host's connection vanishes without a $disconnect: the next post to it is a 410.
    let host_conn = env.session(id).await.host_conn.unwrap();
    env.api.connections.lose(&host_conn);
    client.signal(json!({"candidate": "into the void"})).await;
    let last = client.closed().await;
    assert_eq!(last.last().map(|v| v["type"].clone()), Some(json!("session_ended")));
    assert_eq!(env.session(id).await.ended_reason.as_deref(), Some("host_left"));
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0);
}

#[tokio::test]
async fn bad_messages_get_an_error_notice_not_a_dropped_connection() {
    let env = env(|_| {}).await;
    let started = env.start("bob").await;
    let id = started["session_id"].as_str().unwrap();
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    for (frame, code) in [
        ("not json".to_owned(), "bad_message"),
        (json!({"type": "teleport"}).to_string(), "bad_message"),
        (json!({"type": "signal"}).to_string(), "bad_message"),
        (json!({"type": "signal", "data": {}, "seq": -1}).to_string(), "bad_message"),
        (json!({"type": "signal", "data": {}, "seq": "7"}).to_string(), "bad_message"),
    ] {
        client.socket.send(Message::text(frame)).await.unwrap();
        assert_eq!(client.expect("error").await["code"], code);
    }
    client.send(json!({"type": "ping"})).await;
    client.expect("pong").await;
    // Like API Gateway: a frame over 32 KB closes the connection (1009), a binary frame too (1003).
    let huge = json!({"type": "signal", "data": "x".repeat(33 * 1024)}).to_string();
    client.socket.send(Message::text(huge)).await.unwrap();
    assert!(client.closed().await.is_empty());
    let (mut host, _) = Ws::join(&env.host_url(id)).await;
    host.socket.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert!(host.closed().await.is_empty());
}

#[tokio::test]
async fn relaying_costs_one_lookup_per_message() {
    let env = env(|_| {}).await;
    let (_, mut client, mut host) = env.linked("bob").await;
    host.settled().await;
    env.api.calls.take();
    for i in 0..10 {
        client.signal(json!({"n": i})).await;
        assert_eq!(host.expect_signal().await, json!({"n": i}));
    }
    let calls = env.api.calls.take();
    assert_eq!((calls.get, calls.total()), (10, 10), "one read of the sender's connection per message");
}

#[tokio::test]
async fn a_hundred_concurrent_sessions_without_cross_talk() {
    let env = Arc::new(env(room_for(200, 200)).await);
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let env = Arc::clone(&env);
            tokio::spawn(async move {
                let started = env.start("bob").await;
                let id = started["session_id"].as_str().unwrap().to_owned();
                let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
                let (mut host, _) = Ws::join(&env.host_url(&id)).await;
                client.expect("peer_joined").await;
                host.expect("peer_joined").await;
                for i in 0..5 {
                    client.signal(json!({"session": n, "i": i})).await;
                    host.signal(json!({"session": n, "reply": i})).await;
                }
                for i in 0..5 {
                    assert_eq!(host.expect_signal().await, json!({"session": n, "i": i}));
                    assert_eq!(client.expect_signal().await, json!({"session": n, "reply": i}));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_host_that_never_comes_ends_the_session() {
    let env = env(|c| c.session_host_timeout = 0).await;
    let started = env.start("bob").await;
    let id = started["session_id"].as_str().unwrap();
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    let ended = env.api.platform.relay().sweep().await.unwrap();
    assert_eq!(ended, 1);
    let last = client.closed().await;
    assert_eq!(last.last().map(|v| v["reason"].clone()), Some(json!("host_timeout")));
    assert_eq!(env.session(id).await.state, portico_streaming::SessionState::Stopped);
}

#[tokio::test]
async fn only_active_apps_stream() {
    let env = env(|_| {}).await;
    let (_, apps) = env.call(Method::GET, "/apps?status=ACTIVE", "bob", None).await;
    assert_eq!(apps["items"][0]["status"], "ACTIVE");
    *env.status.lock().unwrap() = "DEPLOYING";
    let (_, app) = env.call(Method::GET, "/apps/viewer", "bob", None).await;
    assert_eq!(app["status"], "DEPLOYING");
    let (_, apps) = env.call(Method::GET, "/apps?status=ACTIVE", "bob", None).await;
    assert_eq!(apps["items"], json!([]));
    let (status, body) = env.call(Method::POST, "/sessions", "bob", Some(json!({"app": "viewer"}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("app_unavailable")));
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0, "nothing reserved");
    let (status, _) = env.call(Method::GET, "/apps?status=SLEEPING", "bob", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    *env.status.lock().unwrap() = "ACTIVE";
    env.start("bob").await;
}

#[tokio::test]
async fn authorization_matrix_of_the_session_routes() {
    let env = env(room_for(20, 20)).await;
    // "manager" holds session.manage on every group, but not session.start.
    let admin = env.api.admin_token();
    let admin_call = |p: &str, b: Value| env.api.req(Method::POST, p, Some(&admin)).json(&b).send();
    admin_call("/admin/roles", json!({"name": "supervisor"})).await.unwrap();
    admin_call("/admin/roles/supervisor/permissions", json!({"group": "*", "action": "session.manage"})).await.unwrap();
    admin_call("/admin/users", json!({"username": "manager"})).await.unwrap();
    env.api.req(Method::PUT, "/admin/users/manager/roles/supervisor", Some(&admin)).send().await.unwrap();

    // Every caller acts on sessions of bob's: one they all read, one per caller to end.
    const CALLERS: [&str; 5] = ["anonymous", "mallory", "bob", "manager", "ada"];
    let shared = env.start("bob").await["session_id"].as_str().unwrap().to_owned();
    let mut to_end = Vec::new();
    for _ in CALLERS {
        to_end.push(env.start("bob").await["session_id"].as_str().unwrap().to_owned());
    }
    // route, body, expected status for CALLERS: anonymous, a user without roles, the owner
    // (session.start), a session manager, an administrator.
    let matrix: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (Method::POST, "/sessions".into(), Some(json!({"app": "viewer"})), [401, 403, 201, 403, 201]),
        (Method::GET, "/sessions".into(), None, [401, 200, 200, 200, 200]),
        (Method::GET, "/sessions?all=true".into(), None, [401, 403, 403, 403, 200]),
        (Method::GET, format!("/sessions/{shared}"), None, [401, 404, 200, 200, 200]),
        (Method::POST, format!("/sessions/{shared}/tickets"), None, [401, 404, 201, 403, 403]),
        (Method::DELETE, "/sessions/{end}".into(), None, [401, 404, 204, 204, 204]),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &matrix {
        for (i, (who, want)) in CALLERS.iter().zip(expected).enumerate() {
            let path = path.replace("{end}", &to_end[i]);
            let token = (*who != "anonymous").then(|| env.api.token(who));
            let mut r = env.api.req(method.clone(), &path, token.as_deref());
            if let Some(b) = body {
                r = r.json(b);
            }
            let status = r.send().await.unwrap().status().as_u16();
            if status != *want {
                failures.push(format!("{who}: {method} {path} -> {status} (want {want})"));
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix:\n{}", failures.join("\n"));
    // The ends took effect: the owner's, the manager's and the admin's.
    for id in &to_end[2..] {
        assert_eq!(env.session(id).await.state, portico_streaming::SessionState::Stopped, "{id}");
    }
    assert_ne!(env.session(&to_end[1]).await.state, portico_streaming::SessionState::Stopped);
}

#[tokio::test]
async fn administrators_page_through_every_session() {
    let env = env(|c| c.max_app_instances_count = 5).await;
    let mut started = Vec::new();
    for user in ["bob", "bob", "eve"] {
        started.push(env.start(user).await["session_id"].as_str().unwrap().to_owned());
    }
    let (mut seen, mut next) = (Vec::new(), None::<String>);
    loop {
        let path = match &next {
            Some(n) => format!("/sessions?all=true&limit=2&next={n}"),
            None => "/sessions?all=true&limit=2".into(),
        };
        let (status, page) = env.call(Method::GET, &path, "ada", None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(n) => next = Some(n.to_owned()),
            None => break,
        }
    }
    // Sessions sit in sixteen partitions by their id's first digit; the listing walks them in
    // order, so every session comes once and in id order across the shards.
    started.sort();
    assert_eq!(seen, started);
    for bad in ["z.", "3", "3.not-a-cursor", "..", "g.x"] {
        let (status, body) = env.call(Method::GET, &format!("/sessions?all=true&next={bad}"), "ada", None).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_cursor")), "{bad}");
    }
    // Storage: a page that ends inside a shard is 1 query; the whole walk at most 16.
    env.call(Method::GET, "/sessions?all=true", "ada", None).await; // warms ada's identity
    env.api.calls.take();
    env.call(Method::GET, "/sessions?all=true", "ada", None).await;
    let calls = env.api.calls.take();
    assert_eq!((calls.query, calls.total()), (16, 16), "one query per shard, nothing else");
    let (_, page) =
        env.call(Method::GET, &format!("/sessions?all=true&limit=1&next={}.", &started[0][..1]), "ada", None).await;
    assert_eq!(page["items"][0]["id"], started[0].as_str());
    let calls = env.api.calls.take();
    assert_eq!((calls.query, calls.total()), (1, 1), "a page that ends inside its first shard");
    // A shard's cursor handed in as another shard's is refused, not misread.
    let key = portico_streaming::session_key(&started[0]);
    let item = env.api.services.table.get(&key).await.unwrap().unwrap();
    let inner = portico_core::store::Cursor::after_item(&item, &portico_core::store::Partition::Table(key.pk.clone()));
    let (own, other) = (&started[0][..1], if started[0].starts_with('0') { "1" } else { "0" });
    for (shard, status) in [(own, StatusCode::OK), (other, StatusCode::BAD_REQUEST)] {
        let cursor = format!("{shard}.{}", inner.as_str());
        let (got, _) = env.call(Method::GET, &format!("/sessions?all=true&next={cursor}"), "ada", None).await;
        assert_eq!(got, status, "shard {shard}");
    }
    let (_, eves) = env.call(Method::GET, "/sessions?all=true&owner=eve", "ada", None).await;
    assert_eq!(eves["items"].as_array().unwrap().len(), 1);
    let (_, bobs) = env.call(Method::GET, "/sessions", "bob", None).await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 2);
    let (status, body) = env.call(Method::GET, "/sessions?state=active", "bob", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")));
}

#[tokio::test]
async fn each_session_route_makes_a_known_number_of_storage_calls() {
    let env = env(|_| {}).await;
    env.call(Method::GET, "/sessions", "bob", None).await; // bob's identity is read once
    env.api.calls.take();
    let id = env.start("bob").await["session_id"].as_str().unwrap().to_owned();
    let c = env.api.calls.take();
    assert_eq!(
        (c.get, c.add, c.put, c.total()),
        (1, 2, 4, 7),
        "the app read, quota and instance held, marker, session, two tickets: {c:?}"
    );
    env.call(Method::GET, "/sessions", "bob", None).await;
    let c = env.api.calls.take();
    assert_eq!((c.query, c.total()), (1, 1), "the own listing: one index query");
    env.call(Method::GET, &format!("/sessions/{id}"), "bob", None).await;
    let c = env.api.calls.take();
    assert_eq!((c.get, c.total()), (1, 1), "one read");
    let (status, _) = env.call(Method::DELETE, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let c = env.api.calls.take();
    assert_eq!(
        (c.get, c.put, c.add, c.delete, c.total()),
        (2, 1, 2, 1, 6),
        "read for the access check and again by the end's conditional update, stopped written, quota and \
         instance released, marker removed (no socket open): {c:?}"
    );
}

async fn sweeper_ends_idle_sessions(table: Arc<dyn Table>) {
    let env = env_on(table, |c| {
        c.session_idle_timeout = 0;
        c.max_app_instances_count = 20;
        c.quota_sessions = 20;
    })
    .await;
    let sweeper = env.api.platform.relay();
    // History: ten ended sessions.
    for _ in 0..10 {
        let id = env.start("bob").await["session_id"].as_str().unwrap().to_owned();
        env.call(Method::DELETE, &format!("/sessions/{id}"), "bob", None).await;
    }
    let (id, mut client, mut host) = env.linked("bob").await;
    let id = id.as_str();
    host.settled().await;
    env.api.calls.take();
    assert_eq!(sweeper.sweep().await.unwrap(), 0, "an active session is not overdue");
    let calls = env.api.calls.take();
    assert_eq!((calls.query, calls.get, calls.total()), (1, 1, 2), "the live marker and its session, no history");

    client.socket.close(None).await.unwrap();
    host.expect("peer_left").await;
    assert_eq!(sweeper.sweep().await.unwrap(), 1);
    let last = host.closed().await;
    assert_eq!(last.last().map(|v| v["reason"].clone()), Some(json!("idle_timeout")));
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0);
    // Ended sessions stay readable for session_history_ttl, then expire.
    let item = env.api.services.table.get(&portico_streaming::session_key(id)).await.unwrap().unwrap();
    let ttl = env.api.services.config.session_history_ttl as i64;
    assert!(item.expires_at.is_some_and(|t| (t - portico_core::store::now_epoch() - ttl).abs() <= 5));
    env.api.calls.take();
    assert_eq!(sweeper.sweep().await.unwrap(), 0);
    assert_eq!(env.api.calls.take().total(), 1, "nothing live: one empty query");
}

#[tokio::test]
async fn the_sweeper_ends_sessions_at_their_maximum_length() {
    let env = env(|c| c.session_ttl = 0).await;
    let (id, mut client, mut host) = env.linked("bob").await;
    let id = id.as_str();
    let ended = env.api.platform.relay().sweep().await.unwrap();
    assert_eq!(ended, 1);
    for side in [&mut client, &mut host] {
        let last = side.closed().await;
        assert_eq!(last.last().map(|v| v["reason"].clone()), Some(json!("max_duration")));
    }
    let (_, s) = env.call(Method::GET, &format!("/sessions/{id}"), "bob", None).await;
    assert_eq!((s["state"].as_str(), s["ended_reason"].as_str()), (Some("stopped"), Some("max_duration")));
}

#[tokio::test]
async fn one_client_connection_per_session_at_a_time() {
    let env = env(|_| {}).await;
    let (id, mut client, mut host) = env.linked("bob").await;
    let id = id.as_str();
    let tickets = format!("/sessions/{id}/tickets");
    let (status, body) = env.call(Method::POST, &tickets, "bob", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "client connected");

    client.socket.close(None).await.unwrap();
    host.expect("peer_left").await;
    // Two tickets for the idle session: the first to connect wins, the second is refused.
    let (_, first) = env.call(Method::POST, &tickets, "bob", None).await;
    let (_, second) = env.call(Method::POST, &tickets, "bob", None).await;
    let (mut back, _) = Ws::join(first["ws_url"].as_str().unwrap()).await;
    back.expect("peer_joined").await;
    host.expect("peer_joined").await;
    assert_eq!(refused(second["ws_url"].as_str().unwrap()).await, 409);
    back.signal(json!({"still": "linked"})).await;
    assert_eq!(host.expect_signal().await, json!({"still": "linked"}));
}

#[tokio::test]
async fn a_flooding_connection_is_told_to_slow_down_then_closed() {
    let env = env(|c| {
        c.relay_rate_per_second = 1;
        c.relay_rate_burst = 3;
    })
    .await;
    let (_, mut client, mut host) = env.linked("bob").await;
    // The hello used one token of the burst of 3: two signals pass, then refusals (unless
    // seconds pass between sends, refilling one token per second).
    for i in 0..5 {
        client.signal(json!({"n": i})).await;
    }
    assert_eq!(client.expect("error").await["code"], "rate_limited");
    assert_eq!(host.expect_signal().await, json!({"n": 0}));
    assert_eq!(host.expect_signal().await, json!({"n": 1}));
    // Keeping on past 50 refusals closes the connection.
    for i in 0..60 {
        client.signal(json!({"flood": i})).await;
    }
    let before_close = client.closed().await;
    assert!(before_close.iter().all(|v| v["code"] == "rate_limited"), "{before_close:?}");
    assert!(before_close.len() <= 50);
}

/// The embedded store, except that writing tickets fails (as DynamoDB does once throttled or
/// unreachable past its retries).
struct TicketsFail(MemoryTable);

#[async_trait::async_trait]
impl Table for TicketsFail {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        if item.key.pk.starts_with("TICKET#") {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.0.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.0.delete(key, condition).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.0.query(query).await
    }
    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError> {
        self.0.add(key, counters, expires_at).await
    }
}

#[tokio::test]
async fn a_start_that_fails_half_way_leaves_nothing_held() {
    let env = env_on(Arc::new(TicketsFail(MemoryTable::new())), |_| {}).await;
    let (status, body) = env.call(Method::POST, "/sessions", "bob", Some(json!({"app": "viewer"}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")), "{body}");
    assert!(env.launches.lock().unwrap().is_empty(), "nothing launched");
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0);
    let (_, mine) = env.call(Method::GET, "/sessions", "bob", None).await;
    assert_eq!(mine["items"][0]["state"], "stopped");
    assert_eq!(mine["items"][0]["ended_reason"], "start_failed");
    // Nothing is released twice: the sweeper finds nothing live.
    assert_eq!(env.api.platform.relay().sweep().await.unwrap(), 0);
    let (_, me) = env.call(Method::GET, "/auth/me", "bob", None).await;
    assert_eq!(me["usage"]["sessions"], 0);
}

/// The host joins while the client is still sending: every signal arrives once, in order,
/// across the switch from buffered to direct delivery.
async fn order_holds_while_the_peer_joins(table: Arc<dyn Table>) {
    let env = Arc::new(env_on(table, |c| c.max_app_instances_count = 5).await);
    for _ in 0..3 {
        let started = env.start("bob").await;
        let id = started["session_id"].as_str().unwrap().to_owned();
        let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
        let host_url = env.host_url(&id);
        let joining = tokio::spawn(async move {
            let (mut host, _) = Ws::join(&host_url).await;
            let mut got = Vec::new();
            while got.len() < 60 {
                let v = host.recv().await.expect("host socket open");
                if v["type"] == "signal" {
                    got.push(v["data"]["n"].as_i64().unwrap());
                }
            }
            got
        });
        for n in 0..60 {
            client.signal(json!({"n": n})).await;
            if n == 20 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(joining.await.unwrap(), (0..60).collect::<Vec<i64>>());
        env.call(Method::DELETE, &format!("/sessions/{id}"), "bob", None).await;
    }
}
