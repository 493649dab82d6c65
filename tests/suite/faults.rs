//! Faults and concurrency a user relies on Portico to survive:
//!
//! - [`store`]: DynamoDB Local behind a TCP fault proxy (connections dropped, answers held past
//!   the client's timeout, requests or answers cut by a reset). Every request answers a success
//!   or a 503 with `Retry-After`, in bounded time; a fault on any one step of a multi-step
//!   write is undone; the store stays down mid-write and the scheduled repairs leave nothing
//!   half-written. Checked by reading the table directly ([`audit`]), not through the proxy.
//! - [`platform`]: the streaming platform down or hanging: 503 or 504 within the deadline,
//!   and the quota given back.
//! - [`races`]: fifty concurrent job submissions against a quota of three, on both stores.
//! - [`relay`]: one WebSocket connection's messages run at once by two relay instances
//!   (as API Gateway may run them in two Lambda instances) over one table.

mod audit;
mod platform;
mod races;
mod relay;
mod store;

use std::sync::Arc;
use std::time::Duration;

use portico_core::Config;
use portico_core::store::Table;
use portico_core::store::dynamo::{DynamoTable, Patience};
use portico_tests::fault_proxy::FaultProxy;
use portico_tests::{FakeServer, STREAM_API_KEY, TestApi, app_body, dynamodb_endpoint, unique};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::jobs::Farm;

/// A shell recipe for `POST /jobs`.
pub(crate) fn recipe() -> Value {
    let meta = "name: Tide Gauge\nworkflow: {type: shell}\ninput: {params: [{type: url, value: 'https://data.example.org/tides.csv'}]}\n";
    json!({"recipe": {"meta_yml": meta, "steps": "head -n 5 /input_dir/tides.csv > /output_dir/head.csv\n"}})
}

/// A fake streaming platform: it lists the `viewer` app's function as ACTIVE and accepts every
/// launch, answering with the status in `launch_status`.
pub(crate) struct Platform {
    pub server: FakeServer,
    pub launch_status: Arc<std::sync::Mutex<u16>>,
    pub launches: Arc<std::sync::atomic::AtomicUsize>,
}

impl Platform {
    pub async fn start() -> Platform {
        let launch_status = Arc::new(std::sync::Mutex::new(200));
        let launches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (answer, count) = (Arc::clone(&launch_status), Arc::clone(&launches));
        let viewer = app_body("viewer");
        let server = FakeServer::start(Arc::new(move |method, path, auth, _| {
            assert_eq!(auth, Some(format!("Bearer {STREAM_API_KEY}").as_str()), "the platform's key, on every call");
            match (method, path) {
                ("GET", "/list") => {
                    let f = json!({"id": viewer["function_id"], "versionId": viewer["function_version_id"], "status": "ACTIVE"});
                    (200, json!({"functions": [f]}).to_string())
                }
                ("POST", p) if p.ends_with("/sessions") => {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    (*answer.lock().unwrap(), "{}".into())
                }
                _ => (404, "{}".into()),
            }
        }))
        .await;
        Platform { server, launch_status, launches }
    }

    /// Points `config` at this platform (launches at `launch_base`, or here).
    pub fn configure(&self, config: &mut Config, launch_base: Option<&str>) {
        config.stream_launch_url = Some(format!("{}/functions", launch_base.unwrap_or(&self.server.url)));
        config.stream_functions_url = Some(format!("{}/list", self.server.url));
        config.nvcf_cache_ttl = 3600;
    }
}

/// What every fault test's Portico runs with: generous quotas (faults, not limits, are under
/// test), roles cached for the whole test (so a request's only store calls are its own), and
/// short store timeouts.
pub(crate) fn tune(config: &mut Config) {
    config.authz_cache_ttl = 3600;
    config.quota_sessions = 1000;
    config.quota_jobs = 1000;
    config.max_app_instances_count = 1000;
    config.dynamodb_connect_timeout_ms = 300;
    config.dynamodb_attempt_timeout_ms = 400;
    config.dynamodb_timeout_ms = 1_200;
    config.dynamodb_max_attempts = 3;
}

