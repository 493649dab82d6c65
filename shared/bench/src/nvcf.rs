//! Streaming on NVCF, beside a baseline from the same run: a signal's round trip client → relay
//! → bridge → NVCF (the stand-in's app echoes it) → bridge → relay → client, one at a time and
//! in bursts, beside the same frames on a WebSocket straight to the stand-in (what the bridge
//! itself holds); the bridge's pick-up, `POST /sessions` to NVCF's first frame at the client,
//! beside the sign-in alone; storage calls per signal.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use portico_core::store::counting::CountingTable;
use portico_core::store::memory::MemoryTable;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::report::{Better, Report};
use crate::{BenchResult, p50_p99_ms};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next signal's data (the relay's envelope), skipping notices.
async fn next_signal(ws: &mut Socket) -> Result<Value, Box<dyn std::error::Error>> {
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else { return Err("the relay closed".into()) };
        let v: Value = serde_json::from_str(&t)?;
        if v["type"] == "signal" {
            return Ok(v["data"].clone());
        }
    }
}

async fn next_text(ws: &mut Socket) -> Result<String, Box<dyn std::error::Error>> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(_)) => {}
            _ => return Err("NVCF closed".into()),
        }
    }
}

pub async fn bench(keys: &str, count: usize, report: &mut Report) -> BenchResult {
    println!("\nStreaming on NVCF through the bridge ({count} signals, in-process, against the NVCF stand-in)");
    let mut config = crate::config(keys, None);
    config.quota_sessions = i64::MAX / 2;
    config.max_app_instances_count = i64::MAX / 2;
    config.relay_rate_per_second = 100_000;
    config.relay_rate_burst = 100_000;
    let (listener, base) = crate::listen(&mut config).await?;
    let (platform, _launches) = crate::standin::platform(&mut config, &base);
    let key = config.local_secrets[&config.stream_api_key_secret_id].clone();
    let nvcf = portico_local::demo_nvcf::DemoNvcf::start(&key).await?;
    config.nvcf_signaling_endpoint = Some(nvcf.endpoint.clone());
    let calls = std::sync::Arc::new(CountingTable::new(std::sync::Arc::new(MemoryTable::new())));
    let services = crate::services_over(config, calls.clone()).await?;
    let (shared, _running) = crate::serve_on(listener, portico_local::Platform::new(services), vec![platform]).await?;
    let token = shared.services.keys().issue("bench").0;
    let http = reqwest::Client::new();
    let app = json!({"function_id": "f", "function_version_id": "v", "title": "Bench"});
    let r = http.put(format!("{base}/apps/bench")).bearer_auth(&token).json(&app).send().await?;
    assert!(r.status().is_success(), "the app: {}", r.status());

    // Pick-up: the start to NVCF's first frame at the client (a fresh session each).
    let mut pickups = Vec::new();
    let mut client = None;
    for _ in 0..20 {
        let t = Instant::now();
        let started: Value = http
            .post(format!("{base}/sessions"))
            .bearer_auth(&token)
            .json(&json!({"app": "bench"}))
            .send()
            .await?
            .json()
            .await?;
        let url = started["ws_url"].as_str().ok_or("a session")?;
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        ws.send(Message::text(json!({"type": "hello"}).to_string())).await?;
        assert_eq!(next_signal(&mut ws).await?, json!("SYN"));
        pickups.push(t.elapsed());
        let id = started["session_id"].as_str().ok_or("an id")?.to_owned();
        if let Some((old_ws, old_id)) = client.replace((ws, id)) {
            drop(old_ws);
            http.delete(format!("{base}/sessions/{old_id}")).bearer_auth(&token).send().await?;
        }
    }
    // The sign-in alone, sent straight.
    let mut sign_ins = Vec::new();
    let http_endpoint = nvcf.endpoint.replacen("ws://", "http://", 1);
    let sign_in = || {
        http.post(format!("{http_endpoint}/sign_in"))
            .bearer_auth(&key)
            .header("Function-ID", "f")
            .header("Function-Version-ID", "v")
            .header("X-NVCF-ABSORB", "true")
            .send()
    };
    for _ in 0..20 {
        let t = Instant::now();
        let r = sign_in().await?;
        assert!(r.status().is_success());
        sign_ins.push(t.elapsed());
    }

    // Round trips through Portico.
    let (mut ws, _) = client.ok_or("a session")?;
    let mut through = Vec::new();
    calls.take();
    for i in 0..count + count / 10 {
        let t = Instant::now();
        ws.send(Message::text(json!({"type": "signal", "data": format!("m{i}")}).to_string())).await?;
        let echo = next_signal(&mut ws).await?;
        assert_eq!(echo, json!(json!({"echo": format!("m{i}")}).to_string()), "the echo of this very signal");
        if i >= count / 10 {
            through.push(t.elapsed());
        }
    }
    let per_signal = calls.take().total() as f64 / (count + count / 10) as f64 / 2.0;
    let burst = Instant::now();
    for i in 0..count {
        ws.send(Message::text(json!({"type": "signal", "data": format!("b{i}")}).to_string())).await?;
    }
    for _ in 0..count {
        next_signal(&mut ws).await?;
    }
    let through_rate = count as f64 / burst.elapsed().as_secs_f64();

    // The same through the streaming portal's own socket (frames raw, no relay, no envelope).
    let r = http.post(format!("{base}/sessions/f/v/sign_in")).bearer_auth(&token).send().await?;
    let portal_id = r.headers().get("nvcf-request-id").and_then(|v| v.to_str().ok()).ok_or("a portal session")?;
    let mut request = format!("{}/sessions/f/v/sign_in", base.replacen("http://", "ws://", 1)).into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    request.headers_mut().insert("cookie", format!("nvcf-request-id={portal_id}").parse()?);
    let (mut portal, _) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(next_text(&mut portal).await?, "SYN");
    let mut raw = Vec::new();
    calls.take();
    for i in 0..count + count / 10 {
        let t = Instant::now();
        portal.send(Message::text(format!("m{i}"))).await?;
        assert_eq!(next_text(&mut portal).await?, json!({"echo": format!("m{i}")}).to_string());
        if i >= count / 10 {
            raw.push(t.elapsed());
        }
    }
    let per_frame = calls.take().total() as f64 / (count + count / 10) as f64 / 2.0;
    let burst = Instant::now();
    for i in 0..count {
        portal.send(Message::text(format!("b{i}"))).await?;
    }
    for _ in 0..count {
        next_text(&mut portal).await?;
    }
    let raw_rate = count as f64 / burst.elapsed().as_secs_f64();

    // The same frames straight to NVCF: a session's own socket, with the key and its cookie.
    let r = sign_in().await?;
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let cookie = cookie.split(';').next().unwrap_or_default().to_owned();
    let mut request = format!("{}/sign_in", nvcf.endpoint).into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {key}").parse()?);
    headers.insert("function-id", "f".parse()?);
    headers.insert("function-version-id", "v".parse()?);
    headers.insert("cookie", cookie.parse()?);
    let (mut direct, _) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(next_text(&mut direct).await?, "SYN");
    let mut straight = Vec::new();
    for i in 0..count + count / 10 {
        let t = Instant::now();
        direct.send(Message::text(format!("m{i}"))).await?;
        next_text(&mut direct).await?;
        if i >= count / 10 {
            straight.push(t.elapsed());
        }
    }
    let burst = Instant::now();
    for i in 0..count {
        direct.send(Message::text(format!("b{i}"))).await?;
    }
    for _ in 0..count {
        next_text(&mut direct).await?;
    }
    let straight_rate = count as f64 / burst.elapsed().as_secs_f64();

    let [through, straight, pickups, sign_ins, raw] =
        [through, straight, pickups, sign_ins, raw].map(|mut l| p50_p99_ms(&mut l));
    let direct_name = "the same frames on a WebSocket straight to NVCF";
    report.add(
        "nvcf",
        "signal round trip client → relay → bridge → NVCF → back, p50",
        through.0,
        "ms",
        Better::Lower,
        direct_name,
        straight.0,
    );
    report.add(
        "nvcf",
        "signal round trip through the bridge, p99",
        through.1,
        "ms",
        Better::Lower,
        direct_name,
        straight.1,
    );
    report.add(
        "nvcf",
        "signals echoed per second, a burst through the bridge",
        through_rate,
        "msg/s",
        Better::Higher,
        direct_name,
        straight_rate,
    );
    let portal_rows = [
        ("frame round trip client → the portal's socket → NVCF → back (raw), p50", raw.0, straight.0, "ms"),
        ("frame round trip through the portal's socket, p99", raw.1, straight.1, "ms"),
    ];
    for (name, value, baseline, unit) in portal_rows {
        report.add("nvcf", name, value, unit, Better::Lower, direct_name, baseline);
    }
    report.add(
        "nvcf",
        "frames echoed per second, a burst through the portal's socket",
        raw_rate,
        "msg/s",
        Better::Higher,
        direct_name,
        straight_rate,
    );
    report.add(
        "nvcf",
        "storage calls per frame through the portal's socket (each way)",
        per_frame,
        "calls",
        Better::Lower,
        "its design (none; the record is read every 5 s)",
        0.0,
    );
    let sign_in_name = "NVCF's sign_in alone, sent straight";
    report.add(
        "nvcf",
        "pick-up: POST /sessions to NVCF's first frame at the client (local bridge), p50",
        pickups.0,
        "ms",
        Better::Lower,
        sign_in_name,
        sign_ins.0,
    );
    report.add("nvcf", "pick-up, p99", pickups.1, "ms", Better::Lower, sign_in_name, sign_ins.1);
    report.add(
        "nvcf",
        "storage calls per signal (each way)",
        per_signal,
        "calls",
        Better::Lower,
        "the relay's design (one read)",
        1.0,
    );
    Ok(())
}
