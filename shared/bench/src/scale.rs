//! Scale: whether a request's cost, or a scheduled run's, follows the size of the store or of
//! the history. Three stores side by side, each behind the emulator in-process (embedded store
//! behind a call counter and a capacity meter), each with 10 live sessions and 10 running jobs:
//! `small` (10 apps, 10 ended sessions, 10 finished jobs), `apps` (100,000 apps, 10 and 10)
//! and `history` (100,000 apps, 10,000 ended sessions, 10,000 finished jobs). Store size is
//! `apps` beside `small`; history is `history` beside `apps`, so the embedded store's own
//! O(log n) lookups weigh about the same on both sides. Seeded in-process through the domain
//! API (the catalog, the sessions, the jobs), not over HTTP. The figures (`apps` / `small`):
//! - `GET /apps/{slug}` (a different app each request), sequential, p50/p99;
//! - `GET /apps?limit=5`: the first page, and a page reached by following `next` (past the
//!   50,000th app in the big store; the second page in the small one);
//! - storage calls per request over those loads;
//!
//! and (`history` / `apps`):
//! - the sweeper's and the reconciler's runs (what their Lambda functions call:
//!   `RelayApi::sweep`, `JobsApi::reconcile`): storage calls and time per run;
//! - a session started and ended, and a job submitted and finished, by a user with 100 of
//!   each in their history (1 in `apps`): request units (a record that grew with the
//!   history, such as a usage item keeping a mark per reservation, would show here).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use portico_core::apps::{AppInput, Catalog, Precondition};
use portico_core::quotas::Resources;
use portico_core::store::counting::CountingTable;
use portico_core::store::memory::MemoryTable;
use portico_core::{Error, Services};
use portico_jobs::engine::{ArtifactStored, EngineError, WorkflowEngine, WorkflowInfo, WorkflowStatus};
use portico_jobs::recipe::Recipe;
use portico_jobs::service::{Jobs, Submission, Work};
use portico_local::{Platform, Shared};
use portico_streaming::Sessions;
use serde_json::{Value, json};

use crate::capacity::Metered;
use crate::report::{Better, Report};
use crate::{BenchResult, JOB_META, JOB_STEPS, config, flag, p50_p99_ms};

const LIVE: usize = 10;
const PAGE: usize = 5;

/// An engine answering at once: every workflow `Succeeded` while `finish` is set, else
/// `Running`. Keeps the reconciler's run about the store, not about Argo's latency.
#[derive(Default)]
struct Engine {
    finish: AtomicBool,
}

#[async_trait::async_trait]
impl WorkflowEngine for Engine {
    async fn create(&self, _: &Value) -> Result<(), EngineError> {
        Ok(())
    }
    async fn submit_template(
        &self,
        _: &str,
        _: &str,
        _: &[(String, String)],
        _: &[(String, String)],
    ) -> Result<(), EngineError> {
        Ok(())
    }
    async fn get(&self, _: &str) -> Result<WorkflowInfo, EngineError> {
        let phase = if self.finish.load(Ordering::SeqCst) { "Succeeded" } else { "Running" };
        Ok(WorkflowInfo { status: WorkflowStatus { phase: phase.into(), ..Default::default() }, ..Default::default() })
    }
    async fn stop(&self, _: &str) -> Result<(), EngineError> {
        Ok(())
    }
    async fn logs(&self, _: &str, _: usize) -> Result<String, EngineError> {
        Ok(String::new())
    }
    async fn output_artifact(&self, _: &str) -> Result<Option<ArtifactStored>, EngineError> {
        Ok(None)
    }
}

/// One store behind the emulator, seeded.
struct Store {
    base: String,
    token: String,
    calls: Arc<CountingTable>,
    meter: Arc<Metered>,
    engine: Arc<Engine>,
    services: Arc<Services>,
    platform: Shared,
    apps: usize,
    _running: portico_local::Running,
}

fn big_limits() -> Resources {
    Resources { sessions: 1 << 30, jobs: 1 << 30, desktops: 1 << 30, cpu: 1 << 30, memory: 1 << 30, storage: 1 << 30 }
}

