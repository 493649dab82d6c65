//! The platform's limits, and hostile input at them, against the running emulator: paths
//! decoded as API Gateway decodes them, Lambda's 6 MB invocation payload, deep and huge JSON,
//! text that is not UTF-8, lone surrogates, oversized forms and tokens, YAML and protobuf
//! bodies nested past their parsers' limits, and WebSocket frames API Gateway would refuse.
//! Each refusal is a 4xx with a JSON error and writes nothing.

use std::sync::Arc;

use futures_util::SinkExt;
use portico_core::store::memory::MemoryTable;
use portico_tests::{TestApi, Ws, app_body, test_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// Lambda's synchronous invocation payload, as its refusal states it.
const LAMBDA_LIMIT: &str = "6291456";

/// The emulator with the demo platform, an app `usd-validate`, users `carol` and
/// `ana@lab.example`; the administrator already known (so later requests write nothing).
async fn api() -> TestApi {
    let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), test_config()).await;
    let admin = api.admin_token();
    for (m, p, b) in [
        (Method::PUT, "/apps/usd-validate", app_body("usd-validate")),
        (Method::POST, "/admin/users", json!({"username": "carol"})),
        (Method::POST, "/admin/users", json!({"username": "ana@lab.example"})),
    ] {
        assert!(api.req(m, p, Some(&admin)).json(&b).send().await.unwrap().status().is_success(), "{p}");
    }
    api
}

