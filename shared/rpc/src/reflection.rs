//! Services learnt from an upstream's gRPC server reflection at start-up (`grpc.reflection.v1`,
//! falling back to `v1alpha`), so a service unknown at build time becomes callable.

use std::collections::BTreeSet;
use std::time::Duration;

use prost::Message as _;
use prost_reflect::prost_types::{FileDescriptorProto, FileDescriptorSet};
use tonic::transport::Endpoint;

use crate::descriptors::Descriptors;

macro_rules! reflect_with {
    ($name:ident, $pb:path) => {
        /// Service names, then the files defining them, over one protocol version.
        async fn $name(channel: tonic::transport::Channel) -> Result<(Vec<String>, Vec<Vec<u8>>), tonic::Status> {
            use pb::server_reflection_client::ServerReflectionClient;
            use pb::server_reflection_request::MessageRequest;
            use pb::server_reflection_response::MessageResponse;
            use $pb as pb;
            let mut client = ServerReflectionClient::new(channel);
            let ask = |m: MessageRequest| pb::ServerReflectionRequest { host: String::new(), message_request: Some(m) };
            let mut answers = client
                .server_reflection_info(futures_util::stream::iter([ask(MessageRequest::ListServices(String::new()))]))
                .await?
                .into_inner();
            let mut services = Vec::new();
            while let Some(answer) = answers.message().await? {
                if let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response {
                    services.extend(list.service.into_iter().map(|s| s.name));
                }
            }
            services.retain(|s| !s.starts_with("grpc.reflection."));
            let asks: Vec<_> = services.iter().map(|s| ask(MessageRequest::FileContainingSymbol(s.clone()))).collect();
            let mut answers = client.server_reflection_info(futures_util::stream::iter(asks)).await?.into_inner();
            let mut files = Vec::new();
            while let Some(answer) = answers.message().await? {
                if let Some(MessageResponse::FileDescriptorResponse(found)) = answer.message_response {
                    files.extend(found.file_descriptor_proto);
                }
            }
            Ok((services, files))
        }
    };
}

reflect_with!(reflect_v1, tonic_reflection::pb::v1);
reflect_with!(reflect_v1alpha, tonic_reflection::pb::v1alpha);

/// Adds the services `endpoint` reports to `descriptors`; returns their names. Files already
/// known (OpenCue's own) are kept as they are.
pub async fn learn(descriptors: &mut Descriptors, endpoint: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let (services, files) = match reflect_v1(channel.clone()).await {
        Ok(found) => found,
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            reflect_v1alpha(channel).await.map_err(|s| format!("reflection v1alpha: {}", s.message()))?
        }
        Err(status) => return Err(format!("reflection v1: {}", status.message())),
    };
    let known: BTreeSet<String> = descriptors.pool().files().map(|f| f.name().to_owned()).collect();
    let mut seen = BTreeSet::new();
    let mut set = FileDescriptorSet::default();
    for bytes in files {
        let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| format!("a reflected file: {e}"))?;
        if !known.contains(file.name()) && seen.insert(file.name().to_owned()) {
            set.file.push(file);
        }
    }
    descriptors.add_set(&set.encode_to_vec(), endpoint).map_err(|e| e.to_string())?;
    Ok(services)
}
