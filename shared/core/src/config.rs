//! Configuration: one typed struct, loaded once per process.
//!
//! Sources, later ones winning (layered by figment, see `config/load.rs`): the defaults (see
//! `config/defaults.rs`), a TOML settings file (`PORTICO_SETTINGS`, else `./settings.toml` if present), then
//! `PORTICO_<SETTING>` environment variables, `__` separating nested keys. Every setting is
//! documented in the README's configuration table.

mod defaults;
mod kinds;
mod load;
mod validate;

use serde::{Deserialize, Serialize};

pub use kinds::{OPENCUE_GATEWAY_SERVICES, RpcUnknownFields, RpcUpstream, SecretsKind, StoreKind, StreamPlatform};
use load::{json_or_value, list, optional_text, text};
pub use validate::{VOLUME_KINDS, volume_source};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreKind,
    #[serde(deserialize_with = "text")]
    pub table_name: String,
    /// DynamoDB endpoint override (DynamoDB Local); `None` means AWS.
    #[serde(deserialize_with = "optional_text")]
    pub dynamodb_endpoint: Option<String>,
    /// Longest wait to open a connection to DynamoDB, in milliseconds.
    pub dynamodb_connect_timeout_ms: u64,
    /// Longest wait for one attempt of a DynamoDB call, in milliseconds.
    pub dynamodb_attempt_timeout_ms: u64,
    /// Longest time one DynamoDB call takes, its retries included, in milliseconds; past it the
    /// request answers 503 (`unavailable`, with `Retry-After`).
    pub dynamodb_timeout_ms: u64,
    /// Attempts of one DynamoDB call (1: no retry).
    pub dynamodb_max_attempts: u32,
    pub secrets: SecretsKind,
    /// Seconds a secret read from Secrets Manager is reused.
    pub secrets_cache_ttl: u64,
    /// Local secrets, by secret id (only with `secrets = "local"`).
    #[serde(rename = "secrets_local")]
    pub local_secrets: std::collections::BTreeMap<String, String>,

    // Portico's own tokens (ES256).
    /// Secret holding the signing keyring (see `auth::own`).
    #[serde(deserialize_with = "text")]
    pub signing_keys_secret_id: String,
    /// `iss` of Portico's tokens.
    #[serde(deserialize_with = "text")]
    pub token_issuer: String,
    /// `aud` of Portico's tokens.
    #[serde(deserialize_with = "text")]
    pub token_audience: String,
    /// Lifetime of Portico's access tokens, in seconds.
    pub access_token_ttl: u64,
    /// Clock skew allowed on `exp` / `nbf` for every token source, in seconds.
    pub token_leeway: u64,

    // A trusted web system's HS256 tokens (OpenCue's REST gateway); off unless the secret id is set.
    #[serde(deserialize_with = "optional_text")]
    pub web_token_secret_id: Option<String>,
    #[serde(deserialize_with = "optional_text")]
    pub web_token_issuer: Option<String>,
    #[serde(deserialize_with = "optional_text")]
    pub web_token_audience: Option<String>,

    // An external OpenID Connect provider; off unless `oidc_jwks_uri` is set.
    #[serde(deserialize_with = "optional_text")]
    pub oidc_jwks_uri: Option<String>,
    /// Accepted signature algorithms (asymmetric only).
    #[serde(deserialize_with = "list")]
    pub oidc_algorithms: Vec<String>,
    /// Required `iss` (mandatory with `oidc_jwks_uri`).
    #[serde(deserialize_with = "optional_text")]
    pub oidc_issuer: Option<String>,
    #[serde(deserialize_with = "optional_text")]
    pub oidc_audience: Option<String>,
    /// Seconds the JWKS is cached.
    pub oidc_jwks_ttl: u64,
    /// Least seconds between two JWKS fetches caused by unknown key ids or failures.
    pub oidc_jwks_min_refresh: u64,
    /// Claim holding the username.
    #[serde(deserialize_with = "text")]
    pub oidc_username_claim: String,
    /// Claim holding the groups (in the token or the userinfo answer).
    #[serde(deserialize_with = "text")]
    pub oidc_groups_claim: String,
    #[serde(deserialize_with = "optional_text")]
    pub oidc_userinfo_endpoint: Option<String>,
    /// Seconds a userinfo answer is reused.
    pub oidc_userinfo_ttl: u64,
    /// The web console's client id at the OIDC provider (a public client using PKCE); the
    /// console offers OIDC sign-in only when it is set. Endpoints come from the issuer's
    /// discovery document.
    #[serde(deserialize_with = "optional_text")]
    pub console_oidc_client_id: Option<String>,

    // Authorization.
    /// Members of this group (token groups) are administrators.
    #[serde(deserialize_with = "text")]
    pub admin_group: String,
    /// Usernames that are always administrators.
    #[serde(deserialize_with = "list")]
    pub bootstrap_admins: Vec<String>,
    /// Seconds a user's roles and permissions are reused before being read again.
    pub authz_cache_ttl: u64,

    // Login (`POST /auth/token`).
    /// If set, passwords are checked by this facility service instead of locally (CalipsoPlus).
    #[serde(deserialize_with = "optional_text")]
    pub login_provider_url: Option<String>,
    /// Failed logins per username within `login_lockout` seconds before further attempts wait.
    pub login_max_failures: i64,
    pub login_lockout: u64,

    // Default quotas, for users with neither an override nor a role default.
    pub quota_sessions: i64,
    pub quota_jobs: i64,
    pub quota_desktops: i64,
    /// Millicores.
    pub quota_cpu: i64,
    /// MiB.
    pub quota_memory: i64,
    /// GiB.
    pub quota_storage: i64,

    // Streaming sessions.
    /// How sessions reach the app's stream; unset: `nvcf` when `nvcf_signaling_endpoint` is set,
    /// else `relay-host`.
    pub stream_platform: Option<StreamPlatform>,
    /// NVCF's signaling endpoint (`wss://grpc.nvcf.nvidia.com`): `POST https://.../sign_in` starts
    /// a session, the WebSocket at `wss://.../sign_in` carries its signals.
    #[serde(deserialize_with = "optional_text")]
    pub nvcf_signaling_endpoint: Option<String>,
    /// The SQS queue the bridge service takes sessions from (`nvcf`, on AWS); off: sessions on
    /// NVCF need bridges in the process (the emulator) and otherwise answer 503.
    #[serde(deserialize_with = "optional_text")]
    pub bridge_queue_url: Option<String>,
    /// Sessions one bridge task carries at once.
    pub bridge_capacity: u32,
    /// The port the bridge service serves the streaming portal's signaling sockets on (behind
    /// its load balancer; `GET /health` for its checks); 0: none.
    pub bridge_port: u16,
    /// Base URL of the streaming platform's function invocation endpoint; off: no sessions.
    #[serde(deserialize_with = "optional_text")]
    pub stream_launch_url: Option<String>,
    /// The platform's function list (app availability); off: every app's status is UNKNOWN.
    #[serde(deserialize_with = "optional_text")]
    pub stream_functions_url: Option<String>,
    /// Seconds the function list is reused (the Omniverse portal sample's setting).
    pub nvcf_cache_ttl: u64,
    /// Secret holding the platform API key (sent to the platform only).
    #[serde(deserialize_with = "text")]
    pub stream_api_key_secret_id: String,
    /// Longest wait for the platform to answer a launch, in milliseconds (then 504).
    pub stream_launch_timeout_ms: u64,
    /// The WebSocket URL clients and hosts connect to (the WebSocket API's stage URL).
    #[serde(deserialize_with = "text")]
    pub relay_url: String,
    /// The WebSocket API's Management API endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    #[serde(deserialize_with = "optional_text")]
    pub relay_management_endpoint: Option<String>,
    /// Where clients open the streaming portal's signaling path (`wss://portal.example.com`, the
    /// CloudFront distribution in front of the bridge service); unset: `relay_url`'s origin.
    #[serde(deserialize_with = "optional_text")]
    pub portal_socket_url: Option<String>,
    /// Seconds a session ticket stays usable.
    pub session_ticket_ttl: u64,
    /// Seconds a session may idle after its client left before it ends.
    pub session_idle_timeout: u64,
    /// Longest session, seconds (at most 8 h).
    pub session_ttl: u64,
    /// Seconds the host has to join before the session ends.
    pub session_host_timeout: u64,
    /// Live sessions of the same app one user may have.
    pub max_app_instances_count: i64,
    /// Messages buffered per side before the peer joins.
    pub relay_buffer_max: i64,
    /// Frames per second one relay connection may send, and the burst above that rate.
    pub relay_rate_per_second: u32,
    pub relay_rate_burst: u32,
    /// Seconds an ended session stays readable (then DynamoDB's TTL removes it).
    pub session_history_ttl: u64,

    // HTTP.
    /// Origins allowed by CORS; empty allows none. `*` allows any (never in production).
    #[serde(deserialize_with = "list")]
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Page size of listings when the client gives no `limit`.
    pub page_size_default: u32,
    /// Largest `limit` honoured; larger ones are clamped to it.
    pub page_size_max: u32,

    // RPC gateway (OpenCue's REST gateway).
    /// The gRPC servers behind the gateway; none: `cargo run` starts the demo Cuebot.
    #[serde(deserialize_with = "json_or_value")]
    pub rpc_upstreams: Vec<RpcUpstream>,
    /// Services callers may reach (`*`: every loaded one); services from
    /// `rpc_descriptor_sets` or reflection are always reachable.
    #[serde(deserialize_with = "list")]
    pub rpc_services: Vec<String>,
    /// Extra FileDescriptorSet files loaded at start-up (no rebuild for a new service).
    #[serde(deserialize_with = "list")]
    pub rpc_descriptor_sets: Vec<String>,
    /// Ask each upstream's gRPC server reflection for its services at start-up.
    pub rpc_reflection: bool,
    /// Deadline of one upstream call, in milliseconds (CueWeb gives up at 15 s; API Gateway at 30 s).
    pub rpc_deadline_ms: u64,
    pub rpc_unknown_fields: RpcUnknownFields,
    /// Role or token-group name -> the methods (`Service/Method` globs, `*` any run) its
    /// holders are limited to. Administrators are never limited.
    #[serde(deserialize_with = "json_or_value")]
    pub rpc_method_rules: std::collections::BTreeMap<String, Vec<String>>,
    /// Secret shared with the TURN servers (coturn's `static-auth-secret`): with it and
    /// `turn_uris`, each side's `welcome` carries `iceServers` with TURN credentials valid until
    /// the session's end.
    #[serde(deserialize_with = "optional_text")]
    pub turn_secret_id: Option<String>,
    /// The TURN servers' URIs (`turn:turn.example.org:3478?transport=udp`, `turns:...`).
    #[serde(deserialize_with = "list")]
    pub turn_uris: Vec<String>,

    /// Client headers forwarded upstream as metadata (all others are dropped).
    #[serde(deserialize_with = "list")]
    pub rpc_forward_headers: Vec<String>,
    /// Upstream response metadata returned as `Grpc-Metadata-<name>` headers.
    #[serde(deserialize_with = "list")]
    pub rpc_response_metadata: Vec<String>,

    // Remote desktops (CalipsoPlus) on Kubernetes.
    /// The Kubernetes API server desktops run on (`https://...`); off: `POST /desktops`
    /// answers 503 (the emulator starts its demo cluster instead).
    #[serde(deserialize_with = "optional_text")]
    pub desktops_cluster_url: Option<String>,
    /// Secret holding the cluster's bearer token (a service account's); none: no Authorization.
    #[serde(deserialize_with = "optional_text")]
    pub desktops_cluster_token_secret_id: Option<String>,
    /// The EKS cluster's name: when set, Portico is the function's own role to the cluster (a
    /// token from a presigned STS `GetCallerIdentity`, as `aws eks get-token` makes it).
    #[serde(deserialize_with = "optional_text")]
    pub desktops_eks_cluster: Option<String>,
    /// The cluster's CA certificate (PEM, or its base64 as EKS gives `certificateAuthority.data`):
    /// when set, the API server is trusted by it alone.
    #[serde(deserialize_with = "optional_text")]
    pub desktops_cluster_ca: Option<String>,
    /// Namespace of the desktops' Pods.
    #[serde(deserialize_with = "text")]
    pub desktops_namespace: String,
    /// The uid and gid desktops run as (the facility's).
    pub desktops_uid: u32,
    pub desktops_gid: u32,
    /// Longest wait for one cluster call, in milliseconds.
    pub desktops_timeout_ms: u64,
    /// Apache Guacamole's base URL, as users reach it; off: desktops cannot be opened (503).
    #[serde(deserialize_with = "optional_text")]
    pub guacamole_url: Option<String>,
    /// Secret holding Guacamole's `json-secret-key` (32 hex digits).
    #[serde(deserialize_with = "text")]
    pub guacamole_key_secret_id: String,
    /// A Kubernetes volume source (JSON, e.g. `{"persistentVolumeClaim": {"claimName":
    /// "datasets"}}`) holding the experiments' datasets (CalipsoPlus's
    /// `EXPERIMENTS_DATASETS_ROOT`): each session's `data_set_path` is mounted from it,
    /// read-only, at `/data/<session>`. Off: no datasets are mounted.
    #[serde(deserialize_with = "optional_text")]
    pub desktops_datasets_volume: Option<String>,
    /// A Kubernetes volume source (JSON) holding the users' results (`EXPERIMENTS_OUTPUT`):
    /// the folder named after the user is mounted read-write at `/results`. Off: none.
    #[serde(deserialize_with = "optional_text")]
    pub desktops_results_volume: Option<String>,
    /// Labels of guacd's Pods (`app=guacd`): with them, each desktop gets a NetworkPolicy that
    /// lets only guacd reach its port.
    pub desktops_guacd_labels: std::collections::BTreeMap<String, String>,

    // The facility's user office (CalipsoPlus's API.md).
    /// Its experiments endpoint (`DYNAMIC_EXPERIMENTS_DATA_RETRIEVAL_ENDPOINT`): a user's
    /// experiments are `GET <it>/<username>/`. Off: `GET /experiments` answers 503 and desktops
    /// start without an experiment.
    #[serde(deserialize_with = "optional_text")]
    pub experiments_url: Option<String>,
    /// Its authorization endpoint (`BACKEND_UO_IS_AUTHORIZED`): when set, starting a desktop
    /// without an experiment needs its `{"result": true}` for the user.
    #[serde(deserialize_with = "optional_text")]
    pub facility_authorize_url: Option<String>,
    /// Secret holding the user office's HTTP Basic credentials, JSON `{"username", "password"}`.
    #[serde(deserialize_with = "text")]
    pub user_office_secret_id: String,
    /// Seconds a user's experiments and the facility's authorization are reused.
    pub user_office_cache_ttl: u64,

    // Jobs (OGDC): recipes run as Argo Workflows.
    /// Argo Server's base URL (`https://argo.example.org:2746`); off: `POST /jobs` answers
    /// 503 (the emulator starts its demo engine instead).
    #[serde(deserialize_with = "optional_text")]
    pub argo_server_url: Option<String>,
    /// Secret holding Argo's bearer token (`Bearer ` omitted); none: no Authorization header.
    #[serde(deserialize_with = "optional_text")]
    pub argo_token_secret_id: Option<String>,
    /// Kubernetes namespace of the workflows.
    #[serde(deserialize_with = "text")]
    pub argo_namespace: String,
    /// Longest wait for one Argo call, in milliseconds.
    pub argo_timeout_ms: u64,
    /// Image every recipe step runs in.
    #[serde(deserialize_with = "text")]
    pub job_image: String,
    #[serde(deserialize_with = "text")]
    pub job_service_account: String,
    /// PersistentVolumeClaim of runs and published outputs.
    #[serde(deserialize_with = "text")]
    pub job_volume_claim: String,
    /// Seconds Argo keeps a finished workflow; with a `temporary` output, the longer one.
    pub job_ttl: u64,
    pub job_ttl_temporary: u64,
    /// Partitions of a parallel recipe running at once.
    pub job_parallelism: u32,
    /// Authorization group of a job submitted without one (`job.submit` is needed on it).
    #[serde(deserialize_with = "text")]
    pub job_default_group: String,
    /// Largest log answer of `GET /jobs/{id}/logs`, in bytes (the newest lines are kept).
    pub job_log_max_bytes: usize,
    /// Bucket of `temporary` outputs when Argo's answer names none (its default artifact
    /// repository's bucket).
    #[serde(deserialize_with = "optional_text")]
    pub job_output_bucket: Option<String>,
    /// Seconds a `temporary` output's download link stays valid (OGDC: two hours).
    pub job_output_link_ttl: u64,
    /// Seconds an `Idempotency-Key` is remembered.
    pub idempotency_ttl: u64,
    /// Seconds a finished job stays listed and readable.
    pub job_history_ttl: u64,
    /// Where `github://org:repo@ref/path` recipes are read from (raw file content).
    #[serde(deserialize_with = "text")]
    pub recipe_github_base_url: String,
    /// `org/repo` or `org/*` whose recipes may be read; none: no recipe is ever fetched.
    #[serde(deserialize_with = "list")]
    pub recipe_github_allow: Vec<String>,
    /// Role given to users created through `/ogdc/create_user` (grant it `job.submit` on
    /// `job_default_group`); none: no role.
    #[serde(deserialize_with = "optional_text")]
    pub ogdc_user_role: Option<String>,
}

/// A configuration that cannot be used; the process refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The base of the streaming portal's signaling sockets (`portal_socket_url`, else
    /// `relay_url`'s scheme and authority).
    pub fn portal_socket_base(&self) -> String {
        match &self.portal_socket_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => match self.relay_url.split_once("://") {
                Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
                None => self.relay_url.clone(),
            },
        }
    }

    /// The streaming platform in use (see [`Config::stream_platform`]).
    pub fn platform(&self) -> StreamPlatform {
        self.stream_platform.unwrap_or(match self.nvcf_signaling_endpoint {
            Some(_) => StreamPlatform::Nvcf,
            None => StreamPlatform::RelayHost,
        })
    }

    /// Loads the configuration: the defaults, then the settings file (`PORTICO_SETTINGS`, else
    /// `./settings.toml` if present), then `PORTICO_*` variables; then validates it.
    pub fn load() -> Result<Config, ConfigError> {
        load::load()
    }
}

#[cfg(test)]
mod tests;
