//! `rpc_reflection`: a service unknown at build time, learnt at start-up from the upstream's
//! gRPC server reflection (`grpc.reflection.v1`, or `v1alpha` where v1 is UNIMPLEMENTED),
//! is listed and callable through the gateway as JSON, with no descriptor set and no rebuild.

use std::sync::Arc;

use portico_core::config::RpcUpstream;
use portico_rpc::server::{self, Answer, RunningServer};
use portico_rpc::transcode;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::rpc::{answer, gateway, post};
use crate::rpc_tls::{FIXTURES, tls_front};

const TODAY: &str = "/farm.v1.Weather/Today";
/// snake_case in, lowerCamelCase out; int64 beyond 2^53 as strings, exact; enums by name.
const TODAY_REQUEST: &str = r#"{"farm_name": "ada", "day": "9007199254740993"}"#;

fn today_reply() -> Value {
    json!({"farmName": "ada", "day": "9007199254740993", "rainfallMicrometres": "9007199254740995", "sky": "RAINY"})
}

/// Only `farm.` goes to the farm server at `endpoint` (group `opencue`, on which `gateway`
/// grants carol `rpc.call`), trusting `ca_file`; reflection on or off.
fn farm_upstream(
    endpoint: String,
    ca_file: Option<String>,
    reflection: bool,
) -> impl FnOnce(&mut portico_core::Config) {
    move |c| {
        c.rpc_upstreams = vec![RpcUpstream { services: vec!["farm.".into()], ca_file, ..RpcUpstream::new(endpoint) }];
        c.rpc_reflection = reflection;
    }
}

const WEATHER_PROTO: &str = "farm/v1/weather.proto";
const SKY_PROTO: &str = "farm/v1/sky.proto";

/// Compiled at test time, so OpenCue's embedded descriptors cannot know it. The enum lives in
/// a file of its own: a reflection server sends only the file defining a service, and the
/// gateway must ask for its imports by name. The Python server (`rpc_python`) serves the same.
const WEATHER: &str = include_str!("../fixtures/farm/v1/weather.proto");
const SKY: &str = include_str!("../fixtures/farm/v1/sky.proto");

/// Both files as a serialized FileDescriptorSet, compiled by protox from memory.
fn weather_set() -> Vec<u8> {
    struct Source;
    impl protox::file::FileResolver for Source {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            match name {
                WEATHER_PROTO => protox::file::File::from_source(name, WEATHER),
                SKY_PROTO => protox::file::File::from_source(name, SKY),
                _ => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let mut compiler = protox::Compiler::with_file_resolver(Source);
    compiler.include_imports(true);
    compiler.open_file(WEATHER_PROTO).expect("weather.proto compiles");
    compiler.encode_file_descriptor_set()
}

/// Which reflection protocol the fake farm server speaks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reflection {
    V1,
    V1AlphaOnly,
}

/// A gRPC server on 127.0.0.1 answering `farm.v1.Weather/Today` (the dynamic handler) and
/// server reflection (tonic-reflection) on one port, as a real upstream does.
pub(crate) async fn farm(reflection: Reflection) -> RunningServer {
    let set = weather_set();
    let pool = DescriptorPool::decode(set.as_slice()).unwrap();
    let handler = Arc::new(|method: MethodDescriptor, request: DynamicMessage, _| -> Answer {
        Box::pin(async move {
            let req = transcode::response(&request);
            let day: i64 = req["day"].as_str().unwrap_or("0").parse().unwrap();
            answer(
                &method,
                &json!({"farm_name": req["farmName"], "day": day.to_string(),
                        "rainfall_micrometres": (day + 2).to_string(), "sky": "RAINY"}),
            )
        })
    });
    let reflect = tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(&set);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match reflection {
        Reflection::V1 => server::serve_with(listener, pool, handler, reflect.build_v1().unwrap()),
        Reflection::V1AlphaOnly => server::serve_with(listener, pool, handler, reflect.build_v1alpha().unwrap()),
    }
}

/// Whether `url` answers `grpc.reflection.v1` (rather than UNIMPLEMENTED).
async fn speaks_v1(url: String) -> bool {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_response::MessageResponse};
    let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    match ServerReflectionClient::new(channel).server_reflection_info(futures_util::stream::iter([list])).await {
        Ok(answers) => {
            let first = answers.into_inner().message().await.unwrap().unwrap();
            matches!(first.message_response, Some(MessageResponse::ListServicesResponse(_)))
        }
        Err(status) if status.code() == tonic::Code::Unimplemented => false,
        Err(status) => panic!("reflection v1: {status}"),
    }
}

#[tokio::test]
async fn a_service_unknown_at_build_time_is_learnt_from_upstream_reflection_v1_or_v1alpha() {
    let (path, request, expected) = (TODAY, TODAY_REQUEST, today_reply());
    for protocol in [Reflection::V1, Reflection::V1AlphaOnly] {
        let upstream = farm(protocol).await;
        assert_eq!(speaks_v1(upstream.url()).await, matches!(protocol, Reflection::V1), "{protocol:?}");

        let without = gateway(upstream.url(), farm_upstream(upstream.url(), None, false)).await;
        let (status, body, _) = post(&without, path, Some(&without.token("carol")), request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{protocol:?}, rpc_reflection off: {body}");

        let with = gateway(upstream.url(), farm_upstream(upstream.url(), None, true)).await;
        let token = with.token("carol");
        let (status, body, _) = post(&with, path, Some(&token), request).await;
        assert_eq!(status, StatusCode::OK, "{protocol:?}: {body}");
        assert_eq!(body, expected, "{protocol:?}");

        let listing: Value =
            with.req(Method::GET, "/rpc/services", Some(&token)).send().await.unwrap().json().await.unwrap();
        let services = listing["services"].as_array().unwrap();
        let weather = services.iter().find(|s| s["name"] == "farm.v1.Weather");
        assert_eq!(
            weather,
            Some(&json!({"name": "farm.v1.Weather", "group": "opencue", "methods": [{
                "name": "Today", "path": path, "request": "farm.v1.TodayRequest", "response": "farm.v1.TodayReply",
            }]})),
            "{protocol:?}: {listing}"
        );
        assert!(
            !services.iter().any(|s| s["name"].as_str().unwrap().starts_with("grpc.reflection.")),
            "{protocol:?}: reflection itself is not exposed"
        );
    }
}

#[tokio::test]
async fn reflection_goes_over_the_upstreams_own_channel_so_tls_with_its_ca_file_works() {
    let upstream = farm(Reflection::V1).await;
    let endpoint = format!("https://127.0.0.1:{}", tls_front(upstream.addr).await);

    let trusting =
        gateway(endpoint.clone(), farm_upstream(endpoint.clone(), Some(format!("{FIXTURES}/ca.pem")), true)).await;
    let (status, body, _) = post(&trusting, TODAY, Some(&trusting.token("carol")), TODAY_REQUEST).await;
    assert_eq!(status, StatusCode::OK, "learnt through TLS with the private CA: {body}");
    assert_eq!(body, today_reply());

    // Without the CA the certificate is unknown: nothing is learnt, never trusted.
    let strict = gateway(endpoint.clone(), farm_upstream(endpoint, None, true)).await;
    let (status, body, _) = post(&strict, TODAY, Some(&strict.token("carol")), TODAY_REQUEST).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
