//! Jobs through the emulator against a stand-in Argo Server on 127.0.0.1 (the emulator's demo
//! engine, told to fail or hang), every request it receives checked against Argo's published
//! API: submit → track → succeed, cancel, who may see what, idempotent retries, quotas, faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_core::Config;
use portico_core::quotas::Quotas;
use portico_core::store::Table;
use portico_core::store::memory::MemoryTable;
use portico_local::Running;
use portico_local::demo_argo::{DemoArgo, Mode};
use portico_local::demo_store::DemoStore;
use portico_tests::argo::ArgoApi;
use portico_tests::{TestApi, test_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const META: &str = "name: Tide Gauge\nworkflow: {type: shell}\ninput: {params: [{type: url, value: 'https://data.example.org/tides.csv'}]}\n";
const STEPS: &str =
    "head -n 5 /input_dir/tides.csv > /output_dir/head.csv\nwc -l /output_dir/head.csv > /output_dir/count\n";

/// The `gdal-reproject` WorkflowTemplate as a registered recipe: a checked `epsg`, a
/// defaulted `label`.
pub(crate) fn reproject_template() -> Value {
    json!({
        "workflow_template": "gdal-reproject",
        "description": "Reprojects a raster",
        "parameters": [
            {"name": "epsg", "pattern": "[0-9]{4,5}", "max_length": 5, "required": true},
            {"name": "label", "max_length": 20, "default": "run"}
        ]
    })
}

fn recipe() -> Value {
    json!({"recipe": {"meta_yml": META, "steps": STEPS}})
}

pub(crate) struct Farm {
    pub(crate) api: TestApi,
    pub(crate) argo: Arc<DemoArgo>,
    _argo_server: Running,
    _outputs: DemoStore,
}

impl Farm {
    /// The emulator in front of a demo Argo whose workflows spend 300 ms Pending, then 300 ms
    /// Running; carol and dave may submit to the `jobs` group.
    pub(crate) async fn start(tune: impl FnOnce(&mut Config)) -> Farm {
        Self::on(Arc::new(MemoryTable::new()), tune).await
    }

    /// As [`Farm::start`], on `table`.
    pub(crate) async fn on(table: Arc<dyn Table>, tune: impl FnOnce(&mut Config)) -> Farm {
        let mut config = test_config();
        config.argo_timeout_ms = 1_000;
        tune(&mut config);
        let timing = (Duration::from_millis(300), Duration::from_millis(300));
        let (argo, server) = portico_local::demo_argo::serve(&mut config, timing).await.unwrap();
        let outputs = DemoStore::start().await.unwrap();
        let links = outputs.links();
        let api = TestApi::start_tuned(table, config, |p| p.jobs.output_links = Some(links)).await;
        let admin = api.admin_token();
        let steps = [
            (Method::POST, "/admin/roles", json!({"name": "runner"})),
            (Method::POST, "/admin/roles/runner/permissions", json!({"group": "jobs", "action": "job.submit"})),
            (Method::POST, "/admin/users", json!({"username": "carol"})),
            (Method::POST, "/admin/users", json!({"username": "dave"})),
        ];
        for (m, p, b) in steps {
            assert!(api.req(m, p, Some(&admin)).json(&b).send().await.unwrap().status().is_success(), "{p}");
        }
        for user in ["carol", "dave"] {
            let r =
                api.req(Method::PUT, &format!("/admin/users/{user}/roles/runner"), Some(&admin)).send().await.unwrap();
            assert!(r.status().is_success());
        }
        Farm { api, argo, _argo_server: server, _outputs: outputs }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        user: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.api.req(method, path, Some(&self.api.token(user)));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn submit(&self, user: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut req = self.api.req(Method::POST, "/jobs", Some(&self.api.token(user))).json(body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    pub(crate) async fn jobs_in_use(&self, user: &str) -> i64 {
        Quotas::new(self.api.services.table.as_ref()).usage(user).await.unwrap().jobs
    }

    /// Polls the job until it reaches `phase` (5 s at most).
    pub(crate) async fn wait_for(&self, id: &str, user: &str, phase: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, job) = self.call(Method::GET, &format!("/jobs/{id}"), user, None).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if job["phase"] == phase {
                return job;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "never reached {phase}: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every request the engine received fits Argo's published API.
    pub(crate) fn assert_argo_saw_only_its_api(&self) {
        let api = ArgoApi::load();
        let received = self.argo.received.lock().unwrap();
        assert!(!received.is_empty());
        for r in received.iter() {
            api.check_request(r.method.as_str(), &r.path, &r.query, &r.body).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

async fn a_job_is_submitted_tracked_to_success_and_its_quota_released(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    let (status, job) = farm.submit("carol", None, &recipe()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(
        (&job["phase"], &job["recipe"], &job["owner"]),
        (&json!("Pending"), &json!("tide-gauge"), &json!("carol"))
    );
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(farm.jobs_in_use("carol").await, 1, "an active job holds quota");
    farm.wait_for(&id, "carol", "Running").await;
    let done = farm.wait_for(&id, "carol", "Succeeded").await;
    assert_eq!(done["progress"], "4/4", "fetch, two steps, publish");
    assert_eq!(done["output"], json!({"type": "pvc", "volume": "portico-jobs", "path": "recipes/tide-gauge"}));
    assert_eq!(farm.jobs_in_use("carol").await, 0, "a finished job gives its quota back");
    let (status, logs) = farm.call(Method::GET, &format!("/jobs/{id}/logs"), "carol", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs.as_str().unwrap().contains("step-2 done"), "{logs}");
    let (_, mine) = farm.call(Method::GET, "/jobs", "carol", None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    farm.assert_argo_saw_only_its_api();
}

async fn a_cancelled_job_stops_in_argo_and_gives_its_quota_back(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    *farm.argo.timing.lock().unwrap() = (Duration::from_secs(60), Duration::from_secs(60));
    let (_, job) = farm.submit("carol", None, &recipe()).await;
    let id = job["id"].as_str().unwrap();
    let (status, cancelled) = farm.call(Method::DELETE, &format!("/jobs/{id}"), "carol", None).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!((&cancelled["phase"], &cancelled["message"]), (&json!("Failed"), &json!("cancelled by carol")));
    assert_eq!(farm.jobs_in_use("carol").await, 0);
    assert!(farm.argo.received.lock().unwrap().iter().any(|r| r.method == Method::PUT && r.path.ends_with("/stop")));
    let (status, body) = farm.call(Method::DELETE, &format!("/jobs/{id}"), "carol", None).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::CONFLICT, &json!("conflict")),
        "a finished job cannot be cancelled"
    );
    assert_eq!(farm.jobs_in_use("carol").await, 0, "released once");
    farm.assert_argo_saw_only_its_api();
}

async fn nobody_else_reads_lists_logs_or_cancels_a_job(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    let (_, job) = farm.submit("carol", None, &recipe()).await;
    let id = job["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/jobs/{id}")),
        (Method::GET, format!("/jobs/{id}/logs")),
        (Method::DELETE, format!("/jobs/{id}")),
    ] {
        let (status, body) = farm.call(method.clone(), &path, "dave", None).await;
        assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{method} {path}");
    }
    let (_, theirs) = farm.call(Method::GET, "/jobs", "dave", None).await;
    assert_eq!(theirs["items"], json!([]));
    let (status, _) = farm.call(Method::GET, "/jobs?all=true", "dave", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, all) = farm.call(Method::GET, "/jobs?all=true&owner=carol", portico_tests::ADMIN, None).await;
    assert_eq!(all["items"][0]["id"], json!(id), "administrators see every job");
    // Jobs sit in sixteen partitions by their id's first digit: the listing walks them all
    // (one query each: nothing else), and a page can resume at any shard.
    farm.call(Method::GET, "/jobs?all=true", portico_tests::ADMIN, None).await;
    farm.api.calls.take();
    let (_, all) = farm.call(Method::GET, "/jobs?all=true", portico_tests::ADMIN, None).await;
    assert_eq!((all["items"][0]["id"].as_str(), all["next"].as_str()), (Some(id), None));
    let calls = farm.api.calls.take();
    assert_eq!((calls.query, calls.total()), (16, 16), "one query per shard");
    let (_, resumed) =
        farm.call(Method::GET, &format!("/jobs?all=true&next={}.", &id[..1]), portico_tests::ADMIN, None).await;
    assert_eq!(resumed["items"][0]["id"], json!(id));
    let (status, body) = farm.call(Method::GET, "/jobs?all=true&next=q.", portico_tests::ADMIN, None).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_cursor")));
    // Without job.submit on the group, nothing is submitted.
    let (status, body) = farm.submit("dave", None, &json!({"recipe": recipe()["recipe"], "group": "elsewhere"})).await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{body}");
    assert_eq!(farm.argo.created(), 1);
}

async fn retries_with_one_idempotency_key_make_exactly_one_workflow(table: Arc<dyn Table>) {
    let farm = Arc::new(Farm::on(table, |_| {}).await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let farm = Arc::clone(&farm);
            tokio::spawn(async move { farm.submit("carol", Some("tide-2026-11-24"), &recipe()).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => assert!(body["message"].as_str().unwrap().contains("in progress"), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success names the same job");
    assert_eq!(farm.argo.created(), 1, "exactly one workflow");
    // Afterwards the same key answers the same job, 200.
    let (status, again) = farm.submit("carol", Some("tide-2026-11-24"), &recipe()).await;
    assert_eq!((status, again["id"].as_str().unwrap()), (StatusCode::OK, ids.first().unwrap().as_str()));
    // The same key with another request is refused, and nothing is submitted.
    let other = json!({"recipe": {"meta_yml": META, "steps": "true\n"}});
    let (status, body) = farm.submit("carol", Some("tide-2026-11-24"), &other).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("idempotency_key_reused")));
    assert_eq!(farm.argo.created(), 1);
    assert_eq!(farm.jobs_in_use("carol").await, 1);
}

async fn quotas_bound_active_jobs(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |c| c.quota_jobs = 1).await;
    *farm.argo.timing.lock().unwrap() = (Duration::from_secs(60), Duration::from_secs(60));
    assert_eq!(farm.submit("carol", None, &recipe()).await.0, StatusCode::CREATED);
    let (status, body) = farm.submit("carol", None, &recipe()).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("quota_exceeded")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("jobs: 1 used + 1 requested > limit 1"), "{body}");
    assert_eq!(farm.argo.created(), 1);
}

async fn argo_down_or_hanging_answers_503_or_504_gives_the_quota_back_and_a_retry_submits_once(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    *farm.argo.mode.lock().unwrap() = Mode::Fail(503);
    let (status, body) = farm.submit("carol", Some("k1"), &recipe()).await;
    assert_eq!((status, &body["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("upstream_unavailable")), "{body}");
    assert_eq!(farm.jobs_in_use("carol").await, 0);
    // A 409 that is not this job's workflow is a conflict Portico reports, not a success.
    *farm.argo.mode.lock().unwrap() = Mode::Fail(409);
    let (status, body) = farm.submit("carol", None, &recipe()).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_GATEWAY, &json!("upstream_failed")), "{body}");
    assert_eq!(farm.jobs_in_use("carol").await, 0);

    for hang in [Mode::Hang(Duration::from_secs(3)), Mode::LoseAnswer(Duration::from_secs(3))] {
        *farm.argo.mode.lock().unwrap() = hang;
        let started = Instant::now();
        let (status, body) = farm.submit("carol", Some("k2"), &recipe()).await;
        assert_eq!((status, &body["code"]), (StatusCode::GATEWAY_TIMEOUT, &json!("upstream_timeout")), "{body}");
        assert!(started.elapsed() < Duration::from_millis(2_500), "answered at the deadline: {:?}", started.elapsed());
        assert_eq!(farm.jobs_in_use("carol").await, 0);
    }
    assert_eq!(farm.argo.created(), 1, "the last call went through; only its answer was lost");

    // The retry finds that workflow instead of making a second one.
    *farm.argo.mode.lock().unwrap() = Mode::Normal;
    let created_before = farm.argo.created();
    let (status, job) = farm.submit("carol", Some("k2"), &recipe()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(farm.argo.created(), created_before, "the existing workflow is recognized");
    assert_eq!(farm.jobs_in_use("carol").await, 1);
    farm.wait_for(job["id"].as_str().unwrap(), "carol", "Succeeded").await;
    farm.assert_argo_saw_only_its_api();
}

async fn the_reconciler_releases_the_quota_of_jobs_nobody_polls(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(farm.submit("carol", None, &recipe()).await.0, StatusCode::CREATED);
    }
    assert_eq!(farm.jobs_in_use("carol").await, 3);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reconciler = farm.api.platform.jobs();
    assert_eq!(reconciler.reconcile().await.unwrap(), 3);
    assert_eq!(farm.jobs_in_use("carol").await, 0);
    assert_eq!(reconciler.reconcile().await.unwrap(), 0, "finished jobs are not read again");
}

/// Submission writes the active marker before the job: a sweep in between must not strand the
/// job by removing its marker. Only a marker old enough to be left by a crash goes.
async fn the_reconciler_removes_only_old_markers_without_their_job(table: Arc<dyn Table>) {
    use portico_core::store::{Condition, Item, Key, now_epoch};
    let farm = Farm::on(table, |_| {}).await;
    let store = farm.api.services.table.as_ref();
    let fresh = Key::new("ACTIVE_JOBS", "00000000-0000-4000-8000-000000000001");
    let old = Key::new("ACTIVE_JOBS", "00000000-0000-4000-8000-000000000002");
    store.put(Item::new(fresh.clone()).with_n("since", now_epoch()), Condition::Always).await.unwrap();
    store.put(Item::new(old.clone()).with_n("since", now_epoch() - 3600), Condition::Always).await.unwrap();
    let reconciler = farm.api.platform.jobs();
    assert_eq!(reconciler.reconcile().await.unwrap(), 0);
    assert!(store.get(&fresh).await.unwrap().is_some(), "a submission in progress keeps its marker");
    assert!(store.get(&old).await.unwrap().is_none(), "a crashed submission's marker is removed");
}

async fn a_bad_recipe_is_400_and_nothing_is_submitted(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    let bad = json!({"recipe": {"meta_yml": "name: x\nworkflow: {type: visualization}\ninput: {params: [{type: url, value: 'https://h/x'}]}\n", "steps": "true\n"}});
    let (status, body) = farm.submit("carol", None, &bad).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_recipe")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("visualization recipes are not supported"), "{body}");
    assert_eq!((farm.argo.created(), farm.jobs_in_use("carol").await), (0, 0));
}

/// Resources the quota refuses are refused before anything is written: no idempotency key,
/// no active marker, no usage; and a marker such a request left behind (before this was so)
/// is removed by the reconciler instead of being retried at every run.
async fn refused_submissions_write_nothing_and_a_leaked_marker_goes(table: Arc<dyn Table>) {
    use portico_core::store::{Condition, Item, Key, Query, now_epoch};
    let farm = Farm::on(table, |_| {}).await;
    let store = farm.api.services.table.as_ref();
    farm.submit("carol", None, &json!({"recipe": "not a recipe"})).await; // roles cached from here on
    let markers = || async { store.query(&Query::table("ACTIVE_JOBS", 100)).await.unwrap().items.len() };
    let huge = i64::MAX.to_string();
    for (field, amount) in [("cpu", "-1"), ("memory", huge.as_str()), ("storage", "-9223372036854775808")] {
        farm.api.calls.take();
        let mut body = recipe();
        body["resources"] = json!({ field: amount.parse::<i64>().unwrap() });
        let (status, answer) = farm.submit("carol", Some(&format!("bad-{field}")), &body).await;
        assert_eq!((status, &answer["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_field")), "{answer}");
        let c = farm.api.calls.take();
        assert_eq!((c.put, c.add, c.delete), (0, 0, 0), "{field}: nothing written: {c:?}");
    }
    // A member named twice, whichever copy is the benign one.
    let recipe_text = recipe()["recipe"].to_string();
    for twice in [
        format!(r#"{{"recipe": {recipe_text}, "recipe": {{"meta_yml": "x", "steps": "y"}}}}"#),
        format!(r#"{{"group": "jobs", "group": "other", "recipe": {recipe_text}}}"#),
    ] {
        farm.api.calls.take();
        let r = farm.api.req(Method::POST, "/jobs", Some(&farm.api.token("carol"))).header("idempotency-key", "twice");
        let r = r.header("content-type", "application/json").body(twice).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["code"], "invalid_json", "{answer}");
        let c = farm.api.calls.take();
        assert_eq!((c.put, c.add, c.delete), (0, 0, 0), "nothing written: {c:?}");
    }
    assert_eq!((markers().await, farm.jobs_in_use("carol").await, farm.argo.created()), (0, 0, 0));
    // The keys were never claimed: the same key with a valid body is a fresh submission.
    let (status, job) = farm.submit("carol", Some("bad-cpu"), &recipe()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    // A marker as an earlier release left it: its amounts could never have been reserved.
    let leaked = Key::new("ACTIVE_JOBS", "00000000-0000-4000-8000-00000000000f");
    let marker = Item::new(leaked.clone()).with_n("since", now_epoch() - 3600).with_s("owner", "carol");
    store.put(marker.with_n("jobs", 1).with_n("cpu", -1), Condition::Always).await.unwrap();
    let reconciler = farm.api.platform.jobs();
    reconciler.reconcile().await.unwrap();
    assert!(store.get(&leaked).await.unwrap().is_none(), "the leaked marker is gone");
    assert_eq!(farm.jobs_in_use("carol").await, 1, "only the real job holds quota");
}

async fn a_retry_refused_for_quota_keeps_its_key_bound_to_the_first_workflow(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |c| c.quota_jobs = 1).await;
    *farm.argo.timing.lock().unwrap() = (Duration::from_secs(60), Duration::from_secs(60));
    *farm.argo.mode.lock().unwrap() = Mode::LoseAnswer(Duration::from_secs(2));
    let (status, _) = farm.submit("carol", Some("k"), &recipe()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(farm.argo.created(), 1, "created; the answer was lost");
    // Another job takes the only slot; the retry is refused for quota...
    *farm.argo.mode.lock().unwrap() = Mode::Normal;
    let (_, other) = farm.submit("carol", None, &recipe()).await;
    let (status, body) = farm.submit("carol", Some("k"), &recipe()).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("quota_exceeded")), "{body}");
    // ...and once the slot is free, it still finds its first workflow.
    farm.call(Method::DELETE, &format!("/jobs/{}", other["id"].as_str().unwrap()), "carol", None).await;
    let (status, job) = farm.submit("carol", Some("k"), &recipe()).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(farm.argo.created(), 2, "the lost one and the other job, no third");
}

async fn a_temporary_output_is_a_time_limited_download_once_the_job_succeeded(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    let temporary = json!({"recipe": {"meta_yml": META.replace("workflow: {type: shell}", "workflow: {type: shell}\noutput: {type: temporary}"), "steps": STEPS}});
    let (_, job) = farm.submit("carol", None, &temporary).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (status, body) = farm.call(Method::GET, &format!("/jobs/{id}/output"), "carol", None).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("conflict")), "not before it succeeded: {body}");
    farm.wait_for(&id, "carol", "Succeeded").await;
    let (status, output) = farm.call(Method::GET, &format!("/jobs/{id}/output"), "carol", None).await;
    assert_eq!((status, &output["expires_in"]), (StatusCode::OK, &json!(7200)), "{output}");
    let url = output["url"].as_str().unwrap();
    let zip = reqwest::get(url).await.unwrap();
    assert_eq!(zip.status(), StatusCode::OK, "downloaded without a token, as from S3");
    let bytes = zip.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"), "a zip");
    let (status, _) = farm.call(Method::GET, &format!("/jobs/{id}/output"), "dave", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nobody else gets the link");
    // A pvc output says where it is.
    let (_, job) = farm.submit("carol", None, &recipe()).await;
    let (_, output) =
        farm.call(Method::GET, &format!("/jobs/{}/output", job["id"].as_str().unwrap()), "carol", None).await;
    assert_eq!(output, json!({"type": "pvc", "volume": "portico-jobs", "path": "recipes/tide-gauge"}));
    farm.assert_argo_saw_only_its_api();
}

async fn registered_templates_run_with_checked_parameters_only(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    let template = reproject_template();
    let (status, body) = farm.call(Method::PUT, "/recipes/reproject", "carol", Some(&template)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only administrators register: {body}");
    let (status, body) = farm.call(Method::PUT, "/recipes/reproject", portico_tests::ADMIN, Some(&template)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, listed) = farm.call(Method::GET, "/recipes", "carol", None).await;
    assert_eq!(listed["items"][0]["name"], "reproject");

    let submit = |parameters: Value| json!({"template": "reproject", "parameters": parameters});
    for (parameters, says) in [
        (json!({}), "'parameters.epsg' is required"),
        (json!({"epsg": "34a3"}), "does not match"),
        (json!({"epsg": "3413", "image": "evil:latest"}), "declares no parameter 'image'"),
        (json!({"epsg": "3413", "label": "{{workflow.serviceAccountName}}"}), "may not contain"),
    ] {
        let (status, body) = farm.submit("carol", None, &submit(parameters.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameters}: {body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{parameters}: {body}");
    }
    assert_eq!(farm.argo.created(), 0, "nothing reached Argo");
    let (status, job) = farm.submit("carol", None, &submit(json!({"epsg": "3413"}))).await;
    assert_eq!(
        (status, &job["kind"], &job["recipe"]),
        (StatusCode::CREATED, &json!("template"), &json!("reproject")),
        "{job}"
    );
    let submitted = farm.argo.received.lock().unwrap().iter().find(|r| r.path.ends_with("/submit")).cloned().unwrap();
    assert_eq!(submitted.body["resourceName"], "gdal-reproject");
    assert_eq!(submitted.body["submitOptions"]["parameters"], json!(["epsg=3413", "label=run"]));
    farm.wait_for(job["id"].as_str().unwrap(), "carol", "Succeeded").await;
    let (status, _) = farm.submit("carol", None, &json!({"template": "absent"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = farm.call(Method::DELETE, "/recipes/reproject", portico_tests::ADMIN, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    farm.assert_argo_saw_only_its_api();
}

async fn each_jobs_route_makes_a_known_number_of_storage_calls(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    *farm.argo.timing.lock().unwrap() = (Duration::from_millis(1), Duration::from_secs(60));
    farm.submit("carol", None, &recipe()).await; // the caller's roles are cached from here on
    farm.api.calls.take();
    let (_, job) = farm.submit("carol", None, &recipe()).await;
    let c = farm.api.calls.take();
    assert_eq!((c.get, c.put, c.add, c.query, c.total()), (0, 3, 1, 0, 4), "quota, marker, record, record: {c:?}");
    let path = format!("/jobs/{}", job["id"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    farm.call(Method::GET, &path, "carol", None).await;
    let c = farm.api.calls.take();
    assert_eq!((c.get, c.put, c.total()), (1, 1, 2), "read, and the new phase written: {c:?}");
    farm.call(Method::GET, &path, "carol", None).await;
    assert_eq!(farm.api.calls.take().total(), 1, "no change, no write");
    farm.call(Method::GET, "/jobs", "carol", None).await;
    assert_eq!(farm.api.calls.take().total(), 1, "one query");
    // Logs and a pvc output need the stored job only, not its refreshed phase.
    for what in ["logs", "output"] {
        let (status, _) = farm.call(Method::GET, &format!("{path}/{what}"), "carol", None).await;
        assert_eq!(status, StatusCode::OK);
        let c = farm.api.calls.take();
        assert_eq!((c.get, c.total()), (1, 1), "{what} (a pvc output): the job read once: {c:?}");
    }
    // The cancel reads the job once, for the access check and the cancel both.
    let (status, body) = farm.call(Method::DELETE, &path, "carol", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = farm.api.calls.take();
    let counts = (c.get, c.put, c.add, c.delete, c.total());
    assert_eq!(counts, (1, 1, 1, 1, 4), "read, the end recorded, quota released, marker removed: {c:?}");
    // With an Idempotency-Key: the key claimed, and recorded done, beside a plain submission's.
    let (status, body) = farm.submit("carol", Some("counted"), &recipe()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let c = farm.api.calls.take();
    assert_eq!(
        (c.get, c.put, c.add, c.query, c.total()),
        (0, 5, 1, 0, 6),
        "key, quota, marker, record, record, key done: {c:?}"
    );
}

async fn overwrite_reaches_the_publish_step(table: Arc<dyn Table>) {
    let farm = Farm::on(table, |_| {}).await;
    for overwrite in [false, true] {
        let mut body = recipe();
        body["overwrite"] = json!(overwrite);
        assert_eq!(farm.submit("carol", None, &body).await.0, StatusCode::CREATED);
    }
    let received = farm.argo.received.lock().unwrap().clone();
    let publish_commands: Vec<String> = received
        .iter()
        .filter(|r| r.method == Method::POST)
        .map(|r| {
            let templates = r.body["workflow"]["spec"]["templates"].as_array().unwrap();
            let publish = templates.iter().find(|t| t["name"] == "publish").unwrap();
            publish["container"]["command"][2].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(publish_commands[0].contains("submit with overwrite"), "{}", publish_commands[0]);
    assert!(publish_commands[1].starts_with("find /output_dir -mindepth 1 -delete"), "{}", publish_commands[1]);
}

on_both_stores! {
    a_job_is_submitted_tracked_to_success_and_its_quota_released,
    a_cancelled_job_stops_in_argo_and_gives_its_quota_back,
    nobody_else_reads_lists_logs_or_cancels_a_job,
    retries_with_one_idempotency_key_make_exactly_one_workflow,
    quotas_bound_active_jobs,
    argo_down_or_hanging_answers_503_or_504_gives_the_quota_back_and_a_retry_submits_once,
    the_reconciler_releases_the_quota_of_jobs_nobody_polls,
    the_reconciler_removes_only_old_markers_without_their_job,
    a_bad_recipe_is_400_and_nothing_is_submitted,
    refused_submissions_write_nothing_and_a_leaked_marker_goes,
    a_retry_refused_for_quota_keeps_its_key_bound_to_the_first_workflow,
    a_temporary_output_is_a_time_limited_download_once_the_job_succeeded,
    registered_templates_run_with_checked_parameters_only,
    each_jobs_route_makes_a_known_number_of_storage_calls,
    overwrite_reaches_the_publish_step,
    a_key_abandoned_in_flight_is_taken_over_with_its_job_id,
}

/// A recipe name OGDC allows but which is no Kubernetes label value (a trailing `.`, over 63
/// characters) runs: the engine, strict as a cluster about metadata, takes the workflow.
#[tokio::test]
async fn recipes_whose_ids_are_no_label_values_still_run() {
    let farm = Farm::start(|_| {}).await;
    for (n, name) in ["Tide Gauge 2.", &format!("Tide Gauge {}", "long ".repeat(17).trim_end())].iter().enumerate() {
        let body = json!({"recipe": {"meta_yml": META.replace("Tide Gauge", name), "steps": STEPS}});
        let (status, job) = farm.submit("carol", Some(&format!("{{{{workflow.name}}}}-{n}")), &body).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {job}");
    }
    assert_eq!(farm.argo.created(), 2);
    farm.assert_argo_saw_only_its_api();
    let received = farm.argo.received.lock().unwrap();
    assert!(received.iter().all(|r| !r.body.to_string().contains("{{workflow.name}}")), "the key reached Argo as text");
}

/// Argo's bearer token goes to Argo and nowhere else: not in an answer, not in a log.
#[tokio::test]
async fn argos_token_is_sent_to_argo_only() {
    const TOKEN: &str = "argo-sa-token-7d1c0f3b9e";
    let farm = Farm::start(|c| {
        c.argo_token_secret_id = Some("portico/argo-token".into());
        c.local_secrets.insert("portico/argo-token".into(), format!("{TOKEN}\n"));
    })
    .await;
    let mut answers = Vec::new();
    let (_, job) = farm.submit("carol", None, &recipe()).await;
    answers.push(job.to_string());
    for mode in [Mode::Fail(403), Mode::Fail(500), Mode::Hang(Duration::from_secs(2))] {
        *farm.argo.mode.lock().unwrap() = mode;
        answers.push(farm.submit("carol", None, &recipe()).await.1.to_string());
        let (_, body) =
            farm.call(Method::GET, &format!("/jobs/{}/logs", job["id"].as_str().unwrap()), "carol", None).await;
        answers.push(body.to_string());
    }
    let received = farm.argo.received.lock().unwrap().clone();
    assert!(
        received.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..])),
        "sent on every call"
    );
    for answer in &answers {
        assert!(!answer.contains(TOKEN), "{answer}");
    }
    assert!(answers[2].contains("refused the request (403)"), "a refusal is explained: {}", answers[2]);
    assert!(!portico_tests::captured_logs().contains(TOKEN), "the token is in a log line");
}

/// A key left `in_flight` by a process that died mid-submission is taken over once stale,
/// keeping its job id (so a workflow it may have created is found, not duplicated).
async fn a_key_abandoned_in_flight_is_taken_over_with_its_job_id(table: Arc<dyn Table>) {
    use portico_core::store::{Condition, Item, Key, now_epoch};
    let farm = Farm::on(table, |_| {}).await;
    let (status, first) = farm.submit("carol", Some("crashy"), &recipe()).await;
    assert_eq!(status, StatusCode::CREATED);
    let item = farm.api.services.table.get(&Key::new("IDEM#carol", "crashy")).await.unwrap().unwrap();
    // Rewind it to a state a crash would leave: in flight, long ago.
    let mut stale = Item::new(item.key.clone())
        .with_s("digest", item.s("digest").unwrap())
        .with_s("job", item.s("job").unwrap())
        .with_s("state", "in_flight")
        .with_n("since", now_epoch() - 3600);
    stale.expires_at = item.expires_at;
    farm.api.services.table.put(stale, Condition::Always).await.unwrap();
    let (status, again) = farm.submit("carol", Some("crashy"), &recipe()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"], "the same job");
    assert_eq!(farm.argo.created(), 1, "its workflow was recognized, not made twice");
    assert_eq!(farm.jobs_in_use("carol").await, 1, "and its quota is held once");
    // A fresh in-flight key is still a 409.
    let mut fresh = Item::new(Key::new("IDEM#carol", "busy")).with_s("state", "in_flight").with_n("since", now_epoch());
    fresh = fresh.with_s("digest", item.s("digest").unwrap()).with_s("job", "x");
    farm.api.services.table.put(fresh, Condition::Always).await.unwrap();
    assert_eq!(farm.submit("carol", Some("busy"), &recipe()).await.0, StatusCode::CONFLICT);
}
