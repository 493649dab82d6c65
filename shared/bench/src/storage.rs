//! Storage calls per request, for every route: Portico's whole API in-process (the emulator
//! over the embedded store, behind a call counter and a capacity meter), driven route by route
//! with a valid request by callers whose identity is already read (a caller's first request
//! is its own row), each request's calls taken from the counter (`CountingTable::take`). Each
//! route's calls are printed beside the count the README or the tests document for it, or
//! beside one `GetItem` where none is documented; its cost per million requests at DynamoDB
//! on-demand prices ([`crate::capacity`]) beside one strongly consistent `GetItem`'s.
//!
//! Around it: the demo Argo (workflows run at once), a stand-in streaming platform that lists
//! every function `ACTIVE` and records launches (no demo host joins by itself: the benchmark
//! plays the host), a raw-file host for `github://` recipes, the demo output store, and the
//! demo Cuebot for the RPC gateway. WebSocket routes are driven with real sockets: a route's calls are complete when
//! the connection's own answer arrives (the emulator sends a connection's answers after its
//! handler returns); where a route answers nothing, a `ping` follows and its own cost is taken
//! off.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Method;
use portico_core::Services;
use portico_core::store::counting::{Calls, CountingTable};
use portico_core::store::memory::MemoryTable;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::BenchResult;
use crate::capacity::{Metered, PRICES, Units};
use crate::report::{Better, Report, number};
use crate::standin::{Launches, stand_in};

pub type Failure = Box<dyn std::error::Error>;

pub const RECIPE_META: &str = "name: Seal Tags\nworkflow: {type: shell, sh_file: run.sh}\ninput: {params: [{type: url, value: 'https://data.example.org/tags.csv'}]}\n";
pub const RECIPE_STEPS: &str = "sort /input_dir/tags.csv > /output_dir/sorted.csv\n";

/// A raw-content host for `github://farm:recipes@v1/seal-tags` (output on the volume) and
/// `.../seal-zip` (a temporary output, downloaded).
fn raw_files() -> Arc<dyn portico_core::web::RouteGroup> {
    stand_in("raw-files", "GET /raw/{proxy+}", |req| {
        let body = match req.uri().path() {
            "/raw/farm/recipes/v1/seal-tags/meta.yml" => RECIPE_META.to_owned(),
            "/raw/farm/recipes/v1/seal-zip/meta.yml" => format!("{RECIPE_META}output: {{type: temporary}}\n"),
            "/raw/farm/recipes/v1/seal-tags/run.sh" | "/raw/farm/recipes/v1/seal-zip/run.sh" => RECIPE_STEPS.to_owned(),
            _ => return Err(portico_core::web::no_route(req)),
        };
        Ok(http::Response::new(body))
    })
}

