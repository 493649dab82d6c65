//! The RPC gateway end to end: the emulator's `POST /<package.Service>/<Method>` in front of a
//! fake Cuebot speaking real gRPC on 127.0.0.1 (OpenCue's vendored descriptors), checked
//! against the answers OpenCue's REST gateway documents and against what CueWeb sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portico_core::Config;
use portico_core::config::RpcUpstream;
use portico_core::store::memory::MemoryTable;
use portico_core::store::now_epoch;
use portico_rpc::descriptors::Descriptors;
use portico_rpc::server::{self, Answer, Handler, RunningServer};
use portico_rpc::transcode::{self, UnknownFields};
use portico_rpc::upstream::RpcStatus;
use portico_tests::{SECRET, TestApi, mint_hs256, test_config};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::metadata::MetadataMap;
use tonic::{Code, Response, Status};

const FIND_SHOW: &str = include_str!("../fixtures/seed-001-find-show.json");
const GET_FRAMES: &str = include_str!("../fixtures/seed-001-get-frames.json");

/// The fake Cuebot: the seed's answers, a status per request (one with details), a hang, a
/// huge answer, response metadata; it keeps the metadata of the last call.
struct Fake {
    server: RunningServer,
    last_metadata: Arc<Mutex<Option<MetadataMap>>>,
}

pub(crate) fn answer(method: &MethodDescriptor, json: &Value) -> Result<Response<DynamicMessage>, Status> {
    let message = transcode::request(&method.output(), json.to_string().as_bytes(), UnknownFields::Reject)
        .map_err(|e| Status::internal(e.0))?;
    Ok(Response::new(message))
}

