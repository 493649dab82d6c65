//! A stand-in Kubernetes API server for local development and tests, so `cargo run` runs
//! desktops end to end with no cluster: it serves the calls Portico makes of the Kubernetes REST
//! API (create Pods, Secrets, Services and NetworkPolicies; read a Pod, a Secret and a Pod's
//! events; delete a Pod, and with it what it owns) in one namespace. A Pod is `Pending` (with
//! the events a kubelet records) for `ready_after`, then `Running` and ready with an IP; past its
//! `activeDeadlineSeconds` it is `Failed` with `DeadlineExceeded`. It refuses names and labels
//! the API server would refuse (Kubernetes' own rules, [`crate::kubernetes`]), answers a second
//! object of the same name 409 `AlreadyExists`, and errors as the API server's `Status`. Tests
//! also tell it to fail, evict a Pod, or keep Pods pending, and read what it was sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error};
use serde_json::{Value, json};

use crate::{HttpApi, Running};

/// Where the demo cluster is mounted on the emulator.
pub const DEMO_CLUSTER_PATH: &str = "/demo-cluster";

struct Object {
    value: Value,
    created: Instant,
}

/// The demo cluster's state, shared with whoever holds it (tests).
pub struct DemoCluster {
    namespace: String,
    /// How long a Pod stays Pending before it is Running and ready.
    pub ready_after: Mutex<Duration>,
    /// Every call answers this status, as the API server's Status (a broken cluster).
    pub fail: Mutex<Option<u16>>,
    /// Every call waits this long first (a cluster that hangs).
    pub hang: Mutex<Option<Duration>>,
    /// The `Authorization` header of every call, in order (tests read them).
    pub authorizations: Mutex<Vec<String>>,
    /// Every object created, as sent (tests read them).
    pub created: Mutex<Vec<Value>>,
    /// Objects by kind, then name.
    objects: Mutex<BTreeMap<(String, String), Object>>,
    /// Pods evicted (tests), with the reason.
    evicted: Mutex<BTreeMap<String, String>>,
}

impl DemoCluster {
    pub fn new(config: &Config) -> Arc<DemoCluster> {
        Arc::new(DemoCluster {
            namespace: config.desktops_namespace.clone(),
            ready_after: Mutex::new(Duration::from_secs(3)),
            fail: Mutex::new(None),
            hang: Mutex::new(None),
            authorizations: Mutex::new(Vec::new()),
            created: Mutex::new(Vec::new()),
            objects: Mutex::new(BTreeMap::new()),
            evicted: Mutex::new(BTreeMap::new()),
        })
    }

    /// Marks the Pod `name` evicted, as a kubelet under pressure does.
    pub fn evict(&self, name: &str) {
        self.evicted.lock().expect("demo cluster").insert(name.to_owned(), "Evicted".into());
    }

    /// The names of the objects of `kind` that exist.
    pub fn names(&self, kind: &str) -> Vec<String> {
        self.objects.lock().expect("demo cluster").keys().filter(|(k, _)| k == kind).map(|(_, n)| n.clone()).collect()
    }

    fn pod_with_status(&self, name: &str, object: &Object) -> Value {
        let mut pod = object.value.clone();
        let age = object.created.elapsed();
        let deadline = pod["spec"]["activeDeadlineSeconds"].as_u64().map(Duration::from_secs);
        let evicted = self.evicted.lock().expect("demo cluster").get(name).cloned();
        let ready_after = *self.ready_after.lock().expect("demo cluster");
        pod["status"] = if let Some(reason) = evicted {
            json!({"phase": "Failed", "reason": reason, "message": "The node was low on resource: memory."})
        } else if deadline.is_some_and(|d| age >= d) {
            json!({"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active on the node longer than the specified deadline"})
        } else if age >= ready_after {
            json!({"phase": "Running", "podIP": "10.244.0.17", "containerStatuses": [{"name": "desktop", "ready": true, "started": true}]})
        } else {
            json!({"phase": "Pending"})
        };
        pod
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> ApiResponse {
    web::json(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                "reason": reason, "code": code.as_u16()}),
    )
}

