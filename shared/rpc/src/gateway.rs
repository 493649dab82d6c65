//! One gateway call, from an authenticated caller's JSON to the upstream's answer as JSON:
//! find the method, check who may call it, transcode, call with identity metadata, transcode
//! back. HTTP concerns (routes, compression, size) stay in the function.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use portico_core::Config;
use portico_core::authz::{Action, Principal};
use portico_core::web::IGNORED_FIELDS_HEADER;
use serde_json::Value;
use tonic::Code;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use crate::descriptors::Descriptors;
use crate::status::RpcError;
use crate::transcode::{self, UnknownFields};
use crate::upstream::Upstreams;

/// The RPC gateway, built once per process: everything a call needs from the configuration
/// is parsed here, not per request.
pub struct Gateway {
    /// The descriptors and the listing they make: decoded on first use when they are
    /// OpenCue's embedded set alone (a thread started with the gateway decodes them
    /// meanwhile), at once when start-up must read files or ask upstreams.
    known: OnceLock<Known>,
    /// `rpc_services`, for a deferred [`Known`].
    exposed: Vec<String>,
    pub upstreams: Upstreams,
    unknown_fields: UnknownFields,
    /// `rpc_method_rules`, each pattern split at its `*`s.
    method_rules: BTreeMap<String, Vec<Glob>>,
    /// `rpc_forward_headers`: the client header and the metadata key it becomes.
    forwarded: Vec<(HeaderName, MetadataKey<tonic::metadata::Ascii>)>,
    /// `rpc_response_metadata`: the upstream's name and the `grpc-metadata-<name>` header.
    returned: Vec<(HeaderName, HeaderName)>,
}

/// What the gateway knows of the services it serves.
struct Known {
    descriptors: Descriptors,
    /// `GET /rpc/services`, fixed once descriptors and upstreams are.
    listing: Listing,
}

/// A successful call: the response message as JSON and the metadata headers to return.
pub struct Answer {
    pub body: Value,
    pub headers: HeaderMap,
}

impl Gateway {
    /// OpenCue's descriptors, the configured sets, and (with `rpc_reflection`) what each
    /// upstream reports; channels are created, not connected (reflection connects them).
    pub async fn new(config: &Config) -> Result<Gateway, String> {
        let deadline = Duration::from_millis(config.rpc_deadline_ms);
        let upstreams = Upstreams::new(&config.rpc_upstreams, deadline).map_err(|e| e.to_string())?;
        let known = OnceLock::new();
        if config.rpc_reflection || !config.rpc_descriptor_sets.is_empty() {
            let descriptors = Self::learn(config, &upstreams).await?;
            let _ = known.set(Known { listing: listing(&descriptors, &upstreams), descriptors });
        } else {
            // Decoding OpenCue's API takes most of a cold start's init: a thread does it while
            // the function reaches the Runtime API and reads its first event.
            std::thread::spawn(crate::descriptors::decode_opencue);
        }
        // Names that are not valid headers (or metadata keys) could never match: skipped.
        let forwarded = config
            .rpc_forward_headers
            .iter()
            .filter_map(|name| {
                let header = HeaderName::from_bytes(name.as_bytes()).ok()?;
                let key = MetadataKey::from_bytes(header.as_str().as_bytes()).ok()?;
                Some((header, key))
            })
            .collect();
        let returned = config
            .rpc_response_metadata
            .iter()
            .filter_map(|name| {
                let source = HeaderName::from_bytes(name.as_bytes()).ok()?;
                let header = HeaderName::from_bytes(format!("grpc-metadata-{source}").as_bytes()).ok()?;
                Some((source, header))
            })
            .collect();
        let method_rules = config
            .rpc_method_rules
            .iter()
            .map(|(role, patterns)| (role.clone(), patterns.iter().map(|p| Glob::new(p)).collect()))
            .collect();
        Ok(Gateway {
            known,
            exposed: config.rpc_services.clone(),
            upstreams,
            unknown_fields: config.rpc_unknown_fields,
            method_rules,
            forwarded,
            returned,
        })
    }

    /// The configured descriptors, with what each upstream's reflection reports.
    async fn learn(config: &Config, upstreams: &Upstreams) -> Result<Descriptors, String> {
        let mut descriptors = Descriptors::configured(config).map_err(|e| e.to_string())?;
        if config.rpc_reflection {
            for upstream in upstreams.all() {
                let endpoint = &upstream.config.endpoint;
                // An upstream without reflection still serves the services already described.
                match crate::reflection::learn(&mut descriptors, upstream).await {
                    Ok(found) => tracing::info!(endpoint = %endpoint, services = found.len(), "rpc reflection"),
                    Err(e) => tracing::warn!(endpoint = %endpoint, error = %e, "rpc reflection failed"),
                }
            }
        }
        Ok(descriptors)
    }

    fn known(&self) -> &Known {
        self.known.get_or_init(|| {
            let descriptors = Descriptors::opencue(&self.exposed);
            Known { listing: listing(&descriptors, &self.upstreams), descriptors }
        })
    }

