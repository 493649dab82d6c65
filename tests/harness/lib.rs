//! Test harness: the local engines `scripts/test` starts, a Portico emulator on a free
//! 127.0.0.1 port with a counting store, and token minting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portico_core::auth::own::KeyFile;
use portico_core::secrets::LocalSecrets;
use portico_core::store::counting::CountingTable;
use portico_core::store::dynamo::DynamoTable;
use portico_core::store::{Condition, Counter, Item, Key, Page, Query, StoreError, Table, now_epoch};
use portico_core::{Config, Services};
use portico_local::{Platform, Running, Shared, WS_PATH, portico_gateway, start_on};
use serde_json::json;

pub mod argo;
pub mod browser;
pub mod fault_proxy;
mod ws;
pub use ws::Ws;

/// The HS256 secret of the trusted web system's tokens in tests.
pub const SECRET: &str = "test-secret-0123456789-abcdefghij-klmnop";
/// Secret id of [`SECRET`].
pub const WEB_SECRET_ID: &str = "portico/web-token";
/// The administrator of every test configuration (a bootstrap admin).
pub const ADMIN: &str = "ada";
/// The streaming platform's API key in tests: it must never leave the server side.
pub const STREAM_API_KEY: &str = "nvapi-TEST-KEY-7f3c9a1e5b";

fn engine(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: {what} tests need it. Run the suite with scripts/test, which starts it.")
    })
}

/// DynamoDB Local's endpoint (`PORTICO_TEST_DYNAMODB`).
pub fn dynamodb_endpoint() -> String {
    engine("PORTICO_TEST_DYNAMODB", "DynamoDB Local")
}

/// moto server's endpoint (`PORTICO_TEST_MOTO`).
pub fn moto_endpoint() -> String {
    engine("PORTICO_TEST_MOTO", "moto server")
}

/// The real `ogdc-runner` CLI (`PORTICO_TEST_OGDC_RUNNER`), installed by scripts/test.
pub fn ogdc_runner() -> String {
    engine("PORTICO_TEST_OGDC_RUNNER", "the ogdc-runner CLI")
}

/// A real OpenID Provider, panva's `oidc-provider` on Node 22, installed by scripts/test:
/// the Node binary (`PORTICO_TEST_OIDC_NODE`) and where its packages are
/// (`PORTICO_TEST_OIDC_MODULES`). The provider itself is `fixtures/oidc-provider/provider.mjs`.
pub fn oidc_provider() -> (String, String) {
    (engine("PORTICO_TEST_OIDC_NODE", "Node 22"), engine("PORTICO_TEST_OIDC_MODULES", "the oidc-provider package"))
}

/// Python with `grpcio`, `grpcio-tools` and `grpcio-reflection` (`PORTICO_TEST_GRPC_PYTHON`),
/// installed by scripts/test, for the real gRPC server `fixtures/grpc-python/farm_server.py`.
pub fn grpc_python() -> String {
    engine("PORTICO_TEST_GRPC_PYTHON", "Python's grpcio")
}

/// Python with `aiortc` and `websockets` (`PORTICO_TEST_AIORTC_PYTHON`), installed by
/// scripts/test, for the real WebRTC peers of `fixtures/aiortc/peers.py`.
pub fn aiortc_python() -> String {
    engine("PORTICO_TEST_AIORTC_PYTHON", "Python's aiortc")
}

/// `kubernetes-validate` (`PORTICO_TEST_KUBERNETES_VALIDATE`, PyPI, installed by scripts/test):
/// Kubernetes' published schemas, offline.
pub fn kubernetes_validate() -> String {
    engine("PORTICO_TEST_KUBERNETES_VALIDATE", "kubernetes-validate")
}

/// Starts `command` (killed when the child is dropped) and reads its stdout until a line starts
/// with `ready`: the rest of that line, and the lines that follow.
pub async fn spawn_until(
    mut command: tokio::process::Command,
    ready: &str,
) -> (tokio::process::Child, String, tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>) {
    use tokio::io::AsyncBufReadExt as _;
    let what = format!("{:?}", command.as_std().get_program());
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("its stdout") {
            if let Some(rest) = line.strip_prefix(ready) {
                return rest.to_owned();
            }
        }
        panic!("{what} exited before saying it was ready");
    });
    let rest = found.await.unwrap_or_else(|_| panic!("{what} is ready within 30 s"));
    (child, rest, lines)
}

