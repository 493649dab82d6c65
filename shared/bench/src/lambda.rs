//! What Lambda bills: the time one invocation takes in the function's process, for an API
//! Gateway HTTP API event of each main route, beside `lambda_http`'s hello world fed the same
//! event.
//!
//! Each invocation takes the path `lambda_http::run` takes, without the Runtime API loop
//! around it: the event's JSON read into a `LambdaRequest` (as `lambda_runtime` reads it, with
//! `serde_path_to_error`), `lambda_http`'s adapter turning it into a `Request` and calling the
//! handler (for Portico, [`portico_core::lambda::handle`] over the route group, as each
//! function's `main` does), then the response written as JSON for the runtime to post. The
//! store is the embedded one (`MemoryTable`), so no DynamoDB round trip is counted: on AWS
//! each storage call adds its latency (a few ms) to the bill. `POST /sessions` and
//! `POST /jobs` do include their outbound call (the demo streaming platform and the demo Argo
//! on 127.0.0.1, in this process).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Context, Error, LambdaEvent, Request, Response, Service, service_fn};
use portico_core::web::RouteGroup;
use serde_json::{Value, json};

use crate::events;
use crate::report::{Better, Report};
use crate::{BenchResult, flag, percentile};

/// The bench user's role: what the routes below need, on every group.
const ACTIONS: [&str; 4] = ["app.publish", "session.start", "job.submit", "rpc.call"];

/// Makes a route's next event.
type EventMaker<'a> = Box<dyn Fn() -> Vec<u8> + 'a>;

/// The hello world's handler (`shared/bench/src/bin/hello-lambda.rs`).
async fn hello(_: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder().status(200).header("content-type", "text/plain").body(Body::from("Hello"))?)
}

/// One invocation as `lambda_runtime` runs it: JSON in, the adapter, JSON out. Returns the
/// time taken and the response's JSON.
async fn invoke<S>(adapter: &mut Adapter<'static, Response<Body>, S>, event: &[u8]) -> (Duration, Vec<u8>)
where
    S: Service<Request, Response = Response<Body>, Error = Error>,
    S::Future: Send + 'static,
{
    let t = Instant::now();
    let payload: LambdaRequest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(event))
        .expect("the runtime reads the event");
    let response = adapter.call(LambdaEvent::new(payload, Context::default())).await.expect("the handler answers");
    let out = serde_json::to_vec(&response).expect("the runtime writes the response");
    (t.elapsed(), out)
}

/// A Portico function's handler, as `portico_core::lambda::run` builds it.
fn function(
    group: Arc<dyn RouteGroup>,
) -> Adapter<
    'static,
    Response<Body>,
    impl Service<Request, Response = Response<Body>, Error = Error, Future: Send + 'static>,
> {
    Adapter::from(service_fn(move |req: Request| {
        let group = Arc::clone(&group);
        async move { Ok::<_, Error>(portico_core::lambda::handle(group.as_ref(), req).await) }
    }))
}

/// The response's JSON body (base64 and gzip undone; null if not JSON); an error unless 2xx.
fn answer(out: &[u8]) -> Result<Value, String> {
    use std::io::Read as _;
    let v: Value = serde_json::from_slice(out).expect("the response is JSON");
    let status = v["statusCode"].as_u64().unwrap_or(0) as u16;
    let mut body = v["body"].as_str().unwrap_or_default().to_owned();
    if v["isBase64Encoded"] == json!(true) {
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &body).unwrap_or_default();
        body.clear();
        let _ = flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut body);
    }
    if !(200..300).contains(&status) {
        return Err(format!("answered {status}: {body}"));
    }
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Invokes `event` on `group` (setup, untimed); fails unless the answer is 2xx.
async fn call(group: &Arc<dyn RouteGroup>, event: &[u8]) -> Result<Value, Box<dyn std::error::Error>> {
    let (_, out) = invoke(&mut function(Arc::clone(group)), event).await;
    Ok(answer(&out).map_err(|e| format!("setup call {e}"))?)
}

/// One route's timings, and the events that produced them (replayed to the hello world).
#[derive(Default)]
struct Timed {
    took: Vec<Duration>,
    events: Vec<Vec<u8>>,
}

impl Timed {
    /// Times `event` on `handler` (after `warm` untimed calls of the route); checks a 2xx
    /// answer and returns its body.
    async fn run<S>(
        &mut self,
        handler: &mut Adapter<'static, Response<Body>, S>,
        event: Vec<u8>,
        warm: bool,
    ) -> Result<Value, Box<dyn std::error::Error>>
    where
        S: Service<Request, Response = Response<Body>, Error = Error>,
        S::Future: Send + 'static,
    {
        let (took, out) = invoke(handler, &event).await;
        let body = answer(&out)?;
        if !warm {
            self.took.push(took);
            self.events.push(event);
        }
        Ok(body)
    }