/// The kind a collection's plural names.
fn kind_of(plural: &str) -> Option<&'static str> {
    Some(match plural {
        "pods" => "Pod",
        "secrets" => "Secret",
        "services" => "Service",
        "networkpolicies" => "NetworkPolicy",
        _ => return None,
    })
}

/// The demo cluster as a route group of the emulator.
pub struct DemoClusterApi(pub Arc<DemoCluster>);

#[async_trait::async_trait]
impl RouteGroup for DemoClusterApi {
    fn name(&self) -> &'static str {
        "demo-cluster"
    }

    fn route_keys(&self) -> Vec<String> {
        vec![format!("ANY {DEMO_CLUSTER_PATH}/{{proxy+}}")]
    }

    fn config(&self) -> &Config {
        static CONFIG: std::sync::LazyLock<Config> = std::sync::LazyLock::new(Config::default);
        &CONFIG
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let cluster = &self.0;
        let authorization = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        cluster.authorizations.lock().expect("demo cluster").push(authorization.unwrap_or_default().to_owned());
        let hang = *cluster.hang.lock().expect("demo cluster");
        if let Some(hang) = hang {
            tokio::time::sleep(hang).await;
        }
        if let Some(code) = *cluster.fail.lock().expect("demo cluster") {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(status(code, "InternalError", "the demo cluster was told to fail"));
        }
        let segments = web::segments(req);
        let ns = cluster.namespace.as_str();
        let (collection, name) = match segments.as_slice() {
            ["demo-cluster", "api", "v1", "namespaces", n, plural, rest @ ..] if *n == ns => {
                (*plural, rest.first().copied())
            }
            ["demo-cluster", "apis", "networking.k8s.io", "v1", "namespaces", n, plural, rest @ ..] if *n == ns => {
                (*plural, rest.first().copied())
            }
            _ => {
                return Ok(status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    "the server could not find the requested resource",
                ));
            }
        };
        if collection == "events" {
            return Ok(self.events(req));
        }
        let Some(kind) = kind_of(collection) else {
            return Ok(status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource"));
        };
        match (req.method(), name) {
            (&Method::POST, None) => Ok(self.create(kind, req)),
            (&Method::GET, Some(name)) => Ok(self.read(kind, name)),
            (&Method::DELETE, Some(name)) if kind == "Pod" => Ok(self.delete_pod(name)),
            _ => Ok(status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the demo cluster does not serve this")),
        }
    }
}