/// A unique name, so tests sharing one engine never see each other's data.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}-{}", std::process::id(), now_epoch(), N.fetch_add(1, Ordering::SeqCst))
}

/// A fresh table on DynamoDB Local, created with Portico's key design.
pub async fn dynamo_table() -> DynamoTable {
    let table = DynamoTable::new(DynamoTable::local_client(&dynamodb_endpoint()), unique("portico-test"));
    table.create_if_missing().await.expect("create table on DynamoDB Local");
    table
}

/// A web-system token (HS256 with [`SECRET`]) for `sub` in `groups`, valid for an hour.
pub fn web_token(sub: &str, groups: &[&str]) -> String {
    mint_hs256(SECRET.as_bytes(), &json!({"sub": sub, "groups": groups, "exp": now_epoch() + 3600}))
}

/// Signs any claims with HS256.
pub fn mint_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap()
}

/// One signing keyring per test process.
pub fn signing_keys() -> &'static str {
    static KEYS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| serde_json::to_string(&KeyFile::generate()).unwrap())
}

/// Guacamole's `json-secret-key` in the tests' secrets (the extension's published example key).
pub const GUACAMOLE_KEY: &str = "4C0B569E4C96DF157EEE1B65DD0E4D41";

/// The configuration tests run with: local secrets (keyring, web-token secret), HS256 web
/// tokens on, [`ADMIN`] a bootstrap administrator.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.local_secrets = BTreeMap::from([
        (config.signing_keys_secret_id.clone(), signing_keys().to_owned()),
        (WEB_SECRET_ID.to_owned(), SECRET.to_owned()),
        (config.stream_api_key_secret_id.clone(), STREAM_API_KEY.to_owned()),
        (config.guacamole_key_secret_id.clone(), GUACAMOLE_KEY.to_owned()),
    ]);
    config.web_token_secret_id = Some(WEB_SECRET_ID.into());
    config.bootstrap_admins = vec![ADMIN.into()];
    config
}

/// Portico's HTTP API served by the emulator over `table`, with every store call counted.
pub struct TestApi {
    pub running: Running,
    /// The emulated WebSocket connections (API Gateway's Management API).
    pub connections: Arc<portico_local::ws::LocalConnections>,
    pub calls: Arc<CountingTable>,
    pub http: reqwest::Client,
    pub services: Arc<Services>,
    /// The services and the domains' clients the route groups share.
    pub platform: Shared,
}

impl TestApi {
    pub async fn start(table: Arc<dyn Table>, config: Config) -> TestApi {
        Self::start_with(table, config, false).await
    }

    /// As [`TestApi::start`], with the emulator's demo streaming platform as `cargo run` has it.
    pub async fn start_with_demo_platform(table: Arc<dyn Table>, config: Config) -> TestApi {
        Self::start_with(table, config, true).await
    }

    /// As [`TestApi::start`], with `tune` applied to the clients before they serve.
    pub async fn start_tuned(table: Arc<dyn Table>, config: Config, tune: impl FnOnce(&mut Platform)) -> TestApi {
        Self::start_full(table, config, false, tune).await
    }

    async fn start_with(table: Arc<dyn Table>, config: Config, demo: bool) -> TestApi {
        Self::start_full(table, config, demo, |_| {}).await
    }

    /// As [`TestApi::start_tuned`], with the emulator's demo streaming platform when `demo`.
    pub async fn start_full(
        table: Arc<dyn Table>,
        mut config: Config,
        demo: bool,
        tune: impl FnOnce(&mut Platform),
    ) -> TestApi {
        capture_logs();
        let calls = Arc::new(CountingTable::new(table));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().unwrap();
        config.relay_url = format!("ws://{addr}{WS_PATH}");
        let demo = demo && portico_local::demo::configure(&mut config, &format!("http://{addr}"));
        let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
        let rpc = portico_local::rpc_gateway(&config).await.expect("rpc gateway");
        let services = Services::with(config, calls.clone(), secrets).await.expect("services");
        let mut platform = Platform::new(services);
        tune(&mut platform);
        let (mut gateway, platform) = portico_gateway(platform, rpc);
        let services = Arc::clone(&platform.services);
        if demo {
            portico_local::demo::mount(&mut gateway, &services);
        }
        let connections = Arc::clone(&gateway.ws.as_ref().expect("the relay's WebSocket API").connections);
        let running = start_on(listener, gateway).expect("emulator");
        TestApi { running, connections, calls, http: reqwest::Client::new(), services, platform }
    }

