//! Requests through the emulator (a child process, embedded store): `GET /apps/{slug}` with
//! each kind of bearer beside an unauthenticated route of the same server, refused logins
//! (a wrong password beside an unknown user: the same cost, so timing tells no names), and the
//! server's memory.

use std::time::{Duration, Instant};

use http::Method;
use portico_core::auth::own::Keyring;
use portico_core::store::now_epoch;
use serde_json::json;

use crate::report::{Better, Report};
use crate::{BenchResult, WEB_SECRET, config, flag, percentile};

pub fn rss_kb(pid: u32) -> (u64, u64) {
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

/// Loads `url` with `count` requests at `concurrency`; returns (req/s, sorted latencies).
pub async fn load(
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

/// A loaded run's figures.
pub struct Loaded {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Warms up with a tenth of `requests`, then measures.
pub async fn measure(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    requests: usize,
    concurrency: usize,
) -> Loaded {
    load(http, url, token, requests / 10, concurrency).await;
    let (rate, lat) = load(http, url, token, requests, concurrency).await;
    let ms = |p| percentile(&lat, p).as_secs_f64() * 1e3;
    Loaded { rate, p50_ms: ms(0.5), p99_ms: ms(0.99) }
}

/// Starts the emulator in a child process (this binary with `--serve`); waits until it answers.
pub async fn spawn_emulator(keys: &str) -> Result<(tokio::process::Child, String), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", &port.to_string()])
        .env("RUST_LOG", "off")
        .env("BENCH_KEYS", keys)
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/.well-known/jwks.json")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("the emulator did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, base))
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    let requests = flag("--requests", 20_000);
    let concurrency = flag("--concurrency", 32).max(1);
    println!(
        "\nThrough the emulator ({requests} requests at concurrency {concurrency}, embedded store, child process)"
    );
    let (mut child, base) = spawn_emulator(keys).await?;
    let pid = child.id().ok_or("server exited")?;
    let http = reqwest::Client::new();
    let own = Keyring::from_json(keys, &config(keys, None)).map_err(|e| format!("{e:?}"))?.issue("bench").0;
    let web = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "bench", "exp": now_epoch() + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(WEB_SECRET.as_bytes()),
    )?;
    let app = json!({"function_id": "f", "function_version_id": "v", "title": "Bench app"});
    let put = http.request(Method::PUT, format!("{base}/apps/bench")).bearer_auth(&own).json(&app).send().await?;
    assert!(put.status().is_success(), "seeding the app failed: {}", put.status());
    let (idle, _) = rss_kb(pid);

    let open = measure(&http, &format!("{base}/.well-known/jwks.json"), None, requests, concurrency).await;
    let baseline = "GET /.well-known/jwks.json, no auth, same server";
    let app_url = format!("{base}/apps/bench");
    for (kind, token) in [("ES256 Portico", &own), ("HS256 web", &web)] {
        let got = measure(&http, &app_url, Some(token), requests, concurrency).await;
        let figure = |what| format!("GET /apps/{{slug}}, {kind} bearer, {what}");
        report.add("emulator", figure("throughput"), got.rate, "req/s", Better::Higher, baseline, open.rate);
        report.add("emulator", figure("p50"), got.p50_ms, "ms", Better::Lower, baseline, open.p50_ms);
        report.add("emulator", figure("p99"), got.p99_ms, "ms", Better::Lower, baseline, open.p99_ms);
    }
    let (_, served_peak) = rss_kb(pid);

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
    report.add(
        "emulator",
        "refused login, unknown user (mean of 20)",
        means[1],
        "ms",
        Better::Lower,
        "wrong password",
        means[0],
    );
    let (_, login_peak) = rss_kb(pid);
    child.kill().await.ok();
    let mib = |kb: u64| kb as f64 / 1024.0;
    report.add(
        "emulator",
        "server peak RSS after the loads",
        mib(served_peak),
        "MiB",
        Better::Lower,
        "idle",
        mib(idle),
    );
    report.add(
        "emulator",
        "server peak RSS after 40 logins (argon2id: 19 MiB per hash)",
        mib(login_peak),
        "MiB",
        Better::Lower,
        "idle",
        mib(idle),
    );
    Ok(())
}
