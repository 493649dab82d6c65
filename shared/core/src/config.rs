//! Configuration: one typed struct, loaded once per process.
//!
//! Sources, later ones winning (layered by figment, see `config/load.rs`): the defaults below, a TOML
//! settings file (`PORTICO_SETTINGS`, else `./settings.toml` if present), then
//! `PORTICO_<SETTING>` environment variables, `__` separating nested keys. Every setting is
//! documented in the README's configuration table.

mod load;

use serde::{Deserialize, Serialize};

use load::{json_or_value, list, optional_text, text};

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
    /// Millicores.
    pub quota_cpu: i64,
    /// MiB.
    pub quota_memory: i64,
    /// GiB.
    pub quota_storage: i64,

    // Streaming sessions.
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
    /// Client headers forwarded upstream as metadata (all others are dropped).
    #[serde(deserialize_with = "list")]
    pub rpc_forward_headers: Vec<String>,
    /// Upstream response metadata returned as `Grpc-Metadata-<name>` headers.
    #[serde(deserialize_with = "list")]
    pub rpc_response_metadata: Vec<String>,

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

impl Default for Config {
    fn default() -> Self {
        Config {
            store: StoreKind::Dynamodb,
            table_name: "portico".into(),
            dynamodb_endpoint: None,
            dynamodb_connect_timeout_ms: 1_000,
            dynamodb_attempt_timeout_ms: 2_000,
            dynamodb_timeout_ms: 5_000,
            dynamodb_max_attempts: 3,
            secrets: SecretsKind::Secretsmanager,
            secrets_cache_ttl: 300,
            local_secrets: Default::default(),
            signing_keys_secret_id: "portico/signing-keys".into(),
            token_issuer: "portico".into(),
            token_audience: "portico".into(),
            access_token_ttl: 3600,
            token_leeway: 30,
            web_token_secret_id: None,
            web_token_issuer: None,
            web_token_audience: None,
            oidc_jwks_uri: None,
            oidc_algorithms: vec!["RS256".into(), "ES256".into()],
            oidc_issuer: None,
            oidc_audience: None,
            oidc_jwks_ttl: 900,
            oidc_jwks_min_refresh: 60,
            oidc_username_claim: "preferred_username".into(),
            oidc_groups_claim: "groups".into(),
            oidc_userinfo_endpoint: None,
            oidc_userinfo_ttl: 900,
            console_oidc_client_id: None,
            admin_group: "admin".into(),
            bootstrap_admins: vec![],
            authz_cache_ttl: 30,
            login_provider_url: None,
            login_max_failures: 5,
            login_lockout: 900,
            quota_sessions: 2,
            quota_jobs: 4,
            quota_cpu: 8000,
            quota_memory: 16384,
            quota_storage: 100,
            stream_launch_url: None,
            stream_functions_url: None,
            nvcf_cache_ttl: 60,
            stream_api_key_secret_id: "portico/stream-api-key".into(),
            stream_launch_timeout_ms: 10_000,
            relay_url: "ws://127.0.0.1:8000/ws".into(),
            relay_management_endpoint: None,
            session_ticket_ttl: 60,
            session_idle_timeout: 300,
            session_ttl: 8 * 3600,
            session_host_timeout: 120,
            max_app_instances_count: 1,
            relay_buffer_max: 64,
            session_history_ttl: 7 * 24 * 3600,
            relay_rate_per_second: 50,
            relay_rate_burst: 100,
            allowed_origins: vec![],
            max_body_bytes: 64 * 1024,
            page_size_default: 25,
            page_size_max: 100,
            rpc_upstreams: vec![],
            rpc_services: OPENCUE_GATEWAY_SERVICES.iter().map(|s| s.to_string()).collect(),
            rpc_descriptor_sets: vec![],
            rpc_reflection: false,
            rpc_deadline_ms: 10_000,
            rpc_unknown_fields: RpcUnknownFields::Ignore,
            rpc_method_rules: Default::default(),
            rpc_forward_headers: vec!["x-request-id".into(), "traceparent".into()],
            rpc_response_metadata: vec!["content-type".into(), "grpc-accept-encoding".into()],
            argo_server_url: None,
            argo_token_secret_id: None,
            argo_namespace: "portico".into(),
            argo_timeout_ms: 10_000,
            job_image: "ghcr.io/qgreenland-net/ogdc-runner:latest".into(),
            job_service_account: "argo-workflow".into(),
            job_volume_claim: "portico-jobs".into(),
            job_ttl: 86_400,
            job_ttl_temporary: 7 * 86_400,
            job_parallelism: 5,
            job_default_group: "jobs".into(),
            job_log_max_bytes: 1024 * 1024,
            job_output_bucket: None,
            job_output_link_ttl: 7200,
            idempotency_ttl: 86_400,
            job_history_ttl: 30 * 86_400,
            recipe_github_base_url: "https://raw.githubusercontent.com".into(),
            recipe_github_allow: vec![],
            ogdc_user_role: Some("ogdc-user".into()),
        }
    }
}

