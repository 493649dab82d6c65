//! The benchmark: one command, one table, every figure beside a baseline from the same run.
//!
//! ```text
//! cargo run --release -p portico-bench --bin bench [-- --only tokens,relay] [--requests 20000 --concurrency 32]
//! ```
//! Parts, in order (`--only` picks some, comma-separated):
//! - `tokens`: verifications per second per token kind beside `jsonwebtoken` alone ([`tokens`]);
//! - `requests`: `GET /apps/{slug}` through the emulator (a child process) beside an
//!   unauthenticated route of the same server; refused logins; the server's memory; `GET /apps/{slug}`
//!   and `GET /apps` beside a bare hyper server doing the same ES256 check ([`requests`], [`floor`]);
//! - `scale`: request latency at 100,000 apps beside 10, the sweeper's and the reconciler's runs
//!   with 10,000 ended sessions/jobs beside 10 ([`scale`]);
//! - `storage`: storage calls and DynamoDB cost per request for every route ([`storage`]);
//! - `relay`: signals through the WebSocket API with 100 sessions beside a bare forwarder ([`relay`]);
//! - `rpc`: the RPC gateway beside a direct gRPC call, and transcoding throughput ([`rpc`]);
//! - `jobs`: submit and status against the demo Argo beside the bare Argo calls ([`jobs`]).
//! - `lambda`: in-process time per invocation of each main route's Lambda event beside
//!   `lambda_http`'s hello world fed the same event ([`lambda`]);
//! - `coldstart`: each function binary started against a Runtime API stand-in, to its first
//!   answer, peak memory and warm invocations, beside the hello-world binary ([`coldstart`]);
//! - `sizes`: each function's binary and zip beside the hello world's ([`sizes`]).
//!   `coldstart` and `sizes` build the binaries first ([`functions`]; `--profiles`, `--bins`).
//!
//! Each part prints its rows as it measures them; the whole table is printed at the end as
//! Markdown (what the README quotes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use portico_core::auth::own::KeyFile;
use portico_core::secrets::LocalSecrets;
use portico_core::store::Table;
use portico_core::store::memory::MemoryTable;
use portico_core::web::RouteGroup;
use portico_core::{Config, Services};
use portico_local::{HttpApi, Platform, Running, Shared, route_groups, start};
use tokio::net::TcpListener;

mod capacity;
mod coldstart;
mod desktops;
mod events;
mod floor;
mod functions;
mod jobs;
mod lambda;
mod nvcf;
mod relay;
mod report;
mod requests;
mod rpc;
mod scale;
mod sizes;
mod standin;
mod storage;
mod storage_routes;
mod tokens;

pub type BenchResult = Result<(), Box<dyn std::error::Error>>;

const WEB_SECRET: &str = "bench-web-secret-0123456789abcdef0123456789";
const WEB_SECRET_ID: &str = "portico/web-token";

/// A shell recipe with one input file: the jobs the parts submit.
const JOB_META: &str =
    "name: Bench\nworkflow: {type: shell}\ninput: {params: [{type: url, value: 'https://data.example.org/a.csv'}]}\n";
const JOB_STEPS: &str = "sort /input_dir/a.csv > /output_dir/a.csv\n";

/// `POST /jobs`'s body submitting that recipe.
fn job() -> serde_json::Value {
    serde_json::json!({"recipe": {"meta_yml": JOB_META, "steps": JOB_STEPS}})
}

/// Every part, in the order they run.
const PARTS: &[&str] = &[
    "tokens",
    "requests",
    "scale",
    "storage",
    "relay",
    "nvcf",
    "rpc",
    "jobs",
    "desktops",
    "lambda",
    "coldstart",
    "sizes",
];