impl DemoClusterApi {
    fn create(&self, kind: &str, req: &ApiRequest) -> ApiResponse {
        let Ok(mut object) = serde_json::from_slice::<Value>(req.body()) else {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "the body is not JSON");
        };
        if object["kind"] != kind {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "the object's kind is not the collection's");
        }
        if let Some(problem) = crate::kubernetes::metadata_problem(kind, &object["metadata"]) {
            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &problem);
        }
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let cluster = &self.0;
        cluster.created.lock().expect("demo cluster").push(object.clone());
        let mut objects = cluster.objects.lock().expect("demo cluster");
        let key = (kind.to_owned(), name.clone());
        if objects.contains_key(&key) {
            let message = format!("{}s \"{name}\" already exists", kind.to_lowercase());
            return status(StatusCode::CONFLICT, "AlreadyExists", &message);
        }
        object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        object["metadata"]["namespace"] = json!(cluster.namespace);
        // As the API server stores it: a Secret's stringData becomes base64 data.
        if let Some(strings) = object.get("stringData").and_then(Value::as_object).cloned() {
            use base64::Engine as _;
            let data: serde_json::Map<String, Value> = strings
                .iter()
                .map(|(k, v)| {
                    (k.clone(), json!(base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or(""))))
                })
                .collect();
            object["data"] = Value::Object(data);
            object.as_object_mut().map(|o| o.remove("stringData"));
        }
        objects.insert(key, Object { value: object.clone(), created: Instant::now() });
        web::json(StatusCode::CREATED, &object)
    }

    fn read(&self, kind: &str, name: &str) -> ApiResponse {
        let cluster = &self.0;
        let objects = cluster.objects.lock().expect("demo cluster");
        match objects.get(&(kind.to_owned(), name.to_owned())) {
            Some(object) if kind == "Pod" => web::json(StatusCode::OK, &cluster.pod_with_status(name, object)),
            Some(object) => web::json(StatusCode::OK, &object.value),
            None => {
                status(StatusCode::NOT_FOUND, "NotFound", &format!("{}s \"{name}\" not found", kind.to_lowercase()))
            }
        }
    }

    /// Deletes the Pod and, as the garbage collector does, every object it owns.
    fn delete_pod(&self, name: &str) -> ApiResponse {
        let cluster = &self.0;
        let mut objects = cluster.objects.lock().expect("demo cluster");
        let Some(pod) = objects.remove(&("Pod".to_owned(), name.to_owned())) else {
            return status(StatusCode::NOT_FOUND, "NotFound", &format!("pods \"{name}\" not found"));
        };
        let uid = pod.value["metadata"]["uid"].clone();
        objects.retain(|_, o| {
            let owners = o.value["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
            !owners.iter().any(|r| r["uid"] == uid)
        });
        cluster.evicted.lock().expect("demo cluster").remove(name);
        web::json(StatusCode::OK, &pod.value)
    }

    /// A Pod's events: scheduled, pulling, pulled, created, started, as a kubelet records them.
    fn events(&self, req: &ApiRequest) -> ApiResponse {
        let query = req.uri().query().unwrap_or("");
        let selector: String = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "fieldSelector")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let name = selector.split(',').find_map(|s| s.strip_prefix("involvedObject.name=")).unwrap_or_default();
        let cluster = &self.0;
        let objects = cluster.objects.lock().expect("demo cluster");
        let ready_after = *cluster.ready_after.lock().expect("demo cluster");
        let items: Vec<Value> = match objects.get(&("Pod".to_owned(), name.to_owned())) {
            Some(pod) => {
                let image = pod.value["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
                let steps = [
                    format!("Successfully assigned {}/{name} to demo-node", cluster.namespace),
                    format!("Pulling image \"{image}\""),
                    format!("Successfully pulled image \"{image}\""),
                    "Created container desktop".to_owned(),
                    "Started container desktop".to_owned(),
                ];
                let part = pod.created.elapsed().as_secs_f64() / ready_after.as_secs_f64().max(0.001);
                let shown = ((part * steps.len() as f64).floor() as usize + 1).min(steps.len());
                steps[..shown]
                    .iter()
                    .map(|m| json!({"message": m, "involvedObject": {"kind": "Pod", "name": name}}))
                    .collect()
            }
            None => Vec::new(),
        };
        web::json(StatusCode::OK, &json!({"kind": "EventList", "apiVersion": "v1", "items": items}))
    }
}

/// Points `config` at a demo cluster mounted on the emulator at `base`, unless a cluster is
/// configured; whether it did.
pub fn configure(config: &mut Config, base: &str) -> bool {
    if config.desktops_cluster_url.is_some() {
        return false;
    }
    config.desktops_cluster_url = Some(format!("{base}{DEMO_CLUSTER_PATH}"));
    true
}

/// A demo cluster on a port of its own (tests, outside the emulator); `config` is pointed at
/// it. Dropping the [`Running`] stops it.
pub async fn serve(config: &mut Config) -> std::io::Result<(Arc<DemoCluster>, Running)> {
    let cluster = DemoCluster::new(config);
    let running = crate::start(HttpApi::new(vec![Arc::new(DemoClusterApi(Arc::clone(&cluster)))]), 0).await?;
    config.desktops_cluster_url = Some(format!("{}{DEMO_CLUSTER_PATH}", running.url()));
    Ok((cluster, running))
}