async fn store(keys: &str, apps: usize, history: usize) -> Result<Store, Box<dyn std::error::Error>> {
    let mut cfg = config(keys, None);
    let (listener, base) = crate::listen(&mut cfg).await?;
    cfg.max_app_instances_count = 1 << 30;
    let meter = Arc::new(Metered::new(Arc::new(MemoryTable::new())));
    let calls = Arc::new(CountingTable::new(meter.clone()));
    let mut platform = Platform::new(crate::services_over(cfg, calls.clone()).await?);
    let engine = Arc::new(Engine::default());
    platform.jobs.workflows = Some(engine.clone());
    let (platform, running) = crate::serve_on(listener, platform, vec![]).await?;
    let services = Arc::clone(&platform.services);
    let token = services.keys().issue("bench").0;
    let started = Instant::now();
    seed(&platform, &token, &engine, apps, history).await.map_err(|e| format!("seeding: {e:?}"))?;
    println!(
        "  seeded {apps} apps, {history} ended sessions and {history} finished jobs (+{LIVE} live each) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    calls.take();
    Ok(Store { base, token, calls, meter, engine, services, platform, apps, _running: running })
}

fn slug(n: usize) -> String {
    format!("app-{n:06}")
}

/// Apps, ended sessions and finished jobs, through the domain API in-process.
async fn seed(platform: &Shared, token: &str, engine: &Engine, apps: usize, history: usize) -> Result<(), Error> {
    let s = &platform.services;
    let admin = s.identity.authenticate(token).await?;
    let catalog = Catalog::new(s.table.as_ref());
    for n in 0..apps {
        let input: AppInput = serde_json::from_value(json!({
            "function_id": format!("f-{n}"), "function_version_id": "v-1", "title": format!("App {n}"),
            "description": "An app of the scale benchmark's catalog.", "category": "Template Applications",
        }))
        .map_err(|e| Error::Internal(e.to_string()))?;
        catalog.put(&admin, &slug(n), input, &Precondition::IfNoneMatchAny).await?;
    }
    let sessions =
        Sessions { table: s.table.as_ref(), pusher: platform.streaming.pusher.as_ref(), config: &s.config, nvcf: None };
    for n in 0..history + LIVE {
        let started = sessions.start(&format!("user-{}", n % 100), "app-000000", "", &big_limits()).await?;
        if n < history {
            sessions.end(&started.session.id, "client_stopped").await?;
        }
    }
    let recipe =
        Recipe::parse(JOB_META.as_bytes(), JOB_STEPS.as_bytes()).map_err(|e| Error::Internal(format!("{e:?}")))?;
    let jobs = Jobs { table: s.table.as_ref(), engine, config: &s.config, links: None };
    let submit = |n: usize| {
        let owner = format!("user-{}", n % 100);
        let work = Work::Recipe { recipe: &recipe, overwrite: false };
        let limits = big_limits();
        let jobs = &jobs;
        async move {
            let submission = Submission {
                owner: &owner,
                group: "jobs",
                work,
                resources: Resources::default(),
                limits,
                idempotency: None,
            };
            jobs.submit(submission).await.map(|_| ())
        }
    };
    // The history: submitted, then finished by a reconciler run that sees them succeed.
    engine.finish.store(true, Ordering::SeqCst);
    for n in 0..history {
        submit(n).await?;
    }
    jobs.reconcile().await?;
    engine.finish.store(false, Ordering::SeqCst);
    for n in history..history + LIVE {
        submit(n).await?;
    }
    // Pending -> Running is written once; the measured runs find nothing to change.
    jobs.reconcile().await?;
    Ok(())
}

/// Sequential `GET`s of `path(i)`, after a tenth as many to warm up: (p50 ms, p99 ms, storage
/// calls per request).
async fn timed(
    http: &reqwest::Client,
    s: &Store,
    count: usize,
    path: impl Fn(usize) -> String,
) -> Result<(f64, f64, f64), Box<dyn std::error::Error>> {
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count + count / 10 {
        if i == count / 10 {
            s.calls.take();
        }
        let t = Instant::now();
        let r = http.get(format!("{}{}", s.base, path(i))).bearer_auth(&s.token).send().await?;
        if r.status() != 200 {
            return Err(format!("GET {}: {}", path(i), r.status()).into());
        }
        r.bytes().await?;
        if i >= count / 10 {
            latencies.push(t.elapsed());
        }
    }
    let calls = s.calls.take().total() as f64 / count as f64;
    let (p50, p99) = p50_p99_ms(&mut latencies);
    Ok((p50, p99, calls))
}

/// The cursor of the page that starts after app number `at`, reached by following `next`.
async fn cursor_at(http: &reqwest::Client, s: &Store, at: usize) -> Result<String, Box<dyn std::error::Error>> {
    let (mut seen, mut next) = (0, None::<String>);
    while seen < at {
        let limit = (at - seen).min(100);
        let mut url = format!("{}/apps?limit={limit}", s.base);
        if let Some(n) = &next {
            url.push_str(&format!("&next={n}"));
        }
        let page: Value = http.get(url).bearer_auth(&s.token).send().await?.json().await?;
        seen += page["items"].as_array().map_or(0, Vec::len);
        next = page["next"].as_str().map(str::to_owned);
        if next.is_none() {
            return Err("the listing ended early".into());
        }
    }
    next.ok_or_else(|| "no cursor".into())
}

/// Timed batches of a scheduled run; the median batch's mean is the figure (the machine is
/// shared: a batch that waited on another process does not decide it).
const BATCHES: usize = 9;

/// Runs `run` once to settle, then [`BATCHES`] times `count` times: (storage calls per run, ms
/// per run, the median batch's).
async fn per_run<F, Fut>(calls: &CountingTable, count: usize, run: F) -> Result<(f64, f64), Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, Error>>,
{
    run().await?;
    calls.take();
    let mut batches = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let t = Instant::now();
        for _ in 0..count {
            let changed = run().await?;
            if changed != 0 {
                return Err(Error::Internal(format!("a measured run changed {changed} records")));
            }
        }
        batches.push(t.elapsed().as_secs_f64() * 1e3 / count as f64);
    }
    batches.sort_by(f64::total_cmp);
    Ok((calls.take().total() as f64 / (count * BATCHES) as f64, batches[BATCHES / 2]))
}

