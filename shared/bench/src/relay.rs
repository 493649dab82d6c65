//! The signal relay: 100 client/host pairs of WebSocket clients through the emulator's
//! WebSocket API (in-process, embedded store behind a call counter), beside a bare
//! tokio-tungstenite forwarder on the same machine that only passes each pair's frames on
//! (the floor: no tickets, no store, no authorization, no ordering).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use portico_core::store::counting::CountingTable;
use portico_core::store::memory::MemoryTable;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{Better, Report};
use crate::{BenchResult, config};

const SESSIONS: usize = 100;
// Each connection sends within the relay's burst allowance (100 messages) over both phases and
// the setup, so nothing is refused for rate; the load comes from many sessions at once.
const MESSAGES: usize = 90;
const IDLE_ROUNDS: usize = 5;

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
    let mut floor = drive(pairs, || {}, || {}).await;

    // Portico's relay through the emulator's WebSocket API.
    let mut cfg = config(keys, None);
    let (listener, base) = crate::listen(&mut cfg).await?;
    let (platform, launches) = crate::standin::platform(&mut cfg, &base);
    cfg.quota_sessions = SESSIONS as i64;
    cfg.max_app_instances_count = SESSIONS as i64;
    let calls = Arc::new(CountingTable::new(Arc::new(MemoryTable::new())));
    let services = crate::services_over(cfg, calls.clone()).await?;
    let (shared, _running) = crate::serve_on(listener, portico_local::Platform::new(services), vec![platform]).await?;
    let services = shared.services;

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
        let host_url = launches.lock().unwrap().last().expect("launched")["relay_url"].as_str().unwrap().to_owned();
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
    let mut relayed = drive(
        pairs,
        || {
            calls.take();
        },
        || *counted.lock().unwrap() = Some(calls.take()),
    )
    .await;
    let c = counted.into_inner().unwrap().ok_or("the load was counted")?;

    let floor_name = "bare tokio-tungstenite forwarder";
    report.p50_p99_ms("relay", "one signal in flight", &mut relayed.round_trips, floor_name, &mut floor.round_trips);
    report.add(
        "relay",
        "100 sessions at once, throughput",
        relayed.rate(),
        "msg/s",
        Better::Higher,
        floor_name,
        floor.rate(),
    );
    report.p50_p99_ms("relay", "100 sessions at once", &mut relayed.latencies, floor_name, &mut floor.latencies);
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
