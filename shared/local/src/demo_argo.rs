//! A stand-in Argo Server for local development and tests, so `cargo run` runs jobs end to
//! end with no Kubernetes: it serves the calls Portico makes of Argo's REST API (create, submit
//! of a WorkflowTemplate, get, stop, logs) and moves each workflow Pending → Running →
//! Succeeded over a few seconds. Its get ignores `fields`: it always answers the metadata and
//! the status, with the publish step's node (and its output artifact, for a workflow that
//! zips one) once succeeded. Tests also tell it to fail or hang, and read what it was sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{HttpApi, Running};

use http::{Method, StatusCode};
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error};
use serde_json::{Value, json};

/// Where the demo engine is mounted on the emulator.
pub const DEMO_ARGO_PATH: &str = "/demo-argo";

/// How the demo engine answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Every call answers this status (Argo's error body).
    Fail(u16),
    /// Every call waits this long before it is handled (it may never be).
    Hang(Duration),
    /// Every call is handled, then the answer waits this long (a lost answer: the
    /// workflow exists, the caller does not know).
    LoseAnswer(Duration),
}

/// One request the engine received: method, path (after the mount point), query, JSON body.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
    /// The `Authorization` header, to check the token is sent (and only here).
    pub authorization: Option<String>,
}

struct Workflow {
    created: Instant,
    created_at: time::OffsetDateTime,
    spec: Value,
    stopped: bool,
}

/// The demo engine's state, shared with whoever holds it (tests).
pub struct DemoArgo {
    config: Config,
    pub mode: Mutex<Mode>,
    /// Time spent Pending, then Running, before a workflow succeeds.
    pub timing: Mutex<(Duration, Duration)>,
    pub received: Mutex<Vec<Received>>,
    workflows: Mutex<HashMap<String, Workflow>>,
}

/// Workflows kept before the oldest are forgotten (the emulator runs for days).
const KEPT: usize = 10_000;

impl DemoArgo {
    pub fn new(config: Config) -> Arc<DemoArgo> {
        Arc::new(DemoArgo {
            config,
            mode: Mutex::new(Mode::Normal),
            timing: Mutex::new((Duration::from_secs(2), Duration::from_secs(4))),
            received: Mutex::default(),
            workflows: Mutex::default(),
        })
    }

    /// How many workflows were created.
    pub fn created(&self) -> usize {
        self.workflows.lock().expect("demo argo lock").len()
    }