/// Request units (read + write) of one session started and ended, and of one job submitted and
/// finished, by `user-7` (whose history holds 1 / 100 of the store's).
async fn cycles(s: &Store) -> Result<(f64, f64), Error> {
    let sv = &s.services;
    let pusher = s.platform.streaming.pusher.as_ref();
    let sessions = Sessions { table: sv.table.as_ref(), pusher, config: &sv.config, nvcf: None };
    s.meter.take();
    let started = sessions.start("user-7", "app-000000", "", &big_limits()).await?;
    sessions.end(&started.session.id, "client_stopped").await?;
    let session = s.meter.take();
    let recipe =
        Recipe::parse(JOB_META.as_bytes(), JOB_STEPS.as_bytes()).map_err(|e| Error::Internal(format!("{e:?}")))?;
    let jobs = Jobs { table: sv.table.as_ref(), engine: s.engine.as_ref(), config: &sv.config, links: None };
    let work = Work::Recipe { recipe: &recipe, overwrite: false };
    let submission = Submission {
        owner: "user-7",
        group: "jobs",
        work,
        resources: Resources::default(),
        limits: big_limits(),
        idempotency: None,
    };
    let (job, _) = jobs.submit(submission).await?;
    s.engine.finish.store(true, Ordering::SeqCst);
    let finished = jobs.refresh(&job.id).await;
    s.engine.finish.store(false, Ordering::SeqCst);
    if !finished?.phase.is_final() {
        return Err(Error::Internal("the job did not finish".into()));
    }
    let job = s.meter.take();
    s.calls.take();
    Ok((session.read + session.write, job.read + job.write))
}