    /// (p50, p99) of the route, and p50 of the hello world fed the same events, in µs.
    async fn figures(mut self) -> (f64, f64, f64) {
        let mut hello = Adapter::from(service_fn(hello));
        for e in self.events.iter().take(100) {
            invoke(&mut hello, e).await; // warm-up
        }
        let mut baseline: Vec<Duration> = Vec::with_capacity(self.events.len());
        for e in &self.events {
            baseline.push(invoke(&mut hello, e).await.0);
        }
        self.took.sort();
        baseline.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        (us(percentile(&self.took, 0.5)), us(percentile(&self.took, 0.99)), us(percentile(&baseline, 0.5)))
    }
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    let n = flag("--lambda-invocations", 2000).max(10);
    let (n_outbound, n_login) = ((n / 5).max(10), 20);
    println!(
        "\nWhat Lambda bills: in-process time per invocation, API Gateway v2 event JSON in, response JSON out \
         (embedded store; {n} invocations per route, {n_outbound} for routes calling out, {n_login} logins)"
    );
    let mut config = crate::config(keys, None);
    for quota in [&mut config.quota_sessions, &mut config.quota_jobs, &mut config.max_app_instances_count] {
        *quota = i64::MAX / 2;
    }
    // The demo streaming platform (on an emulator), the demo Cuebot and the demo Argo.
    let (listener, base) = crate::listen(&mut config).await?;
    portico_local::demo::configure(&mut config, &base);
    let _cuebot = portico_local::demo::start_cuebot(&mut config).await?;
    let (_argo, _engine) =
        portico_local::demo_argo::serve(&mut config, (Duration::from_millis(1), Duration::from_secs(3600))).await?;
    let rpc = portico_local::rpc_gateway(&config).await?;
    let platform = portico_local::Platform::new(crate::services(config).await?);
    let (mut gateway, shared) = portico_local::portico_gateway(platform, Arc::clone(&rpc));
    let services = Arc::clone(&shared.services);
    portico_local::demo::mount(&mut gateway, &services);
    let _platform = portico_local::start_on(listener, gateway)?;

    let statuses = shared.streaming.statuses.clone();
    let apps: Arc<dyn RouteGroup> = Arc::new(portico_apps::AppsApi::routes(Arc::clone(&services), statuses));
    let auth: Arc<dyn RouteGroup> = Arc::new(portico_auth::AuthApi::routes(Arc::clone(&services)));
    let admin: Arc<dyn RouteGroup> = Arc::new(portico_admin::AdminApi::routes(Arc::clone(&services)));
    let streaming = Arc::clone(&shared.streaming);
    let sessions: Arc<dyn RouteGroup> =
        Arc::new(portico_sessions::SessionsApi::routes(Arc::clone(&services), streaming));
    let jobs: Arc<dyn RouteGroup> =
        Arc::new(portico_jobs_api::JobsApi::routes(Arc::clone(&services), Arc::clone(&shared.jobs)));
    let rpc_api: Arc<dyn RouteGroup> = Arc::new(portico_rpc_api::RpcApi::routes(Arc::clone(&services), rpc));

    // A plain user with a role granting what the routes need, 30 apps, 30 more users.
    let root = services.keys().issue("bench").0;
    let admin_call = |method: &str, path: &str, body: Option<Value>| {
        let body = body.map(|b| b.to_string());
        let body = body.as_deref().map(|b| ("application/json", b));
        events::http(method, path, "ANY /admin/{proxy+}", Some(&root), body)
    };
    let password = "bench-user-password";
    call(&admin, &admin_call("POST", "/admin/users", Some(json!({"username": "user", "password": password})))).await?;
    call(&admin, &admin_call("POST", "/admin/roles", Some(json!({"name": "bench"})))).await?;
    for action in ACTIONS {
        let grant = Some(json!({"group": "*", "action": action}));
        call(&admin, &admin_call("POST", "/admin/roles/bench/permissions", grant)).await?;
    }
    call(&admin, &admin_call("PUT", "/admin/users/user/roles/bench", None)).await?;
    for i in 0..30 {
        call(&admin, &admin_call("POST", "/admin/users", Some(json!({"username": format!("user-{i:02}")})))).await?;
    }
    let token = services.keys().issue("user").0;
    let app = |title: &str| {
        json!({"function_id": "f-bench", "function_version_id": "v-1", "title": title,
               "description": "An app of the benchmark's catalog, with a description of typical length.",
               "version": "2024.1.0", "image": "https://example.org/image.png", "icon": "https://example.org/icon.png",
               "category": "Template Applications", "product_area": "Omniverse"})
        .to_string()
    };
    let put = |slug: &str, body: &str| {
        events::http(
            "PUT",
            &format!("/apps/{slug}"),
            "ANY /apps/{proxy+}",
            Some(&token),
            Some(("application/json", body)),
        )
    };
    for i in 0..30 {
        call(&apps, &put(&format!("app-{i:02}"), &app(&format!("App {i}")))).await?;
    }
    call(&apps, &put("bench", &app("Bench"))).await?;

