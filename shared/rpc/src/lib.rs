//! The RPC gateway's domain (seed 001, architecture §6): OpenCue's gRPC API, and any other
//! described service, as `POST /<package.Service>/<Method>` with JSON, transcoded at run time.
//!
//! - [`descriptors`]: which services exist and which are exposed.
//! - [`transcode`]: JSON <-> protobuf with grpc-gateway's defaults.
//! - [`codec`]: a tonic codec for dynamic messages.
//! - [`openapi`]: the exposed methods in the OpenAPI document, as JSON Schema.
//! - [`status`]: gRPC status to HTTP, grpc-gateway's error body.

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
