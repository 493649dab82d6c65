//! TURN credentials tied to a session: each side's `welcome` carries `iceServers` whose
//! credentials a real TURN server (Debian's coturn, `use-auth-secret`) accepts until the
//! session's end; a changed username, a wrong secret or a past expiry are refused by it.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use portico_core::store::memory::MemoryTable;
use portico_tests::{TestApi, Ws, app_body, test_config};
use reqwest::Method;

pub(crate) const TURN_SECRET: &str = "turn-shared-secret-for-the-suite";

pub(crate) struct Turnserver(Child);

impl Drop for Turnserver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// coturn on 127.0.0.1 only, accepting REST credentials made with [`TURN_SECRET`].
pub(crate) async fn turnserver() -> (Turnserver, u16) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Command::new("turnserver")
        .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", &format!("--listening-port={port}")])
        .args(["--use-auth-secret", &format!("--static-auth-secret={TURN_SECRET}"), "--realm=portico"])
        .args(["--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--log-file=stdout", "--pidfile="])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian's coturn; ./scripts/test installs it)");
    let server = Turnserver(server);
    // Up when it grants an allocation to credentials made with the secret (a busy machine may
    // take a while to start it).
    let expiry = portico_core::store::now_epoch() + 60;
    let (username, credential) =
        portico_streaming::turn::credentials(TURN_SECRET.as_bytes(), expiry, "probe", "client");
    for _ in 0..40 {
        if allocates(port, &username, &credential) {
            return (server, port);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("coturn never granted an allocation on 127.0.0.1:{port}");
}

/// Whether coturn at `port` grants `username`/`credential` an allocation (its own client).
fn allocates(port: u16, username: &str, credential: &str) -> bool {
    let status = Command::new("turnutils_uclient")
        .args(["-p", &port.to_string(), "-u", username, "-w", credential, "-n", "1", "-m", "1", "-y"])
        .args(["-e", "127.0.0.1", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("turnutils_uclient (Debian's coturn)");
    status.success()
}

#[tokio::test]
async fn each_side_gets_turn_credentials_a_real_turn_server_accepts_until_the_session_ends() {
    let (_turn, port) = turnserver().await;
    let mut config = test_config();
    config.turn_secret_id = Some("portico/turn".into());
    config.local_secrets.insert("portico/turn".into(), TURN_SECRET.into());
    config.turn_uris = vec![format!("turn:127.0.0.1:{port}?transport=udp")];
    let api = TestApi::start_with_demo_platform(Arc::new(MemoryTable::new()), config).await;
    let admin = api.admin_token();
    let r = api.req(Method::PUT, "/apps/viewer", Some(&admin)).json(&app_body("viewer")).send().await.unwrap();
    assert!(r.status().is_success());
    let r = api.req(Method::POST, "/sessions", Some(&admin)).json(&serde_json::json!({"app": "viewer"})).send().await;
    let started: serde_json::Value = r.unwrap().json().await.unwrap();
    let (_client, welcome) = Ws::join(started["ws_url"].as_str().expect("a session")).await;

    let servers = welcome["iceServers"].as_array().expect("iceServers in the welcome");
    assert_eq!(servers[0]["urls"][0], format!("turn:127.0.0.1:{port}?transport=udp"));
    let username = servers[0]["username"].as_str().unwrap().to_owned();
    let credential = servers[0]["credential"].as_str().unwrap().to_owned();
    let session = started["session_id"].as_str().unwrap();
    let (expiry, rest) = username.split_once(':').unwrap();
    assert_eq!(rest, format!("{session}:client"));
    let read = api.req(Method::GET, &format!("/sessions/{session}"), Some(&admin)).send().await.unwrap();
    let view: serde_json::Value = read.json().await.unwrap();
    let ends_at: i64 = expiry.parse().unwrap();
    assert_eq!(
        portico_core::directory::rfc3339(ends_at),
        view["ends_at"].as_str().unwrap(),
        "valid until the session's end"
    );
    assert!(!welcome.to_string().contains(TURN_SECRET), "the secret never leaves");

    // The TURN server's own word: Portico's credentials allocate; anything else does not.
    assert!(allocates(port, &username, &credential), "coturn accepts Portico's credentials");
    let other_side = username.replace(":client", ":host");
    assert!(!allocates(port, &other_side, &credential), "a credential is for its own username");
    let (forged_user, forged) = portico_streaming::turn::credentials(b"not-the-secret", ends_at, session, "client");
    assert!(!allocates(port, &forged_user, &forged), "made without the secret");
    let past = portico_core::store::now_epoch() - 60;
    let (expired_user, expired) = portico_streaming::turn::credentials(TURN_SECRET.as_bytes(), past, session, "client");
    assert!(!allocates(port, &expired_user, &expired), "past its expiry");
}