    fn status(&self, w: &Workflow) -> Value {
        let (pending, running) = *self.timing.lock().expect("demo argo lock");
        let age = w.created.elapsed();
        let steps = w.spec["spec"]["templates"][0]["steps"].as_array().map_or(1, Vec::len);
        let at = |offset: Duration| {
            let t = w.created_at + offset;
            t.replace_nanosecond(0)
                .unwrap_or(t)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let (started, finished) = (at(pending), at(pending + running));
        if w.stopped {
            return json!({"phase": "Failed", "message": "Stopped with strategy 'Stop'", "startedAt": started, "finishedAt": at(age), "progress": format!("0/{steps}")});
        }
        if age < pending {
            json!({"phase": "Pending", "progress": format!("0/{steps}")})
        } else if age < pending + running {
            let done = ((age - pending).as_secs_f64() / running.as_secs_f64() * steps as f64) as usize;
            json!({"phase": "Running", "startedAt": started, "progress": format!("{}/{steps}", done.min(steps - 1))})
        } else {
            json!({"phase": "Succeeded", "startedAt": started, "finishedAt": finished, "progress": format!("{steps}/{steps}")})
        }
    }
}

/// The publish step's node, with its `output` artifact once a workflow that declares one
/// has succeeded (in the demo store's bucket).
fn nodes(name: &str, w: &Workflow, status: &Value) -> Value {
    let templates = w.spec["spec"]["templates"].as_array().cloned().unwrap_or_default();
    let zips = templates.iter().any(|t| t["name"] == "publish" && t["outputs"]["artifacts"].is_array());
    if !zips || status["phase"] != "Succeeded" {
        return json!({});
    }
    let artifact = json!({"name": "output", "path": "/output_dir",
        "s3": {"bucket": crate::demo_store::DEMO_BUCKET, "key": format!("{name}/output.zip")}});
    json!({format!("{name}-publish"): {"templateName": "publish", "phase": "Succeeded", "outputs": {"artifacts": [artifact]}}})
}

/// Stores a new workflow as Argo's create and submit do: metadata a cluster would refuse is
/// Kubernetes' refusal (Argo's 400), a name taken is Argo's 409; past [`KEPT`] the oldest is
/// forgotten first.
fn insert(workflows: &mut HashMap<String, Workflow>, name: String, spec: Value) -> ApiResponse {
    if let Some(problem) = crate::kubernetes::metadata_problem("Workflow.argoproj.io", &spec["metadata"]) {
        return argo_error(StatusCode::BAD_REQUEST, &problem);
    }
    if workflows.contains_key(&name) {
        return argo_error(StatusCode::CONFLICT, &format!("workflows.argoproj.io \"{name}\" already exists"));
    }
    if workflows.len() >= KEPT {
        let oldest = workflows.iter().min_by_key(|(_, w)| w.created).map(|(n, _)| n.clone());
        oldest.map(|n| workflows.remove(&n));
    }
    let created_at = time::OffsetDateTime::now_utc();
    let answer = web::json(StatusCode::OK, &spec);
    workflows.insert(name, Workflow { created: Instant::now(), created_at, spec, stopped: false });
    answer
}

/// Argo's error body: grpc-gateway's, `code` the gRPC code behind the HTTP status.
fn argo_error(status: StatusCode, message: &str) -> ApiResponse {
    let code = match status.as_u16() {
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        429 => 8,
        501 => 12,
        503 => 14,
        504 => 4,
        _ => 13,
    };
    web::json(status, &json!({"code": code, "message": message, "details": []}))
}

/// The demo engine's routes, over shared state.
pub struct DemoArgoApi(pub Arc<DemoArgo>);

#[async_trait::async_trait]
impl RouteGroup for DemoArgoApi {
    fn name(&self) -> &'static str {
        "demo-argo"
    }

    fn route_keys(&self) -> Vec<String> {
        [format!("ANY {DEMO_ARGO_PATH}/{{proxy+}}")].into()
    }

    fn config(&self) -> &Config {
        &self.0.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let argo = &self.0;
        let path = req.uri().path().trim_start_matches(DEMO_ARGO_PATH).to_owned();
        let body = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let query = req.uri().query().unwrap_or_default().to_owned();
        let authorization =
            req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let received = Received { method: req.method().clone(), path, query, body: body.clone(), authorization };
        argo.received.lock().expect("demo argo lock").push(received);
        let mode = *argo.mode.lock().expect("demo argo lock");
        match mode {
            Mode::Fail(status) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Ok(argo_error(status, "the demo engine was told to fail"));
            }
            Mode::Hang(wait) => tokio::time::sleep(wait).await,
            Mode::Normal | Mode::LoseAnswer(_) => {}
        }
        let answer = self.answer(req, &body);
        if let Mode::LoseAnswer(wait) = mode {
            tokio::time::sleep(wait).await;
        }
        answer
    }
}

