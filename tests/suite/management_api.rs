//! The API Gateway Management API client (`PostToConnection`, `DeleteConnection`) through the
//! real SDK: against moto server, and against a fake speaking the wire format for the 410
//! that tells the relay a connection is gone.

use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use portico_streaming::push::{ApiGatewayPusher, ConnectionPusher, PushError};
use portico_tests::{FakeServer, moto_endpoint};

fn pusher(endpoint: &str) -> ApiGatewayPusher {
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
        .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::from_keys("testing", "testing", None))
        .build();
    ApiGatewayPusher::from_client(aws_sdk_apigatewaymanagement::Client::from_conf(config))
}

#[tokio::test]
async fn posts_and_deletes_through_the_sdk_against_moto() {
    let p = pusher(&moto_endpoint());
    assert_eq!(p.post("L0SM9cOFvHcCIhw=", r#"{"type":"signal","data":1}"#).await, Ok(()));
    assert_eq!(p.close("L0SM9cOFvHcCIhw=").await, Ok(()));
}

#[tokio::test]
async fn a_410_means_gone_and_other_failures_say_so() {
    let requests: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let seen = Arc::clone(&requests);
    let fake = FakeServer::start(Arc::new(move |method, path, _, body| {
        seen.lock().unwrap().push((method.to_owned(), path.to_owned(), String::from_utf8_lossy(body).into_owned()));
        match path {
            p if p.ends_with("/gone") => (410, r#"{"__type": "GoneException", "message": "gone"}"#.into()),
            p if p.ends_with("/forbidden") => (403, r#"{"__type": "ForbiddenException", "message": "no"}"#.into()),
            _ => (200, String::new()),
        }
    }))
    .await;
    let p = pusher(&fake.url);
    assert_eq!(p.post("alive", "hello").await, Ok(()));
    assert_eq!(p.post("gone", "hello").await, Err(PushError::Gone));
    assert!(matches!(p.post("forbidden", "hello").await, Err(PushError::Failed(_))));
    assert_eq!(p.close("gone").await, Ok(()), "closing a gone connection is done");
    let requests = requests.lock().unwrap();
    assert_eq!(requests[0], ("POST".into(), "/@connections/alive".into(), "hello".into()), "the wire format");
    assert!(requests.iter().any(|(m, p, _)| m == "DELETE" && p == "/@connections/gone"));
}
