//! Jobs' figures, beside a baseline from the same run: `POST /jobs` (recipe parsed, workflow
//! written, quota reserved, records kept, Argo called) and `GET /jobs/{id}` (refreshed from
//! Argo) through the emulator against the demo Argo server, beside the bare Argo calls they
//! make (create, get) sent straight to it. (Storage calls per request: the `storage` part.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::report::{Better, Report};
use crate::{BenchResult, p50_p99_ms};

pub async fn bench(keys: &str, count: usize, report: &mut Report) -> BenchResult {
    println!("\nJobs through the emulator against the demo Argo ({count} sequential jobs, in-process)");
    let mut config = crate::config(keys, None);
    config.quota_jobs = i64::MAX / 2;
    // Workflows stay Running: every status read goes to Argo.
    let (_argo, _engine) =
        portico_local::demo_argo::serve(&mut config, (Duration::from_millis(1), Duration::from_secs(3600))).await?;
    let argo_url = config.argo_server_url.clone().ok_or("the demo engine's URL")?;
    let (listener, base) = crate::listen(&mut config).await?;
    let (shared, _running) =
        crate::serve_on(listener, portico_local::Platform::new(crate::services(config).await?), vec![]).await?;
    let services = shared.services;
    let token = services.keys().issue("bench").0;
    let http = reqwest::Client::new();
    let body = crate::job();

    // Warm up, then measure each side.
    let (mut submit, mut status, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..count + count / 10 {
        let t = Instant::now();
        let job: Value = http.post(format!("{base}/jobs")).bearer_auth(&token).json(&body).send().await?.json().await?;
        let took = t.elapsed();
        let id = job["id"].as_str().ok_or("a job id")?.to_owned();
        let t = Instant::now();
        let r = http.get(format!("{base}/jobs/{id}")).bearer_auth(&token).send().await?;
        assert_eq!(r.status(), 200);
        r.bytes().await?;
        let read = t.elapsed();
        if i >= count / 10 {
            submit.push(took);
            status.push(read);
            ids.push(id);
        }
    }
    // The same Argo calls, straight to the engine.
    let workflow = json!({"namespace": "portico", "workflow": {"metadata": {"name": "x"}, "spec": {"templates": [{"name": "main"}]}}});
    let (mut create, mut get) = (Vec::new(), Vec::new());
    for i in 0..count {
        let mut w = workflow.clone();
        w["workflow"]["metadata"]["name"] = json!(format!("direct-{i}"));
        let t = Instant::now();
        http.post(format!("{argo_url}/api/v1/workflows/portico")).json(&w).send().await?.bytes().await?;
        create.push(t.elapsed());
        let t = Instant::now();
        http.get(format!("{argo_url}/api/v1/workflows/portico/{}", ids[i % ids.len()])).send().await?.bytes().await?;
        get.push(t.elapsed());
    }
    let [create, submit, get, status] = [create, submit, get, status].map(|mut l| p50_p99_ms(&mut l));
    let (create_name, get_name) = ("Argo create, sent straight", "Argo get, sent straight");
    report.add(
        "jobs",
        "POST /jobs (recipe, quota, records, Argo), p50",
        submit.0,
        "ms",
        Better::Lower,
        create_name,
        create.0,
    );
    report.add("jobs", "POST /jobs, p99", submit.1, "ms", Better::Lower, create_name, create.1);
    report.add("jobs", "GET /jobs/{id} (refreshed from Argo), p50", status.0, "ms", Better::Lower, get_name, get.0);
    report.add("jobs", "GET /jobs/{id}, p99", status.1, "ms", Better::Lower, get_name, get.1);
    Ok(())
}