/// (sweeper calls, sweeper ms, reconciler calls, reconciler ms) per run.
async fn scheduled(s: &Store, runs: usize) -> Result<[f64; 4], Error> {
    let (sweeper, reconciler) = (s.platform.relay(), s.platform.jobs());
    let (sweep_calls, sweep_ms) = per_run(&s.calls, runs, || sweeper.sweep()).await?;
    let (rec_calls, rec_ms) = per_run(&s.calls, runs, || reconciler.reconcile()).await?;
    Ok([sweep_calls, sweep_ms, rec_calls, rec_ms])
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    let (big_apps, big_history) = (flag("--scale-apps", 100_000).max(2 * PAGE + 1), flag("--scale-history", 10_000));
    let count = flag("--scale-requests", 3_000).max(10);
    println!(
        "\nScale: {big_apps} apps beside 10, then {big_history} ended sessions/jobs beside 10 in a store of \
         {big_apps} apps (in-process emulator, embedded store, sequential requests)"
    );
    // Store size: `small` beside `apps`; history: `apps` beside `history` (the same apps).
    let small = store(keys, 10, 10).await?;
    let apps = store(keys, big_apps, 10).await?;
    let history = store(keys, big_apps, big_history).await?;
    let http = reqwest::Client::new();
    let mut figures = Vec::new();
    for s in [&small, &apps] {
        let n = s.apps;
        let get = timed(&http, s, count, |i| format!("/apps/{}", slug(i * 7919 % n))).await?;
        let first = timed(&http, s, count, |_| format!("/apps?limit={PAGE}")).await?;
        let deep_at = if n > 2 * PAGE { n / 2 } else { PAGE };
        let cursor = cursor_at(&http, s, deep_at).await?;
        let deep = timed(&http, s, count, |_| format!("/apps?limit={PAGE}&next={cursor}")).await?;
        figures.push([get, first, deep]);
    }
    let big_n = crate::report::number(big_apps as f64);
    let half = crate::report::number(big_apps as f64 / 2.0);
    let rows = [
        (format!("GET /apps/{{slug}}, {big_n} apps"), "the same, 10 apps"),
        (format!("GET /apps?limit={PAGE}, first page, {big_n} apps"), "the same, 10 apps"),
        (format!("GET /apps?limit={PAGE} via next, from app {half} of {big_n}"), "10 apps: the second page, via next"),
    ];
    for (i, (figure, baseline)) in rows.iter().enumerate() {
        let (small_v, big_v) = (figures[0][i], figures[1][i]);
        report.add("scale", format!("{figure}, p50"), big_v.0, "ms", Better::Lower, *baseline, small_v.0);
        report.add("scale", format!("{figure}, p99"), big_v.1, "ms", Better::Lower, *baseline, small_v.1);
        report.add("scale", format!("{figure}, storage calls"), big_v.2, "calls", Better::Lower, *baseline, small_v.2);
    }
    let runs = flag("--scale-runs", 200).max(1);
    let [s_sweep, s_sweep_ms, s_rec, s_rec_ms] = scheduled(&apps, runs).await.map_err(|e| format!("{e:?}"))?;
    let [b_sweep, b_sweep_ms, b_rec, b_rec_ms] = scheduled(&history, runs).await.map_err(|e| format!("{e:?}"))?;
    let hist = crate::report::number(big_history as f64);
    let sessions = format!("{LIVE} live + 10 ended, same {big_n} apps");
    let jobs = format!("{LIVE} running + 10 finished, same {big_n} apps");
    let sweep = format!("sweeper run, {LIVE} live + {hist} ended sessions");
    let rec = format!("reconciler run, {LIVE} running + {hist} finished jobs");
    let time = format!("time (median of {BATCHES} batches of {runs})");
    report.add("scale", format!("{sweep}, storage calls"), b_sweep, "calls", Better::Lower, &sessions, s_sweep);
    report.add("scale", format!("{sweep}, {time}"), b_sweep_ms, "ms", Better::Lower, &sessions, s_sweep_ms);
    report.add("scale", format!("{rec}, storage calls"), b_rec, "calls", Better::Lower, &jobs, s_rec);
    report.add("scale", format!("{rec}, {time}"), b_rec_ms, "ms", Better::Lower, &jobs, s_rec_ms);
    let (s_session, s_job) = cycles(&apps).await.map_err(|e| format!("{e:?}"))?;
    let (b_session, b_job) = cycles(&history).await.map_err(|e| format!("{e:?}"))?;
    let per_user = big_history / 100;
    let (figure, baseline) = (format!("owner with {per_user} ended in history"), "owner with 1 ended");
    let session = format!("a session started and ended, {figure}, request units");
    report.add("scale", session, b_session, "RU", Better::Lower, baseline, s_session);
    let job = format!("a job submitted and finished, {figure}, request units");
    report.add("scale", job, b_job, "RU", Better::Lower, baseline, s_job);
    Ok(())
}
