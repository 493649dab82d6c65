//! The signal relay: 100 client/host pairs of WebSocket clients through the emulator's
//! WebSocket API (in-process, embedded store behind a call counter), beside a bare
//! tokio-tungstenite forwarder on the same machine that only passes each pair's frames on
//! (the floor: no tickets, no store, no authorization, no ordering).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use portico_core::secrets::LocalSecrets;
use portico_core::store::counting::CountingTable;
use portico_core::store::memory::MemoryTable;
use portico_core::web::{ApiRequest, ApiResponse, RouteGroup, json as json_response};
use portico_core::{Config, Error, Services};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Better, Report};
use crate::{BenchResult, config, percentile};

const SESSIONS: usize = 100;
// Each connection sends within the relay's burst allowance (100 messages) over both phases and
// the setup, so nothing is refused for rate; the load comes from many sessions at once.
const MESSAGES: usize = 90;
const IDLE_ROUNDS: usize = 5;

/// A stand-in streaming platform: records launches, lists every function as ACTIVE.
struct Platform(Config, Mutex<Vec<Value>>);

#[async_trait::async_trait]
impl RouteGroup for Platform {
    fn name(&self) -> &'static str {
        "platform"
    }
    fn route_keys(&self) -> Vec<String> {
        ["ANY /platform/{proxy+}"].map(String::from).into()
    }
    fn config(&self) -> &Config {
        &self.0
    }
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        if req.method() == Method::POST {
            self.1.lock().unwrap().push(serde_json::from_slice(req.body()).unwrap_or(Value::Null));
            return Ok(json_response(StatusCode::OK, &json!({})));
        }
        let functions = json!({"functions": [{"id": "f", "versionId": "v", "status": "ACTIVE"}]});
        Ok(json_response(StatusCode::OK, &functions))
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `url` and, for the relay, says hello and reads the welcome.
async fn join(url: &str, hello: &str) -> Result<Socket, Box<dyn std::error::Error>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    ws.send(Message::text(hello)).await?;
    if hello.contains("\"hello\"") {
        ws.next().await; // welcome
    }
    Ok(ws)
}

/// Text of the next message of `kind`.
async fn next_of(ws: &mut Socket, kind: &str) -> Value {
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("socket closed") };
        let v: Value = serde_json::from_str(&t).expect("JSON");
        if v["type"] == kind {
            return v;
        }
        assert_ne!(v["type"], "error", "the relay refused a message: {v}");
    }
}

fn signal(i: usize, at: u64) -> Message {
    Message::text(json!({"type": "signal", "data": {"i": i, "at": at}}).to_string())
}

/// What one set of pairs measured.
struct Relayed {
    /// One message in flight at a time, client send to host receive.
    round_trips: Vec<Duration>,
    /// Every client sending at once: each message's latency.
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Relayed {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Drives `pairs`: round-robin with one message in flight, then every client at once.
/// `before_load` runs just before the loaded phase and `after_load` just after it (the
/// sockets still open), so a counter can take the relaying alone.
async fn drive(mut pairs: Vec<(Socket, Socket)>, before_load: impl FnOnce(), after_load: impl FnOnce()) -> Relayed {
    let mut round_trips = Vec::new();
    for round in 0..IDLE_ROUNDS {
        for (client, host) in &mut pairs {
            let t = Instant::now();
            client.send(signal(round, 0)).await.expect("send");
            next_of(host, "signal").await;
            round_trips.push(t.elapsed());
        }
    }
    round_trips.sort();
    before_load();
    let origin = Instant::now();
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|(mut client, mut host)| {
            tokio::spawn(async move {
                let sender = tokio::spawn(async move {
                    for i in 0..MESSAGES {
                        client.send(signal(i, origin.elapsed().as_micros() as u64)).await.expect("send");
                    }
                    client
                });
                let mut latencies = Vec::with_capacity(MESSAGES);
                for _ in 0..MESSAGES {
                    let v = next_of(&mut host, "signal").await;
                    let sent = v["data"]["at"].as_u64().unwrap_or(0);
                    latencies.push(Duration::from_micros(origin.elapsed().as_micros() as u64 - sent));
                }
                (latencies, sender.await.expect("sender"), host)
            })
        })
        .collect();
    let (mut latencies, mut sockets) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, client, host) = t.await.expect("pair task");
        latencies.extend(l);
        sockets.push((client, host));
    }
    let elapsed = origin.elapsed();
    after_load();
    drop(sockets);
    latencies.sort();
    Relayed { round_trips, latencies, elapsed }
}

