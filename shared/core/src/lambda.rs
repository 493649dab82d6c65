//! Glue between Lambda (`lambda_http`) and a [`RouteGroup`]: the only code that knows Lambda
//! events. The emulator calls [`handle`] too, so local runs take the same path.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Request, Response, service_fn};

use crate::web::{RouteGroup, serve};

/// Serves one Lambda HTTP request through `group`.
pub async fn handle(group: &dyn RouteGroup, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let req = http::Request::from_parts(parts, Bytes::copy_from_slice(&body));
    serve(group, req).await.map(|b| if b.is_empty() { Body::Empty } else { Body::Text(b) })
}

/// Runs `group` as a Lambda function (the whole `main` of an HTTP function).
pub async fn run(group: impl RouteGroup + 'static) -> Result<(), lambda_http::Error> {
    let group = Arc::new(group);
    lambda_http::run(service_fn(move |req: Request| {
        let group = Arc::clone(&group);
        async move { Ok::<_, lambda_http::Error>(handle(group.as_ref(), req).await) }
    }))
    .await
}

/// Logs as Lambda expects (level from `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`).
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}
