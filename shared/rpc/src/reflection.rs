//! Services learnt from an upstream's gRPC server reflection at start-up (`grpc.reflection.v1`,
//! falling back to `v1alpha`), so a service unknown at build time becomes callable.

use std::collections::BTreeSet;

use prost::Message as _;
use prost_reflect::prost_types::{FileDescriptorProto, FileDescriptorSet};

use crate::descriptors::Descriptors;
use crate::upstream::Upstream;

/// How many rounds of missing imports are asked for before giving up (a chain deeper than
/// this is not a real API).
const IMPORT_ROUNDS: usize = 16;

macro_rules! reflect_with {
    ($name:ident, $pb:path) => {
        /// Service names, then the files defining them and every file they import that
        /// `known` lacks, over one protocol version. A server answers FileContainingSymbol
        /// with the defining file alone (tonic-reflection does), so imports are asked for by
        /// name, round after round.
        async fn $name(
            channel: tonic::transport::Channel,
            known: &BTreeSet<String>,
        ) -> Result<(Vec<String>, Vec<FileDescriptorProto>), ReflectError> {
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
            let mut asks: Vec<_> =
                services.iter().map(|s| ask(MessageRequest::FileContainingSymbol(s.clone()))).collect();
            let mut files: Vec<FileDescriptorProto> = Vec::new();
            for _ in 0..IMPORT_ROUNDS {
                if asks.is_empty() {
                    break;
                }
                let mut answers = client.server_reflection_info(futures_util::stream::iter(asks)).await?.into_inner();
                while let Some(answer) = answers.message().await? {
                    if let Some(MessageResponse::FileDescriptorResponse(found)) = answer.message_response {
                        for bytes in found.file_descriptor_proto {
                            let file = FileDescriptorProto::decode(bytes.as_slice())
                                .map_err(|e| ReflectError::Other(format!("a reflected file: {e}")))?;
                            if !files.iter().any(|f| f.name() == file.name()) {
                                files.push(file);
                            }
                        }
                    }
                }
                let have = |name: &String| known.contains(name) || files.iter().any(|f| f.name() == name);
                let missing: BTreeSet<String> =
                    files.iter().flat_map(|f| f.dependency.iter()).filter(|d| !have(d)).cloned().collect();
                asks = missing.into_iter().map(|name| ask(MessageRequest::FileByFilename(name))).collect();
            }
            Ok((services, files))
        }
    };
}

/// Why reflection failed; UNIMPLEMENTED means "try the older protocol".
enum ReflectError {
    Status(tonic::Status),
    Other(String),
}

impl From<tonic::Status> for ReflectError {
    fn from(status: tonic::Status) -> Self {
        ReflectError::Status(status)
    }
}

impl std::fmt::Display for ReflectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReflectError::Status(status) => f.write_str(status.message()),
            ReflectError::Other(said) => f.write_str(said),
        }
    }
}

reflect_with!(reflect_v1, tonic_reflection::pb::v1);
reflect_with!(reflect_v1alpha, tonic_reflection::pb::v1alpha);

/// Adds the services `upstream` reports to `descriptors`; returns the names of those now
/// described. Files already known (OpenCue's own) are kept as they are. It asks over the
/// upstream's own channel (so TLS and its `ca_file` apply, and calls reuse the connection),
/// within the upstream's deadline.
pub async fn learn(descriptors: &mut Descriptors, upstream: &Upstream) -> Result<Vec<String>, String> {
    let known: BTreeSet<String> = descriptors.pool().files().map(|f| f.name().to_owned()).collect();
    let deadline = upstream.deadline();
    let reflect = async {
        match reflect_v1(upstream.channel(), &known).await {
            Ok(found) => Ok(found),
            Err(ReflectError::Status(status)) if status.code() == tonic::Code::Unimplemented => {
                reflect_v1alpha(upstream.channel(), &known).await.map_err(|e| format!("reflection v1alpha: {e}"))
            }
            Err(e) => Err(format!("reflection v1: {e}")),
        }
    };
    let (services, files) = tokio::time::timeout(deadline, reflect)
        .await
        .map_err(|_| format!("reflection did not finish within {} ms", deadline.as_millis()))??;
    let set =
        FileDescriptorSet { file: imports_first(files.into_iter().filter(|f| !known.contains(f.name())).collect()) };
    descriptors.add_set(&set.encode_to_vec(), &upstream.config.endpoint).map_err(|e| e.to_string())?;
    Ok(services.into_iter().filter(|s| descriptors.pool().get_service_by_name(s).is_some()).collect())
}

/// `files` ordered so that each comes after the files it imports (those among `files`).
fn imports_first(mut files: Vec<FileDescriptorProto>) -> Vec<FileDescriptorProto> {
    let mut ordered: Vec<FileDescriptorProto> = Vec::with_capacity(files.len());
    while !files.is_empty() {
        let pending: BTreeSet<String> = files.iter().map(|f| f.name().to_owned()).collect();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            files.into_iter().partition(|f| f.dependency.iter().all(|d| !pending.contains(d)));
        if ready.is_empty() {
            // An import cycle: protobuf forbids it; let the pool report it.
            ordered.extend(waiting);
            break;
        }
        ordered.extend(ready);
        files = waiting;
    }
    ordered
}
