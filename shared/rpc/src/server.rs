//! A gRPC server for messages known only at run time: every method of a descriptor pool,
//! answered by one handler, optionally beside compiled tonic services (tonic-reflection's, so
//! the gateway can learn the pool). It serves the built-in demo Cuebot and the tests' fake
//! upstreams, on 127.0.0.1, over HTTP/2 as any gRPC client expects.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::codec::DynamicCodec;

/// What a handler returns.
pub type Answer = Pin<Box<dyn Future<Output = Result<Response<DynamicMessage>, Status>> + Send>>;

/// Answers one call: the method, its request and the caller's metadata.
pub type Handler = Arc<dyn Fn(MethodDescriptor, DynamicMessage, MetadataMap) -> Answer + Send + Sync>;

/// Answers the calls the pool does not describe (a type-erased tonic service).
type Others = Arc<dyn Fn(http::Request<Incoming>) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

type Reply = http::Response<tonic::body::Body>;

/// A running server; dropping it stops it.
pub struct RunningServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves every method of `pool` with `handler` on `listener`.
pub fn serve(listener: tokio::net::TcpListener, pool: DescriptorPool, handler: Handler) -> RunningServer {
    serve_all(listener, pool, handler, None)
}

/// As [`serve`], with `others` (a tonic server such as tonic-reflection's
/// `ServerReflectionServer`) answering every path `pool` does not describe, on the same port
/// as a real server would. Its own unknown paths are UNIMPLEMENTED, as tonic answers them.
pub fn serve_with<S>(
    listener: tokio::net::TcpListener,
    pool: DescriptorPool,
    handler: Handler,
    others: S,
) -> RunningServer
where
    S: tower_service::Service<http::Request<Incoming>, Response = Reply, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let others: Others = Arc::new(move |req| {
        let mut service = others.clone();
        Box::pin(async move {
            let Ok(()) = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
            let Ok(answer) = service.call(req).await;
            answer
        })
    });
    serve_all(listener, pool, handler, Some(others))
}

fn serve_all(
    listener: tokio::net::TcpListener,
    pool: DescriptorPool,
    handler: Handler,
    others: Option<Others>,
) -> RunningServer {
    let addr = listener.local_addr().expect("a bound listener");
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            // As gRPC servers do (grpc-java's Netty, grpc-go, tonic): without it, a response's
            // second small write waits for the client's delayed ACK (~40 ms on Linux).
            let _ = stream.set_nodelay(true);
            while connections.try_join_next().is_some() {}
            let (pool, handler, others) = (pool.clone(), Arc::clone(&handler), others.clone());
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let (pool, handler, others) = (pool.clone(), Arc::clone(&handler), others.clone());
                    async move { Ok::<_, Infallible>(dispatch(&pool, handler, others.as_ref(), req).await) }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    RunningServer { addr, task }
}

async fn dispatch(
    pool: &DescriptorPool,
    handler: Handler,
    others: Option<&Others>,
    req: http::Request<Incoming>,
) -> Reply {
    let mut parts = req.uri().path().trim_start_matches('/').splitn(2, '/');
    let (service, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some(method) = pool.get_service_by_name(service).and_then(|s| s.methods().find(|m| m.name() == name)) else {
        return match others {
            Some(others) => others(req).await,
            None => Status::unimplemented(format!("unknown method {service}/{name}")).into_http(),
        };
    };
    let codec = DynamicCodec::new(method.input());
    tonic::server::Grpc::new(codec).unary(Unary { method, handler }, req).await
}

struct Unary {
    method: MethodDescriptor,
    handler: Handler,
}

impl tower_service::Service<Request<DynamicMessage>> for Unary {
    type Response = Response<DynamicMessage>;
    type Error = Status;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Status>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<DynamicMessage>) -> Answer {
        let (metadata, _, message) = req.into_parts();
        (self.handler)(self.method.clone(), message, metadata)
    }
}
