//! Cold start: each function binary, built for this machine with the deployment's profile,
//! started as Lambda starts it, against a stand-in for Lambda's Runtime API on 127.0.0.1,
//! beside `lambda_http`'s hello world built the same way (`functions.rs`).
//!
//! Measured per binary, median of `--starts` (10) starts after one unmeasured start (which
//! warms the page cache, as a recently deployed function's code is cached on its worker):
//! - process start (spawn) to the first invocation's response received by the Runtime API:
//!   exec and dynamic loading, the tokio runtime, logging set-up, `Config::load` (settings from
//!   the environment), `Services::from_config` (the signing keyring read and parsed, the HTTPS
//!   client with the system's root certificates, token verifiers; the rpc function also
//!   loads its descriptors), the first `GET .../invocation/next`, then the first request
//!   handled (a token verified, the user created on first sight, storage read) and its
//!   response posted; and the time to the first `next` alone (Lambda's "Init Duration");
//! - the process's peak resident memory (VmHWM) after that first answer;
//! - a warm invocation through the same Runtime API (`--warm` invocations, p50; for `auth`,
//!   its main route: a password login, refused, so one argon2id verification).
//!
//! The functions run on the embedded store with local secrets (`PORTICO_STORE=memory`,
//! `PORTICO_SECRETS=local`), so the cold start here does NOT include what AWS adds: loading
//! the AWS SDK's configuration, the Secrets Manager read of the signing keys and DynamoDB
//! calls, each a TLS connection to an AWS endpoint (tens of ms on a real cold start), nor
//! Lambda's own work before `exec` (fetching the code, starting the sandbox). The CPU is this
//! machine's, not a share of one sized by the function's memory. When moto is installed
//! (`./scripts/test` installs it), `apps` runs once more with DynamoDB and Secrets Manager
//! played by moto on 127.0.0.1 (`AWS_ENDPOINT_URL`): the SDK's configuration and clients, one
//! `GetSecretValue` and the first request's DynamoDB calls, over plain HTTP.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use portico_core::auth::own::Keyring;
use portico_core::secrets::LocalSecrets;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::functions::{self, Function, HELLO};
use crate::report::{Better, Report};
use crate::requests::rss_kb;
use crate::{BenchResult, events, flag, ms};

const PREFIX: &str = "/2018-06-01/runtime";

/// What a function posted to the Runtime API.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Response,
    Error,
    InitError,
}

struct Posted {
    kind: Kind,
    at: Instant,
    body: Bytes,
}

struct Shared {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    posted: mpsc::UnboundedSender<Posted>,
    first_next: OnceLock<Instant>,
    arn: String,
}

/// Lambda's Runtime API for one function process: `next` hands out the events sent to
/// `events` (waiting for one, as Lambda does between invocations); responses and errors come
/// back on `posted`.
struct RuntimeApi {
    address: String,
    events: mpsc::UnboundedSender<Vec<u8>>,
    posted: mpsc::UnboundedReceiver<Posted>,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RuntimeApi {
    async fn start(function_name: &str) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (events, events_rx) = mpsc::unbounded_channel();
        let (posted_tx, posted) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: tokio::sync::Mutex::new(events_rx),
            posted: posted_tx,
            first_next: OnceLock::new(),
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
        });
        let for_connections = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&for_connections);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(Arc::clone(&shared), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi { address, events, posted, shared, accept })
    }
}