/// Portico (with the demo Argo and a fake streaming platform) over a fresh table on DynamoDB
/// Local reached through a fault proxy; carol may start sessions and submit jobs.
pub(crate) struct Faulty {
    pub farm: Farm,
    pub proxy: FaultProxy,
    /// The same table, read directly.
    pub direct: DynamoTable,
    pub raw: aws_sdk_dynamodb::Client,
    pub table_name: String,
    /// Kept serving for the test's length.
    _platform: Platform,
}

impl Faulty {
    pub async fn start() -> Faulty {
        let table_name = unique("portico-faults");
        let raw = DynamoTable::local_client(&dynamodb_endpoint());
        let direct = DynamoTable::new(raw.clone(), table_name.clone());
        direct.create_if_missing().await.expect("create table on DynamoDB Local");
        let proxy = FaultProxy::start(&dynamodb_endpoint()).await;
        let mut config = Config::default();
        tune(&mut config);
        let patience = Patience::of(&config);
        let proxied = DynamoTable::new(DynamoTable::local_client_with(&proxy.url(), &patience), table_name.clone())
            .with_patience(patience);
        let platform = Platform::start().await;
        let farm = Farm::on(Arc::new(proxied) as Arc<dyn Table>, |c| {
            tune(c);
            platform.configure(c, None);
        })
        .await;
        let env = Faulty { farm, proxy, direct, raw, table_name, _platform: platform };
        let admin = portico_tests::ADMIN;
        env.ok(Method::PUT, "/apps/viewer", admin, Some(app_body("viewer"))).await;
        env.ok(Method::POST, "/admin/roles", admin, Some(json!({"name": "streamer"}))).await;
        let grant = json!({"group": "", "action": "session.start"});
        env.ok(Method::POST, "/admin/roles/streamer/permissions", admin, Some(grant)).await;
        env.ok(Method::PUT, "/admin/users/carol/roles/streamer", admin, None).await;
        // Warm: the callers' roles are read once and kept (see `tune`).
        for who in [admin, "carol"] {
            env.ok(Method::GET, "/auth/me", who, None).await;
        }
        env
    }

    async fn ok(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> Value {
        let (status, _, answer) = call(&self.farm.api, method.clone(), path, user, body, None).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// What the scheduled functions do every minute, run now, with every marker aged past the
    /// time a start or submission in progress is given: the sweeper and the reconciler.
    pub async fn repair(&self) {
        use portico_core::store::{Condition, Query};
        for partition in ["LIVE_SESSIONS", "ACTIVE_JOBS"] {
            let markers = self.direct.query(&Query::table(partition, 1000)).await.unwrap();
            for mut marker in markers.items {
                marker
                    .attrs
                    .insert("since".into(), portico_core::store::Attr::N(portico_core::store::now_epoch() - 3600));
                self.direct.put(marker, Condition::Always).await.unwrap();
            }
        }
        let platform = &self.farm.api.platform;
        platform.relay().sweep().await.expect("the sweeper runs");
        platform.jobs().reconcile().await.expect("the reconciler runs");
    }

    /// The table read directly holds nothing half-written (see [`audit`]).
    pub async fn audit(&self, when: &str) {
        let problems = audit::audit(&self.raw, &self.table_name).await;
        assert!(problems.is_empty(), "{when}: the store holds half-written state:\n{}", problems.join("\n"));
    }
}

/// A request to `api` as `user`, answered within 20 s (a fault must not become a hang):
/// status, `Retry-After`, body (as a JSON string when it is not JSON).
pub(crate) async fn call(
    api: &TestApi,
    method: Method,
    path: &str,
    user: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut r = api.req(method, path, Some(&api.token(user)));
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    let r = tokio::time::timeout(Duration::from_secs(20), r.send()).await.expect("an answer").unwrap();
    let status = r.status();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    (status, retry_after, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A 503 a client can act on: `Retry-After` in seconds and Portico's error body.
pub(crate) fn assert_retry_later(what: &str, status: StatusCode, retry_after: Option<&str>, body: &Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    let seconds = retry_after.unwrap_or_else(|| panic!("{what}: a 503 without Retry-After"));
    assert!(seconds.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)), "{what}: Retry-After {seconds}");
    let code = body["code"].as_str().unwrap_or_else(|| panic!("{what}: {body}"));
    assert!(["unavailable", "upstream_unavailable"].contains(&code), "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
}