/// A configuration that cannot be used; the process refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads the configuration: the defaults, then the settings file (`PORTICO_SETTINGS`, else
    /// `./settings.toml` if present), then `PORTICO_*` variables; then validates it.
    pub fn load() -> Result<Config, ConfigError> {
        load::load()
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.page_size_max == 0 || self.page_size_default == 0 || self.page_size_default > self.page_size_max {
            return Err(ConfigError("need 0 < page_size_default <= page_size_max".into()));
        }
        if self.page_size_max > 1000 {
            return Err(ConfigError("page_size_max is at most 1000".into()));
        }
        if self.token_leeway > 300 {
            return Err(ConfigError("token_leeway is at most 300 seconds".into()));
        }
        if self.admin_group.is_empty() {
            return Err(ConfigError("admin_group must not be empty".into()));
        }
        if self.table_name.is_empty() {
            return Err(ConfigError("table_name must not be empty".into()));
        }
        if self.oidc_jwks_uri.is_some() && self.oidc_issuer.is_none() {
            return Err(ConfigError("oidc_issuer is required when oidc_jwks_uri is set".into()));
        }
        if self.access_token_ttl == 0 || self.access_token_ttl > 86_400 {
            return Err(ConfigError("access_token_ttl must be between 1 and 86400 seconds".into()));
        }
        if self.session_ttl == 0 || self.session_ttl > 8 * 3600 {
            return Err(ConfigError("session_ttl must be between 1 and 28800 seconds".into()));
        }
        if self.max_app_instances_count < 1 || self.relay_buffer_max < 1 {
            return Err(ConfigError("max_app_instances_count and relay_buffer_max must be at least 1".into()));
        }
        if self.relay_rate_per_second < 1 || self.relay_rate_burst < 1 {
            return Err(ConfigError("relay_rate_per_second and relay_rate_burst must be at least 1".into()));
        }
        // What a request waits for ends before API Gateway gives up on the request (30 s).
        for (name, ms) in [
            ("rpc_deadline_ms", self.rpc_deadline_ms),
            ("stream_launch_timeout_ms", self.stream_launch_timeout_ms),
            ("argo_timeout_ms", self.argo_timeout_ms),
            ("dynamodb_timeout_ms", self.dynamodb_timeout_ms),
        ] {
            if ms == 0 || ms > 25_000 {
                return Err(ConfigError(format!("{name} must be between 1 and 25000 (API Gateway stops at 30 s)")));
            }
        }
        if self.dynamodb_connect_timeout_ms == 0 || self.dynamodb_attempt_timeout_ms == 0 {
            return Err(ConfigError(
                "dynamodb_connect_timeout_ms and dynamodb_attempt_timeout_ms must be at least 1".into(),
            ));
        }
        if self.dynamodb_attempt_timeout_ms > self.dynamodb_timeout_ms {
            return Err(ConfigError("dynamodb_attempt_timeout_ms may not exceed dynamodb_timeout_ms".into()));
        }
        if !(1..=10).contains(&self.dynamodb_max_attempts) {
            return Err(ConfigError("dynamodb_max_attempts must be between 1 and 10".into()));
        }
        if let Some(u) = self
            .rpc_upstreams
            .iter()
            .find(|u| !u.endpoint.starts_with("http://") && !u.endpoint.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "rpc_upstreams: endpoint of group '{}' must be http:// or https://",
                u.group
            )));
        }
        if let Some(u) = self.rpc_upstreams.iter().find(|u| u.ca_file.is_some() && !u.endpoint.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "rpc_upstreams: ca_file of group '{}' needs an https:// endpoint",
                u.group
            )));
        }
        // Identity metadata comes from the verified token only; credentials never go upstream.
        let never = |h: &String| {
            let h = h.to_ascii_lowercase();
            h.starts_with("x-portico-")
                || h.starts_with("grpc-")
                || h.starts_with(':')
                || ["authorization", "cookie", "host", "content-type", "content-length", "te", "connection"]
                    .contains(&h.as_str())
        };
        if let Some(h) = self.rpc_forward_headers.iter().find(|h| never(h)) {
            return Err(ConfigError(format!("rpc_forward_headers may not forward '{h}'")));
        }
        if self.job_output_link_ttl == 0 || self.job_output_link_ttl > 7 * 86_400 {
            return Err(ConfigError("job_output_link_ttl must be between 1 and 604800 seconds (S3's longest)".into()));
        }
        if self.job_parallelism == 0 || self.job_log_max_bytes == 0 || self.idempotency_ttl == 0 {
            return Err(ConfigError(
                "job_parallelism, job_log_max_bytes and idempotency_ttl must be at least 1".into(),
            ));
        }
        if !self.recipe_github_base_url.starts_with("https://")
            && !self.recipe_github_base_url.starts_with("http://127.0.0.1")
        {
            return Err(ConfigError("recipe_github_base_url must be https:// (or http://127.0.0.1 for tests)".into()));
        }
        if self.login_max_failures < 1 {
            return Err(ConfigError("login_max_failures must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_defaults_allow_no_origin() {
        assert!(Config::default().allowed_origins.is_empty());
        assert_eq!(Config::default().store, StoreKind::Dynamodb);
    }

    #[test]
    fn bad_combinations_are_refused() {
        assert!(Config { page_size_default: 500, ..Config::default() }.validate().is_err());
        assert!(Config { rpc_deadline_ms: 30_000, ..Config::default() }.validate().is_err());
        assert!(Config { rpc_forward_headers: vec!["Authorization".into()], ..Config::default() }.validate().is_err());
        assert!(Config { dynamodb_timeout_ms: 0, ..Config::default() }.validate().is_err());
        assert!(Config { dynamodb_attempt_timeout_ms: 6_000, ..Config::default() }.validate().is_err());
        assert!(Config { dynamodb_max_attempts: 0, ..Config::default() }.validate().is_err());
        assert!(Config { stream_launch_timeout_ms: 30_000, ..Config::default() }.validate().is_err());
    }
}
