//! Real WebRTC through Portico: two aiortc peers (PyPI), the browser's side joined to Portico's
//! relay, the app's side behind the NVCF stand-in's `/sign_in`, exchange offer and answer (SDP
//! with its ICE candidates) through the relay and the bridge, open a data channel and echo a
//! message; then the same with the browser's side on TURN relay candidates only
//! (`iceTransportPolicy: relay`), through a real coturn that accepts only credentials made with
//! its shared secret, which Portico's welcome carries; and once through the streaming portal's
//! socket (a raw session: NVCF's frames unchanged, no relay).

use std::sync::Arc;

use portico_core::store::memory::MemoryTable;
use portico_local::demo_nvcf::DemoNvcf;
use portico_tests::{STREAM_API_KEY, TestApi, aiortc_python, app_body, spawn_until, test_config};
use reqwest::Method;
use serde_json::{Value, json};

use crate::turn::{TURN_SECRET, turnserver};

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/aiortc/peers.py");

/// The browser's peer against session `ws_url`: its output, once it exits (at most 60 s).
async fn client(ws_url: &str, relay: bool, raw: bool) -> String {
    let mut command = tokio::process::Command::new(aiortc_python());
    command.args([PEERS, "client", "--url", ws_url]);
    if relay {
        command.arg("--relay");
    }
    if raw {
        command.arg("--raw");
    }
    let run = tokio::time::timeout(std::time::Duration::from_secs(60), command.kill_on_drop(true).output());
    let out = run.await.expect("the client peer finishes within 60 s").expect("the client peer runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the client peer failed:\n{said}");
    said
}

#[tokio::test]
async fn two_real_webrtc_peers_connect_through_the_relay_and_the_bridge_directly_and_over_turn() {
    let (_turn, turn_port) = turnserver().await;
    let app_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut app = tokio::process::Command::new(aiortc_python());
    app.args([PEERS, "app", "--port", &app_port.to_string()]);
    let (_app, _, _) = spawn_until(app, "READY").await;

    let nvcf = DemoNvcf::start(STREAM_API_KEY).await.unwrap();
    *nvcf.nvcf.app_upstream.lock().unwrap() = Some(format!("ws://127.0.0.1:{app_port}"));
    let mut config = test_config();
    config.nvcf_signaling_endpoint = Some(nvcf.endpoint.clone());
    config.turn_secret_id = Some("portico/turn".into());
    config.local_secrets.insert("portico/turn".into(), TURN_SECRET.into());
    config.turn_uris = vec![format!("turn:127.0.0.1:{turn_port}?transport=udp")];
    config.quota_sessions = 4;
    config.max_app_instances_count = 4;
    let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), config).await;
    let admin = api.admin_token();
    let r = api.req(Method::PUT, "/apps/viewer", Some(&admin)).json(&app_body("viewer")).send().await.unwrap();
    assert!(r.status().is_success());
    let (api, admin) = (&api, &admin);
    let start = |raw: bool| async move {
        let body = json!({"app": "viewer", "raw": raw});
        let r = api.req(Method::POST, "/sessions", Some(admin)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
        let started: Value = r.json().await.unwrap();
        started["ws_url"].as_str().unwrap().to_owned()
    };

    let said = client(&start(false).await, false, false).await;
    assert!(said.contains("ECHO echo: hello through Portico"), "{said}");

    // A raw session: the offer and answer are NVCF's own frames on the portal's socket.
    let said = client(&start(true).await, false, true).await;
    assert!(said.contains("ECHO echo: hello through Portico"), "through the portal's socket: {said}");

    let said = client(&start(false).await, true, false).await;
    assert!(said.contains("ECHO echo: hello through Portico"), "over TURN: {said}");
    assert!(said.contains("CANDIDATES relay\n"), "only relay candidates: {said}");
    assert!(nvcf.nvcf.violations.lock().unwrap().is_empty());
}