    /// A Portico access token for `username`.
    pub fn token(&self, username: &str) -> String {
        self.services.keys().issue(username).0
    }

    /// A token of the bootstrap administrator.
    pub fn admin_token(&self) -> String {
        self.token(ADMIN)
    }

    /// A token of a user without roles.
    pub fn user_token(&self) -> String {
        self.token("bob")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    /// A request to `path` with an optional bearer token.
    pub fn req(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends raw bytes on a new connection and reads the answer: the status, and the body as
    /// JSON (`Null` when it is not). The server may answer before it has read everything; a
    /// failed write is fine then.
    pub async fn raw(&self, request: &[u8]) -> (u16, serde_json::Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.running.addr).await.unwrap();
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }
}

/// The the Omniverse portal sample app body, with `slug`.
pub fn app_body(slug: &str) -> serde_json::Value {
    json!({
        "slug": slug,
        "function_id": "20e5086a-832a-43a6-87c9-6784e2d1e4bd",
        "function_version_id": "ba4e628b-975b-4e28-9e06-492016a94ec7",
        "title": "USD Validate",
        "description": "USD Validate 2024.1.0 aims to apply laser focus by primarily targeting developers at ISVs.",
        "version": "2024.1.0",
        "image": "https://launcher-prod.s3.us-east-2.amazonaws.com/create/2023.2.5/image.png",
        "icon": "https://launcher-prod.s3.us-east-2.amazonaws.com/create/2023.2.5/icon.png",
        "category": "Template Applications",
        "product_area": "Omniverse"
    })
}

/// Signs `claims` with ES256 using a PKCS#8 key (base64 DER), with `kid` and `typ`: tokens
/// that look like Portico's or an IdP's, with any claims a test needs.
pub fn sign_es256(pkcs8_b64: &str, kid: Option<&str>, typ: Option<&str>, claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.decode(pkcs8_b64).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(&der)).unwrap()
}

/// The first key of the test keyring: (kid, base64 PKCS#8).
pub fn portico_key() -> (String, String) {
    let file: KeyFile = serde_json::from_str(signing_keys()).unwrap();
    (file.keys[0].kid.clone(), file.keys[0].pkcs8.clone())
}

/// What a fake upstream answers: status and JSON body.
pub type FakeAnswer = (u16, String);
/// A fake upstream's behaviour: (method, path, authorization header, body) to an answer.
pub type FakeHandler = Arc<dyn Fn(&str, &str, Option<&str>, &[u8]) -> FakeAnswer + Send + Sync>;

/// A fake HTTP upstream on 127.0.0.1 (an IdP, a facility login service); stops when dropped.
pub struct FakeServer {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    pub async fn start(handler: FakeHandler) -> FakeServer {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let handler = Arc::clone(&handler);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let handler = Arc::clone(&handler);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok());
                            let (status, text) = handler(parts.method.as_str(), parts.uri.path(), auth, &body);
                            let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(text)));
                            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        FakeServer { url, task }
    }
}

/// Everything logged by this test process (every test writes here).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of the process (debug and above) to [`captured_logs`].
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| LogSink)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// A test's view of a table that may hold some reads and writes back: what an [`Intercepted`]
/// does on each `get` and `put` (by default, the call on [`Intercept::inner`]). Every other
/// call goes to the inner table unchanged.
#[async_trait::async_trait]
pub trait Intercept: Send + Sync {
    /// The table the calls go to.
    fn inner(&self) -> &dyn Table;
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner().get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.inner().put(item, condition).await
    }
}

/// The [`Table`] of an [`Intercept`]; derefs to it.
pub struct Intercepted<T>(pub T);

impl<T> std::ops::Deref for Intercepted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[async_trait::async_trait]
impl<T: Intercept> Table for Intercepted<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.0.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.0.inner().delete(key, condition).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.0.inner().query(query).await
    }
    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError> {
        self.0.inner().add(key, counters, expires_at).await
    }
}
