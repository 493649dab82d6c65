//! Calls to the gRPC servers behind the gateway: one lazily connected channel per upstream,
//! reused by every invocation of a warm process, plaintext or TLS (rustls), with a deadline.

use std::time::Duration;

use prost::Message as _;
use prost_reflect::prost_types::Any;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use portico_core::config::RpcUpstream;

use crate::codec::DynamicCodec;
use crate::status::RpcError;

/// A configured upstream with its channel and the deadline of each call.
pub struct Upstream {
    pub config: RpcUpstream,
    channel: Channel,
    deadline: Duration,
}

/// Every upstream, matched by the longest service prefix.
pub struct Upstreams {
    upstreams: Vec<Upstream>,
}

#[derive(Debug, thiserror::Error)]
#[error("upstream {endpoint}: {why}")]
pub struct UpstreamError {
    endpoint: String,
    why: String,
}

impl Upstreams {
    /// Builds the channels without connecting: the first call connects, later calls reuse it.
    pub fn new(configs: &[RpcUpstream], deadline: Duration) -> Result<Upstreams, UpstreamError> {
        let upstreams = configs
            .iter()
            .map(|c| {
                let fail = |why: String| UpstreamError { endpoint: c.endpoint.clone(), why };
                let mut endpoint = Endpoint::from_shared(c.endpoint.clone())
                    .map_err(|e| fail(e.to_string()))?
                    .connect_timeout(deadline.min(Duration::from_secs(3)))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_while_idle(true);
                if c.endpoint.starts_with("https://") {
                    let mut tls = ClientTlsConfig::new().with_native_roots();
                    if let Some(path) = &c.ca_file {
                        let pem = std::fs::read(path).map_err(|e| fail(format!("ca_file {path}: {e}")))?;
                        tls = tls.ca_certificate(Certificate::from_pem(pem));
                    }
                    endpoint = endpoint.tls_config(tls).map_err(|e| fail(e.to_string()))?;
                }
                Ok(Upstream { config: c.clone(), channel: endpoint.connect_lazy(), deadline })
            })
            .collect::<Result<_, _>>()?;
        Ok(Upstreams { upstreams })
    }

    /// The upstream serving `service`: the longest matching prefix.
    pub fn for_service(&self, service: &str) -> Option<&Upstream> {
        self.upstreams
            .iter()
            .filter_map(|u| {
                let best =
                    u.config.services.iter().filter(|p| service.starts_with(p.as_str())).map(|p| p.len()).max()?;
                Some((best, u))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, u)| u)
    }

    /// Every upstream, in configuration order.
    pub fn all(&self) -> &[Upstream] {
        &self.upstreams
    }
}

impl Upstream {
    /// The channel every call to this upstream shares (TLS and `ca_file` included).
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// How long one call (or start-up reflection) may take.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// A unary call of `method` with `metadata`; within the deadline or `DeadlineExceeded`.
    #[tracing::instrument(name = "grpc", skip_all, fields(method = %method.full_name()))]
    pub async fn call(
        &self,
        method: &MethodDescriptor,
        request: DynamicMessage,
        metadata: MetadataMap,
        pool: &DescriptorPool,
    ) -> Result<(DynamicMessage, MetadataMap), RpcError> {
        let deadline = self.deadline;
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let path = http::uri::PathAndQuery::try_from(path)
            .map_err(|_| RpcError::new(http::StatusCode::NOT_FOUND, Code::NotFound, "not a callable method path"))?;
        let mut grpc = tonic::client::Grpc::new(self.channel());
        let mut req = tonic::Request::new(request);
        *req.metadata_mut() = metadata;
        req.set_timeout(deadline);
        let codec = DynamicCodec::new(method.output());
        let call = async {
            grpc.ready().await.map_err(|e| Status::unavailable(format!("upstream unreachable: {e}")))?;
            grpc.unary(req, path, codec).await
        };
        // The deadline also bounds connecting: a hanging upstream never holds the function.
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(resp)) => {
                let (metadata, message, _) = resp.into_parts();
                Ok((message, metadata))
            }
            Ok(Err(status)) => Err(upstream_error(&status, pool)),
            Err(_) => Err(RpcError::new(
                http::StatusCode::GATEWAY_TIMEOUT,
                Code::DeadlineExceeded,
                format!("the upstream did not answer within {} ms", deadline.as_millis()),
            )),
        }
    }
}

/// An upstream's failure as the client sees it: its status, mapped; transport faults as 503.
fn upstream_error(status: &Status, pool: &DescriptorPool) -> RpcError {
    // tonic enforces the `grpc-timeout` it sends and reports it as a cancellation.
    if status.code() == Code::Cancelled && status.message() == "Timeout expired" {
        return RpcError::new(
            http::StatusCode::GATEWAY_TIMEOUT,
            Code::DeadlineExceeded,
            "the upstream did not answer within the deadline",
        );
    }
    let transport_fault = status.code() == Code::Unavailable
        || (status.code() == Code::Unknown && status.message().contains("transport error"));
    if transport_fault {
        tracing::warn!(message = %status.message(), "rpc upstream unavailable");
        return RpcError::new(http::StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, "the upstream is unavailable");
    }
    RpcError::from_status(status, details(status.details(), pool))
}

/// `google.rpc.Status`, as carried in `grpc-status-details-bin` (not in prost-types, so by
/// hand).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// The status details as protojson `Any`s: the message's fields beside `@type` when its type
/// is known, else its bytes as base64 in `value`.
fn details(raw: &[u8], pool: &DescriptorPool) -> Vec<Value> {
    let Ok(status) = RpcStatus::decode(raw) else { return vec![] };
    status
        .details
        .into_iter()
        .map(|any| {
            let name = any.type_url.rsplit('/').next().unwrap_or("");
            let known =
                pool.get_message_by_name(name).and_then(|d| DynamicMessage::decode(d, any.value.as_slice()).ok());
            match known.map(|m| crate::transcode::response(&m)) {
                Some(Value::Object(mut fields)) => {
                    fields.insert("@type".into(), json!(any.type_url));
                    Value::Object(fields)
                }
                _ => {
                    let value = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &any.value);
                    json!({"@type": any.type_url, "value": value})
                }
            }
        })
        .collect()
}