/// `body` to `path` as the administrator: the status and the answer as JSON (`Null` if not).
async fn send(api: &TestApi, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = api
        .req(method, path, Some(&api.admin_token()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn get(api: &TestApi, path: &str) -> (StatusCode, Value) {
    send(api, Method::GET, path, "application/json", vec![]).await
}

/// No write reached the store since the last call.
fn nothing_written(api: &TestApi, what: &str) {
    let calls = api.calls.take();
    assert_eq!((calls.put, calls.delete, calls.add), (0, 0, 0), "{what}: {calls:?}");
}

#[tokio::test]
async fn paths_reach_the_functions_decoded_as_api_gateway_decodes_them() {
    let api = api().await;
    // An escaped character finds the record, as on a deployment, where API Gateway decodes the
    // path (twice) before routing and before the function sees it.
    for path in ["/apps/usd%2Dvalidate", "/apps/%75sd-validate", "/apps/usd%252Dvalidate", "/apps/usd-validate%3Fx"] {
        let (status, app) = get(&api, path).await;
        assert_eq!((status, &app["slug"]), (StatusCode::OK, &json!("usd-validate")), "{path}: {app}");
    }
    let (status, user) = get(&api, "/admin/users/ana%40lab.example").await;
    assert_eq!((status, &user["username"]), (StatusCode::OK, &json!("ana@lab.example")), "{user}");

    api.calls.take();
    let app = serde_json::to_vec(&app_body("x")).unwrap();
    // `%2F` is a separator once decoded: a path with one more segment, which no route serves.
    for (method, path) in [(Method::GET, "/apps/usd%2Fvalidate"), (Method::PUT, "/apps/a%2Fb")] {
        let (status, body) = send(&api, method.clone(), path, "application/json", app.clone()).await;
        assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{method} {path}: {body}");
    }
    // Malformed escapes and bytes that are not UTF-8 once decoded: refused before any function.
    for path in ["/apps/%FF", "/apps/caf%C3", "/apps/a%2", "/apps/percent%25done", "/admin/users/%C0%AF"] {
        let (status, body) = send(&api, Method::PUT, path, "application/json", app.clone()).await;
        assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_path")), "{path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.contains("%FF")), "{body}");
    }
    // Decoded text that no slug has: the function's own refusal, naming the field.
    let (status, body) = send(&api, Method::PUT, "/apps/caf%C3%A9", "application/json", app.clone()).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_field")), "{body}");
    for path in ["/apps/%zz", "/apps/a%20b", "/apps/%00"] {
        let (status, body) = get(&api, path).await;
        assert!(status.is_client_error() && body["code"].is_string(), "{path}: {status} {body}");
    }
    nothing_written(&api, "refused paths");
    let (_, listed) = get(&api, "/apps").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn requests_over_lambdas_payload_are_refused_as_a_deployment_refuses_them() {
    let api = api().await;
    api.calls.take();
    let lambda_refused = |status: StatusCode, body: &Value| {
        status == StatusCode::PAYLOAD_TOO_LARGE
            && body["code"] == "payload_too_large"
            && body["message"].as_str().is_some_and(|m| m.contains(LAMBDA_LIMIT))
    };
    // 7 MB of JSON: under API Gateway's 10 MB, over Lambda's 6 MB.
    let text = format!(r#"{{"title": "{}"}}"#, "a".repeat(7 << 20)).into_bytes();
    // 3.5 MB of quotes and backslashes: each is escaped in the event's JSON, so it is 7 MB there.
    let escaped = format!(r#"{{"title": "{}"}}"#, r#"\""#.repeat(1_750_000)).into_bytes();
    // 5 MB that is not UTF-8 travels base64-encoded: 6.7 MB.
    let binary = vec![0xFF_u8; 5 << 20];
    for (what, body) in [("text", text), ("escaped", escaped), ("binary", binary)] {
        let (status, answer) = send(&api, Method::PUT, "/apps/big", "application/json", body).await;
        assert!(lambda_refused(status, &answer), "{what}: {status} {answer}");
    }
    // 5 MB of numbers fits Lambda's payload; the function refuses it by its size, unparsed.
    let mut numbers = "1,".repeat(5 << 19);
    numbers.insert(0, '[');
    numbers.push_str("1]");
    for path in ["/apps/big", "/admin/users", "/sessions"] {
        let method = if path == "/apps/big" { Method::PUT } else { Method::POST };
        let (status, answer) = send(&api, method, path, "application/json", numbers.clone().into_bytes()).await;
        assert_eq!((status, &answer["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large")));
        assert!(answer["message"].as_str().is_some_and(|m| m.contains("65536")), "{path}: {answer}");
    }
    nothing_written(&api, "oversized bodies");
    assert_eq!(get(&api, "/apps/big").await.0, StatusCode::NOT_FOUND);
}

/// Routes that read a JSON body, each with a valid body.
fn json_routes() -> Vec<(Method, &'static str, Value)> {
    vec![
        (Method::PUT, "/apps/target", app_body("target")),
        (Method::POST, "/admin/users", json!({"username": "mallory", "password": "a-password"})),
        (Method::PUT, "/admin/users/carol/quota", json!({"sessions": 1})),
        (Method::POST, "/admin/roles", json!({"name": "ops"})),
        (Method::POST, "/sessions", json!({"app": "usd-validate"})),
        (Method::POST, "/jobs", json!({"recipe": {"meta_yml": "x", "steps": "true"}})),
    ]
}

#[tokio::test]
async fn deep_nesting_lone_surrogates_and_bytes_that_are_not_utf8_are_400s() {
    let api = api().await;
    api.calls.take();
    let deep = "[".repeat(60_000); // within the 64 KB body cap: serde_json's nesting limit stops it
    let deep_object = r#"{"a":"#.repeat(12_000);
    for (method, path, _) in json_routes() {
        let bodies: [(&str, Vec<u8>); 4] = [
            ("deep array", deep.clone().into_bytes()),
            ("deep object", deep_object.clone().into_bytes()),
            ("lone surrogate", br#"{"title": "\ud800", "username": "\udfff"}"#.to_vec()),
            ("not UTF-8", b"{\"title\": \"caf\xe9\", \"name\": \"\xff\xfe\"}".to_vec()),
        ];
        for (what, body) in bodies {
            let (status, answer) = send(&api, method.clone(), path, "application/json", body).await;
            assert_eq!(
                (status, &answer["code"]),
                (StatusCode::BAD_REQUEST, &json!("invalid_json")),
                "{method} {path} {what}: {answer}"
            );
            assert!(answer["message"].as_str().is_some_and(|m| m.starts_with("the body is not valid JSON")));
        }
        // 100,000 levels are over the body cap: refused by size before any parsing.
        let (status, _) = send(&api, method.clone(), path, "application/json", "[".repeat(100_000).into()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
    }
    nothing_written(&api, "hostile JSON");
    // The process is whole, and a surrogate *pair* is text like any other.
    assert_eq!(get(&api, "/healthz").await.0, StatusCode::OK);
    let mut app = app_body("emoji");
    app["title"] = json!("SMILE");
    let app = app.to_string().replace("SMILE", r#"\ud83d\ude00 smile"#);
    let (status, created) = send(&api, Method::PUT, "/apps/emoji", "application/json", app.into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["title"].as_str().is_some_and(|t| t.starts_with('\u{1F600}')), "{created}");
}

#[tokio::test]
async fn headers_tokens_and_query_strings_past_their_limits_are_client_errors() {
    let api = api().await;
    api.calls.take();
    let raw_auth = |value: Vec<u8>| {
        api.http
            .get(api.url("/apps"))
            .header("authorization", reqwest::header::HeaderValue::from_bytes(&value).unwrap())
    };
    let mut tokens: Vec<Vec<u8>> = vec![b"Bearer \xff\xfe\x80token".to_vec(), b"Bearer caf\xe9".to_vec()];
    // 8 KB of token, within API Gateway's 10 KB head: refused without decoding it.
    tokens.push(format!("Bearer {}", "a".repeat(8 * 1024)).into_bytes());
    tokens.push(format!("Bearer {}.e30.sig", "a".repeat(8 * 1024)).into_bytes());
    // A JWT whose header is 2,500 levels of nested arrays.
    let header = format!(r#"{{"alg":{}{}}}"#, "[".repeat(2_500), "]".repeat(2_500));
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    tokens.push(format!("Bearer {}.{}.c2ln", b64(&header), b64(r#"{"sub":"admin"}"#)).into_bytes());
    for token in tokens {
        let r = raw_auth(token.clone()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", String::from_utf8_lossy(&token[..40.min(token.len())]));
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    }
    // A precondition header with bytes over 0x7F.
    let r = api
        .req(Method::DELETE, "/apps/usd-validate", Some(&api.admin_token()))
        .header("if-match", reqwest::header::HeaderValue::from_bytes(b"\"\xff\"").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_header");
    // Query strings whose escapes are not UTF-8.
    // Latin-1's é in a filter was read as U+FFFD, matching nothing, silently.
    for path in ["/apps?category=caf%E9", "/apps?limit=%FF", "/apps?%FF%FE=1", "/sessions?app=%C3", "/jobs?limit=1%00"]
    {
        let (status, body) = get(&api, path).await;
        assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_query")), "{path}: {body}");
    }
    nothing_written(&api, "refused headers");
    assert_eq!(get(&api, "/apps/usd-validate").await.0, StatusCode::OK, "not deleted");
}

#[tokio::test]
async fn bytes_no_uri_may_hold_are_refused_with_a_json_error() {
    let api = api().await;
    for line in [&b"GET /apps/caf\xe9 HTTP/1.1"[..], b"GET /apps?x=\xff HTTP/1.1", b"GET /apps/a\x01b HTTP/1.1"] {
        let mut request = line.to_vec();
        request.extend_from_slice(b"\r\nHost: a\r\nConnection: close\r\n\r\n");
        let (status, body) = api.raw(&request).await;
        assert_eq!((status, &body["code"]), (400, &json!("invalid_request")), "{}", String::from_utf8_lossy(line));
    }
}

#[tokio::test]
async fn forms_are_capped_before_they_are_read() {
    let api = api().await;
    api.calls.take();
    let big = format!("grant_type=password&username=carol&password={}", "p".repeat(100 * 1024));
    let form = "application/x-www-form-urlencoded";
    let (status, body) = send(&api, Method::POST, "/auth/token", form, big.clone().into_bytes()).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &json!("invalid_request")), "{body}");
    for path in ["/ogdc/token", "/ogdc/create_user"] {
        let (status, body) = send(&api, Method::POST, path, form, big.clone().into_bytes()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("bytes")), "{path}: {body}");
    }
    // Escapes that are not UTF-8 in a form: a refused login, not a fault.
    let bad = b"grant_type=password&username=%FF%FE&password=%C3".to_vec();
    let (status, body) = send(&api, Method::POST, "/auth/token", form, bad).await;
    assert_eq!((status, &body["error"]), (StatusCode::BAD_REQUEST, &json!("invalid_grant")), "{body}");
    let r = api.http.post(api.url("/console/signin")).header("content-type", form).body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let calls = api.calls.take();
    assert_eq!((calls.put, calls.delete), (0, 0), "{calls:?}");
}

#[tokio::test]
async fn recipes_and_rpc_bodies_nested_past_their_parsers_limits_are_400s() {
    let api = crate::rpc::gateway("http://127.0.0.1:1".into(), |_| {}).await;
    let admin = api.admin_token();
    api.calls.take();
    let deep_flow = format!("name: x\nworkflow: {}\n", "[".repeat(10_000));
    let deep_block: String = (0..200).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect();
    let anchors = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n".to_owned()
        + &(0..150).map(|i| format!("c{i}: [*b, *b, *b, *b]\n")).collect::<String>();
    for meta in [deep_flow, deep_block, anchors] {
        let body = json!({"recipe": {"meta_yml": meta, "steps": "true\n"}});
        let r = api.req(Method::POST, "/jobs", Some(&admin)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_recipe");
    }
    // The gateway's JSON -> protobuf transcoder: gRPC's INVALID_ARGUMENT (3), in its shape.
    for body in [
        "[".repeat(60_000).into_bytes(),
        format!(r#"{{"job": {}}}"#, r#"{"id":"#.repeat(10_000)).into_bytes(),
        br#"{"job": {"id": "\udc00"}}"#.to_vec(),
        b"{\"job\": {\"id\": \"\xff\"}}".to_vec(),
    ] {
        let r = api.req(Method::POST, "/job.JobInterface/GetFrames", Some(&admin)).body(body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], 3, "{answer}");
    }
    // 5 MB of numbers: refused by its size, unparsed.
    let numbers = format!("[{}1]", "1,".repeat(5 << 19));
    let r = api.req(Method::POST, "/job.JobInterface/GetFrames", Some(&admin)).body(numbers).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.json::<Value>().await.unwrap()["message"].as_str().is_some_and(|m| m.contains("65536")));
    nothing_written(&api, "refused recipes and RPC bodies");
    assert_eq!(api.req(Method::GET, "/healthz", None).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn websocket_frames_api_gateway_refuses_close_the_socket_with_its_code() {
    let api = api().await;
    // One session at a time (the quota): each part stops its session.
    let session = async || {
        let start = br#"{"app": "usd-validate"}"#.to_vec();
        let (status, started) = send(&api, Method::POST, "/sessions", "application/json", start).await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let id = started["session_id"].as_str().unwrap().to_owned();
        (Ws::open(started["ws_url"].as_str().unwrap()).await, format!("/sessions/{id}"))
    };
    let (mut ws, first) = session().await;
    // Within the relay's 32 KB: nested past serde_json's limit, a lone surrogate.
    for text in ["[".repeat(30_000), r#"{"type": "signal", "data": "\ud800"}"#.to_owned()] {
        ws.socket.send(Message::text(text)).await.unwrap();
        assert_eq!(ws.expect("error").await["code"], "bad_message");
    }
    ws.settled().await;

    // A text frame that is not UTF-8: 1007, as RFC 6455 asks.
    let frame = Frame::message(b"{\"type\": \"\xff\"}".to_vec(), OpCode::Data(Data::Text), true);
    ws.socket.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(ws.close_code().await, Some(CloseCode::Invalid));
    assert_eq!(send(&api, Method::DELETE, &first, "application/json", vec![]).await.0, StatusCode::NO_CONTENT);

    // Five frames of 32 KB: each within API Gateway's frame quota, the message over its 128 KB.
    let (mut ws, _) = session().await;
    for i in 0..5 {
        let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        let frame = Frame::message(vec![b' '; 32 * 1024], opcode, i == 4);
        if ws.socket.send(Message::Frame(frame)).await.is_err() {
            break; // closed already
        }
    }
    assert_eq!(ws.close_code().await, Some(CloseCode::Size));
}
