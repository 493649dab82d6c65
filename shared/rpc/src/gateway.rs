//! One gateway call, from an authenticated caller's JSON to the upstream's answer as JSON:
//! find the method, check who may call it, transcode, call with identity metadata, transcode
//! back. HTTP concerns (routes, compression, size) stay in the function.

use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use portico_core::Config;
use portico_core::authz::{Action, Principal};
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::descriptors::Descriptors;
use crate::status::RpcError;
use crate::transcode;
use crate::upstream::Upstreams;

/// The response header listing request fields ignored under `rpc_unknown_fields = "ignore"`.
pub const IGNORED_FIELDS: &str = "portico-ignored-fields";

/// The RPC gateway, built once per process.
pub struct Gateway {
    pub descriptors: Descriptors,
    pub upstreams: Upstreams,
    config: Config,
}

/// A successful call: the response message as JSON and the metadata headers to return.
pub struct Answer {
    pub body: Value,
    pub headers: HeaderMap,
}

impl Gateway {
    /// OpenCue's descriptors, the configured sets, and (with `rpc_reflection`) what each
    /// upstream reports; channels are created, not connected.
    pub async fn new(config: &Config) -> Result<Gateway, String> {
        let mut descriptors = Descriptors::configured(config).map_err(|e| e.to_string())?;
        let deadline = Duration::from_millis(config.rpc_deadline_ms);
        if config.rpc_reflection {
            for upstream in &config.rpc_upstreams {
                // An upstream without reflection still serves the services already described.
                match crate::reflection::learn(&mut descriptors, &upstream.endpoint, deadline).await {
                    Ok(found) => {
                        tracing::info!(endpoint = %upstream.endpoint, services = found.len(), "rpc reflection")
                    }
                    Err(e) => tracing::warn!(endpoint = %upstream.endpoint, error = %e, "rpc reflection failed"),
                }
            }
        }
        let upstreams = Upstreams::new(&config.rpc_upstreams, deadline).map_err(|e| e.to_string())?;
        Ok(Gateway { descriptors, upstreams, config: config.clone() })
    }

    /// Calls `service`/`method` for `who` with the JSON `body`; `headers` are the client's.
    pub async fn call(
        &self,
        who: &Principal,
        service: &str,
        method: &str,
        body: &[u8],
        headers: &HeaderMap,
    ) -> Result<Answer, RpcError> {
        let not_found =
            || RpcError::new(StatusCode::NOT_FOUND, Code::NotFound, format!("no method {service}/{method}"));
        let descriptor = self.descriptors.method(service, method).ok_or_else(not_found)?;
        if descriptor.is_client_streaming() || descriptor.is_server_streaming() {
            return Err(RpcError::new(
                StatusCode::NOT_IMPLEMENTED,
                Code::Unimplemented,
                "streaming methods are not served",
            ));
        }
        let upstream = self.upstreams.for_service(service).ok_or_else(|| {
            RpcError::new(StatusCode::NOT_FOUND, Code::NotFound, format!("no upstream serves {service}"))
        })?;
        who.require(Action::RpcCall, &upstream.config.group)?;
        self.check_method_rules(who, service, method)?;
        let (request, ignored) =
            transcode::request_noting_ignored(&descriptor.input(), body, self.config.rpc_unknown_fields)
                .map_err(|e| RpcError::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, e.0))?;
        let metadata = self.metadata(who, headers);
        let deadline = self.upstreams.deadline();
        let (message, returned) =
            upstream.call(&descriptor, request, metadata, deadline, self.descriptors.pool()).await?;
        let mut headers = self.returned_headers(&returned);
        // Ignored fields are not silent: a typo shows up here (names only, never values).
        if !ignored.is_empty()
            && let Ok(v) = http::HeaderValue::from_str(&ignored.join(", "))
        {
            headers.insert(IGNORED_FIELDS, v);
        }
        Ok(Answer { body: transcode::response(&message), headers })
    }

    /// `rpc_method_rules`: a caller holding a listed role (or token group) is limited to the
    /// union of its patterns; administrators are never limited.
    fn check_method_rules(&self, who: &Principal, service: &str, method: &str) -> Result<(), RpcError> {
        if who.admin {
            return Ok(());
        }
        let held = who.roles.iter().chain(who.groups.iter());
        let patterns: Vec<&String> = held.filter_map(|r| self.config.rpc_method_rules.get(r)).flatten().collect();
        let full = format!("{service}/{method}");
        if patterns.is_empty() || patterns.iter().any(|p| glob(p, &full)) {
            return Ok(());
        }
        Err(RpcError::new(StatusCode::FORBIDDEN, Code::PermissionDenied, format!("your roles do not allow {full}")))
    }

    /// Identity from the verified token (never from the client), then the allow-listed client
    /// headers.
    fn metadata(&self, who: &Principal, headers: &HeaderMap) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for name in &self.config.rpc_forward_headers {
            let Ok(key) = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()) else { continue };
            for value in headers.get_all(name.as_str()) {
                if let Ok(v) = MetadataValue::try_from(value.as_bytes()) {
                    metadata.append(key.clone(), v);
                }
            }
        }
        let identity = [
            ("x-portico-user", who.username.clone()),
            ("x-portico-token-source", format!("{:?}", who.source).to_ascii_lowercase()),
            ("x-portico-admin", who.admin.to_string()),
        ];
        for (key, value) in identity {
            if let Ok(v) = MetadataValue::try_from(value.as_str()) {
                metadata.insert(key, v);
            }
        }
        metadata
    }

    /// Allow-listed upstream response metadata as `Grpc-Metadata-<name>` headers.
    fn returned_headers(&self, returned: &MetadataMap) -> HeaderMap {
        let upstream = returned.clone().into_headers();
        let mut headers = HeaderMap::new();
        for name in &self.config.rpc_response_metadata {
            for value in upstream.get_all(name.as_str()) {
                if let Ok(header) = HeaderName::from_bytes(format!("grpc-metadata-{name}").as_bytes()) {
                    headers.append(header, value.clone());
                }
            }
        }
        headers
    }

    /// `GET /rpc/services`: every exposed service with its methods and message names.
    pub fn listing(&self) -> Value {
        let services: Vec<Value> = self
            .descriptors
            .services()
            .into_iter()
            .map(|s| {
                let upstream = self.upstreams.for_service(s.full_name());
                let methods: Vec<Value> = s
                    .methods()
                    .map(|m| {
                        json!({
                            "name": m.name(),
                            "path": format!("/{}/{}", s.full_name(), m.name()),
                            "request": m.input().full_name(),
                            "response": m.output().full_name(),
                        })
                    })
                    .collect();
                json!({"name": s.full_name(), "group": upstream.map(|u| u.config.group.clone()), "methods": methods})
            })
            .collect();
        json!({"services": services})
    }
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn method_patterns() {
        assert!(glob("*/Get*", "show.ShowInterface/GetShows"));
        assert!(glob("show.ShowInterface/*", "show.ShowInterface/FindShow"));
        assert!(!glob("*/Get*", "show.ShowInterface/FindShow"));
        assert!(!glob("show.*/Find*", "job.JobInterface/FindJob"));
        assert!(glob("*", "anything/At"));
        assert!(glob("job.JobInterface/GetFrames", "job.JobInterface/GetFrames"));
        assert!(!glob("a*a", "a"));
    }
}
