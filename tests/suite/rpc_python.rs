//! The RPC gateway in front of a real gRPC server nobody on the team wrote the stack of:
//! Python's `grpcio` 1.85 (`fixtures/grpc-python/farm_server.py`), whose reflection service
//! speaks only `grpc.reflection.v1alpha`. The gateway learns the service from it, calls it with
//! proto3 JSON, maps its statuses as grpc-gateway does, and refuses a body that names a member
//! twice before anything reaches the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_core::config::RpcUpstream;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::rpc::{gateway, post};

/// The Python server, and the `call Today <farm>` lines it printed (one per call received).
struct PythonFarm {
    endpoint: String,
    calls: Arc<Mutex<Vec<String>>>,
    _process: Child,
}

impl PythonFarm {
    async fn start() -> PythonFarm {
        let python = portico_tests::grpc_python();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/grpc-python/farm_server.py");
        let mut command = Command::new(python);
        command.arg(script).arg("0");
        let (process, address, mut lines) = portico_tests::spawn_until(command, "grpc server listening on ").await;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(call) = line.strip_prefix("call ") {
                    seen.lock().unwrap().push(call.to_owned());
                }
            }
        });
        PythonFarm { endpoint: format!("http://{address}"), calls, _process: process }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_python_grpc_server_is_learnt_by_v1alpha_reflection_and_called_as_json() {
    let farm = PythonFarm::start().await;
    let endpoint = farm.endpoint.clone();
    let api = gateway(farm.endpoint.clone(), move |c| {
        c.rpc_upstreams = vec![RpcUpstream { services: vec!["farm.".into()], ..RpcUpstream::new(endpoint) }];
        c.rpc_reflection = true;
        c.rpc_deadline_ms = 1_000;
    })
    .await;
    let token = api.token("carol");

    let listing: Value =
        api.req(Method::GET, "/rpc/services", Some(&token)).send().await.unwrap().json().await.unwrap();
    let weather = listing["services"].as_array().unwrap().iter().find(|s| s["name"] == "farm.v1.Weather").cloned();
    assert_eq!(
        weather.map(|w| w["methods"].clone()),
        Some(json!([{"name": "Today", "path": "/farm.v1.Weather/Today",
                     "request": "farm.v1.TodayRequest", "response": "farm.v1.TodayReply"}])),
        "learnt from the Python server's v1alpha reflection: {listing}"
    );

    // 2^53 + 1 both ways, exact; enums by name; lowerCamelCase out.
    let (status, body, _) =
        post(&api, "/farm.v1.Weather/Today", Some(&token), r#"{"farm_name": "ada", "day": "9007199254740993"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"farmName": "ada", "day": "9007199254740993", "rainfallMicrometres": "9007199254740995", "sky": "RAINY"})
    );

    // The server's own status, as grpc-gateway maps it.
    let (status, body, _) = post(&api, "/farm.v1.Weather/Today", Some(&token), r#"{"farmName": "nowhere"}"#).await;
    assert_eq!(
        (status, &body["code"], &body["message"]),
        (StatusCode::NOT_FOUND, &json!(5), &json!("no farm called nowhere"))
    );

    // A server slower than the deadline: DEADLINE_EXCEEDED within it.
    let started = std::time::Instant::now();
    let (status, body, _) = post(&api, "/farm.v1.Weather/Today", Some(&token), r#"{"farmName": "slow"}"#).await;
    assert_eq!((status, &body["code"]), (StatusCode::GATEWAY_TIMEOUT, &json!(4)), "{body}");
    assert!(started.elapsed() < Duration::from_secs(4), "answered at the deadline, not the server's pace");

    // A member named twice is refused by the gateway; the server never hears of it.
    let before = farm.calls().len();
    let (status, body, _) =
        post(&api, "/farm.v1.Weather/Today", Some(&token), r#"{"farmName": "ada", "farmName": "nowhere"}"#).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!(3)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("duplicate member 'farmName'"), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(farm.calls().len(), before, "nothing reached the server");
    assert_eq!(farm.calls()[..3], ["Today ada", "Today nowhere", "Today slow"]);
}