    /// The services the gateway knows, and which callers may reach.
    pub fn descriptors(&self) -> &Descriptors {
        &self.known().descriptors
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
        let descriptor = self.descriptors().method(service, method).ok_or_else(not_found)?;
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
        let (request, ignored) = transcode::request_noting_ignored(&descriptor.input(), body, self.unknown_fields)
            .map_err(|e| RpcError::new(StatusCode::BAD_REQUEST, Code::InvalidArgument, e.0))?;
        let metadata = self.metadata(who, headers);
        let (message, returned) = upstream.call(&descriptor, request, metadata, self.descriptors().pool()).await?;
        let mut headers = self.returned_headers(returned);
        // Ignored fields are not silent: a typo shows up here (names only, never values).
        if !ignored.is_empty()
            && let Ok(v) = http::HeaderValue::from_str(&ignored.join(", "))
        {
            headers.insert(IGNORED_FIELDS_HEADER, v);
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
        let patterns: Vec<&Glob> = held.filter_map(|r| self.method_rules.get(r)).flatten().collect();
        let full = format!("{service}/{method}");
        if patterns.is_empty() || patterns.iter().any(|p| p.matches(&full)) {
            return Ok(());
        }
        Err(RpcError::new(StatusCode::FORBIDDEN, Code::PermissionDenied, format!("your roles do not allow {full}")))
    }

    /// Identity from the verified token (never from the client), then the allow-listed client
    /// headers.
    fn metadata(&self, who: &Principal, headers: &HeaderMap) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for (header, key) in &self.forwarded {
            for value in headers.get_all(header) {
                if let Ok(v) = MetadataValue::try_from(value.as_bytes()) {
                    metadata.append(key.clone(), v);
                }
            }
        }
        let identity = [
            ("x-portico-user", who.username.as_str()),
            ("x-portico-token-source", who.source.as_str()),
            ("x-portico-admin", if who.admin { "true" } else { "false" }),
        ];
        for (key, value) in identity {
            if let Ok(v) = MetadataValue::try_from(value) {
                metadata.insert(key, v);
            }
        }
        metadata
    }

    /// Allow-listed upstream response metadata as `Grpc-Metadata-<name>` headers.
    fn returned_headers(&self, returned: MetadataMap) -> HeaderMap {
        let upstream = returned.into_headers();
        let mut headers = HeaderMap::new();
        for (source, header) in &self.returned {
            for value in upstream.get_all(source) {
                headers.append(header.clone(), value.clone());
            }
        }
        headers
    }

    /// `GET /rpc/services`: every exposed service with its methods and message names.
    pub fn listing(&self) -> &Listing {
        &self.known().listing
    }
}

/// `GET /rpc/services`: every exposed service, with its methods.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = RpcServices)]
pub struct Listing {
    pub services: Vec<RpcService>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RpcService {
    #[schema(example = "show.ShowInterface")]
    pub name: String,
    /// The upstream's authorization group.
    pub group: Option<String>,
    pub methods: Vec<RpcMethod>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RpcMethod {
    pub name: String,
    pub path: String,
    pub request: String,
    pub response: String,
}

/// The `GET /rpc/services` answer for `descriptors` served by `upstreams`.
fn listing(descriptors: &Descriptors, upstreams: &Upstreams) -> Listing {
    let services = descriptors
        .services()
        .into_iter()
        .map(|s| {
            let upstream = upstreams.for_service(s.full_name());
            let methods = s
                .methods()
                .map(|m| RpcMethod {
                    name: m.name().to_owned(),
                    path: format!("/{}/{}", s.full_name(), m.name()),
                    request: m.input().full_name().to_owned(),
                    response: m.output().full_name().to_owned(),
                })
                .collect();
            RpcService { name: s.full_name().to_owned(), group: upstream.map(|u| u.config.group.clone()), methods }
        })
        .collect();
    Listing { services }
}

/// A method pattern: `*` matches any run of characters; everything else literally. Kept
/// split at its `*`s, as every call matches it.
pub struct Glob {
    /// The literal runs between `*`s; one run: no `*`.
    parts: Vec<String>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob { parts: pattern.split('*').map(str::to_owned).collect() }
    }

    pub fn matches(&self, text: &str) -> bool {
        let parts = &self.parts;
        if parts.len() == 1 {
            return parts[0] == text;
        }
        let (first, last) = (parts[0].as_str(), parts[parts.len() - 1].as_str());
        if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        for part in &parts[1..parts.len() - 1] {
            match rest.find(part.as_str()) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;
    use portico_core::auth::TokenSource;

    fn glob(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn method_patterns() {
        assert!(glob("*/Get*", "show.ShowInterface/GetShows"));
        assert!(glob("show.ShowInterface/*", "show.ShowInterface/FindShow"));
        assert!(!glob("*/Get*", "show.ShowInterface/FindShow"));
        assert!(!glob("show.*/Find*", "job.JobInterface/FindJob"));
        assert!(glob("*", "anything/At"));
        assert!(glob("job.JobInterface/GetFrames", "job.JobInterface/GetFrames"));
        assert!(!glob("a*a", "a"));
        assert!(glob("a*a", "aa") && glob("a**b", "ab") && glob("*.*/*", "x.Y/Z"));
        assert!(!glob("job.*", "show.ShowInterface/GetShows"));
    }

    #[test]
    fn the_token_source_metadata_is_as_it_was() {
        // `x-portico-token-source` used to be the lowercased Debug name; it is the serde name.
        for source in [TokenSource::Portico, TokenSource::Oidc, TokenSource::Web] {
            assert_eq!(source.as_str(), format!("{source:?}").to_ascii_lowercase());
            assert_eq!(serde_json::to_value(source).unwrap(), source.as_str());
        }
    }
}
