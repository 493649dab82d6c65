//! Sessions on NVCF (`stream_platform = nvcf`): the start is NVCF's `sign_in` (key, both ids,
//! `X-NVCF-ABSORB`), a bridge holds NVCF's signaling WebSocket (key, ids, the session cookie)
//! and joins the relay as the host; frames flow both ways with NVCF speaking first; stopping
//! ends NVCF's session; NVCF refusing or ending is a clean end with the quota back. The stand-in
//! refuses anything off the contract and keeps what it refused.

use std::sync::Arc;
use std::time::Duration;

use portico_core::store::memory::MemoryTable;
use portico_local::demo_nvcf::{DemoNvcf, RunningNvcf};
use portico_streaming::bridge::{BridgeQueue, NvcfLauncher};
use portico_streaming::nvcf::NvcfSignaling;
use portico_tests::{STREAM_API_KEY, TestApi, Ws, app_body, captured_logs, test_config};
use reqwest::Method;
use serde_json::{Value, json};

async fn on_nvcf() -> (TestApi, RunningNvcf) {
    on_nvcf_with(|_| {}, |_| None).await
}

/// The API on the NVCF stand-in (`tune`d), the demo function list and app `viewer`; sessions
/// carried by the bridges `bridges` makes over NVCF's signaling (none: the emulator's own).
async fn on_nvcf_with(
    tune: impl FnOnce(&mut portico_core::Config),
    bridges: impl FnOnce(NvcfSignaling) -> Option<Arc<dyn BridgeQueue>> + Send + 'static,
) -> (TestApi, RunningNvcf) {
    let nvcf = DemoNvcf::start(STREAM_API_KEY).await.unwrap();
    let mut config = test_config();
    config.nvcf_signaling_endpoint = Some(nvcf.endpoint.clone());
    tune(&mut config);
    let api = TestApi::start_full(Arc::new(MemoryTable::new()), config, true, move |platform| {
        let signaling = portico_streaming::nvcf_signaling(&platform.services).unwrap();
        if let Some(bridges) = bridges(signaling.clone()) {
            platform.streaming.launcher = Some(Arc::new(NvcfLauncher { signaling, bridges, max_seconds: 3600 }));
        }
    })
    .await;
    let admin = api.admin_token();
    let r = api.req(Method::PUT, "/apps/viewer", Some(&admin)).json(&app_body("viewer")).send().await.unwrap();
    assert!(r.status().is_success());
    (api, nvcf)
}

