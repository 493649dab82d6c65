//! Benchmark: token verification and authenticated requests through the emulator.
//!
//! ```text
//! cargo run --release -p portico-local --bin bench [-- --requests 20000 --concurrency 32]
//! ```
//! Then relays signals between WebSocket clients and hosts of 100 sessions through the
//! emulator's WebSocket API (in-process, with a counting store) and prints relayed
//! messages/s, latency percentiles and storage calls per relayed message. Then the RPC
//! gateway's overhead and transcoding throughput ([`rpc`]), then jobs' submit and status
//! latency against the demo Argo ([`jobs`]). `--relay-only`, `--rpc-only` and `--jobs-only`
//! run one part.
//!
//! Prints, for each token source, verifications per second on one core (in-process, warm
//! caches), then requests per second and p50/p99 latency of `GET /apps/{slug}` through the
//! emulator with each kind of bearer, beside an unauthenticated route of the same server
//! (the difference is the per-request cost of authentication), and the server's RSS. The
//! server runs in a child process (this binary with `--serve`), on the embedded store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use portico_core::auth::own::{KeyFile, Keyring};
use portico_core::secrets::LocalSecrets;
use portico_core::store::memory::MemoryTable;
use portico_core::store::now_epoch;
use portico_core::web::{ApiRequest, ApiResponse, RouteGroup, json as json_response};
use portico_core::{Config, Error, Services};
use portico_local::{HttpApi, route_groups, start};
use serde_json::{Value, json};

mod jobs;
mod rpc;

const WEB_SECRET: &str = "bench-web-secret-0123456789abcdef0123456789";
const WEB_SECRET_ID: &str = "portico/web-token";

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The configuration of both the server and the in-process verifiers.
fn config(keys: &str, jwks_uri: Option<String>) -> Config {
    let mut config = Config::default();
    config.local_secrets = BTreeMap::from([
        (config.signing_keys_secret_id.clone(), keys.to_owned()),
        (WEB_SECRET_ID.to_owned(), WEB_SECRET.to_owned()),
    ]);
    config.web_token_secret_id = Some(WEB_SECRET_ID.into());
    config.bootstrap_admins = vec!["bench".into()];
    // The login timing below makes many failed attempts on purpose.
    config.login_max_failures = i64::MAX;
    if let Some(uri) = jwks_uri {
        config.oidc_jwks_uri = Some(uri);
        config.oidc_issuer = Some("https://idp.bench".into());
        config.oidc_algorithms = vec!["ES256".into()];
    }
    config
}

async fn services(config: Config) -> Result<Services, Box<dyn std::error::Error>> {
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    Ok(Services::with(config, Arc::new(MemoryTable::new()), secrets).await.map_err(|e| format!("{e:?}"))?)
}

/// Child mode: serve the API on the given port until killed; keys from `BENCH_KEYS`.
async fn serve(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let keys = std::env::var("BENCH_KEYS")?;
    let config = config(&keys, None);
    let rpc = portico_local::rpc_gateway(&config).await?;
    let services = Arc::new(services(config).await?);
    let _running = start(HttpApi::new(route_groups(services, rpc)), port).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// A stand-in OpenID provider publishing one key set.
struct Idp(Value, Config);

#[async_trait::async_trait]
impl RouteGroup for Idp {
    fn name(&self) -> &'static str {
        "idp"
    }
    fn route_keys(&self) -> Vec<String> {
        ["GET /jwks"].map(String::from).into()
    }
    fn config(&self) -> &Config {
        &self.1
    }
    async fn route(&self, _: &ApiRequest) -> Result<ApiResponse, Error> {
        Ok(json_response(StatusCode::OK, &self.0))
    }
}