async fn fake_cuebot() -> Fake {
    let last_metadata: Arc<Mutex<Option<MetadataMap>>> = Arc::default();
    let seen = Arc::clone(&last_metadata);
    let handler: Handler = Arc::new(move |method: MethodDescriptor, request: DynamicMessage, metadata| -> Answer {
        *seen.lock().unwrap() = Some(metadata);
        Box::pin(async move {
            let req = transcode::response(&request);
            let show: Value = serde_json::from_str(FIND_SHOW).unwrap();
            match method.name() {
                "FindShow" => match req["name"].as_str().unwrap_or("") {
                    "testshow" => answer(&method, &show),
                    "hang" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        answer(&method, &show)
                    }
                    name if name.starts_with("status-") => {
                        let code = Code::from(name["status-".len()..].parse::<i32>().unwrap());
                        Err(Status::new(code, format!("refused with {code:?}")))
                    }
                    "details" => Err(status_with_details(&method, &show["show"])),
                    _ => Err(Status::not_found("show not found")),
                },
                "GetActiveShows" => answer(&method, &json!({"shows": {"shows": [show["show"]]}})),
                "GetShows" => {
                    let mut shows = answer(&method, &json!({"shows": {"shows": [show["show"]]}}))?;
                    let metadata = shows.metadata_mut();
                    metadata.insert(TRACE_METADATA, "trace-7".parse().unwrap());
                    metadata.insert("x-cuebot-internal", "not for clients".parse().unwrap());
                    Ok(shows)
                }
                "GetJobs" => {
                    let shows = req["r"]["shows"].as_array().cloned().unwrap_or_default();
                    let jobs = if shows.contains(&json!("testshow")) {
                        vec![json!({"id": "j-1", "name": "testshow-job", "show": "testshow", "state": "PENDING",
                                    "jobStats": {"renderedFrameCount": "9733366"}})]
                    } else {
                        vec![]
                    };
                    answer(&method, &json!({"jobs": {"jobs": jobs}}))
                }
                "GetFrames" => {
                    let frames: Value = serde_json::from_str(GET_FRAMES).unwrap();
                    if req["job"]["id"] == "big" {
                        let one = frames["frames"]["frames"][0].clone();
                        answer(&method, &json!({"frames": {"frames": vec![one; 12_000]}}))
                    } else {
                        answer(&method, &frames)
                    }
                }
                _ => Err(Status::unimplemented("not in the fake")),
            }
        })
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pool = Descriptors::opencue(&["*".into()]).pool().clone();
    Fake { server: server::serve(listener, pool, handler), last_metadata }
}

/// Response metadata the fake returns with `GetShows`, beside `x-cuebot-internal`.
const TRACE_METADATA: &str = "x-cuebot-trace";
/// A detail type no descriptor describes.
const UNKNOWN_DETAIL: &str = "type.googleapis.com/acme.Unknown";

/// FAILED_PRECONDITION with two details: `show` as a `show.Show` (a type the gateway knows)
/// and bytes of a type it does not.
fn status_with_details(method: &MethodDescriptor, show: &Value) -> Status {
    use prost::Message as _;
    use prost_reflect::prost_types::Any;
    let descriptor = method.parent_pool().get_message_by_name("show.Show").unwrap();
    let show = transcode::request(&descriptor, show.to_string().as_bytes(), UnknownFields::Reject).unwrap();
    let code = Code::FailedPrecondition;
    let status = RpcStatus {
        code: code as i32,
        message: "the show is busy".into(),
        details: vec![
            Any { type_url: "type.googleapis.com/show.Show".into(), value: show.encode_to_vec() },
            Any { type_url: UNKNOWN_DETAIL.into(), value: vec![1, 2, 3] },
        ],
    };
    Status::with_details(code, "the show is busy", status.encode_to_vec().into())
}

fn upstream(endpoint: String) -> Vec<RpcUpstream> {
    vec![RpcUpstream::new(endpoint)]
}

/// A gateway, as configured by default, on a fresh fake Cuebot (kept alive with the first
/// value), and carol's token for it.
async fn carol_on_fake() -> (Fake, TestApi, String) {
    let fake = fake_cuebot().await;
    let api = gateway(fake.server.url(), |_| {}).await;
    let token = api.token("carol");
    (fake, api, token)
}

/// The emulator in front of `endpoint`, with `cue` (a role with `rpc.call` on `opencue`)
/// held by `carol` and by CueWeb's health-probe identity.
pub(crate) async fn gateway(endpoint: String, tune: impl FnOnce(&mut Config)) -> TestApi {
    let mut config = test_config();
    config.rpc_upstreams = upstream(endpoint);
    tune(&mut config);
    let api = TestApi::start(Arc::new(MemoryTable::new()), config).await;
    let admin = api.admin_token();
    let steps = [
        (Method::POST, "/admin/roles", json!({"name": "cue"})),
        (Method::POST, "/admin/roles/cue/permissions", json!({"group": "opencue", "action": "rpc.call"})),
        (Method::POST, "/admin/users", json!({"username": "carol"})),
        (Method::POST, "/admin/users", json!({"username": "cueweb-facility-health"})),
    ];
    for (m, p, b) in steps {
        assert!(api.req(m, p, Some(&admin)).json(&b).send().await.unwrap().status().is_success(), "{p}");
    }
    for user in ["carol", "cueweb-facility-health"] {
        let r = api.req(Method::PUT, &format!("/admin/users/{user}/roles/cue"), Some(&admin)).send().await.unwrap();
        assert!(r.status().is_success());
    }
    api
}

pub(crate) async fn post(
    api: &TestApi,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let r = api
        .req(Method::POST, path, token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})), headers)
}

/// Every field of `expected` is in `actual` with the same value (numbers compared as
/// numbers: `1` and `1.0` are one value); extra fields in `actual` (newer protos) are allowed.
fn assert_covers(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let got = a.get(k).unwrap_or_else(|| panic!("{at}.{k} is missing in {actual}"));
                assert_covers(v, got, &format!("{at}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{at}: length");
            e.iter().zip(a).enumerate().for_each(|(i, (e, a))| assert_covers(e, a, &format!("{at}[{i}]")));
        }
        (Value::Number(e), Value::Number(a)) => assert_eq!(e.as_f64(), a.as_f64(), "{at}"),
        (e, a) => assert_eq!(e, a, "{at}"),
    }
}

