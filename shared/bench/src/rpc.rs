//! The RPC gateway's figures, each beside a baseline from the same run:
//! - FindShow through the emulator's gateway (HTTP, token, authorization, transcoding, gRPC)
//!   beside a direct tonic call to the same demo Cuebot: the gateway's overhead per call;
//! - a large GetFrames answer transcoded both ways (protobuf to JSON text, JSON text to
//!   protobuf) beside serde_json alone reading and writing the same JSON.

use std::time::Instant;

use portico_rpc::codec::DynamicCodec;
use portico_rpc::descriptors::Descriptors;
use portico_rpc::transcode::{self, UnknownFields};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};

use crate::BenchResult;
use crate::report::{Better, Report};

fn method(service: &str, name: &str) -> MethodDescriptor {
    let pool = Descriptors::opencue(&["*".into()]).pool().clone();
    let service = pool.get_service_by_name(service).expect("a vendored service");
    service.methods().find(|m| m.name() == name).expect("a vendored method")
}

pub async fn bench(keys: &str, calls: usize, report: &mut Report) -> BenchResult {
    println!("\nRPC gateway: FindShow to the demo Cuebot, {calls} sequential calls each, in-process");
    let mut config = crate::config(keys, None);
    let _cuebot = portico_local::demo::start_cuebot(&mut config).await?.ok_or("an upstream is configured")?;
    let upstream = config.rpc_upstreams[0].endpoint.clone();
    let (listener, base) = crate::listen(&mut config).await?;
    let (shared, _running) =
        crate::serve_on(listener, portico_local::Platform::new(crate::services(config).await?), vec![]).await?;
    let services = shared.services;
    let token = services.keys().issue("bench").0;

    // Direct: one tonic channel, the dynamic codec, the same request message.
    let find_show = method("show.ShowInterface", "FindShow");
    let request = transcode::request(&find_show.input(), br#"{"name": "testshow"}"#, UnknownFields::Reject)?;
    let channel = tonic::transport::Endpoint::from_shared(upstream)?.connect().await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = http::uri::PathAndQuery::from_static("/show.ShowInterface/FindShow");
    let mut direct = Vec::with_capacity(calls);
    for i in 0..calls + calls / 10 {
        let t = Instant::now();
        grpc.ready().await?;
        let codec = DynamicCodec::new(find_show.output());
        grpc.unary(tonic::Request::new(request.clone()), path.clone(), codec).await?;
        if i >= calls / 10 {
            direct.push(t.elapsed()); // the first tenth warms up
        }
    }

    // Through the gateway: JSON over HTTP/1.1 with a Portico bearer (verified, authorized).
    let http = reqwest::Client::new();
    let url = format!("{base}/show.ShowInterface/FindShow");
    let mut gatewayed = Vec::with_capacity(calls);
    for i in 0..calls + calls / 10 {
        let t = Instant::now();
        let r = http.post(&url).bearer_auth(&token).body(r#"{"name": "testshow"}"#).send().await?;
        assert_eq!(r.status(), 200, "FindShow through the gateway");
        r.bytes().await?;
        if i >= calls / 10 {
            gatewayed.push(t.elapsed());
        }
    }
    let direct_name = "direct tonic call, same server";
    report.p50_p99_ms("rpc", "FindShow through the gateway", &mut gatewayed, direct_name, &mut direct);

    transcoding(20_000, report)
}

/// A GetFrames answer with `count` frames, as JSON text.
fn frames_json(count: usize) -> Vec<u8> {
    let frames: Vec<Value> = (0..count)
        .map(|n| {
            let state = ["SUCCEEDED", "RUNNING", "WAITING"][n % 3];
            json!({
                "id": format!("00000000-0000-0000-0000-{n:012}"), "name": format!("{n:04}-bty_tp_3d_123456"),
                "layerName": "bty_tp_3d_123456", "number": n, "state": state,
                "retryCount": n % 4, "exitStatus": 0, "dispatchOrder": n, "startTime": 1707842141, "stopTime": 1707843141,
                "maxRss": (n * 1_048_576).to_string(), "usedMemory": "8388608", "reservedMemory": "3355443",
                "lastResource": "host-a/8.00/0", "checkpointState": "DISABLED", "totalCoreTime": 3600, "lluTime": 1707842141,
                "totalGpuTime": 0, "maxGpuMemory": "0", "usedGpuMemory": "0", "reservedGpuMemory": "0"
            })
        })
        .collect();
    serde_json::to_vec(&json!({"frames": {"frames": frames}})).expect("JSON")
}

/// Best of five runs of `work`, in MB/s of `bytes`.
fn throughput(bytes: usize, mut work: impl FnMut()) -> f64 {
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            work();
            t.elapsed()
        })
        .min()
        .expect("five runs");
    bytes as f64 / 1e6 / best.as_secs_f64()
}

fn transcoding(count: usize, report: &mut Report) -> BenchResult {
    use prost_reflect::prost::Message as _;
    let desc = method("job.JobInterface", "GetFrames").output();
    let json_text = frames_json(count);
    let message = transcode::request(&desc, &json_text, UnknownFields::Reject)?;
    let wire = message.encode_to_vec();
    let out = serde_json::to_vec(&transcode::response(&message))?;
    let mb = |n: usize| n as f64 / 1e6;
    println!(
        "\nTranscoding a GetFrames answer of {count} frames ({:.1} MB protobuf, {:.1} MB JSON out), best of 5",
        mb(wire.len()),
        mb(out.len())
    );
    let to_json = throughput(out.len(), || {
        let decoded = DynamicMessage::decode(desc.clone(), wire.as_slice()).expect("decodes");
        std::hint::black_box(serde_json::to_vec(&transcode::response(&decoded)).expect("JSON"));
    });
    let from_json = throughput(json_text.len(), || {
        let parsed = transcode::request(&desc, &json_text, UnknownFields::Reject).expect("reads");
        std::hint::black_box(parsed.encode_to_vec());
    });
    let baseline = throughput(out.len(), || {
        let value: Value = serde_json::from_slice(&out).expect("JSON");
        std::hint::black_box(serde_json::to_vec(&value).expect("JSON"));
    });
    let baseline_name = "serde_json read + write, same JSON";
    report.add(
        "rpc",
        "transcoding protobuf -> JSON (answers)",
        to_json,
        "MB/s",
        Better::Higher,
        baseline_name,
        baseline,
    );
    report.add(
        "rpc",
        "transcoding JSON -> protobuf (requests)",
        from_json,
        "MB/s",
        Better::Higher,
        baseline_name,
        baseline,
    );
    Ok(())
}