impl DemoArgoApi {
    fn answer(&self, req: &ApiRequest, body: &Value) -> Result<ApiResponse, Error> {
        let argo = &self.0;
        let segments = web::segments(req);
        let namespace = &argo.config.argo_namespace;
        let mut workflows = argo.workflows.lock().expect("demo argo lock");
        match (req.method(), segments.as_slice()) {
            (&Method::POST, ["demo-argo", "api", "v1", "workflows", ns, "submit"]) if ns == namespace => {
                // Any WorkflowTemplate name is taken: the demo runs one step for it.
                let options = &body["submitOptions"];
                let Some(name) = options["name"].as_str().map(str::to_owned) else {
                    return Ok(argo_error(StatusCode::BAD_REQUEST, "submitOptions.name is needed"));
                };
                let labels: serde_json::Map<String, Value> = options["labels"]
                    .as_str()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), json!(v)))
                    .collect();
                let workflow = json!({
                    "metadata": {"name": name, "labels": labels, "annotations": {}},
                    "spec": {"workflowTemplateRef": {"name": body["resourceName"]},
                             "arguments": {"parameters": options["parameters"]},
                             "templates": [{"name": "main", "steps": [[{"name": "run", "template": "run"}]]}]},
                });
                Ok(insert(&mut workflows, name, workflow))
            }
            (&Method::POST, ["demo-argo", "api", "v1", "workflows", ns]) if ns == namespace => {
                let workflow = body["workflow"].clone();
                let Some(name) = workflow["metadata"]["name"].as_str().map(str::to_owned) else {
                    return Ok(argo_error(StatusCode::BAD_REQUEST, "the workflow has no metadata.name"));
                };
                Ok(insert(&mut workflows, name, workflow))
            }
            (method, ["demo-argo", "api", "v1", "workflows", ns, name, rest @ ..]) if ns == namespace => {
                let Some(w) = workflows.get_mut(*name) else {
                    return Ok(argo_error(
                        StatusCode::NOT_FOUND,
                        &format!("workflows.argoproj.io \"{name}\" not found"),
                    ));
                };
                match (method, rest) {
                    (&Method::GET, []) => {
                        let metadata = json!({"name": name, "namespace": ns, "annotations": w.spec["metadata"]["annotations"], "labels": w.spec["metadata"]["labels"]});
                        let mut status = argo.status(w);
                        status["nodes"] = nodes(name, w, &status);
                        Ok(web::json(StatusCode::OK, &json!({"metadata": metadata, "status": status})))
                    }
                    (&Method::PUT, ["stop"]) => {
                        w.stopped = true;
                        Ok(web::json(StatusCode::OK, &json!({"metadata": {"name": name}})))
                    }
                    (&Method::GET, ["log"]) => {
                        let steps = w.spec["spec"]["templates"][0]["steps"].as_array().cloned().unwrap_or_default();
                        let lines: Vec<String> = steps
                            .iter()
                            .map(|s| {
                                let step = s[0]["name"].as_str().unwrap_or("step");
                                json!({"result": {"content": format!("demo engine: {step} done"), "podName": format!("{name}-{step}")}}).to_string()
                            })
                            .collect();
                        let mut r = http::Response::new(lines.join("\n"));
                        r.headers_mut()
                            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
                        Ok(r)
                    }
                    _ => Ok(argo_error(StatusCode::NOT_FOUND, "the demo engine does not serve this")),
                }
            }
            _ => Ok(argo_error(StatusCode::NOT_FOUND, "the demo engine does not serve this")),
        }
    }
}

/// Points `config` at the demo engine on `base` (the emulator's own URL) unless an Argo
/// server is configured. Returns whether it did.
pub fn configure(config: &mut Config, base: &str) -> bool {
    if config.argo_server_url.is_some() {
        return false;
    }
    config.argo_server_url = Some(format!("{base}{DEMO_ARGO_PATH}"));
    true
}

/// A demo engine on a port of its own (tests and benchmarks, outside the emulator) whose
/// workflows spend `timing` Pending, then Running; `config` is pointed at it. Dropping the
/// [`Running`] stops it.
pub async fn serve(config: &mut Config, timing: (Duration, Duration)) -> std::io::Result<(Arc<DemoArgo>, Running)> {
    let argo = DemoArgo::new(config.clone());
    *argo.timing.lock().expect("demo argo lock") = timing;
    let running = crate::start(HttpApi::new(vec![Arc::new(DemoArgoApi(Arc::clone(&argo)))]), 0).await?;
    config.argo_server_url = Some(format!("{}{DEMO_ARGO_PATH}", running.url()));
    Ok((argo, running))
}
