//! The RPC gateway's domain (OpenCue's REST gateway): OpenCue's gRPC API, and any other
//! described service, as `POST /<package.Service>/<Method>` with JSON, transcoded at run time.
//!
//! - [`gateway`]: one call, from an authenticated caller's JSON to the upstream's answer.
//! - [`descriptors`]: which services exist and which are exposed.
//! - [`reflection`]: services learnt from an upstream's gRPC server reflection.
//! - [`upstream`]: the channels to the gRPC servers, with the deadline.
//! - [`transcode`]: JSON <-> protobuf with grpc-gateway's defaults.
//! - [`codec`]: a tonic codec for dynamic messages.
//! - [`status`]: gRPC status to HTTP, grpc-gateway's error body.
//! - [`openapi`]: the exposed methods in the OpenAPI document, as JSON Schema.
//! - [`server`]: a gRPC server for dynamic messages (the demo Cuebot's, the tests' fakes).
//! - [`demo`]: the demo Cuebot's answers, for `cargo run`.

pub mod codec;
pub mod demo;
pub mod descriptors;
pub mod gateway;
pub mod openapi;
pub mod reflection;
pub mod server;
pub mod status;
pub mod transcode;
pub mod upstream;
