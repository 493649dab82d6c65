//! Desktops' figures, beside a baseline from the same run: `POST /desktops` (environment,
//! quota, records, the Pod, its Secret and Service), `GET /desktops/{id}` (refreshed from the
//! Pod) and `POST /desktops/{id}/connection` (the Secret read, the login sealed and exchanged
//! with Guacamole) through the emulator against the demo cluster and the demo Guacamole, beside
//! the bare cluster calls they make, sent straight to it. (Storage calls per request: the
//! `storage` part.)

use std::time::Instant;

use serde_json::{Value, json};

use crate::report::{Better, Report};
use crate::{BenchResult, p50_p99_ms};

pub async fn bench(keys: &str, count: usize, report: &mut Report) -> BenchResult {
    println!("\nDesktops through the emulator against the demo cluster ({count} sequential desktops, in-process)");
    let mut config = crate::config(keys, None);
    config.bootstrap_admins.push("bench".into());
    let (cluster, _cluster) = portico_local::demo_cluster::serve(&mut config).await?;
    // Ready at once: every read and opening finds the desktop ready.
    *cluster.ready_after.lock().map_err(|_| "demo cluster")? = std::time::Duration::ZERO;
    let cluster_url = config.desktops_cluster_url.clone().ok_or("the demo cluster's URL")?;
    let (_, _guacamole) = portico_local::demo_guacamole::serve(&mut config).await?;
    let namespace = config.desktops_namespace.clone();
    let (listener, base) = crate::listen(&mut config).await?;
    let (shared, _running) =
        crate::serve_on(listener, portico_local::Platform::new(crate::services(config).await?), vec![]).await?;
    let token = shared.services.keys().issue("bench").0;
    let http = reqwest::Client::new();
    let environment = json!({"title": "Bench", "kind": "kubernetes", "image": "bench/xfce:1", "protocol": "vnc",
                             "port": 5901, "cpu": 1, "memory": 1, "max_lifetime": 3600});
    let r = http.put(format!("{base}/environments/bench")).bearer_auth(&token).json(&environment).send().await?;
    assert_eq!(r.status(), 201);

    // Warm up, then measure each side; each desktop is stopped, so the quota never runs out.
    let (mut start, mut status, mut open) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..count + count / 10 {
        let t = Instant::now();
        let started: Value = http
            .post(format!("{base}/desktops"))
            .bearer_auth(&token)
            .json(&json!({"environment": "bench"}))
            .send()
            .await?
            .json()
            .await?;
        let started_in = t.elapsed();
        let id = started["id"].as_str().ok_or("a desktop id")?.to_owned();
        let t = Instant::now();
        let read: Value = http.get(format!("{base}/desktops/{id}")).bearer_auth(&token).send().await?.json().await?;
        let read_in = t.elapsed();
        assert_eq!(read["state"], "ready");
        let t = Instant::now();
        let r = http.post(format!("{base}/desktops/{id}/connection")).bearer_auth(&token).send().await?;
        assert_eq!(r.status(), 200);
        r.bytes().await?;
        let opened_in = t.elapsed();
        http.delete(format!("{base}/desktops/{id}")).bearer_auth(&token).send().await?.bytes().await?;
        if i >= count / 10 {
            start.push(started_in);
            status.push(read_in);
            open.push(opened_in);
        }
    }
    // The same cluster calls, straight to it.
    let core = format!("{cluster_url}/api/v1/namespaces/{namespace}");
    let (mut create, mut get, mut secret) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..count {
        let name = format!("direct-{i}");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                         "spec": {"containers": [{"name": "desktop", "image": "bench/xfce:1"}]}});
        let t = Instant::now();
        http.post(format!("{core}/pods")).json(&pod).send().await?.bytes().await?;
        create.push(t.elapsed());
        let t = Instant::now();
        http.get(format!("{core}/pods/{name}")).send().await?.bytes().await?;
        get.push(t.elapsed());
        let object =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"password": "x"}});
        http.post(format!("{core}/secrets")).json(&object).send().await?.bytes().await?;
        let t = Instant::now();
        http.get(format!("{core}/secrets/{name}")).send().await?.bytes().await?;
        secret.push(t.elapsed());
        http.delete(format!("{core}/pods/{name}")).send().await?.bytes().await?;
    }
    let [start, status, open, create, get, secret] =
        [start, status, open, create, get, secret].map(|mut l| p50_p99_ms(&mut l));
    let rows = [
        ("POST /desktops (quota, records, Pod, Secret, Service)", start, "Pod create, sent straight", create),
        ("GET /desktops/{id} (refreshed from the Pod)", status, "Pod get, sent straight", get),
        ("POST /desktops/{id}/connection (Secret, sealed, exchanged)", open, "Secret get, sent straight", secret),
    ];
    for (name, ours, baseline_name, baseline) in rows {
        report.add("desktops", format!("{name}, p50"), ours.0, "ms", Better::Lower, baseline_name, baseline.0);
        report.add("desktops", format!("{name}, p99"), ours.1, "ms", Better::Lower, baseline_name, baseline.1);
    }
    Ok(())
}