fn reply(status: StatusCode, body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

async fn answer(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"no such path"}"#));
    };
    if req.method() == Method::GET && rest == "/invocation/next" {
        let _ = shared.first_next.set(Instant::now());
        // Waits for the next event; none (the run is over): the process is about to be killed.
        let Some(event) = shared.events.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, r#"{"errorMessage":"no more invocations"}"#));
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let deadline = (now + Duration::from_secs(10)).as_millis().to_string();
        let id = uuid::Uuid::new_v4().to_string();
        let trace =
            format!("Root=1-{:08x}-{};Parent=53995c3f42cd8ad8;Sampled=0", now.as_secs(), &id.replace('-', "")[..24]);
        let response = hyper::Response::builder()
            .status(StatusCode::OK)
            .header("Lambda-Runtime-Aws-Request-Id", id)
            .header("Lambda-Runtime-Deadline-Ms", deadline)
            .header("Lambda-Runtime-Invoked-Function-Arn", shared.arn.as_str())
            .header("Lambda-Runtime-Trace-Id", trace)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(event)))
            .expect("a valid response");
        return Ok(response);
    }
    let kind = match (req.method(), rest) {
        (&Method::POST, "/init/error") => Kind::InitError,
        (&Method::POST, r) if r.starts_with("/invocation/") && r.ends_with("/response") => Kind::Response,
        (&Method::POST, r) if r.starts_with("/invocation/") && r.ends_with("/error") => Kind::Error,
        _ => return Ok(reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"no such path"}"#)),
    };
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let _ = shared.posted.send(Posted { kind, at: Instant::now(), body });
    Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
}

/// What the functions need from outside: a token, the demo Cuebot, the demo Argo.
#[derive(Clone)]
struct Outside {
    keys: String,
    token: String,
    rpc_upstreams: String,
    argo_url: String,
    /// An AWS endpoint standing in for DynamoDB and Secrets Manager (moto); `None`: the
    /// embedded store and local secrets.
    aws: Option<String>,
}