#[tokio::test]
async fn the_seed_readmes_two_examples_answer_as_opencues_gateway_does() {
    let (fake, api, token) = carol_on_fake().await;
    let (status, body, _) = post(&api, "/show.ShowInterface/FindShow", Some(&token), r#"{"name": "testshow"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_covers(&serde_json::from_str(FIND_SHOW).unwrap(), &body, "");
    assert_eq!(body["show"]["showStats"]["createdJobCount"], "2353643", "int64 as a string");

    // The seed's curl body lacks a closing brace: malformed JSON is a 400, as in grpc-gateway.
    let literal = r#"{"job":{"id":"00000000-0000-0000-0000-000000000001", "req": {"include_finished":true,"page":1,"limit":100}}"#;
    let (status, body, _) = post(&api, "/job.JobInterface/GetFrames", Some(&token), literal).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!(3)), "{body}");
    // As meant: `req` beside `job`.
    let meant = r#"{"job":{"id":"00000000-0000-0000-0000-000000000001"}, "req": {"include_finished":true,"page":1,"limit":100}}"#;
    let (status, body, headers) = post(&api, "/job.JobInterface/GetFrames", Some(&token), meant).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_covers(&serde_json::from_str(GET_FRAMES).unwrap(), &body, "");
    let frame = &body["frames"]["frames"][0];
    assert_eq!(
        (&frame["state"], &frame["maxRss"], &frame["frameStateDisplayOverride"]),
        (&json!("WAITING"), &json!("0"), &Value::Null)
    );
    assert!(!headers.contains_key("portico-ignored-fields"));
    // With the braces mended but `req` inside `job`, grpc-gateway would drop it silently;
    // Portico drops it too (the default) and says so.
    let seed_body = r#"{"job":{"id":"00000000-0000-0000-0000-000000000001", "req": {"include_finished":true,"page":1,"limit":100}}}"#;
    let (status, _, headers) = post(&api, "/job.JobInterface/GetFrames", Some(&token), seed_body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["portico-ignored-fields"], "job.req", "the dropped typo is reported");

    // With rpc_unknown_fields = "reject" the same typo is a 400 naming the field.
    let strict =
        gateway(fake.server.url(), |c| c.rpc_unknown_fields = portico_core::config::RpcUnknownFields::Reject).await;
    let (status, body, _) = post(&strict, "/job.JobInterface/GetFrames", Some(&strict.token("carol")), seed_body).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!(3)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("field 'job.req'"), "{body}");
}

/// A token as CueWeb signs one (Node's jsonwebtoken, HS256, the shared secret).
fn cueweb_token(sub: &str, ttl: i64) -> String {
    let iat = now_epoch();
    mint_hs256(SECRET.as_bytes(), &json!({"sub": sub, "role": "user-role", "iat": iat, "exp": iat + ttl}))
}