/// The floor: a WebSocket server that forwards each pair's client frames to its host. A socket
/// says `{"pair": n, "role": "host"|"client"}` first.
async fn bare_forwarder() -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    let hosts: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let hosts = hosts.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                let Some(Ok(Message::Text(first))) = ws.next().await else { return };
                let first: Value = serde_json::from_str(&first).unwrap_or_default();
                let pair = first["pair"].as_u64().unwrap_or(0);
                if first["role"] == "host" {
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    hosts.lock().unwrap().insert(pair, tx);
                    while let Some(m) = rx.recv().await {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    }
                } else {
                    while let Some(Ok(m)) = ws.next().await {
                        let host = hosts.lock().unwrap().get(&pair).cloned();
                        if let Some(host) = host {
                            let _ = host.send(m);
                        }
                    }
                }
            });
        }
    });
    Ok(url)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn bench(keys: &str, report: &mut Report) -> BenchResult {
    println!("\nSignal relay ({SESSIONS} sessions, {MESSAGES} signals each at once; in-process)");
    // The floor first.
    let url = bare_forwarder().await?;
    let mut pairs = Vec::new();
    for n in 0..SESSIONS {
        let host = join(&url, &json!({"pair": n, "role": "host"}).to_string()).await?;
        let mut client = join(&url, &json!({"pair": n, "role": "client"}).to_string()).await?;
        let mut host = host;
        // A first signal through makes sure the host is registered before the measures.
        client.send(signal(0, 0)).await?;
        next_of(&mut host, "signal").await;
        pairs.push((client, host));
    }
    let floor = drive(pairs, || {}, || {}).await;

    // Portico's relay through the emulator's WebSocket API.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut cfg = config(keys, None);
    cfg.relay_url = format!("ws://{}{}", listener.local_addr()?, portico_local::WS_PATH);
    cfg.stream_launch_url = Some(format!("{base}/platform/launch"));
    cfg.stream_functions_url = Some(format!("{base}/platform/functions"));
    cfg.local_secrets.insert(cfg.stream_api_key_secret_id.clone(), "bench-platform-key".into());
    cfg.quota_sessions = SESSIONS as i64;
    cfg.max_app_instances_count = SESSIONS as i64;
    let calls = Arc::new(CountingTable::new(Arc::new(MemoryTable::new())));
    let secrets = Arc::new(LocalSecrets::new(cfg.local_secrets.clone()));
    let platform = Arc::new(Platform(cfg.clone(), Mutex::default()));
    let rpc = portico_local::rpc_gateway(&cfg).await?;
    let services = Services::with(cfg, calls.clone(), secrets).await.map_err(|e| format!("{e:?}"))?;
    let (mut gateway, services) = portico_local::portico_gateway(services, rpc);
    gateway.http.add(platform.clone());
    let _running = portico_local::start_on(listener, gateway)?;

    let http = reqwest::Client::new();
    let token = services.keys().issue("bench").0;
    let app = json!({"function_id": "f", "function_version_id": "v", "title": "Relay bench"});
    http.put(format!("{base}/apps/relay")).bearer_auth(&token).json(&app).send().await?.error_for_status()?;
    let hello = r#"{"type":"hello"}"#;
    let mut pairs = Vec::new();
    for _ in 0..SESSIONS {
        let started: Value = http
            .post(format!("{base}/sessions"))
            .bearer_auth(&token)
            .json(&json!({"app": "relay"}))
            .send()
            .await?
            .json()
            .await?;
        let host_url = platform.1.lock().unwrap().last().expect("launched")["relay_url"].as_str().unwrap().to_owned();
        let mut client = join(started["ws_url"].as_str().ok_or("no ws_url")?, hello).await?;
        let mut host = join(&host_url, hello).await?;
        next_of(&mut client, "peer_joined").await;
        next_of(&mut host, "peer_joined").await;
        // A pong means the host's hello is fully handled (buffers drained, links direct).
        host.send(Message::text(r#"{"type":"ping"}"#)).await?;
        next_of(&mut host, "pong").await;
        pairs.push((client, host));
    }
    let counted = Mutex::new(None);
    let relayed = drive(
        pairs,
        || {
            calls.take();
        },
        || *counted.lock().unwrap() = Some(calls.take()),
    )
    .await;
    let c = counted.into_inner().unwrap().ok_or("the load was counted")?;

    let floor_name = "bare tokio-tungstenite forwarder";
    let p = |v: &[Duration], q| ms(percentile(v, q));
    let mut beside_floor = |figure: &str, value, unit, better, floor| {
        report.add("relay", figure, value, unit, better, floor_name, floor);
    };
    beside_floor(
        "one signal in flight, p50",
        p(&relayed.round_trips, 0.5),
        "ms",
        Better::Lower,
        p(&floor.round_trips, 0.5),
    );
    beside_floor(
        "one signal in flight, p99",
        p(&relayed.round_trips, 0.99),
        "ms",
        Better::Lower,
        p(&floor.round_trips, 0.99),
    );
    beside_floor("100 sessions at once, throughput", relayed.rate(), "msg/s", Better::Higher, floor.rate());
    beside_floor(
        "100 sessions at once, p50",
        p(&relayed.latencies, 0.5),
        "ms",
        Better::Lower,
        p(&floor.latencies, 0.5),
    );
    beside_floor(
        "100 sessions at once, p99",
        p(&relayed.latencies, 0.99),
        "ms",
        Better::Lower,
        p(&floor.latencies, 0.99),
    );
    let per_message = c.total() as f64 / relayed.latencies.len() as f64;
    report.add(
        "relay",
        "storage calls per relayed signal",
        per_message,
        "calls",
        Better::Lower,
        "design: one read of the sender's link",
        1.0,
    );
    Ok(())
}
