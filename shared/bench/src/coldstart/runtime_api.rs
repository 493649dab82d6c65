//! A stand-in for Lambda's Runtime API on 127.0.0.1: events handed out on `next`, responses
//! and errors collected as they are posted.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

const PREFIX: &str = "/2018-06-01/runtime";

/// What a function posted to the Runtime API.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Response,
    Error,
    InitError,
}

pub(super) struct Posted {
    pub(super) kind: Kind,
    pub(super) at: Instant,
    pub(super) body: Bytes,
}

pub(super) struct Shared {
    pub(super) events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    pub(super) posted: mpsc::UnboundedSender<Posted>,
    pub(super) first_next: OnceLock<Instant>,
    arn: String,
}

/// Lambda's Runtime API for one function process: `next` hands out the events sent to
/// `events` (waiting for one, as Lambda does between invocations); responses and errors come
/// back on `posted`.
pub(super) struct RuntimeApi {
    pub(super) address: String,
    pub(super) events: mpsc::UnboundedSender<Vec<u8>>,
    pub(super) posted: mpsc::UnboundedReceiver<Posted>,
    pub(super) shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RuntimeApi {
    pub(super) async fn start(function_name: &str) -> std::io::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (events, events_rx) = mpsc::unbounded_channel();
        let (posted_tx, posted) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: tokio::sync::Mutex::new(events_rx),
            posted: posted_tx,
            first_next: OnceLock::new(),
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
        });
        let for_connections = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&for_connections);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(Arc::clone(&shared), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi { address, events, posted, shared, accept })
    }
}

fn reply(status: StatusCode, body: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

async fn answer(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"no such path"}"#));
    };
    if req.method() == Method::GET && rest == "/invocation/next" {
        let _ = shared.first_next.set(Instant::now());
        // Waits for the next event; none (the run is over): the process is about to be killed.
        let Some(event) = shared.events.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, r#"{"errorMessage":"no more invocations"}"#));
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let deadline = (now + Duration::from_secs(10)).as_millis().to_string();
        let id = uuid::Uuid::new_v4().to_string();
        let trace =
            format!("Root=1-{:08x}-{};Parent=53995c3f42cd8ad8;Sampled=0", now.as_secs(), &id.replace('-', "")[..24]);
        let response = hyper::Response::builder()
            .status(StatusCode::OK)
            .header("Lambda-Runtime-Aws-Request-Id", id)
            .header("Lambda-Runtime-Deadline-Ms", deadline)
            .header("Lambda-Runtime-Invoked-Function-Arn", shared.arn.as_str())
            .header("Lambda-Runtime-Trace-Id", trace)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(event)))
            .expect("a valid response");
        return Ok(response);
    }
    let kind = match (req.method(), rest) {
        (&Method::POST, "/init/error") => Kind::InitError,
        (&Method::POST, r) if r.starts_with("/invocation/") && r.ends_with("/response") => Kind::Response,
        (&Method::POST, r) if r.starts_with("/invocation/") && r.ends_with("/error") => Kind::Error,
        _ => return Ok(reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"no such path"}"#)),
    };
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let _ = shared.posted.send(Posted { kind, at: Instant::now(), body });
    Ok(reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#))
}