#[tokio::test]
async fn cueweb_works_unchanged() {
    let fake = fake_cuebot().await;
    let api = gateway(fake.server.url(), |_| {}).await;
    // The facility health probe: `{}` to GetActiveShows, 60 s token, only the status matters.
    let probe = cueweb_token("cueweb-facility-health", 60);
    let (status, body, _) = post(&api, "/show.ShowInterface/GetActiveShows", Some(&probe), "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["shows"]["shows"][0]["name"], "testshow", "double wrapper shows.shows");
    // An empty body is `{}` too.
    assert_eq!(post(&api, "/show.ShowInterface/GetActiveShows", Some(&probe), "").await.0, StatusCode::OK);
    // snake_case fields in, lowerCamelCase out, enums by name, int64 as strings, `[]` for none.
    let (status, body, _) = post(
        &api,
        "/job.JobInterface/GetJobs",
        Some(&probe),
        r#"{"r": {"include_finished": true, "shows": ["testshow"]}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = &body["jobs"]["jobs"][0];
    assert_eq!((&job["state"], &job["jobStats"]["renderedFrameCount"]), (&json!("PENDING"), &json!("9733366")));
    assert_eq!(job["isPaused"], false, "zero values are present");
    let (_, body, _) = post(&api, "/job.JobInterface/GetJobs", Some(&probe), r#"{"r": {"shows": ["none"]}}"#).await;
    assert_eq!(body["jobs"]["jobs"], json!([]), "an empty list is [], so jobs.jobs never breaks");
}

#[tokio::test]
async fn tokens_are_checked_as_the_seeds_middleware_and_rfc_8725_want() {
    let fake = fake_cuebot().await;
    let api = gateway(fake.server.url(), |_| {}).await;
    let path = "/show.ShowInterface/GetActiveShows";
    assert_eq!(post(&api, path, Some(&cueweb_token("carol", 3600)), "{}").await.0, StatusCode::OK, "valid");
    let (kid, pkcs8) = portico_tests::portico_key();
    let iat = now_epoch();
    let claims = json!({"sub": "carol", "role": "user-role", "iat": iat, "exp": iat + 3600});
    let none = {
        use base64::Engine as _;
        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", enc(json!({"alg": "none", "typ": "JWT"})), enc(claims.clone()))
    };
    let refused = [
        ("missing", None),
        ("invalid", Some("not.a.token".to_owned())),
        (
            "expired",
            Some(mint_hs256(SECRET.as_bytes(), &json!({"sub": "carol", "iat": iat - 7200, "exp": iat - 3600}))),
        ),
        ("no exp", Some(mint_hs256(SECRET.as_bytes(), &json!({"sub": "carol", "iat": iat})))),
        ("another secret", Some(mint_hs256(b"another-secret-0123456789-abcdefghijkl", &claims))),
        ("alg none", Some(none)),
        ("key confusion", Some(mint_hs256(pkcs8.as_bytes(), &claims))),
        ("another kind (ES256, unknown issuer)", Some(portico_tests::sign_es256(&pkcs8, Some(&kid), None, &claims))),
    ];
    for (what, token) in refused {
        let (status, body, headers) = post(&api, path, token.as_deref(), "{}").await;
        assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!(16)), "{what}: {body}");
        assert!(headers.contains_key("www-authenticate"), "{what}");
    }
}

#[tokio::test]
async fn who_may_call_what() {
    let fake = fake_cuebot().await;
    let api = gateway(fake.server.url(), |c| {
        c.rpc_method_rules.insert("viewer".into(), vec!["*/Get*".into(), "*/Find*".into()]);
    })
    .await;
    // A user without rpc.call on the upstream's group.
    let (status, body, _) = post(&api, "/show.ShowInterface/GetActiveShows", Some(&api.token("bob")), "{}").await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!(7)), "{body}");
    // CueWeb's role claim `viewer` limits it to Get*/Find*.
    let iat = now_epoch();
    let viewer = mint_hs256(SECRET.as_bytes(), &json!({"sub": "carol", "role": "viewer", "iat": iat, "exp": iat + 60}));
    assert_eq!(post(&api, "/show.ShowInterface/GetActiveShows", Some(&viewer), "{}").await.0, StatusCode::OK);
    let (status, body, _) = post(&api, "/show.ShowInterface/CreateShow", Some(&viewer), r#"{"name": "x"}"#).await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!(7)), "{body}");
    // Without the rule, the same role may.
    let (status, _, _) =
        post(&api, "/show.ShowInterface/CreateShow", Some(&api.token("carol")), r#"{"name": "x"}"#).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "reached the fake, which does not implement it");
    // Identity metadata comes from the token; client headers are dropped unless allow-listed.
    let r = api
        .req(Method::POST, "/show.ShowInterface/GetShows", Some(&api.token("carol")))
        .header("x-portico-user", "ada")
        .header("x-request-id", "req-42")
        .header("cookie", "session=secret")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let metadata = fake.last_metadata.lock().unwrap().clone().unwrap();
    assert_eq!(metadata.get_all("x-portico-user").iter().collect::<Vec<_>>(), ["carol"]);
    assert_eq!(metadata.get("x-request-id").unwrap(), "req-42");
    assert!(metadata.get("cookie").is_none() && metadata.get("authorization").is_none());
}

#[tokio::test]
async fn only_listed_response_metadata_comes_back_as_grpc_metadata_headers() {
    let fake = fake_cuebot().await;
    // Listed as an operator might write it: header names are case-insensitive.
    let api = gateway(fake.server.url(), |c| c.rpc_response_metadata.push("X-Cuebot-Trace".into())).await;
    let (status, body, headers) = post(&api, "/show.ShowInterface/GetShows", Some(&api.token("carol")), "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers.get(format!("grpc-metadata-{TRACE_METADATA}")).unwrap(), "trace-7", "{headers:?}");
    for unlisted in ["grpc-metadata-x-cuebot-internal", "x-cuebot-internal", TRACE_METADATA] {
        assert!(!headers.contains_key(unlisted), "{unlisted}: {headers:?}");
    }
    // Unlisted (the default list), the same metadata stays behind the gateway.
    let default = gateway(fake.server.url(), |_| {}).await;
    let (status, _, headers) =
        post(&default, "/show.ShowInterface/GetShows", Some(&default.token("carol")), "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.keys().any(|h| h.as_str().contains("x-cuebot")), "{headers:?}");
}

#[tokio::test]
async fn every_grpc_status_maps_as_grpc_gateway_maps_it() {
    let (_fake, api, token) = carol_on_fake().await;
    let table = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (15, 500),
        (16, 401),
    ];
    for (code, http) in table {
        let (status, body, _) = post(
            &api,
            "/show.ShowInterface/FindShow",
            Some(&token),
            &json!({"name": format!("status-{code}")}).to_string(),
        )
        .await;
        assert_eq!(status.as_u16(), http, "gRPC {code}: {body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["details"], json!([]));
        assert!(body["message"].as_str().unwrap().starts_with("refused with"), "{body}");
    }
    // Details: a known type as its fields beside `@type`, an unknown one as base64 `value`.
    let (status, body, _) = post(&api, "/show.ShowInterface/FindShow", Some(&token), r#"{"name": "details"}"#).await;
    assert_eq!(
        (status, &body["code"], &body["message"]),
        (StatusCode::BAD_REQUEST, &json!(9), &json!("the show is busy"))
    );
    let details = body["details"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(details.len(), 2, "{body}");
    assert_eq!(details[0]["@type"], "type.googleapis.com/show.Show");
    let show: Value = serde_json::from_str(FIND_SHOW).unwrap();
    assert_covers(&show["show"], &details[0], "details[0]");
    assert_eq!(details[1], json!({"@type": UNKNOWN_DETAIL, "value": "AQID"}));
    // 14 (UNAVAILABLE) from the upstream is reported as the upstream being unavailable.
    let (status, body, _) = post(&api, "/show.ShowInterface/FindShow", Some(&token), r#"{"name": "status-14"}"#).await;
    assert_eq!((status, &body["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!(14)));
    // Unknown methods and services: 404 with a JSON body. A service has a route only if it is
    // exposed (as in the SAM template), so an unknown one is the API's own 404.
    let (status, body, _) = post(&api, "/show.ShowInterface/Nope", Some(&token), "{}").await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!(5)), "{body}");
    let (status, body, _) = post(&api, "/nope.Service/Method", Some(&token), "{}").await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{body}");
    // Two-segment POSTs of other groups stay theirs.
    let (status, body, _) = post(&api, "/admin/users", Some(&token), "{}").await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{body}");
    let (status, _, _) = post(&api, "/cue.CueInterface/GetSystemStats", Some(&token), "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not exposed by OpenCue's gateway, so not by default");
}

#[tokio::test]
async fn bad_json_gets_400_naming_the_field() {
    let (_fake, api, token) = carol_on_fake().await;
    let cases = [
        ("/show.ShowInterface/FindShow", r#"{"name": 918273645501}"#, "field 'name'"),
        ("/job.JobInterface/GetFrames", r#"{"job": {"id": "x", "state": "NOT_A_STATE"}}"#, "field 'job.state'"),
        ("/job.JobInterface/GetFrames", r#"{"req": {"page": 99999999999}}"#, "field 'req.page'"),
        ("/job.JobInterface/GetFrames", r#"{"req": {"include_finished": "yes"}}"#, "field 'req.include_finished'"),
        ("/show.ShowInterface/FindShow", r#"{"name": "#, "not valid JSON"),
        ("/show.ShowInterface/FindShow", r#"["testshow"]"#, "JSON object"),
        ("/show.ShowInterface/FindShow", r#"{"name": "testshow", "name": "yes"}"#, "duplicate member 'name'"),
        ("/job.JobInterface/GetFrames", r#"{"req": {"page": 1, "page": 2}}"#, "duplicate member 'page'"),
    ];
    for (path, body, names) in cases {
        let (status, answer, _) = post(&api, path, Some(&token), body).await;
        assert_eq!((status, &answer["code"]), (StatusCode::BAD_REQUEST, &json!(3)), "{body}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(names), "{body}: {message}");
        for value in ["918273645501", "NOT_A_STATE", "99999999999", "yes"] {
            assert!(!message.contains(value), "{message} quotes the value");
        }
    }
    // Over `max_body_bytes`: 413 in grpc-gateway's shape, INVALID_ARGUMENT, before parsing.
    let huge = json!({"name": "x".repeat(api.services.config.max_body_bytes)}).to_string();
    let (status, answer, _) = post(&api, "/show.ShowInterface/FindShow", Some(&token), &huge).await;
    assert_eq!((status, &answer["code"]), (StatusCode::PAYLOAD_TOO_LARGE, &json!(3)), "{answer}");
    assert_eq!(answer["details"], json!([]), "{answer}");
}

#[tokio::test]
async fn an_upstream_down_is_503_and_a_hanging_one_504_within_the_deadline() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let api = gateway(url, |_| {}).await;
    let (status, body, _) = post(&api, "/show.ShowInterface/GetShows", Some(&api.token("carol")), "{}").await;
    assert_eq!((status, &body["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!(14)), "{body}");

    let fake = fake_cuebot().await;
    let api = gateway(fake.server.url(), |c| c.rpc_deadline_ms = 500).await;
    let started = Instant::now();
    let (status, body, _) =
        post(&api, "/show.ShowInterface/FindShow", Some(&api.token("carol")), r#"{"name": "hang"}"#).await;
    assert_eq!((status, &body["code"]), (StatusCode::GATEWAY_TIMEOUT, &json!(4)), "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered within the deadline: {:?}", started.elapsed());
}

#[tokio::test]
async fn big_answers_are_compressed_or_refused_clearly() {
    let fake = fake_cuebot().await;
    // Tens of MB cross the fake upstream: the longest deadline, so a loaded CI machine measures
    // the size rules, not its own speed.
    let api = gateway(fake.server.url(), |c| c.rpc_deadline_ms = 25_000).await;
    let token = api.token("carol");
    let body = r#"{"job": {"id": "big"}}"#;
    // Over Lambda's 6 MB uncompressed: a clear error, never a truncated body.
    let (status, answer, _) = post(&api, "/job.JobInterface/GetFrames", Some(&token), body).await;
    assert_eq!((status, &answer["code"]), (StatusCode::BAD_GATEWAY, &json!(8)), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("accept gzip"), "{answer}");
    // Compressed, it fits.
    let r = api
        .req(Method::POST, "/job.JobInterface/GetFrames", Some(&token))
        .header("accept-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let compressed = r.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut text).unwrap();
    assert!(
        text.len() > 6 * 1024 * 1024 && compressed.len() < text.len() / 5,
        "{} -> {}",
        text.len(),
        compressed.len()
    );
    let frames: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(frames["frames"]["frames"].as_array().unwrap().len(), 12_000);
}

#[tokio::test]
async fn services_are_listed_and_a_descriptor_set_file_adds_services_without_a_rebuild() {
    let fake = fake_cuebot().await;
    let api = gateway(fake.server.url(), |_| {}).await;
    let r = api.req(Method::GET, "/rpc/services", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let listing: Value =
        api.req(Method::GET, "/rpc/services", Some(&api.token("bob"))).send().await.unwrap().json().await.unwrap();
    let services = listing["services"].as_array().unwrap();
    assert_eq!(services.len(), 22, "OpenCue's gateway services by default");
    let show = services.iter().find(|s| s["name"] == "show.ShowInterface").unwrap();
    let find = show["methods"].as_array().unwrap().iter().find(|m| m["name"] == "FindShow").unwrap();
    assert_eq!(find["request"], "show.ShowFindShowRequest");
    assert_eq!(find["path"], "/show.ShowInterface/FindShow");

    // A service unknown at build time, from a FileDescriptorSet file.
    let set = greeter_set();
    let dir = std::env::temp_dir().join(portico_tests::unique("fds"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("greeter.fds");
    std::fs::write(&file, &set).unwrap();
    let mut pool = prost_reflect::DescriptorPool::new();
    pool.decode_file_descriptor_set(set.as_slice()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let greeter = server::serve(
        listener,
        pool,
        Arc::new(|method: MethodDescriptor, request: DynamicMessage, _| -> Answer {
            Box::pin(async move {
                let name = transcode::response(&request)["name"].as_str().unwrap_or("").to_owned();
                answer(&method, &json!({"greeting": format!("hello {name}"), "count": "9007199254740993"}))
            })
        }),
    );
    let without = gateway(greeter.url(), |_| {}).await;
    let (status, _, _) = post(&without, "/demo.Greeter/Hello", Some(&without.token("carol")), r#"{"name": "x"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let with = gateway(greeter.url(), |c| c.rpc_descriptor_sets = vec![file.display().to_string()]).await;
    let (status, body, _) = post(&with, "/demo.Greeter/Hello", Some(&with.token("carol")), r#"{"name": "ada"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"greeting": "hello ada", "count": "9007199254740993"}));
    std::fs::remove_dir_all(dir).ok();
}

/// `demo.Greeter/Hello` as a serialized FileDescriptorSet, built by hand (as `protoc
/// --descriptor_set_out` would write it).
fn greeter_set() -> Vec<u8> {
    use prost::Message as _;
    use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
    use prost_reflect::prost_types::*;
    let field = |name: &str, number: i32, kind: Type| FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        json_name: Some(name.into()),
        ..Default::default()
    };
    let message = |name: &str, fields: Vec<FieldDescriptorProto>| DescriptorProto {
        name: Some(name.into()),
        field: fields,
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("demo/greeter.proto".into()),
        package: Some("demo".into()),
        syntax: Some("proto3".into()),
        message_type: vec![
            message("HelloRequest", vec![field("name", 1, Type::String)]),
            message("HelloReply", vec![field("greeting", 1, Type::String), field("count", 2, Type::Int64)]),
        ],
        service: vec![ServiceDescriptorProto {
            name: Some("Greeter".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Hello".into()),
                input_type: Some(".demo.HelloRequest".into()),
                output_type: Some(".demo.HelloReply".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    FileDescriptorSet { file: vec![file] }.encode_to_vec()
}