/// The value of `--name value`, if given.
pub fn flag_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn flag(name: &str, default: usize) -> usize {
    flag_text(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The parts `--only` names (all when absent); an unknown name is an error.
fn selected_parts() -> Result<Vec<&'static str>, String> {
    let Some(list) = flag_text("--only") else {
        return Ok(PARTS.to_vec());
    };
    let wanted: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(unknown) = wanted.iter().find(|w| !PARTS.contains(w)) {
        return Err(format!("unknown part '{unknown}'; the parts are {}", PARTS.join(", ")));
    }
    Ok(PARTS.iter().copied().filter(|p| wanted.contains(p)).collect())
}

/// The configuration of the servers and the in-process verifiers.
fn config(keys: &str, jwks_uri: Option<String>) -> Config {
    let mut config = Config::default();
    config.local_secrets = BTreeMap::from([
        (config.signing_keys_secret_id.clone(), keys.to_owned()),
        (WEB_SECRET_ID.to_owned(), WEB_SECRET.to_owned()),
    ]);
    config.web_token_secret_id = Some(WEB_SECRET_ID.into());
    config.bootstrap_admins = vec!["bench".into()];
    // The login timing makes many failed attempts on purpose.
    config.login_max_failures = i64::MAX;
    if let Some(uri) = jwks_uri {
        config.oidc_jwks_uri = Some(uri);
        config.oidc_issuer = Some("https://idp.bench".into());
        config.oidc_algorithms = vec!["ES256".into()];
    }
    config
}

async fn services(config: Config) -> Result<Services, Box<dyn std::error::Error>> {
    services_over(config, Arc::new(MemoryTable::new())).await
}

/// The services over `table` (a counted or metered store), with `config`'s local secrets.
async fn services_over(config: Config, table: Arc<dyn Table>) -> Result<Services, Box<dyn std::error::Error>> {
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    Ok(Services::with(config, table, secrets).await.map_err(|e| format!("{e:?}"))?)
}

/// Binds a port for an in-process emulator and points `config`'s relay URL at it. Returns the
/// listener and its base URL: settings that point back at the emulator (a stand-in's URL) need
/// it before the services are built.
async fn listen(config: &mut Config) -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    config.relay_url = format!("ws://{addr}{}", portico_local::WS_PATH);
    Ok((listener, format!("http://{addr}")))
}

/// Serves Portico's whole API over `platform` on `listener` (from [`listen`]) as the emulator
/// does: every route group, the relay's WebSocket API, and `stand_ins` beside them.
async fn serve_on(
    listener: TcpListener,
    platform: Platform,
    stand_ins: Vec<Arc<dyn RouteGroup>>,
) -> Result<(Shared, Running), Box<dyn std::error::Error>> {
    let rpc = portico_local::rpc_gateway(&platform.services.config).await?;
    let (mut gateway, shared) = portico_local::portico_gateway(platform, rpc);
    for group in stand_ins {
        gateway.http.add(group);
    }
    Ok((shared, portico_local::start_on(listener, gateway)?))
}

/// Child mode: serve the API on the given port until killed; keys from `BENCH_KEYS`.
async fn serve(port: u16) -> BenchResult {
    let keys = std::env::var("BENCH_KEYS")?;
    let config = config(&keys, None);
    let rpc = portico_local::rpc_gateway(&config).await?;
    let platform = Platform::new(services(config).await?).shared();
    let _running = start(HttpApi::new(route_groups(&platform, rpc)), port).await?;
    std::future::pending::<()>().await;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds, the table's unit for latencies.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (p50, p99) of `latencies` (sorted here), in ms.
fn p50_p99_ms(latencies: &mut [Duration]) -> (f64, f64) {
    latencies.sort();
    (ms(percentile(latencies, 0.5)), ms(percentile(latencies, 0.99)))
}

#[tokio::main]
async fn main() -> BenchResult {
    if std::env::args().any(|a| a == "--serve") {
        return serve(flag("--serve", 0) as u16).await;
    }
    if std::env::args().any(|a| a == "--serve-floor") {
        return floor::serve(flag("--serve-floor", 0) as u16).await;
    }
    let parts = selected_parts()?;
    let keys = serde_json::to_string(&KeyFile::generate())?;
    let mut report = report::Report::default();
    for part in parts {
        match part {
            "tokens" => tokens::bench(&keys, &mut report).await?,
            "requests" => requests::bench(&keys, &mut report).await?,
            "scale" => scale::bench(&keys, &mut report).await?,
            "storage" => storage::bench(&keys, &mut report).await?,
            "relay" => relay::bench(&keys, &mut report).await?,
            "rpc" => rpc::bench(&keys, flag("--rpc-calls", 2_000), &mut report).await?,
            "jobs" => jobs::bench(&keys, flag("--jobs", 500), &mut report).await?,
            "desktops" => desktops::bench(&keys, flag("--desktops", 300), &mut report).await?,
            "nvcf" => nvcf::bench(&keys, flag("--signals", 1_000), &mut report).await?,
            "lambda" => lambda::bench(&keys, &mut report).await?,
            "coldstart" => coldstart::bench(&keys, &mut report).await?,
            "sizes" => sizes::bench(&mut report).await?,
            _ => unreachable!("selected_parts returns known parts"),
        }
    }
    println!("\n{}", report.table());
    Ok(())
}
