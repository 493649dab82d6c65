//! The listener: connections served by the HTTP API, or upgraded to the WebSocket API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::{Gateway, HttpApi, MAX_PAYLOAD_BYTES, limits};

/// A running emulator; dropping it stops the server and its connections.
pub struct Running {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `gateway` on `127.0.0.1:port` (port 0: any free port).
pub async fn start(gateway: impl Into<Gateway>, port: u16) -> std::io::Result<Running> {
    start_on(TcpListener::bind(("127.0.0.1", port)).await?, gateway)
}

/// Serves `gateway` on a bound listener (to know the port before building the services).
pub fn start_on(listener: TcpListener, gateway: impl Into<Gateway>) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let gateway = gateway.into();
    let api = Arc::new(gateway.http);
    let ws = gateway.ws.map(Arc::new);
    let streams = gateway.streams;
    let task = tokio::spawn(async move {
        // Connection tasks live in this set, so aborting the server aborts them too.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            let (api, ws, streams) = (Arc::clone(&api), ws.clone(), streams.clone());
            connections.spawn(async move {
                let mut stream = stream;
                // As API Gateway answers: small frames and answers go out at once (no Nagle).
                let _ = stream.set_nodelay(true);
                if let Some(refusal) = limits::refused_head(&stream).await {
                    limits::answer_raw(&mut stream, refusal).await;
                    return;
                }
                let service = hyper::service::service_fn(move |req| {
                    let (api, ws, streams) = (Arc::clone(&api), ws.clone(), streams.clone());
                    async move {
                        Ok::<_, Infallible>(match (ws, streams) {
                            (Some(ws), _) if ws.wants(&req) => ws.upgrade(req, peer).await,
                            (_, Some(streams)) if streams.wants(&req) => streams.upgrade(req).await,
                            _ => handle(&api, req, peer, addr).await,
                        })
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(Running { addr, task })
}

async fn handle(
    api: &HttpApi,
    req: http::Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
) -> http::Response<Full<Bytes>> {
    // Every request's head is checked here; the first on a connection was also checked raw,
    // before hyper parsed it (see `limits::refused_head`), so hyper's own limits never answer.
    if let Some(refusal) = limits::head_refusal(&req) {
        return refusal.map(Full::new);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_PAYLOAD_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return limits::refusal(limits::Refusal::Payload).map(Full::new),
    };
    api.invoke(&parts.method, &parts.uri, &parts.headers, body, peer, local).await.map(Full::new)
}