async fn start(api: &TestApi) -> (u16, Value) {
    let r = api.req(Method::POST, "/sessions", Some(&api.admin_token())).json(&json!({"app": "viewer"})).send().await;
    let r = r.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// Reads `client`'s frames until the relay says the session ended, then waits (at most 5 s)
/// until the session's quota is given back.
async fn ended_with_quota_back(client: &mut Ws, api: &TestApi) {
    loop {
        let frame = client.recv().await.expect("told before the close");
        if frame["type"] == "session_ended" {
            break;
        }
    }
    for _ in 0..100 {
        if sessions_in_use(api).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the session's quota was not given back");
}

async fn sessions_in_use(api: &TestApi) -> i64 {
    let me: Value =
        api.req(Method::GET, "/auth/me", Some(&api.admin_token())).send().await.unwrap().json().await.unwrap();
    me["usage"]["sessions"].as_i64().unwrap()
}

/// The AWS SDK's configuration for an endpoint on 127.0.0.1 (moto, or nothing at all).
fn aws_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::from_keys("testing", "testing", None),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn a_session_on_nvcf_streams_through_the_bridge_and_stops_there() {
    let (api, nvcf) = on_nvcf().await;
    let (status, started) = start(&api).await;
    assert_eq!(status, 201, "{started}");
    let id = started["session_id"].as_str().unwrap().to_owned();
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    // NVCF spoke first; its frame reaches the client unchanged, as a signal's data.
    assert_eq!(client.expect_signal().await, json!("SYN"));
    client.signal(json!("ACK")).await;
    client.signal(json!({"type": "offer", "sdp": "v=0"})).await;
    let echo = client.expect_signal().await;
    assert_eq!(echo, json!(json!({"echo": "ACK"}).to_string()));
    let echo = client.expect_signal().await;
    let offer = json!({"type": "offer", "sdp": "v=0"}).to_string();
    assert_eq!(echo, json!(json!({"echo": offer}).to_string()));
    assert_eq!(nvcf.nvcf.received.lock().unwrap().clone(), ["ACK".to_owned(), offer]);

    // Stopped through Portico: NVCF's session ends too.
    let r = api.req(Method::DELETE, &format!("/sessions/{id}"), Some(&api.admin_token())).send().await.unwrap();
    assert!(r.status().is_success());
    client.expect("session_ended").await;
    eventually("NVCF's session ended", || nvcf.nvcf.sessions_live() == 0).await;
    let requests = nvcf.nvcf.requests.lock().unwrap().clone();
    assert_eq!(requests, ["POST /sign_in", "WS /sign_in", "DELETE /sign_in"]);
    assert_eq!(nvcf.nvcf.violations.lock().unwrap().clone(), Vec::<String>::new(), "every call on the contract");
    assert_eq!(sessions_in_use(&api).await, 0);
    // The key: in no frame the client saw, in no log line.
    assert!(!client.seen.iter().any(|f| f.contains(STREAM_API_KEY)));
    assert!(!captured_logs().contains(STREAM_API_KEY));
}

#[tokio::test]
async fn nvcf_ending_the_stream_ends_the_session_and_gives_the_quota_back() {
    let (api, nvcf) = on_nvcf().await;
    let (_, started) = start(&api).await;
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    assert_eq!(client.expect_signal().await, json!("SYN"));
    nvcf.nvcf.stop_all();
    ended_with_quota_back(&mut client, &api).await;
    assert_eq!(nvcf.nvcf.violations.lock().unwrap().clone(), Vec::<String>::new(), "every call on the contract");
}

#[tokio::test]
async fn nvcf_refusing_a_start_is_a_gateway_error_and_holds_nothing() {
    let (api, nvcf) = on_nvcf().await;
    *nvcf.nvcf.fail_sign_in.lock().unwrap() = Some(403);
    let (status, refused) = start(&api).await;
    assert_eq!((status, refused["code"].as_str()), (502, Some("upstream_failed")), "{refused}");
    *nvcf.nvcf.fail_sign_in.lock().unwrap() = Some(500);
    assert_eq!(start(&api).await.0, 503);
    assert_eq!(sessions_in_use(&api).await, 0);

    // A refused upgrade: the bridge ends at once and NVCF's session with it.
    *nvcf.nvcf.fail_sign_in.lock().unwrap() = None;
    *nvcf.nvcf.refuse_upgrade.lock().unwrap() = Some(403);
    let (status, _) = start(&api).await;
    assert_eq!(status, 201);
    eventually("NVCF's session ended after the refused upgrade", || nvcf.nvcf.sessions_live() == 0).await;
    assert!(!captured_logs().contains(STREAM_API_KEY));
}

/// A stream outlives the client's socket: the client leaves (the session idles, NVCF's socket
/// and the bridge stay up), NVCF goes on speaking, and the client, back with a fresh ticket,
/// gets every frame sent meanwhile once, in order, and goes on.
#[tokio::test]
async fn a_client_that_reconnects_finds_its_stream_with_nothing_lost_or_repeated() {
    let (api, nvcf) = on_nvcf().await;
    let (_, started) = start(&api).await;
    let id = started["session_id"].as_str().unwrap().to_owned();
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    assert_eq!(client.expect_signal().await, json!("SYN"));
    client.socket.close(None).await.unwrap();
    let admin = api.admin_token();
    for _ in 0..100 {
        let s: Value =
            api.req(Method::GET, &format!("/sessions/{id}"), Some(&admin)).send().await.unwrap().json().await.unwrap();
        if s["state"] == "idle" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..5 {
        nvcf.nvcf.say(&format!("frame {n}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = api.req(Method::POST, &format!("/sessions/{id}/tickets"), Some(&admin)).send().await.unwrap();
    let fresh: Value = r.json().await.unwrap();
    let (mut back, welcome) = Ws::join(fresh["ws_url"].as_str().unwrap()).await;
    assert_eq!(welcome["peer"], true, "the bridge is still the host");
    let mut got = Vec::new();
    while got.len() < 5 {
        let frame = back.recv().await.expect("the frames sent meanwhile");
        if frame["type"] == "signal" {
            got.push(frame["data"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, (0..5).map(|n| format!("frame {n}")).collect::<Vec<_>>());
    back.signal(json!("still here")).await;
    assert_eq!(back.expect_signal().await, json!(json!({"echo": "still here"}).to_string()));
    assert_eq!(
        nvcf.nvcf.requests.lock().unwrap().iter().filter(|r| r.starts_with("WS")).count(),
        1,
        "one NVCF socket all along"
    );
}

/// The bridge service's path, as on AWS: a start puts the session on an SQS queue (moto here,
/// the SDK speaking SQS's real protocol), the service's loop takes it, carries it, keeps the
/// message hidden meanwhile and deletes it when the bridge ends.
#[tokio::test]
async fn the_bridge_service_takes_sessions_from_its_queue_and_deletes_them_when_done() {
    use portico_streaming::bridge_queue::{SqsBridges, TaskProtection, serve_queue};
    let aws = aws_at(&portico_tests::moto_endpoint());
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = sqs.create_queue().queue_name(portico_tests::unique("bridges")).send().await.expect("moto's SQS");
    let queue_url = queue.queue_url.unwrap();

    let (client_sqs, url) = (sqs.clone(), queue_url.clone());
    let (api, nvcf) =
        on_nvcf_with(|_| {}, move |_| Some(Arc::new(SqsBridges::new(client_sqs, url)) as Arc<dyn BridgeQueue>)).await;
    let admin = api.admin_token();
    let signaling = portico_streaming::nvcf_signaling(&api.services).unwrap();
    // The ECS agent's task-protection endpoint, as a fake that keeps what it is asked.
    let protections: Arc<std::sync::Mutex<Vec<(String, Value)>>> = Arc::default();
    let kept = Arc::clone(&protections);
    let agent = portico_tests::FakeServer::start(Arc::new(move |method, path, _, body| {
        kept.lock().unwrap().push((format!("{method} {path}"), serde_json::from_slice(body).unwrap_or_default()));
        (200, "{}".into())
    }))
    .await;
    let protection = TaskProtection::new(Some(agent.url.clone()));
    let service = tokio::spawn(serve_queue(sqs.clone(), queue_url.clone(), signaling, None, 4, protection));

    let asked = std::time::Instant::now();
    let (status, started) = start(&api).await;
    assert_eq!(status, 201, "{started}");
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    assert_eq!(client.expect_signal().await, json!("SYN"));
    println!("picked up from the queue and streaming {} ms after the start was asked", asked.elapsed().as_millis());
    client.signal(json!("ACK")).await;
    assert_eq!(client.expect_signal().await, json!(json!({"echo": "ACK"}).to_string()));
    // While it carries the session, its message is hidden, not gone.
    let counts = |sqs: aws_sdk_sqs::Client, url: String| async move {
        let out = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attributes = out.attributes.unwrap_or_default();
        let n = |name| attributes.get(&name).and_then(|v: &String| v.parse::<u64>().ok()).unwrap_or(0);
        (
            n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    };
    assert_eq!(counts(sqs.clone(), queue_url.clone()).await, (0, 1), "taken and hidden");

    let id = started["session_id"].as_str().unwrap();
    let r = api.req(Method::DELETE, &format!("/sessions/{id}"), Some(&admin)).send().await.unwrap();
    assert!(r.status().is_success());
    client.expect("session_ended").await;
    for _ in 0..100 {
        // (The bridge deletes its message, then lets its protection go: wait for both.)
        let let_go = protections.lock().unwrap().len() >= 2;
        if counts(sqs.clone(), queue_url.clone()).await == (0, 0) && nvcf.nvcf.sessions_live() == 0 && let_go {
            service.abort();
            assert!(nvcf.nvcf.violations.lock().unwrap().is_empty());
            // Protected from scale-in while it carried the session, then let go.
            let asked_for = protections.lock().unwrap().clone();
            let put = "PUT /task-protection/v1/state".to_owned();
            assert_eq!(
                asked_for,
                [
                    (put.clone(), json!({"ProtectionEnabled": true, "ExpiresInMinutes": 600})),
                    (put, json!({"ProtectionEnabled": false})),
                ]
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the message was not deleted when the bridge ended: {:?}", counts(sqs, queue_url).await);
}

/// Faults around the bridge: NVCF hanging on the start (504), the bridges unreachable (503, and
/// NVCF's session ended at once), a bridge dying mid-stream (the session ends, the client is
/// told); each leaves no quota held and the key nowhere.
#[tokio::test]
async fn nvcf_hanging_is_504_and_a_session_whose_bridge_dies_is_taken_up_by_another() {
    use portico_streaming::bridge::{BridgeJob, HostTickets, carry};

    /// Bridges whose tasks the test can kill, keeping the jobs they took (as the queue does).
    struct Killable {
        signaling: NvcfSignaling,
        tickets: std::sync::OnceLock<HostTickets>,
        tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
        jobs: std::sync::Mutex<Vec<BridgeJob>>,
    }
    impl Killable {
        fn take(&self, job: BridgeJob) {
            let (signaling, tickets) = (self.signaling.clone(), self.tickets.get().cloned());
            self.jobs.lock().unwrap().push(job.clone());
            self.tasks.lock().unwrap().push(tokio::spawn(async move {
                carry(&signaling, tickets.as_ref(), &job).await;
            }));
        }
        fn kill_all(&self) {
            for task in self.tasks.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
    #[async_trait::async_trait]
    impl BridgeQueue for Killable {
        async fn enqueue(&self, job: BridgeJob) -> Result<(), portico_core::Error> {
            self.take(job);
            Ok(())
        }
    }

    let bridges: Arc<std::sync::Mutex<Option<Arc<Killable>>>> = Arc::default();
    let held = Arc::clone(&bridges);
    let (api, nvcf) = on_nvcf_with(
        |c| c.stream_launch_timeout_ms = 300,
        move |signaling| {
            let killable = Arc::new(Killable {
                signaling,
                tickets: std::sync::OnceLock::new(),
                tasks: Default::default(),
                jobs: Default::default(),
            });
            *held.lock().unwrap() = Some(Arc::clone(&killable));
            Some(killable as Arc<dyn BridgeQueue>)
        },
    )
    .await;
    let killable = bridges.lock().unwrap().clone().unwrap();
    let tickets = HostTickets::new(api.services.table.clone(), api.services.config.clone());
    let _ = killable.tickets.set(tickets);

    // NVCF hanging: 504 within the deadline, nothing held.
    *nvcf.nvcf.hang_sign_in.lock().unwrap() = Some(Duration::from_secs(6));
    let asked = std::time::Instant::now();
    let (status, refused) = start(&api).await;
    assert_eq!((status, refused["code"].as_str()), (504, Some("upstream_timeout")), "{refused}");
    assert!(asked.elapsed() < Duration::from_secs(5), "bounded by stream_launch_timeout_ms, not the hang");
    *nvcf.nvcf.hang_sign_in.lock().unwrap() = None;
    assert_eq!(sessions_in_use(&api).await, 0);

    // A bridge dying mid-stream: the client is told its peer left; the session waits.
    let (status, started) = start(&api).await;
    assert_eq!(status, 201, "{started}");
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    assert_eq!(client.expect_signal().await, json!("SYN"));
    killable.kill_all();
    client.expect("peer_left").await;
    // Meanwhile the client speaks: it waits for the next bridge.
    client.signal(json!("while away")).await;
    // The queue hands the job to another bridge (its message shows again): it takes a fresh
    // host ticket and carries the same NVCF session on.
    let job = killable.jobs.lock().unwrap()[0].clone();
    killable.take(job);
    client.expect("peer_joined").await;
    let mut heard = Vec::new();
    while heard.len() < 2 {
        heard.push(client.expect_signal().await);
    }
    assert!(heard.contains(&json!("SYN")), "NVCF speaks first on the new socket: {heard:?}");
    assert!(heard.contains(&json!(json!({"echo": "while away"}).to_string())), "{heard:?}");
    client.signal(json!("after")).await;
    assert_eq!(client.expect_signal().await, json!(json!({"echo": "after"}).to_string()));
    assert_eq!(sessions_in_use(&api).await, 1, "one session all along");
    assert_eq!(nvcf.nvcf.requests.lock().unwrap().iter().filter(|r| r.as_str() == "POST /sign_in").count(), 1);

    // Killed again and nobody takes it up: the sweeper ends it at its host deadline.
    killable.kill_all();
    client.expect("peer_left").await;
    let id = started["session_id"].as_str().unwrap();
    let table = api.services.table.clone();
    let item = table.get(&portico_streaming::session_key(id)).await.unwrap().unwrap();
    let mut session: portico_streaming::Session = item.doc().unwrap();
    assert!(session.host_deadline > portico_core::store::now_epoch(), "a deadline to be taken up by");
    session.host_deadline = portico_core::store::now_epoch() - 1;
    table.put(item.with_doc(&session), portico_core::store::Condition::Always).await.unwrap();
    assert_eq!(api.platform.relay().sweep().await.unwrap(), 1);
    ended_with_quota_back(&mut client, &api).await;
    assert!(!captured_logs().contains(STREAM_API_KEY));
}

/// The bridges' queue unreachable (the fleet down): 503, the quota back, and NVCF's session
/// ended at once rather than left to its idle timeout.
#[tokio::test]
async fn the_bridges_queue_unreachable_is_503_and_ends_nvcfs_session() {
    use portico_streaming::bridge_queue::SqsBridges;
    let nowhere = aws_at("http://127.0.0.1:9");
    let unreachable = SqsBridges::new(aws_sdk_sqs::Client::new(&nowhere), "http://127.0.0.1:9/q".into());
    let (api, nvcf) = on_nvcf_with(|_| {}, move |_| Some(Arc::new(unreachable) as Arc<dyn BridgeQueue>)).await;
    let (status, refused) = start(&api).await;
    assert_eq!((status, refused["code"].as_str()), (503, Some("unavailable")), "{refused}");
    assert_eq!(sessions_in_use(&api).await, 0);
    assert_eq!(nvcf.nvcf.sessions_live(), 0, "NVCF's session ended with the refusal");
    assert_eq!(nvcf.nvcf.requests.lock().unwrap().clone(), ["POST /sign_in", "DELETE /sign_in"]);
}

/// API Gateway closes a connection after 2 hours: the bridge joins the relay again with a fresh
/// host ticket and the stream goes on, over the same NVCF socket. A second bridge handed the same
/// job while the first carries it (a message shown again) leaves it alone: NVCF's session lives.
#[tokio::test]
async fn the_bridge_joins_again_when_api_gateway_closes_its_socket_and_a_duplicate_bridge_stands_aside() {
    use portico_streaming::push::ConnectionPusher as _;
    let (api, nvcf) = on_nvcf().await;
    let (status, started) = start(&api).await;
    assert_eq!(status, 201, "{started}");
    let id = started["session_id"].as_str().unwrap().to_owned();
    let (mut client, _) = Ws::join(started["ws_url"].as_str().unwrap()).await;
    client.expect("peer_joined").await;
    assert_eq!(client.expect_signal().await, json!("SYN"));
    let host_of = |api: &TestApi| {
        let (table, id) = (api.services.table.clone(), id.clone());
        async move {
            let item = table.get(&portico_streaming::session_key(&id)).await.unwrap().unwrap();
            item.doc::<portico_streaming::Session>().unwrap().host_conn
        }
    };
    let first_host = host_of(&api).await.expect("the bridge is the host");
    api.connections.close(&first_host).await.unwrap();
    client.expect("peer_left").await;
    client.expect("peer_joined").await;
    client.signal(json!("still there?")).await;
    assert_eq!(client.expect_signal().await, json!(json!({"echo": "still there?"}).to_string()));
    assert_ne!(host_of(&api).await.unwrap(), first_host);
    assert_eq!(nvcf.nvcf.requests.lock().unwrap().iter().filter(|r| r.as_str() == "WS /sign_in").count(), 1);

    // The same job again, to a bridge of its own: another host is there, so it stands aside.
    let signaling = portico_streaming::nvcf_signaling(&api.services).unwrap();
    let tickets = portico_streaming::bridge::HostTickets::new(api.services.table.clone(), api.services.config.clone())
        .with_patience(Duration::from_millis(300));
    let job = portico_streaming::bridge::BridgeJob {
        session_id: id.clone(),
        function_id: app_body("x")["function_id"].as_str().unwrap().to_owned(),
        function_version_id: app_body("x")["function_version_id"].as_str().unwrap().to_owned(),
        nvcf_request_id: nvcf.nvcf.session_ids()[0].clone(),
        relay_url: format!("{}?ticket=used-long-ago", api.services.config.relay_url),
        max_seconds: 3600,
    };
    let end = portico_streaming::bridge::carry(&signaling, Some(&tickets), &job).await;
    assert_eq!(end, portico_streaming::bridge::BridgeEnd::NotHost);
    assert_eq!(nvcf.nvcf.sessions_live(), 1, "NVCF's session is not ended by the bridge that stood aside");
    client.signal(json!("and now?")).await;
    assert_eq!(client.expect_signal().await, json!(json!({"echo": "and now?"}).to_string()));
}
