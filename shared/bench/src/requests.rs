//! Requests through the emulator (a child process, embedded store): `GET /apps/{slug}` with
//! each kind of bearer beside an unauthenticated route of the same server, refused logins
//! (a wrong password beside an unknown user: the same cost, so timing tells no names), and the
//! server's memory. Then the request path's floor: `GET /apps/{slug}` and `GET /apps` (a page
//! of 25 of 100 apps) with an ES256 bearer, beside a bare hyper server in a child process of
//! its own doing only the same ES256 check and a map lookup answering the same JSON
//! ([`crate::floor`]).

use std::time::{Duration, Instant};

use http::Method;
use portico_core::auth::own::Keyring;
use portico_core::store::now_epoch;
use serde_json::{Value, json};

use crate::report::{Better, Report};
use crate::{BenchResult, WEB_SECRET, config, flag, p50_p99_ms};

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

/// Loads `url` with `count` requests at `concurrency`; returns (req/s, latencies).
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
    let (rate, mut latencies) = load(http, url, token, requests, concurrency).await;
    let (p50_ms, p99_ms) = p50_p99_ms(&mut latencies);
    Loaded { rate, p50_ms, p99_ms }
}

/// Starts the emulator in a child process (this binary with `--serve`); waits until it answers.
pub async fn spawn_emulator(keys: &str) -> Result<(tokio::process::Child, String), Box<dyn std::error::Error>> {
    spawn_child("--serve", keys, &[], "/.well-known/jwks.json").await
}

/// Starts this binary with `flag PORT` (and `env`) in a child process; waits until `probe`
/// answers at all.
async fn spawn_child(
    flag: &str,
    keys: &str,
    env: &[(&str, &str)],
    probe: &str,
) -> Result<(tokio::process::Child, String), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args([flag, &port.to_string()])
        .env("RUST_LOG", "off")
        .env("BENCH_KEYS", keys)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}{probe}")).send().await.is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("the child process ({flag}) did not start").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, base))
}

/// Apps in the catalog for the listing; `GET /apps` answers the first page (25 by default).
const APPS: usize = 100;

/// Publishes [`APPS`] apps; returns each one's slug, answer and `ETag`, for the floor.
async fn publish(http: &reqwest::Client, base: &str, token: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let mut apps = Vec::new();
    for n in 0..APPS {
        let slug = format!("app-{n:03}");
        let app = json!({
            "function_id": format!("f-{n}"), "function_version_id": "v-1", "title": format!("Bench app {n}"),
            "description": "An app of the benchmark's catalog, with a description of a usual length.",
            "version": "2024.1.0", "category": "Template Applications", "product_area": "Omniverse",
            "image": "https://example.org/image.png", "icon": "https://example.org/icon.png",
        });
        let put = http.put(format!("{base}/apps/{slug}")).bearer_auth(token).json(&app).send().await?;
        if !put.status().is_success() {
            return Err(format!("publishing {slug}: {}", put.status()).into());
        }
        let etag = put.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        apps.push(json!({"slug": slug, "view": put.json::<Value>().await?, "etag": etag}));
    }
    Ok(apps)
}

/// The same request to the emulator and the floor answers the same JSON (the listing's
/// cursor aside, whose form differs).
async fn same_answers(http: &reqwest::Client, token: &str, portico: &str, floor: &str) -> BenchResult {
    for path in ["/apps/app-042", "/apps"] {
        let get = |base: String| {
            let req = http.get(format!("{base}{path}")).bearer_auth(token);
            async move { req.send().await?.json::<Value>().await }
        };
        let (mut a, mut b) = (get(portico.to_owned()).await?, get(floor.to_owned()).await?);
        for v in [&mut a, &mut b] {
            v.as_object_mut().map(|o| o.remove("next"));
        }
        if a != b {
            return Err(format!("the floor answers {path} differently:\n{a}\n{b}").into());
        }
    }
    Ok(())
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
    floor(&http, keys, &base, &own, report).await?;
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

/// `GET /apps/{slug}` and `GET /apps` with an ES256 bearer through the emulator at `base`,
/// beside the same requests to the bare hyper floor ([`crate::floor`]) in a child process.
async fn floor(http: &reqwest::Client, keys: &str, base: &str, token: &str, report: &mut Report) -> BenchResult {
    let requests = flag("--requests", 20_000);
    let concurrency = flag("--concurrency", 32).max(1);
    let apps = publish(http, base, token).await?;
    let data = std::env::temp_dir().join(format!("portico-bench-floor-{}.json", std::process::id()));
    std::fs::write(&data, serde_json::to_vec(&json!({ "apps": apps }))?)?;
    let data_path = data.to_string_lossy().into_owned();
    let paths = [
        ("GET /apps/{slug}", "/apps/app-042", "bare hyper: same ES256 check + map lookup"),
        ("GET /apps (a page of 25 of 100 apps)", "/apps", "bare hyper: same ES256 check + BTreeMap page"),
    ];
    let mut portico = Vec::new();
    for (_, path, _) in paths {
        portico.push(measure(http, &format!("{base}{path}"), Some(token), requests, concurrency).await);
    }
    let (mut child, floor) =
        spawn_child("--serve-floor", keys, &[(crate::floor::DATA_ENV, &data_path)], "/apps/app-000").await?;
    same_answers(http, token, base, &floor).await?;
    // Both remember verified tokens for up to a minute (Portico does); the last row shows
    // what the floor pays without.
    let mut remembered = Vec::new();
    for ((figure, path, name), got) in paths.iter().zip(&portico) {
        let bare = measure(http, &format!("{floor}{path}"), Some(token), requests, concurrency).await;
        let figure = |what| format!("{figure}, ES256, {concurrency} clients, {what}");
        report.add("request path", figure("throughput"), got.rate, "req/s", Better::Higher, *name, bare.rate);
        report.add("request path", figure("p50"), got.p50_ms, "ms", Better::Lower, *name, bare.p50_ms);
        report.add("request path", figure("p99"), got.p99_ms, "ms", Better::Lower, *name, bare.p99_ms);
        remembered.push(bare);
    }
    child.kill().await.ok();
    // What remembering verified tokens is worth: the floor verifying every signature.
    let env = [(crate::floor::DATA_ENV, data_path.as_str()), (crate::floor::MEMO_ENV, "0")];
    let (mut child, floor) = spawn_child("--serve-floor", keys, &env, "/apps/app-000").await?;
    let each = measure(http, &format!("{floor}/apps/app-042"), Some(token), requests, concurrency).await;
    child.kill().await.ok();
    let _ = std::fs::remove_file(&data);
    report.add(
        "request path",
        "bare hyper floor verifying ES256 on every request, GET /apps/{slug}, throughput",
        each.rate,
        "req/s",
        Better::Higher,
        "the same floor remembering verified tokens",
        remembered[0].rate,
    );
    Ok(())
}
