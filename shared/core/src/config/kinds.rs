//! The settings' enumerations, the RPC gateway's upstreams and its default service list.

use serde::{Deserialize, Serialize};

/// Which [`crate::store::Table`] backs the services.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Dynamodb,
    Memory,
}

/// Where secrets come from.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretsKind {
    /// AWS Secrets Manager (production).
    Secretsmanager,
    /// `PORTICO_SECRET_<ID>` environment variables and the settings file's `[secrets_local]` table.
    Local,
}

/// How sessions reach the app's stream.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StreamPlatform {
    /// NVIDIA Cloud Functions, as the seed portal drives it: `POST {signaling}/sign_in` starts the
    /// session, and a bridge holds NVCF's signaling WebSocket and joins the relay as the host.
    Nvcf,
    /// Portico's own protocol for self-hosted hosts: `POST {stream_launch_url}/...` asks the host
    /// to join the relay with a ticket.
    RelayHost,
}

/// What the RPC gateway does with a request field its message does not have.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RpcUnknownFields {
    /// 400 naming the field: a typo is an error, never a value silently dropped.
    Reject,
    /// Dropped, as OpenCue's grpc-gateway does (the default, for drop-in compatibility); the
    /// dropped names are listed in the `Portico-Ignored-Fields` response header.
    Ignore,
}

/// One gRPC server behind the RPC gateway.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RpcUpstream {
    /// `http://host:port` (plaintext) or `https://host:port` (TLS, verified with the system's roots).
    pub endpoint: String,
    /// Prefixes of the fully qualified service names it serves (`"show."`,
    /// `"job.JobInterface"`); `""` serves every service. The longest match wins.
    #[serde(default = "every_service")]
    pub services: Vec<String>,
    /// Authorization group: callers need `rpc.call` on it.
    #[serde(default = "opencue_group")]
    pub group: String,
    /// A PEM file of CA certificates trusted for this `https://` upstream besides the system's
    /// roots (a facility's private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl RpcUpstream {
    /// `endpoint` serving every service, for group `opencue`: the defaults of a settings entry.
    pub fn new(endpoint: impl Into<String>) -> Self {
        RpcUpstream { endpoint: endpoint.into(), services: every_service(), group: opencue_group(), ca_file: None }
    }
}

fn every_service() -> Vec<String> {
    vec![String::new()]
}

fn opencue_group() -> String {
    "opencue".into()
}

/// The 22 services OpenCue's REST gateway registers (its `main.go`): the default exposure.
pub const OPENCUE_GATEWAY_SERVICES: [&str; 22] = [
    "show.ShowInterface",
    "job.FrameInterface",
    "job.GroupInterface",
    "job.JobInterface",
    "job.LayerInterface",
    "host.DeedInterface",
    "host.HostInterface",
    "host.OwnerInterface",
    "host.ProcInterface",
    "comment.CommentInterface",
    "facility.AllocationInterface",
    "facility.FacilityInterface",
    "filter.FilterInterface",
    "filter.ActionInterface",
    "filter.MatcherInterface",
    "depend.DependInterface",
    "subscription.SubscriptionInterface",
    "limit.LimitInterface",
    "service.ServiceInterface",
    "service.ServiceOverrideInterface",
    "task.TaskInterface",
    "department.DepartmentInterface",
];