/// The first event each binary gets: its main read route (or what its trigger sends).
fn first_event(bin: &str, token: &str) -> Vec<u8> {
    let get = |path: &str, route: &str| events::http("GET", path, route, Some(token), None);
    match bin {
        "auth" => get("/auth/me", "ANY /auth/{proxy+}"),
        "admin" => get("/admin/users", "ANY /admin/{proxy+}"),
        "sessions" => get("/sessions", "ANY /sessions"),
        "relay" => events::ws_connect("a-ticket-never-issued"),
        "sweeper" => events::scheduled("portico-sweeper"),
        "reconciler" => events::scheduled("portico-reconciler"),
        "rpc" => events::http(
            "POST",
            "/show.ShowInterface/FindShow",
            "POST /show.ShowInterface/{method}",
            Some(token),
            Some(("application/json", r#"{"name": "testshow"}"#)),
        ),
        "jobs" => events::http(
            "POST",
            "/jobs",
            "ANY /jobs",
            Some(token),
            Some(("application/json", &crate::job().to_string())),
        ),
        "console" => get("/console", "ANY /console"),
        _ => get("/apps", "ANY /apps"),
    }
}

/// What Lambda sets in a function's environment (a provided.al2023 runtime with JSON logs),
/// plus the settings of the SAM template that apply off AWS, on the embedded store.
fn environment(f: &Function, runtime_api: &str, outside: &Outside) -> Vec<(String, String)> {
    let name = format!("portico-{}", f.bin);
    let mut env: Vec<(String, String)> = [
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("_HANDLER", "bootstrap"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef0123456789abcdef"),
        ("AWS_ACCESS_KEY_ID", "ASIAXXXXXXXXXXXXXXXX"),
        ("AWS_SECRET_ACCESS_KEY", "bench-not-a-real-secret-access-key"),
        ("AWS_SESSION_TOKEN", "bench-not-a-real-session-token"),
        ("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR"),
        ("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("RUST_LOG", "info"),
        ("PORTICO_STORE", "memory"),
        ("PORTICO_SECRETS", "local"),
        ("PORTICO_BOOTSTRAP_ADMINS", "bench"),
        ("PORTICO_RELAY_URL", "wss://wxyz987654.execute-api.us-east-1.amazonaws.com/ws"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.push(("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()));
    env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), name.clone()));
    env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), f.memory_mb.to_string()));
    env.push(("AWS_LAMBDA_LOG_GROUP_NAME".into(), format!("/aws/lambda/{name}")));
    let keys_id = portico_core::Config::default().signing_keys_secret_id;
    env.push((LocalSecrets::env_name(&keys_id), outside.keys.clone()));
    env.push(("PORTICO_RPC_UPSTREAMS".into(), outside.rpc_upstreams.clone()));
    env.push(("PORTICO_ARGO_SERVER_URL".into(), outside.argo_url.clone()));
    if let Some(endpoint) = &outside.aws {
        env.retain(|(k, _)| !k.starts_with("PORTICO_SECRET"));
        env.push(("PORTICO_STORE".into(), "dynamodb".into()));
        env.push(("PORTICO_SECRETS".into(), "secretsmanager".into()));
        env.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
    }
    env
}

/// moto's server (installed into `.tools/` by `./scripts/test`) on a free port, with the
/// table and the signing keys' secret made; `None` when it is not installed.
async fn moto(keys: &str) -> Result<Option<(tokio::process::Child, String)>, Box<dyn std::error::Error>> {
    let server = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/moto_server");
    if !server.exists() {
        return Ok(None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            return Err("moto did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let config = portico_core::Config::default();
    let table = portico_core::store::dynamo::DynamoTable::new(
        portico_core::store::dynamo::DynamoTable::local_client(&endpoint),
        config.table_name.clone(),
    );
    table.create_if_missing().await.map_err(|e| format!("moto table: {e}"))?;
    // moto reads neither signatures nor credentials, only the service named in the scope.
    let created = reqwest::Client::new()
        .post(&endpoint)
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20261124/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(json!({"Name": config.signing_keys_secret_id, "SecretString": keys}).to_string())
        .send()
        .await?;
    if !created.status().is_success() {
        return Err(format!("moto CreateSecret: {}", created.text().await?).into());
    }
    Ok(Some((child, endpoint)))
}

/// One start's figures.
struct Start {
    init: Duration,
    first_answer: Duration,
    peak_kb: u64,
    warm: Vec<Duration>,
    /// The first answer: its HTTP status, else its body.
    answer: String,
}

/// The end of the function's log, to explain a failure.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or(&text).to_owned()
}

/// What the warm invocations are, when not the first event again: for `auth`, its main route,
/// a password login (refused: the function's store has no user with a password, and a refused
/// login verifies an argon2id hash as an accepted one does).
/// Each login names another user: repeated failures of one name are refused without hashing
/// once `login_max_failures` is reached.
fn warm_events(bin: &str, first: &[u8], count: usize) -> (Vec<Vec<u8>>, &'static str) {
    if bin != "auth" {
        return (vec![first.to_vec(); count], "warm invocation, p50");
    }
    let login = |i: usize| {
        let form = format!("grant_type=password&username=nobody-{i}&password=not-the-password");
        let body = Some(("application/x-www-form-urlencoded", form.as_str()));
        events::http("POST", "/auth/token", "ANY /auth/{proxy+}", None, body)
    };
    ((0..count).map(login).collect(), "warm invocation, refused login (argon2id), p50")
}

/// Starts `binary` once, hands it `event`, then each of `warm`; kills it.
async fn start_once(
    f: &Function,
    binary: &Path,
    event: &[u8],
    warm: &[Vec<u8>],
    outside: &Outside,
    dir: &Path,
) -> Result<Start, String> {
    let mut api = RuntimeApi::start(&format!("portico-{}", f.bin)).await.map_err(|e| e.to_string())?;
    let log_path = dir.join(format!("{}.log", f.bin));
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    api.events.send(event.to_vec()).expect("the stand-in is up");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(environment(f, &api.address, outside))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let failed = |why: String| format!("{}: {why}\n--- its output ---\n{}", f.bin, log_tail(&log_path));
    let posted = tokio::select! {
        p = api.posted.recv() => p.ok_or_else(|| failed("the stand-in stopped".into()))?,
        status = child.wait() => return Err(failed(format!("exited before answering ({status:?})"))),
        _ = tokio::time::sleep(Duration::from_secs(30)) => return Err(failed("no answer within 30 s".into())),
    };
    let first_answer = posted.at - started;
    let init = api.shared.first_next.get().map_or(first_answer, |t| *t - started);
    let (_, peak_kb) = rss_kb(pid);
    check(&posted).map_err(failed)?;
    let value: Value = serde_json::from_slice(&posted.body).unwrap_or(Value::Null);
    let answer = match value["statusCode"].as_u64() {
        Some(status) => status.to_string(),
        None => String::from_utf8_lossy(&posted.body).chars().take(40).collect(),
    };
    let mut warm_times = Vec::with_capacity(warm.len());
    for warm_event in warm {
        let t = Instant::now();
        api.events.send(warm_event.clone()).expect("the stand-in is up");
        let posted = tokio::time::timeout(Duration::from_secs(30), api.posted.recv())
            .await
            .map_err(|_| failed("no warm answer within 30 s".into()))?
            .ok_or_else(|| failed("the stand-in stopped".into()))?;
        warm_times.push(posted.at - t);
        check(&posted).map_err(failed)?;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(Start { init, first_answer, peak_kb, warm: warm_times, answer })
}

/// A posted response that is not an error nor a 5xx.
fn check(posted: &Posted) -> Result<(), String> {
    let text = String::from_utf8_lossy(&posted.body);
    if posted.kind != Kind::Response {
        return Err(format!("posted {:?}: {text}", posted.kind));
    }
    let value: Value = serde_json::from_slice(&posted.body).unwrap_or(Value::Null);
    match value["statusCode"].as_u64() {
        Some(s) if s >= 500 => Err(format!("answered {s}: {text}")),
        _ => Ok(()),
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// One binary's figures: (init, first answer, peak MiB, warm p50), times in ms.
struct Figures {
    init_ms: f64,
    first_ms: f64,
    peak_mib: f64,
    warm_ms: f64,
    warm_what: &'static str,
    answer: String,
}

/// The figures of each of `binaries` (builds of `f`), started in turn (one start of each, then
/// again), so that a change in the machine's load falls on each alike.
async fn measure(f: &Function, binaries: &[PathBuf], outside: &Outside, dir: &Path) -> Result<Vec<Figures>, String> {
    let (starts, warm) = (flag("--starts", 10).max(1), flag("--warm", 200).max(1));
    let event = first_event(f.bin, &outside.token);
    let (warm_events, warm_what) = warm_events(f.bin, &event, warm);
    for binary in binaries {
        start_once(f, binary, &event, &[], outside, dir).await?; // page cache
    }
    let mut runs: Vec<Vec<Start>> = binaries.iter().map(|_| Vec::with_capacity(starts)).collect();
    for i in 0..starts {
        for (binary, runs) in binaries.iter().zip(&mut runs) {
            let warm = if i + 1 == starts { warm_events.as_slice() } else { &[] };
            runs.push(start_once(f, binary, &event, warm, outside, dir).await?);
        }
    }
    Ok(runs
        .into_iter()
        .map(|runs| {
            let mut peaks: Vec<u64> = runs.iter().map(|r| r.peak_kb).collect();
            peaks.sort();
            let warm = runs.iter().flat_map(|r| r.warm.iter().copied()).collect();
            Figures {
                init_ms: ms(median(runs.iter().map(|r| r.init).collect())),
                first_ms: ms(median(runs.iter().map(|r| r.first_answer).collect())),
                peak_mib: peaks[peaks.len() / 2] as f64 / 1024.0,
                warm_ms: ms(median(warm)),
                warm_what,
                answer: runs[0].answer.clone(),
            }
        })
        .collect())
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    let chosen = functions::selected()?;
    let profiles = functions::profiles();
    let starts = flag("--starts", 10).max(1);
    println!(
        "\nCold start: each function binary (host build) started against a Runtime API stand-in on 127.0.0.1, \
         embedded store, median of {starts} starts (profiles: {})",
        profiles.join(", ")
    );
    for profile in &profiles {
        functions::build(profile, &chosen)?;
    }
    let mut config = crate::config(keys, None);
    let _cuebot = portico_local::demo::start_cuebot(&mut config).await?;
    let (_argo, _engine) =
        portico_local::demo_argo::serve(&mut config, (Duration::from_millis(1), Duration::from_secs(3600))).await?;
    let token = Keyring::from_json(keys, &config).map_err(|e| format!("{e:?}"))?.issue("bench").0;
    let outside = Outside {
        keys: keys.to_owned(),
        token,
        rpc_upstreams: serde_json::to_string(&config.rpc_upstreams)?,
        argo_url: config.argo_server_url.clone().ok_or("the demo Argo's URL")?,
        aws: None,
    };
    let dir = std::env::temp_dir().join(format!("portico-coldstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // The hello world first: every other figure's baseline.
    let order: Vec<&Function> =
        chosen.iter().filter(|f| f.bin == HELLO).chain(chosen.iter().filter(|f| f.bin != HELLO)).copied().collect();
    let mut measured: Vec<(String, &str, Figures)> = Vec::new();
    for f in order {
        let binaries = profiles.iter().map(|p| functions::path(p, f.bin)).collect::<Result<Vec<_>, _>>()?;
        let figures = measure(f, &binaries, &outside, &dir).await?;
        for (profile, got) in profiles.iter().zip(figures) {
            println!(
                "    {:<11} [{profile}] init {:.1} ms, first answer ({}) {:.1} ms, peak RSS {:.1} MiB, warm p50 {:.3} ms",
                f.bin, got.init_ms, got.answer, got.first_ms, got.peak_mib, got.warm_ms
            );
            let (baseline_name, base) = match measured.iter().find(|(p, b, _)| p == "release" && *b == f.bin) {
                Some((_, _, base)) if profile != "release" => (format!("{} [release]", f.bin), base),
                _ => {
                    let hello = measured.iter().find(|(p, b, _)| p == profile && *b == HELLO).map(|(_, _, h)| h);
                    (format!("{HELLO} [{profile}]"), hello.unwrap_or(&got))
                }
            };
            rows(report, &format!("{} [{profile}]", f.bin), &baseline_name, &got, base);
            measured.push((profile.clone(), f.bin, got));
        }
    }
    aws(&chosen, &profiles, &outside, &measured, &dir, report).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The four rows of one binary: `got` beside `base`.
fn rows(report: &mut Report, name: &str, baseline: &str, got: &Figures, base: &Figures) {
    let label = |what: &str| format!("{name}: {what}");
    let area = "cold start";
    report.add(area, label("start to first next (init)"), got.init_ms, "ms", Better::Lower, baseline, base.init_ms);
    report.add(area, label("start to first answer"), got.first_ms, "ms", Better::Lower, baseline, base.first_ms);
    report.add(area, label("peak RSS (VmHWM)"), got.peak_mib, "MiB", Better::Lower, baseline, base.peak_mib);
    report.add(area, label(got.warm_what), got.warm_ms, "ms", Better::Lower, baseline, base.warm_ms);
}

/// `apps` once more with DynamoDB and Secrets Manager played by moto: what the AWS SDK adds to
/// a cold start (its configuration, clients, one `GetSecretValue`, the first request's
/// DynamoDB calls; over plain HTTP on 127.0.0.1, so without TLS handshakes nor AWS's latency).
async fn aws(
    chosen: &[&Function],
    profiles: &[String],
    outside: &Outside,
    measured: &[(String, &str, Figures)],
    dir: &Path,
    report: &mut Report,
) -> BenchResult {
    let Some(apps) = chosen.iter().find(|f| f.bin == "apps") else { return Ok(()) };
    let Some((_, _, base)) = measured.iter().find(|(p, b, _)| p == &profiles[0] && *b == "apps") else {
        return Ok(());
    };
    let Some((_moto, endpoint)) = moto(&outside.keys).await? else {
        println!(
            "    (moto is not installed in .tools/venv: no DynamoDB/Secrets Manager figure; ./scripts/test installs it)"
        );
        return Ok(());
    };
    let profile = &profiles[0];
    let on_aws = Outside { aws: Some(endpoint), ..outside.clone() };
    let mut got = measure(apps, &[functions::path(profile, "apps")?], &on_aws, dir).await?;
    let got = got.pop().ok_or("no figures")?;
    println!(
        "    apps on moto [{profile}] init {:.1} ms, first answer ({}) {:.1} ms, peak RSS {:.1} MiB, warm p50 {:.3} ms",
        got.init_ms, got.answer, got.first_ms, got.peak_mib, got.warm_ms
    );
    let name = format!("apps [{profile}], DynamoDB + Secrets Manager on moto");
    rows(report, &name, &format!("apps [{profile}], embedded store"), &got, base);
    Ok(())
}
