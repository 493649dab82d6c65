//! Benchmark: a JWT-checked `GET /apps/{slug}` through the emulator.
//!
//! ```text
//! cargo run --release -p portico-local --bin bench [-- --requests 20000 --concurrency 32]
//! ```
//! The emulator runs in a child process (this binary with `--serve`), on the embedded store,
//! so the peak RSS printed is the server's alone. Prints requests/s, latency percentiles and
//! the server's RSS before and after the load.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_core::auth::mint_hs256;
use portico_core::secrets::LocalSecrets;
use portico_core::store::memory::MemoryTable;
use portico_core::store::now_epoch;
use portico_core::{Config, Services};
use portico_local::{HttpApi, route_groups, start};
use serde_json::json;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Child mode: serve the API on the given port until killed.
async fn serve(port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.local_secrets = BTreeMap::from([(config.token_secret_id.clone(), SECRET.to_owned())]);
    let secrets = Arc::new(LocalSecrets::new(config.local_secrets.clone()));
    let services = Services::with(config, Arc::new(MemoryTable::new()), secrets).await.map_err(|e| format!("{e:?}"))?;
    let _running = start(HttpApi::new(route_groups(Arc::new(services))), port).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Resident set size now and at peak (kB) of process `pid`.
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--serve") {
        return serve(flag("--serve", 0) as u16).await;
    }
    let requests = flag("--requests", 20_000);
    let concurrency = flag("--concurrency", 32).max(1);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", &port.to_string()])
        .env("RUST_LOG", "off")
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("server exited")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let token = mint_hs256(SECRET.as_bytes(), &json!({"sub": "bench", "groups": ["admin"], "exp": now_epoch() + 3600}));
    let started = Instant::now();
    loop {
        if http.get(format!("{base}/apps")).send().await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err("the emulator did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = json!({"function_id": "f", "function_version_id": "v", "title": "Bench app"});
    let put = http.put(format!("{base}/apps/bench")).bearer_auth(&token).json(&app).send().await?;
    assert!(put.status().is_success(), "seeding the app failed: {}", put.status());
    let idle = rss_kb(pid).0;

    let url = Arc::new(format!("{base}/apps/bench"));
    let token = Arc::new(token);
    let run = |count: usize| {
        let (url, token, http) = (url.clone(), token.clone(), http.clone());
        async move {
            let per_task = count.div_ceil(concurrency);
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (url, token, http) = (url.clone(), token.clone(), http.clone());
                    tokio::spawn(async move {
                        let mut latencies = Vec::with_capacity(per_task);
                        for _ in 0..per_task {
                            let t = Instant::now();
                            let r = http.get(url.as_str()).bearer_auth(token.as_str()).send().await.expect("request");
                            assert_eq!(r.status(), 200);
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
            all
        }
    };
    run(requests / 10).await; // warm-up
    let t = Instant::now();
    let mut latencies = run(requests).await;
    let elapsed = t.elapsed();
    latencies.sort();
    let (rss, peak) = rss_kb(pid);
    child.kill().await.ok();

    println!("GET /apps/{{slug}} with an HS256 bearer, through the emulator (embedded store)");
    println!("  requests      {} at concurrency {concurrency}", latencies.len());
    println!("  throughput    {:.0} req/s", latencies.len() as f64 / elapsed.as_secs_f64());
    println!("  latency p50   {:.3} ms", percentile(&latencies, 0.50).as_secs_f64() * 1e3);
    println!("  latency p99   {:.3} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3);
    println!(
        "  server RSS    {:.1} MiB idle, {:.1} MiB after, {:.1} MiB peak",
        idle as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}
