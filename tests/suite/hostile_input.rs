//! Hostile input against the running emulator: bodies that are not objects, values that must
//! never come back in an error, the emulator's own limits, and an app published a moment ago.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::SinkExt;
use portico_core::store::memory::MemoryTable;
use portico_tests::{FakeServer, TestApi, Ws, app_body, test_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, Utf8Bytes};

/// What a JSON field holds, so a test can send it the wrong kind.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Flag,
    Number,
}

/// A route that reads a JSON body: method, path, a valid body, and its fields.
type JsonRoute = (Method, &'static str, Value, Vec<(&'static str, Kind)>);

/// Every route that reads a JSON body.
fn json_routes() -> Vec<JsonRoute> {
    use Kind::*;
    let quota = json!({"sessions": 1, "jobs": 1, "cpu": 1, "memory": 1, "storage": 1});
    let quota_fields =
        vec![("sessions", Number), ("jobs", Number), ("cpu", Number), ("memory", Number), ("storage", Number)];
    let app_fields = vec![
        ("slug", Text),
        ("function_id", Text),
        ("function_version_id", Text),
        ("title", Text),
        ("description", Text),
        ("version", Text),
        ("image", Text),
        ("icon", Text),
        ("category", Text),
        ("product_area", Text),
        ("group", Text),
    ];
    vec![
        (Method::PUT, "/apps/target", app_body("target"), app_fields),
        (
            Method::POST,
            "/admin/users",
            json!({"username": "mallory", "password": "a-password", "admin": true}),
            vec![("username", Text), ("password", Text), ("admin", Flag)],
        ),
        (Method::PUT, "/admin/users/carol/admin", json!({"admin": true}), vec![("admin", Flag)]),
        (Method::PUT, "/admin/users/carol/password", json!({"password": "new-password"}), vec![("password", Text)]),
        (Method::PUT, "/admin/users/carol/quota", quota.clone(), quota_fields.clone()),
        (
            Method::POST,
            "/admin/roles",
            json!({"name": "ops", "description": "d"}),
            vec![("name", Text), ("description", Text)],
        ),
        (
            Method::POST,
            "/admin/roles/viewers/permissions",
            json!({"group": "*", "action": "app.delete"}),
            vec![("group", Text), ("action", Text)],
        ),
        (Method::PUT, "/admin/roles/viewers/quota", quota, quota_fields),
        (Method::POST, "/sessions", json!({"app": "viewer"}), vec![("app", Text)]),
    ]
}

/// The emulator with the demo streaming platform, an app `viewer`, a user `carol` and a role
/// `viewers`.
async fn api() -> TestApi {
    let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), test_config()).await;
    let admin = api.admin_token();
    for (m, p, b) in [
        (Method::PUT, "/apps/viewer", Some(app_body("viewer"))),
        (Method::POST, "/admin/users", Some(json!({"username": "carol"}))),
        (Method::POST, "/admin/roles", Some(json!({"name": "viewers"}))),
    ] {
        let mut r = api.req(m, p, Some(&admin));
        if let Some(b) = b {
            r = r.json(&b);
        }
        assert!(r.send().await.unwrap().status().is_success(), "{p}");
    }
    api
}