/// What one route's request cost.
pub struct Measured {
    /// The route as the OpenAPI document names it (`GET /apps/{slug}`), or the WebSocket
    /// route (`WS $connect`), or the console page.
    pub route: String,
    /// The route and the case driven.
    pub label: String,
    pub calls: Calls,
    pub units: Units,
    /// The count the README or the tests document, and where.
    pub designed: Option<(u64, &'static str)>,
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Portico in-process with every storage call counted and metered.
pub struct Env {
    pub base: String,
    pub http: reqwest::Client,
    calls: Arc<CountingTable>,
    meter: Arc<Metered>,
    pub services: Arc<Services>,
    pub launches: Launches,
    pub argo: Arc<portico_local::demo_argo::DemoArgo>,
    pub measured: Mutex<Vec<Measured>>,
    /// The cost of a `ping` (taken off routes that answer nothing).
    pub ping: Mutex<Option<(Calls, Units)>>,
    _running: Vec<portico_local::Running>,
    _cuebot: Option<portico_rpc::server::RunningServer>,
    _outputs: portico_local::demo_store::DemoStore,
    /// NVCF, for the streaming portal's own routes (sessions stay on the stand-in platform).
    nvcf: portico_local::demo_nvcf::RunningNvcf,
}

impl Env {
    /// NVCF's sessions started so far (`nvcf-request-id`s), oldest first.
    pub fn nvcf_sessions(&self) -> Vec<String> {
        self.nvcf.nvcf.session_ids()
    }

    async fn start(keys: &str) -> Result<Env, Failure> {
        let mut cfg = crate::config(keys, None);
        let (listener, base) = crate::listen(&mut cfg).await?;
        let (platform, launches) = crate::standin::platform(&mut cfg, &base);
        cfg.recipe_github_base_url = format!("{base}/raw");
        cfg.recipe_github_allow = vec!["farm/recipes".into()];
        // The callers' identities stay read for the whole part (the default is 30 s).
        cfg.authz_cache_ttl = 3600;
        let key = cfg.local_secrets[&cfg.stream_api_key_secret_id].clone();
        let nvcf = portico_local::demo_nvcf::DemoNvcf::start(&key).await?;
        cfg.nvcf_signaling_endpoint = Some(nvcf.endpoint.clone());
        cfg.stream_platform = Some(portico_core::config::StreamPlatform::RelayHost);
        let (argo, argo_running) =
            portico_local::demo_argo::serve(&mut cfg, (Duration::from_millis(1), Duration::from_secs(3600))).await?;
        let cuebot = portico_local::demo::start_cuebot(&mut cfg).await?;
        // Desktops on the demo cluster, ready at once.
        let (cluster, cluster_running) = portico_local::demo_cluster::serve(&mut cfg).await?;
        *cluster.ready_after.lock().expect("demo cluster") = Duration::ZERO;
        // And opened through the demo Guacamole.
        let (_guacamole, guacamole_running) = portico_local::demo_guacamole::serve(&mut cfg).await?;
        // The user office lists the caller's experiments and lets it start desktops without one.
        let (office, office_running) = portico_local::demo_user_office::serve(&mut cfg).await?;
        let experiments = portico_local::demo_user_office::sample_experiments(cfg.desktops_uid);
        office.experiments.lock().expect("demo user office").insert("bench".into(), experiments);
        office.authorized.lock().expect("demo user office").insert("bench".into(), true);
        let meter = Arc::new(Metered::new(Arc::new(MemoryTable::new())));
        let calls = Arc::new(CountingTable::new(meter.clone()));
        let mut clients = portico_local::Platform::new(crate::services_over(cfg, calls.clone()).await?);
        let outputs = portico_local::demo_store::DemoStore::start().await?;
        clients.jobs.output_links = Some(outputs.links());
        let (shared, running) = crate::serve_on(listener, clients, vec![platform, raw_files()]).await?;
        let services = shared.services;
        Ok(Env {
            base,
            http: reqwest::Client::new(),
            calls,
            meter,
            services,
            launches,
            argo,
            measured: Mutex::default(),
            ping: Mutex::default(),
            _running: vec![running, argo_running, cluster_running, guacamole_running, office_running],
            _cuebot: cuebot,
            _outputs: outputs,
            nvcf,
        })
    }

    pub fn token(&self, user: &str) -> String {
        self.services.keys().issue(user).0
    }

    /// Forgets what was counted so far.
    pub fn settle(&self) {
        self.calls.take();
        self.meter.take();
    }

    /// What was counted since the last [`Env::settle`] (or take).
    pub fn take(&self) -> (Calls, Units) {
        (self.calls.take(), self.meter.take())
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends `request` (not counted); fails unless it succeeds. Returns the JSON answer (or null).
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        Self::read(request.send().await?).await
    }

    async fn read(r: reqwest::Response) -> Result<Value, Failure> {
        let (status, url) = (r.status(), r.url().path().to_owned());
        let text = r.text().await?;
        if !status.is_success() && !status.is_redirection() {
            return Err(format!("{url}: {status} {text}").into());
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `request` as `route` (`label` names the case) and records its calls. The
    /// caller's identity is read first (uncounted): any change through the admin API clears
    /// the process's identity cache, and a caller's first request is a row of its own.
    pub async fn counted(
        &self,
        route: &str,
        label: &str,
        designed: Option<(u64, &'static str)>,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, Failure> {
        self.measure(route, label, designed, request, true).await
    }

    /// As [`Env::counted`], and, with `warm` false, for a caller's first request:
    /// its identity is not read first.
    pub async fn measure(
        &self,
        route: &str,
        label: &str,
        designed: Option<(u64, &'static str)>,
        request: reqwest::RequestBuilder,
        warm: bool,
    ) -> Result<Value, Failure> {
        let request = request.build()?;
        let header = |name| request.headers().get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
        let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_owned);
        let cookie = header("cookie").and_then(|v| v.strip_prefix("portico_console=")).map(str::to_owned);
        if let Some(token) = bearer.or(cookie).filter(|_| warm) {
            self.req(Method::GET, "/auth/me", Some(&token)).send().await?.bytes().await?;
        }
        self.settle();
        let answer = Self::read(self.http.execute(request).await?).await?;
        self.record(route, label, designed, self.take());
        Ok(answer)
    }

    /// Records `(calls, units)` (what [`Env::take`] and its kin return) as `route`'s.
    pub fn record(
        &self,
        route: &str,
        label: &str,
        designed: Option<(u64, &'static str)>,
        (calls, units): (Calls, Units),
    ) {
        let m = Measured { route: route.into(), label: label.into(), calls, units, designed };
        self.measured.lock().expect("measured").push(m);
    }

    /// A ping answered on `ws`: everything it sent before is handled.
    pub async fn settled(&self, ws: &mut Socket) -> Result<(), Failure> {
        ws.send(Message::text(r#"{"type":"ping"}"#)).await?;
        next_of(ws, "pong").await?;
        Ok(())
    }

    /// Takes what was counted, less one ping's cost.
    pub fn take_less_ping(&self) -> (Calls, Units) {
        let (mut c, mut u) = self.take();
        if let Some((pc, pu)) = *self.ping.lock().expect("ping") {
            c.get -= pc.get.min(c.get);
            c.put -= pc.put.min(c.put);
            c.delete -= pc.delete.min(c.delete);
            c.query -= pc.query.min(c.query);
            c.add -= pc.add.min(c.add);
            u.read -= pu.read;
            u.write -= pu.write;
        }
        (c, u)
    }

    /// Waits until no storage call has been made for 100 ms (a handler that answers nobody).
    pub async fn quiet(&self) -> (Calls, Units) {
        let (mut calls, mut units) = self.take();
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (c, u) = self.take();
            if c.total() == 0 {
                return (calls, units);
            }
            (calls.get, calls.put, calls.delete) = (calls.get + c.get, calls.put + c.put, calls.delete + c.delete);
            (calls.query, calls.add) = (calls.query + c.query, calls.add + c.add);
            (units.read, units.write) = (units.read + u.read, units.write + u.write);
        }
    }
}

/// The next message of `kind` on `ws` (others skipped; an error notice fails).
pub async fn next_of(ws: &mut Socket, kind: &str) -> Result<Value, Failure> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.map_err(|_| format!("no {kind}"))?;
        let Some(Ok(message)) = next else { return Err(format!("closed while waiting for {kind}").into()) };
        let Message::Text(text) = message else { continue };
        let v: Value = serde_json::from_str(&text)?;
        if v["type"] == kind {
            return Ok(v);
        }
        if v["type"] == "error" {
            return Err(format!("the relay refused a message: {v}").into());
        }
    }
}

/// Waits for the server to close `ws`.
pub async fn closed(ws: &mut Socket) -> Result<(), Failure> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.map_err(|_| "not closed")? {
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Ok(()),
            Some(Ok(_)) => continue,
        }
    }
}

fn breakdown(c: &Calls) -> String {
    let parts: Vec<String> = [("get", c.get), ("put", c.put), ("delete", c.delete), ("query", c.query), ("add", c.add)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() { "none".into() } else { parts.join(" + ") }
}

/// The document's operations, as `METHOD /path`.
async fn documented(env: &Env) -> Result<BTreeSet<String>, Failure> {
    let doc = env.call(env.req(Method::GET, "/openapi.json", None)).await?;
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().ok_or("no paths")? {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    Ok(operations)
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    println!("\nStorage calls per request, every route (in-process emulator, embedded store behind a call counter)");
    println!("  cost: {PRICES}");
    let env = Env::start(keys).await?;
    let operations = documented(&env).await?;
    crate::storage_routes::drive(&env).await?;

    // The RPC gateway's methods, each with `{}`: one row for all (they share one path).
    let methods: Vec<&String> = operations.iter().filter(|o| o.starts_with("POST /") && o[6..].contains('.')).collect();
    let admin = env.token("bench");
    let mut per_method = BTreeMap::<String, (Calls, Units)>::new();
    for op in &methods {
        let path = &op["POST ".len()..];
        env.settle();
        // The demo Cuebot answers a few methods; the others' errors cost Portico the same.
        env.req(Method::POST, path, Some(&admin)).json(&json!({})).send().await?.bytes().await?;
        per_method.insert(op.to_string(), env.take());
    }
    let most = per_method.values().max_by_key(|(c, _)| c.total()).copied().unwrap_or_default();
    let fewest = per_method.values().map(|(c, _)| c.total()).min().unwrap_or(0);
    let label = format!(
        "POST /{{service}}/{{method}}, each of the {} RPC methods (fewest calls {fewest}; the most shown)",
        methods.len()
    );
    env.record("POST /{service}/{method}", &label, None, most);

    let measured = std::mem::take(&mut *env.measured.lock().expect("measured"));
    let driven: BTreeSet<&str> = measured.iter().map(|m| m.route.as_str()).collect();
    let missing: Vec<&String> =
        operations.iter().filter(|o| !driven.contains(o.as_str()) && !per_method.contains_key(*o)).collect();
    println!(
        "  routes of the OpenAPI document not driven: {}",
        if missing.is_empty() { "none".into() } else { format!("{missing:?}") }
    );

    let one_get = Units { read: 1.0, write: 0.0 }.usd_per_million();
    for m in &measured {
        let (baseline, designed) = match m.designed {
            Some((n, source)) => (format!("designed ({source})"), n as f64),
            None => ("one GetItem (none documented)".to_owned(), 1.0),
        };
        let figure = format!("{}: {}", m.label, breakdown(&m.calls));
        report.add("storage", figure, m.calls.total() as f64, "calls", Better::Lower, baseline, designed);
    }
    for m in &measured {
        let figure = format!("{}: {} RRU + {} WRU", m.label, number(m.units.read), number(m.units.write));
        let baseline = "one consistent GetItem <= 4 KB (1 RRU)";
        report.add("storage cost", figure, m.units.usd_per_million(), "USD/M", Better::Lower, baseline, one_get);
    }
    Ok(())
}
