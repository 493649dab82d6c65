//! The benchmark's baseline Lambda function: `lambda_http`'s hello world (what `cargo lambda
//! new` generates), built with the functions' profile and dependency versions, so the `coldstart`
//! and `sizes` parts can show what Portico adds to a function that does nothing.

use lambda_http::{Body, Error, Request, Response, run, service_fn, tracing};

async fn hello(_: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder().status(200).header("content-type", "text/plain").body(Body::from("Hello"))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    run(service_fn(hello)).await
}