async fn send(api: &TestApi, method: Method, path: &str, body: String) -> (StatusCode, String) {
    let r = api
        .req(method, path, Some(&api.admin_token()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

fn code(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap_or(Value::Null)["code"].clone()
}

#[tokio::test]
async fn every_json_route_takes_an_object_and_nothing_else() {
    let api = api().await;
    for (method, path, body, fields) in json_routes() {
        // The object's values in field order: what serde would read as the struct.
        let as_array = Value::Array(fields.iter().map(|(f, _)| body[*f].clone()).collect());
        for wrong in [as_array, json!(true), json!(5), json!("text"), Value::Null] {
            let (status, text) = send(&api, method.clone(), path, wrong.to_string()).await;
            assert_eq!(
                (status, code(&text)),
                (StatusCode::BAD_REQUEST, json!("invalid_body")),
                "{method} {path} {wrong}: {text}"
            );
        }
    }
    // Nothing was written: no admin user, no grant, no app, no session.
    let admin = api.admin_token();
    let get = |p: &'static str| api.req(Method::GET, p, Some(&admin)).send();
    assert_eq!(get("/admin/users/mallory").await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(get("/apps/target").await.unwrap().status(), StatusCode::NOT_FOUND);
    let carol: Value = get("/admin/users/carol").await.unwrap().json().await.unwrap();
    assert_eq!(carol["admin"], false);
    let perms: Value = get("/admin/roles/viewers/permissions").await.unwrap().json().await.unwrap();
    assert_eq!(perms["items"], json!([]), "{perms}");
    let sessions: Value = get("/sessions").await.unwrap().json().await.unwrap();
    assert_eq!(sessions["items"], json!([]));
}

/// A member named twice anywhere in a body is refused (`invalid_json`), whichever copy a
/// reader would keep: Portico never acts on a body that a proxy or a log reads otherwise.
#[tokio::test]
async fn a_member_named_twice_is_refused_on_every_json_route() {
    let api = api().await;
    for (method, path, body, fields) in json_routes() {
        let (first, _) = fields[0];
        let rest = body.to_string();
        // The first member again, in front: `{"username": "mallory", "username": "mallory", ...}`.
        let twice = format!("{{\"{first}\": {}, {}", body[first], &rest[1..]);
        let (status, text) = send(&api, method.clone(), path, twice.clone()).await;
        assert_eq!(
            (status, code(&text)),
            (StatusCode::BAD_REQUEST, json!("invalid_json")),
            "{method} {path} {twice}: {text}"
        );
        assert!(text.contains(&format!("duplicate member '{first}'")), "{text}");
    }
    let admin = api.admin_token();
    let get = |p: &'static str| api.req(Method::GET, p, Some(&admin)).send();
    assert_eq!(get("/admin/users/mallory").await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(get("/apps/target").await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_relay_message_must_be_an_object_and_its_errors_quote_nothing() {
    let api = api().await;
    let (status, text) = send(&api, Method::POST, "/sessions", json!({"app": "viewer"}).to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let started: Value = serde_json::from_str(&text).unwrap();
    let mut ws = Ws::open(started["ws_url"].as_str().unwrap()).await;
    for frame in
        [json!(["ping"]), json!(["hello"]), json!({"type": 918273645501_i64}), json!({"type": ["s3cr3t-frame"]})]
    {
        ws.socket.send(Message::text(frame.to_string())).await.unwrap();
        let notice = ws.expect("error").await;
        assert_eq!(notice["code"], "bad_message", "{frame}: {notice}");
        assert!(!notice.to_string().contains("918273645501") && !notice.to_string().contains("s3cr3t"), "{notice}");
    }
    // A member named twice: which one the relay would act on is not the sender's to leave open.
    ws.socket.send(Message::text(r#"{"type": "signal", "type": "ping"}"#)).await.unwrap();
    let notice = ws.expect("error").await;
    assert_eq!(notice["code"], "bad_message", "{notice}");
    ws.settled().await; // still open, and an object still works
}

#[tokio::test]
async fn no_error_quotes_a_submitted_value() {
    let api = api().await;
    let mut n = 0_u64;
    for (method, path, body, fields) in json_routes() {
        for (field, kind) in fields {
            n += 1;
            // A value that cannot be mistaken for anything else in a response.
            let (wrong, needle) = match kind {
                Kind::Text => (json!(918273645500_u64 + n), (918273645500_u64 + n).to_string()),
                Kind::Flag | Kind::Number => {
                    let s = format!("leaked-value-{n}-x7q");
                    (json!(s), s)
                }
            };
            let mut bad = body.clone();
            bad[field] = wrong;
            let (status, text) = send(&api, method.clone(), path, bad.to_string()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} {field}: {text}");
            assert!(!text.contains(&needle), "{method} {path}: the error quotes {field}'s value: {text}");
            assert!(text.contains(field), "{method} {path}: the error should name {field}: {text}");
        }
    }
    // The token endpoint's OAuth errors (a form, so wrong types do not apply): its refusals
    // never repeat the password or other values sent.
    let secret = "pw-S3cr3t-918273";
    let forms = [
        format!("grant_type=password&username=nobody&password={secret}"),
        format!("grant_type={secret}&username=ada&password=x"),
        format!("grant_type=password&username=ada&password={secret}&password={secret}"),
        format!("grant_type=password&username={secret}%00&password=x"),
    ];
    for form in forms {
        let r = api
            .req(Method::POST, "/auth/token", None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
            .await
            .unwrap();
        let (status, text) = (r.status(), r.text().await.unwrap());
        assert!(status.is_client_error(), "{form}: {status}");
        assert!(!text.contains(secret), "{form}: {text}");
    }
    let r = api
        .req(Method::POST, "/auth/token", None)
        .json(&json!({"grant_type": "password", "username": "ada", "password": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.text().await.unwrap().contains(secret));
}

#[tokio::test]
async fn the_emulators_own_limits_answer_in_portico_error_shape() {
    let api = api().await;
    let long_uri = format!("GET /apps?x={} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(70 * 1024));
    let (status, body) = api.raw(long_uri.as_bytes()).await;
    assert_eq!((status, &body["code"]), (414, &json!("uri_too_long")), "{body}");
    let uri_over_quota = format!("GET /apps?x={} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(11 * 1024));
    assert_eq!(api.raw(uri_over_quota.as_bytes()).await.0, 414);

    for size in [11 * 1024, 500 * 1024] {
        let big_header = format!("GET /apps HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "b".repeat(size));
        let (status, body) = api.raw(big_header.as_bytes()).await;
        assert_eq!((status, &body["code"]), (431, &json!("headers_too_large")), "{size}: {body}");
    }
    // Under the quota the request goes through.
    let fits = format!("GET /apps HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: {}\r\n\r\n", "c".repeat(9 * 1024));
    assert_eq!(api.raw(fits.as_bytes()).await.0, 401);

    // On a kept-alive connection too (reqwest reuses its connection).
    let client = reqwest::Client::new();
    assert_eq!(client.get(api.url("/.well-known/jwks.json")).send().await.unwrap().status(), StatusCode::OK);
    let r = client.get(api.url("/.well-known/jwks.json")).header("x-big", "d".repeat(12 * 1024)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "headers_too_large");

    let r = api
        .req(Method::PUT, "/apps/huge", Some(&api.admin_token()))
        .header("content-type", "application/json")
        .body(vec![b' '; 11 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "payload_too_large");
}

#[tokio::test]
async fn websocket_messages_over_the_relay_limit_get_a_notice_and_frames_over_api_gateways_close() {
    let api = api().await;
    let (_, text) = send(&api, Method::POST, "/sessions", json!({"app": "viewer"}).to_string()).await;
    let started: Value = serde_json::from_str(&text).unwrap();
    let url = started["ws_url"].as_str().unwrap().to_owned();

    // 64 KB in frames of 32 KB, as API Gateway accepts it: the relay says too_large.
    let mut ws = Ws::open(&url).await;
    let message = json!({"type": "signal", "data": "e".repeat(64 * 1024)}).to_string().into_bytes();
    let chunks: Vec<&[u8]> = message.chunks(32 * 1024).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
        ws.socket.send(Message::Frame(frame)).await.unwrap();
    }
    assert_eq!(ws.expect("error").await["code"], "too_large");
    ws.settled().await;

    // One 200 KB frame: over API Gateway's 32 KB frame quota, so the socket closes with 1009.
    ws.socket.send(Message::Text(Utf8Bytes::from("f".repeat(200 * 1024)))).await.unwrap();
    assert_eq!(ws.close_code().await, Some(CloseCode::Size));
}

#[tokio::test]
async fn an_app_published_a_moment_ago_can_be_streamed_at_once() {
    let api = api().await;
    let admin = api.admin_token();
    // The function list is cached (nvcf_cache_ttl, 60 s by default) by this listing.
    let listed: Value = api.req(Method::GET, "/apps", Some(&admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["items"][0]["status"], "ACTIVE");
    let mut fresh = app_body("fresh");
    fresh["function_id"] = json!("f-fresh");
    fresh["function_version_id"] = json!("v-fresh");
    let r = api.req(Method::PUT, "/apps/fresh", Some(&admin)).json(&fresh).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // The listing says so too, not UNKNOWN until the cache expires.
    let listed: Value = api.req(Method::GET, "/apps", Some(&admin)).send().await.unwrap().json().await.unwrap();
    let listed_fresh = listed["items"].as_array().unwrap().iter().find(|a| a["slug"] == "fresh").unwrap();
    assert_eq!(listed_fresh["status"], "ACTIVE", "{listed}");
    let app: Value = api.req(Method::GET, "/apps/fresh", Some(&admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(app["status"], "ACTIVE", "{app}");
    let r = api.req(Method::POST, "/sessions", Some(&admin)).json(&json!({"app": "fresh"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn an_app_the_platform_does_not_list_forces_one_refresh_and_is_unknown() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&fetches);
    let platform = FakeServer::start(Arc::new(move |_, path, _, _| match path {
        "/list" => {
            count.fetch_add(1, Ordering::SeqCst);
            (200, json!({"functions": []}).to_string())
        }
        _ => (404, "{}".into()),
    }))
    .await;
    let mut config = test_config();
    config.stream_launch_url = Some(format!("{}/launch", platform.url));
    config.stream_functions_url = Some(format!("{}/list", platform.url));
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let admin = api.admin_token();
    api.req(Method::PUT, "/apps/viewer", Some(&admin)).json(&app_body("viewer")).send().await.unwrap();
    for _ in 0..3 {
        let r = api.req(Method::POST, "/sessions", Some(&admin)).json(&json!({"app": "viewer"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "app_unavailable");
        assert!(body["message"].as_str().unwrap().contains("status UNKNOWN"), "{body}");
    }
    // One fetch fills the cache, one is forced by the unknown function; then the rate limit.
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}