/// Full verifications (no memory of verified tokens) per second of `token` on this thread.
async fn verify_rate(services: &Services, token: &str, count: usize) -> f64 {
    services.identity.tokens.verify_signed(token).await.expect("the benchmark token verifies");
    let t = Instant::now();
    for _ in 0..count {
        services.identity.tokens.verify_signed(token).await.expect("verifies");
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Loads `url` with `count` requests at `concurrency`; returns (req/s, sorted latencies).
async fn load(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    count: usize,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    let per_task = count.div_ceil(concurrency);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.to_owned(), token.map(str::to_owned));
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let mut req = http.get(&url);
                    if let Some(tok) = &token {
                        req = req.bearer_auth(tok);
                    }
                    let r = req.send().await.expect("request");
                    assert_eq!(r.status(), 200, "{url}");
                    r.bytes().await.expect("body");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(count);
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--serve") {
        return serve(flag("--serve", 0) as u16).await;
    }
    let requests = flag("--requests", 20_000);
    let concurrency = flag("--concurrency", 32).max(1);
    let keys = serde_json::to_string(&KeyFile::generate())?;
    if std::env::args().any(|a| a == "--relay-only") {
        return relay_bench(&keys).await;
    }
    let rpc_calls = flag("--rpc-calls", 2_000);
    if std::env::args().any(|a| a == "--rpc-only") {
        return rpc::rpc_bench(&keys, rpc_calls).await;
    }
    let job_count = flag("--jobs", 500);
    if std::env::args().any(|a| a == "--jobs-only") {
        return jobs::jobs_bench(&keys, job_count).await;
    }
    let now = now_epoch();

    // 1. Verification throughput per token source, in-process.
    let idp_keys = KeyFile::generate();
    let idp_ring = Keyring::new(&idp_keys, &config(&keys, None)).map_err(|e| format!("{e:?}"))?;
    let idp_api = HttpApi::new(vec![Arc::new(Idp(idp_ring.jwks().clone(), Config::default()))]);
    let idp = start(idp_api, 0).await?;
    let verifier = services(config(&keys, Some(format!("{}/jwks", idp.url())))).await?;
    let own = verifier.keys().issue("bench").0;
    let web = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "bench", "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(WEB_SECRET.as_bytes()),
    )?;
    let mut oidc_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    oidc_header.kid = Some(idp_keys.keys[0].kid.clone());
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &idp_keys.keys[0].pkcs8)?;
    let oidc = jsonwebtoken::encode(
        &oidc_header,
        &json!({"iss": "https://idp.bench", "sub": "x", "preferred_username": "bench", "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )?;
    println!("Full token verification, one core (signature + claims; OIDC with a warm JWKS cache)");
    for (name, token, count) in
        [("HS256 web token", &web, 100_000), ("ES256 Portico token", &own, 20_000), ("ES256 OIDC token", &oidc, 20_000)]
    {
        println!("  {name:<20} {:>9.0} verifications/s", verify_rate(&verifier, token, count).await);
    }

    // 2. Requests through the emulator, in a child process.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", &port.to_string()])
        .env("RUST_LOG", "off")
        .env("BENCH_KEYS", &keys)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("server exited")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/.well-known/jwks.json")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("the emulator did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let own = Keyring::from_json(&keys, &config(&keys, None)).map_err(|e| format!("{e:?}"))?.issue("bench").0;
    let app = json!({"function_id": "f", "function_version_id": "v", "title": "Bench app"});
    let put = http.request(Method::PUT, format!("{base}/apps/bench")).bearer_auth(&own).json(&app).send().await?;
    assert!(put.status().is_success(), "seeding the app failed: {}", put.status());
    let idle = rss_kb(pid).0;

    println!("\nThrough the emulator ({requests} requests at concurrency {concurrency}, embedded store)");
    let app_url = format!("{base}/apps/bench");
    let jwks_url = format!("{base}/.well-known/jwks.json");
    let runs = [
        ("GET /.well-known/jwks.json, no auth", jwks_url.as_str(), None),
        ("GET /apps/{slug}, Portico ES256", app_url.as_str(), Some(own.as_str())),
        ("GET /apps/{slug}, web HS256", app_url.as_str(), Some(web.as_str())),
    ];
    let mut p50s = Vec::new();
    for (name, url, token) in runs {
        load(&http, url, token, requests / 10, concurrency).await; // warm-up
        let (rate, lat) = load(&http, url, token, requests, concurrency).await;
        let (p50, p99) = (percentile(&lat, 0.5).as_secs_f64() * 1e3, percentile(&lat, 0.99).as_secs_f64() * 1e3);
        println!("  {name:<38} {rate:>7.0} req/s   p50 {p50:.3} ms   p99 {p99:.3} ms");
        p50s.push(p50);
    }
    println!(
        "  auth cost per request, token seen before (p50 difference to the unauthenticated route): ES256 {:.3} ms, HS256 {:.3} ms",
        p50s[1] - p50s[0],
        p50s[2] - p50s[0]
    );
    let (served_rss, served_peak) = rss_kb(pid);
    // Login: a wrong password and an unknown user should cost the same (both verify a hash).
    let user = json!({"username": "timing", "password": "the-right-password"});
    http.post(format!("{base}/admin/users")).bearer_auth(&own).json(&user).send().await?;
    let mut means = Vec::new();
    for username in ["timing", "nobody-at-all"] {
        let t = Instant::now();
        for _ in 0..20 {
            let r = http
                .post(format!("{base}/auth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("grant_type=password&username={username}&password=wrong-password"))
                .send()
                .await?;
            assert_eq!(r.status(), 400);
        }
        means.push(t.elapsed().as_secs_f64() * 1e3 / 20.0);
    }
    println!("  refused login, mean of 20: wrong password {:.1} ms, unknown user {:.1} ms", means[0], means[1]);
    let (_, login_peak) = rss_kb(pid);
    child.kill().await.ok();
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "  server RSS: {:.1} MiB idle, {:.1} MiB after the loads ({:.1} MiB peak); {:.1} MiB peak after the logins (argon2id uses 19 MiB per hash)",
        mib(idle),
        mib(served_rss),
        mib(served_peak),
        mib(login_peak)
    );
    drop(idp);
    relay_bench(&keys).await?;
    rpc::rpc_bench(&keys, rpc_calls).await?;
    jobs::jobs_bench(&keys, job_count).await
}

/// A stand-in streaming platform: records launches, lists every function as ACTIVE.
struct Platform(Config, std::sync::Mutex<Vec<Value>>);

#[async_trait::async_trait]
impl RouteGroup for Platform {
    fn name(&self) -> &'static str {
        "platform"
    }
    fn route_keys(&self) -> Vec<String> {
        ["ANY /platform/{proxy+}"].map(String::from).into()
    }
    fn config(&self) -> &Config {
        &self.0
    }
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        if req.method() == Method::POST {
            self.1.lock().unwrap().push(serde_json::from_slice(req.body()).unwrap_or(Value::Null));
            return Ok(json_response(StatusCode::OK, &json!({})));
        }
        let functions = json!({"functions": [{"id": "f", "versionId": "v", "status": "ACTIVE"}]});
        Ok(json_response(StatusCode::OK, &functions))
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(url: &str) -> Result<Socket, Box<dyn std::error::Error>> {
    use futures_util::{SinkExt, StreamExt};
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    ws.send(tokio_tungstenite::tungstenite::Message::text(r#"{"type":"hello"}"#)).await?;
    ws.next().await; // welcome
    Ok(ws)
}

/// Text of the next message of `kind`.
async fn next_of(ws: &mut Socket, kind: &str) -> Value {
    use futures_util::StreamExt;
    loop {
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) = ws.next().await else {
            panic!("socket closed")
        };
        let v: Value = serde_json::from_str(&t).expect("JSON");
        if v["type"] == kind {
            return v;
        }
        assert_ne!(v["type"], "error", "the relay refused a message: {v}");
    }
}

async fn relay_bench(keys: &str) -> Result<(), Box<dyn std::error::Error>> {
    use futures_util::SinkExt;
    use portico_core::store::counting::CountingTable;
    // Each connection sends within the relay's burst allowance (100 messages) over both phases and the setup, so nothing is
    // refused for rate; the load comes from many sessions at once.
    const SESSIONS: usize = 100;
    const MESSAGES: usize = 90;
    const IDLE_ROUNDS: usize = 5;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut cfg = config(keys, None);
    cfg.relay_url = format!("ws://{}{}", listener.local_addr()?, portico_local::WS_PATH);
    cfg.stream_launch_url = Some(format!("{base}/platform/launch"));
    cfg.stream_functions_url = Some(format!("{base}/platform/functions"));
    cfg.local_secrets.insert(cfg.stream_api_key_secret_id.clone(), "bench-platform-key".into());
    cfg.quota_sessions = SESSIONS as i64;
    cfg.max_app_instances_count = SESSIONS as i64;
    let calls = Arc::new(CountingTable::new(Arc::new(MemoryTable::new())));
    let secrets = Arc::new(LocalSecrets::new(cfg.local_secrets.clone()));
    let platform = Arc::new(Platform(cfg.clone(), std::sync::Mutex::default()));
    let rpc = portico_local::rpc_gateway(&cfg).await?;
    let services = Services::with(cfg, calls.clone(), secrets).await.map_err(|e| format!("{e:?}"))?;
    let (mut gateway, services) = portico_local::portico_gateway(services, rpc);
    gateway.http.add(platform.clone());
    let _running = portico_local::start_on(listener, gateway)?;

    let http = reqwest::Client::new();
    let token = services.keys().issue("bench").0;
    let app = json!({"function_id": "f", "function_version_id": "v", "title": "Relay bench"});
    http.put(format!("{base}/apps/relay")).bearer_auth(&token).json(&app).send().await?.error_for_status()?;
    let mut pairs = Vec::new();
    for _ in 0..SESSIONS {
        let started: Value = http
            .post(format!("{base}/sessions"))
            .bearer_auth(&token)
            .json(&json!({"app": "relay"}))
            .send()
            .await?
            .json()
            .await?;
        let host_url = platform.1.lock().unwrap().last().expect("launched")["relay_url"].as_str().unwrap().to_owned();
        let mut client = join(started["ws_url"].as_str().ok_or("no ws_url")?).await?;
        let mut host = join(&host_url).await?;
        next_of(&mut client, "peer_joined").await;
        next_of(&mut host, "peer_joined").await;
        // A pong means the host's hello is fully handled (buffers drained, links direct).
        host.send(tokio_tungstenite::tungstenite::Message::text(r#"{"type":"ping"}"#)).await?;
        next_of(&mut host, "pong").await;
        pairs.push((client, host));
    }
    use tokio_tungstenite::tungstenite::Message;
    let signal = |i: usize, at: u64| Message::text(json!({"type": "signal", "data": {"i": i, "at": at}}).to_string());

    // Unloaded: one message in flight at a time, round-robin over the sessions.
    let mut round_trips = Vec::new();
    for round in 0..IDLE_ROUNDS {
        for (client, host) in &mut pairs {
            let t = Instant::now();
            client.send(signal(round, 0)).await?;
            next_of(host, "signal").await;
            round_trips.push(t.elapsed());
        }
    }
    round_trips.sort();

    // Loaded: every client sends its messages at once; hosts time each arrival.
    calls.take();
    let origin = Instant::now();
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|(mut client, mut host)| {
            tokio::spawn(async move {
                let sender = tokio::spawn(async move {
                    for i in 0..MESSAGES {
                        client.send(signal(i, origin.elapsed().as_micros() as u64)).await.expect("send");
                    }
                    client
                });
                let mut latencies = Vec::with_capacity(MESSAGES);
                for _ in 0..MESSAGES {
                    let v = next_of(&mut host, "signal").await;
                    let sent = v["data"]["at"].as_u64().unwrap_or(0);
                    latencies.push(Duration::from_micros(origin.elapsed().as_micros() as u64 - sent));
                }
                (latencies, sender.await.expect("sender"), host)
            })
        })
        .collect();
    let (mut latencies, mut sockets) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, client, host) = t.await?;
        latencies.extend(l);
        sockets.push((client, host));
    }
    let elapsed = origin.elapsed();
    // Counted before the sockets close, so the figures are the relaying alone.
    let c = calls.take();
    drop(sockets);
    latencies.sort();
    let total = latencies.len();
    println!("\nSignal relay through the emulator's WebSocket API ({SESSIONS} sessions, in-process)");
    println!(
        "  one message in flight ({} messages):   p50 {:.3} ms   p99 {:.3} ms",
        round_trips.len(),
        percentile(&round_trips, 0.5).as_secs_f64() * 1e3,
        percentile(&round_trips, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "  all sessions at once ({total} messages): {:.0} messages/s   p50 {:.3} ms   p99 {:.3} ms",
        total as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "  storage calls per relayed message: {:.2} ({} reads, {} other); one post to the peer each",
        c.total() as f64 / total as f64,
        c.get,
        c.total() - c.get
    );
    Ok(())
}
