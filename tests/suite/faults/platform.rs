//! The streaming platform down or hanging when a session starts (its launch call, behind the
//! fault proxy; the function list stays up, so the app is ACTIVE).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_core::store::Table;
use portico_streaming::SessionState;
use portico_tests::fault_proxy::{Fault, FaultProxy};
use portico_tests::{TestApi, app_body, test_config};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Platform, assert_retry_later, call};

/// `stream_launch_timeout_ms` here.
const LAUNCH_DEADLINE: Duration = Duration::from_millis(500);

/// Down (answering 503, or closing the connection unanswered) is a 503 to retry; hanging is a
/// 504 at `stream_launch_timeout_ms`, not later; either way the session ends at once and the
/// quota is back, so a start after the platform recovers succeeds and usage is exactly one.
async fn the_platform_down_or_hanging_gives_the_quota_back(table: Arc<dyn Table>) {
    let platform = Platform::start().await;
    let proxy = FaultProxy::start(&platform.server.url).await;
    let mut config = test_config();
    platform.configure(&mut config, Some(&proxy.url()));
    config.stream_launch_timeout_ms = LAUNCH_DEADLINE.as_millis() as u64;
    config.max_app_instances_count = 1; // a session not given back would block the next start
    let api = TestApi::start(table, config).await;
    let admin = portico_tests::ADMIN;
    let (status, _, _) = call(&api, Method::PUT, "/apps/viewer", admin, Some(app_body("viewer")), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let start = || call(&api, Method::POST, "/sessions", admin, Some(json!({"app": "viewer"})), None);
    let usage =
        || async { call(&api, Method::GET, "/auth/me", admin, None, None).await.2["usage"]["sessions"].clone() };

    // Down: the platform answers 503, or accepts and closes without an answer.
    *platform.launch_status.lock().unwrap() = 503;
    let (status, retry_after, body) = start().await;
    assert_retry_later("the platform answering 503", status, retry_after.as_deref(), &body);
    *platform.launch_status.lock().unwrap() = 200;
    proxy.set(Fault::Drop);
    let (status, retry_after, body) = start().await;
    assert_retry_later("the platform closing unanswered", status, retry_after.as_deref(), &body);
    assert_eq!(usage().await, 0, "nothing held after the platform was down");

    // Hanging: 504 at the deadline.
    let hang = Duration::from_secs(10);
    proxy.set(Fault::Delay(hang));
    let started = Instant::now();
    let (status, _, body) = start().await;
    let took = started.elapsed();
    assert_eq!((status, body["code"].as_str()), (StatusCode::GATEWAY_TIMEOUT, Some("upstream_timeout")), "{body}");
    // At the deadline, not when the platform would have answered (the bound is loose: on a
    // busy 2-core machine the store's calls around the launch take their time too).
    assert!(took >= LAUNCH_DEADLINE && took < hang / 2, "answered after {took:?}");
    assert_eq!(usage().await, 0, "nothing held after the platform hung");
    let (_, _, mine) = call(&api, Method::GET, "/sessions", admin, None, None).await;
    let ended: Vec<_> =
        mine["items"].as_array().unwrap().iter().map(|s| (s["state"].clone(), s["ended_reason"].clone())).collect();
    assert_eq!(ended.len(), 3, "{mine}");
    assert!(ended.iter().all(|e| *e == (json!("stopped"), json!("launch_failed"))), "{ended:?}");
    assert_eq!(platform.launches.load(std::sync::atomic::Ordering::SeqCst), 2, "the dropped one never arrived");

    // Recovered: a start succeeds, and holds exactly one unit.
    proxy.set(Fault::Pass);
    let (status, _, body) = start().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(usage().await, 1);
    let id = body["session_id"].as_str().unwrap();
    let item = api.services.table.get(&portico_streaming::session_key(id)).await.unwrap().unwrap();
    let session: portico_streaming::Session = item.doc().unwrap();
    assert_eq!(session.state, SessionState::Connecting);
    assert!(!portico_tests::captured_logs().contains(portico_tests::STREAM_API_KEY), "the key is in a log line");
}

on_both_stores! {
    the_platform_down_or_hanging_gives_the_quota_back,
}