    let mut rows: Vec<(&'static str, Timed)> = Vec::new();
    // Reads and writes of the catalog, the admin API: `n` each.
    let simple: [(&'static str, &Arc<dyn RouteGroup>, EventMaker<'_>); 4] = [
        (
            "GET /apps/{slug}",
            &apps,
            Box::new(|| events::http("GET", "/apps/bench", "ANY /apps/{proxy+}", Some(&token), None)),
        ),
        ("GET /apps (a page of 25)", &apps, Box::new(|| events::http("GET", "/apps", "ANY /apps", Some(&token), None))),
        ("PUT /apps/{slug} (replace)", &apps, Box::new(|| put("bench", &app("Bench")))),
        (
            "GET /admin/users (a page of 25)",
            &admin,
            Box::new(|| events::http("GET", "/admin/users", "ANY /admin/{proxy+}", Some(&root), None)),
        ),
    ];
    for (name, group, event) in simple {
        let mut handler = function(Arc::clone(group));
        let mut timed = Timed::default();
        for i in 0..n + n / 10 {
            timed.run(&mut handler, event(), i < n / 10).await.map_err(|e| format!("{name}: {e}"))?;
        }
        rows.push((name, timed));
    }

    // RPC: FindShow to the demo Cuebot (gRPC over 127.0.0.1).
    let mut handler = function(Arc::clone(&rpc_api));
    let mut timed = Timed::default();
    for i in 0..n + n / 10 {
        let event = events::http(
            "POST",
            "/show.ShowInterface/FindShow",
            "POST /show.ShowInterface/{method}",
            Some(&token),
            Some(("application/json", r#"{"name": "testshow"}"#)),
        );
        timed.run(&mut handler, event, i < n / 10).await.map_err(|e| format!("RPC FindShow: {e}"))?;
    }
    rows.push(("POST /show.ShowInterface/FindShow (RPC, gRPC to the demo Cuebot)", timed));

    // Sessions: start (the demo platform's launch call), read, then end (untimed).
    let (mut start, mut read) = (Timed::default(), Timed::default());
    let (mut starter, mut reader) = (function(Arc::clone(&sessions)), function(Arc::clone(&sessions)));
    for i in 0..n_outbound + n_outbound / 10 {
        let warm = i < n_outbound / 10;
        let body = Some(("application/json", r#"{"app": "bench"}"#));
        let event = events::http("POST", "/sessions", "ANY /sessions", Some(&token), body);
        let started = start.run(&mut starter, event, warm).await.map_err(|e| format!("POST /sessions: {e}"))?;
        let id = started["session_id"].as_str().ok_or("a session id")?.to_owned();
        let path = format!("/sessions/{id}");
        let event = events::http("GET", &path, "ANY /sessions/{proxy+}", Some(&token), None);
        read.run(&mut reader, event, warm).await.map_err(|e| format!("GET /sessions/{{id}}: {e}"))?;
        call(&sessions, &events::http("DELETE", &path, "ANY /sessions/{proxy+}", Some(&token), None)).await?;
    }
    rows.push(("POST /sessions (quota, records, launch call)", start));
    rows.push(("GET /sessions/{id}", read));

    // Jobs: submit a shell recipe (the demo Argo's create call).
    let mut handler = function(Arc::clone(&jobs));
    let mut timed = Timed::default();
    let job = crate::job().to_string();
    for i in 0..n_outbound + n_outbound / 10 {
        let event = events::http("POST", "/jobs", "ANY /jobs", Some(&token), Some(("application/json", &job)));
        timed.run(&mut handler, event, i < n_outbound / 10).await.map_err(|e| format!("POST /jobs: {e}"))?;
    }
    rows.push(("POST /jobs (recipe, quota, records, Argo create)", timed));

    // Password login: argon2id verification is the cost.
    let mut handler = function(Arc::clone(&auth));
    let mut timed = Timed::default();
    let form = format!("grant_type=password&username=user&password={password}");
    for i in 0..n_login + 2 {
        let body = Some(("application/x-www-form-urlencoded", form.as_str()));
        let event = events::http("POST", "/auth/token", "ANY /auth/{proxy+}", None, body);
        timed.run(&mut handler, event, i < 2).await.map_err(|e| format!("POST /auth/token: {e}"))?;
    }
    rows.push(("POST /auth/token (password; argon2id-bound)", timed));

    let hello_name = "lambda_http hello world, same events";
    for (name, timed) in rows {
        let (p50, p99, baseline) = timed.figures().await;
        println!("    {name}: p50 {p50:.1} µs, p99 {p99:.1} µs (hello world p50 {baseline:.1} µs)");
        report.add("lambda", format!("{name}, p50"), p50, "µs", Better::Lower, hello_name, baseline);
    }
    Ok(())
}
