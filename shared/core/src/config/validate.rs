//! Refusing settings that cannot work, before the process starts.

use super::{Config, ConfigError};

impl Config {
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
            ("desktops_timeout_ms", self.desktops_timeout_ms),
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
        for (name, volume) in [
            ("desktops_datasets_volume", &self.desktops_datasets_volume),
            ("desktops_results_volume", &self.desktops_results_volume),
        ] {
            if let Some(volume) = volume {
                volume_source(volume).map_err(|why| ConfigError(format!("{name} {why}")))?;
            }
        }
        if let Some(ca) = &self.desktops_cluster_ca {
            let pem = ca.trim().starts_with("-----BEGIN")
                || base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    ca.split_whitespace().collect::<String>(),
                )
                .is_ok_and(|b| b.starts_with(b"-----BEGIN"));
            if !pem {
                return Err(ConfigError("desktops_cluster_ca must be a PEM certificate or its base64".into()));
            }
        }
        if self.user_office_cache_ttl > 3600 {
            return Err(ConfigError("user_office_cache_ttl is at most 3600 seconds".into()));
        }
        if self.login_max_failures < 1 {
            return Err(ConfigError("login_max_failures must be at least 1".into()));
        }
        Ok(())
    }
}

/// The Kubernetes volume kinds a desktop's datasets and results may come from.
pub const VOLUME_KINDS: [&str; 5] = ["persistentVolumeClaim", "nfs", "hostPath", "csi", "cephfs"];

/// A volume source setting as its JSON object: exactly one of [`VOLUME_KINDS`], whose value is
/// an object.
pub fn volume_source(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("must be a JSON object (a volume source): {e}"))?;
    let object = value.as_object().cloned().ok_or("must be a JSON object (a volume source)")?;
    match object.iter().next() {
        Some((kind, source)) if object.len() == 1 && VOLUME_KINDS.contains(&kind.as_str()) && source.is_object() => {
            Ok(object)
        }
        _ => Err(format!("must hold exactly one of {} (an object)", VOLUME_KINDS.join(", "))),
    }
}
