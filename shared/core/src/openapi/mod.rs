//! The OpenAPI 3.1 document of every HTTP route, generated from the code: the bodies are the
//! handlers' own types (`ToSchema` derived where they live, in [`schemas`] where a function
//! builds its answer in place), the error codes come from [`Error::code`]. The RPC gateway's
//! methods are added at run time from its descriptors (`portico_rpc::openapi`).
//!
//! - [`spec`]: the document without the RPC methods; [`bearer_security`]: who may call.
//! - [`docs`]: `GET /docs`, the human page (Redoc, vendored), and its asset.

pub mod docs;
mod params;
pub mod schemas;

pub use params::{EnvironmentPath, IfMatch, IfNoneMatch, Paging, RolePath, SlugPath, UserPath};

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use utoipa::OpenApi as _;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, Ref, ResponseBuilder, Tag};

use crate::{Error, codes};

/// The security schemes: each kind of bearer token Portico accepts.
pub const SCHEMES: [(&str, &str); 4] = [
    ("portico", "Portico's own access token (ES256, `typ: at+jwt`) from `POST /auth/token`."),
    ("oidc", "An OpenID Connect token from the configured provider (`oidc_jwks_uri`, asymmetric algorithms)."),
    ("webToken", "An HS256 token signed by a trusted web system (`web_token_secret_id`), e.g. CueWeb's."),
    ("password", "The OAuth2 password grant at `POST /auth/token`; send the token as a bearer."),
];

/// Any one of Portico's bearer tokens (the alternatives of an authenticated route).
pub fn bearer_security() -> Vec<SecurityRequirement> {
    SCHEMES.iter().map(|(name, _)| SecurityRequirement::new::<_, _, &str>(*name, [])).collect()
}

/// `{}`: no credentials at all.
fn is_empty_requirement(r: &SecurityRequirement) -> bool {
    serde_json::to_value(r).ok().is_none_or(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

/// The streaming portal's cookie: its IdP's ID token, which its own routes also take.
pub const PORTAL_COOKIE_SCHEME: &str = "portalIdToken";

/// The document of every route but the RPC methods, which `portico_rpc::openapi::add_methods`
/// adds from the loaded descriptors.
pub fn spec() -> OpenApi {
    let mut api = schemas::Components::openapi();
    api.info = InfoBuilder::new()
        .title("Portico")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
        .build();
    api.tags = Some(
        [
            ("apps", "The apps catalog: apps a portal lists and streams."),
            ("auth", "Tokens out, public keys, the current user."),
            ("admin", "Users, roles, permissions and quotas; administrators only."),
            ("sessions", "Streaming sessions; the signaling itself is the WebSocket API (`ws_url`)."),
            ("jobs", "OGDC recipes and registered templates run as Argo Workflows."),
            ("desktops", "Remote desktops (CalipsoPlus): the environments users start."),
            ("ogdc", "The OGDC service's API for the `ogdc-runner` CLI (errors as `{\"detail\"}`)."),
            ("rpc", "The RPC gateway's listing; each method is its own route, tagged by service."),
            ("meta", "Health, this document and its page."),
        ]
        .map(|(name, about)| {
            let mut tag = Tag::new(name);
            tag.description = Some(about.into());
            tag
        })
        .into(),
    );
    let components = api.components.get_or_insert_with(Default::default);
    for (name, about) in SCHEMES {
        let scheme = if name == "password" {
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new("/auth/token", Scopes::new()))],
                about,
            ))
        } else {
            let mut http = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
            http.description = Some(about.into());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(name, scheme);
    }
    let mut cookie = utoipa::openapi::security::ApiKeyValue::with_description(
        "id_token",
        "The streaming portal's ID token in its `id_token` cookie (its own routes only); a request that \
         changes something must then come from this origin or an allowed one.",
    );
    cookie.name = "id_token".into();
    components.add_security_scheme(
        PORTAL_COOKIE_SCHEME,
        SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(cookie)),
    );
    components.schemas.insert("ErrorCode".into(), schemas::error_codes(&error_codes()));
    for (status, codes) in error_codes_by_status() {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .example(Some(json!({"code": codes[0], "message": "..."})))
            .build();
        let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        let description = format!(
            "{reason}: `code` is one of {}.",
            codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        );
        let mut response = ResponseBuilder::new().description(description).content("application/json", content);
        if status == 503 {
            response = response.header("Retry-After", retry_after_header());
        }
        components.responses.insert(error_response_name(status), response.build().into());
    }
    api
}

const DESCRIPTION: &str = "Portico, a serverless backend for compute portals. Authenticated routes take any \
of Portico's bearer tokens. Errors are `{\"code\", \"message\"}` unless a route says otherwise (the OAuth2 \
token endpoint, the OGDC routes, the RPC gateway). API Gateway itself answers requests over its limits \
(10 MB bodies) and paths no route serves with its own body (`{\"message\"}`). API Gateway cuts a path at a \
percent-encoded `?` (`%3F`): a path parameter holding one loses the rest of the path, and the answer is the \
shorter path's (a 404, or a 405 when that path serves other methods).";

/// The `Retry-After` header every 503 carries ([`crate::web::RETRY_AFTER_SECS`]).
pub fn retry_after_header() -> utoipa::openapi::header::Header {
    let seconds = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0));
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(seconds)
        .description(Some("Seconds to wait before trying again."))
        .build()
}

/// The components name of the shared error response for `status`.
pub fn error_response_name(status: u16) -> String {
    format!("Error{status}")
}

/// One error of each kind (the OAuth2 one has its own body), so the document lists the
/// codes [`Error::code`] gives them. The match below stops compiling when a kind is added.
fn error_kinds() -> Vec<Error> {
    fn _every_kind_is_listed(e: &Error) {
        use Error::*;
        match e {
            BadRequest { .. }
            | Unauthorized(_)
            | Forbidden(_)
            | NotFound(_)
            | MethodNotAllowed { .. }
            | Conflict(_)
            | PreconditionFailed(_)
            | AppUnavailable(_)
            | QuotaExceeded(_)
            | OAuth { .. }
            | PayloadTooLarge { .. }
            | UnsupportedMediaType(_)
            | ResponseTooLarge { .. }
            | IdempotencyMismatch(_)
            | Upstream { .. }
            | Unavailable(_)
            | Internal(_) => {}
        }
    }
    let s = String::new;
    let mut all: Vec<Error> = codes::ALL.iter().map(|c| Error::bad_request(c, "")).collect();
    all.extend([
        Error::Unauthorized(s()),
        Error::Forbidden(s()),
        Error::NotFound(s()),
        Error::MethodNotAllowed { method: Method::GET },
        Error::Conflict(s()),
        Error::PreconditionFailed(s()),
        Error::AppUnavailable(s()),
        Error::QuotaExceeded(s()),
        Error::PayloadTooLarge { limit: 0 },
        Error::UnsupportedMediaType(s()),
        Error::ResponseTooLarge { size: 0, limit: 0 },
        Error::IdempotencyMismatch(s()),
        Error::Upstream { status: StatusCode::BAD_GATEWAY, message: s() },
        Error::Upstream { status: StatusCode::SERVICE_UNAVAILABLE, message: s() },
        Error::Upstream { status: StatusCode::GATEWAY_TIMEOUT, message: s() },
        Error::Unavailable(s()),
        Error::Internal(s()),
    ]);
    all
}

/// Every code of a `{"code", "message"}` body, in a stable order.
pub fn error_codes() -> Vec<&'static str> {
    let mut all: Vec<&str> = error_kinds().iter().map(Error::code).collect();
    all.dedup();
    all
}

/// The codes each status carries.
pub fn error_codes_by_status() -> BTreeMap<u16, Vec<&'static str>> {
    let mut by: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for e in error_kinds() {
        let codes = by.entry(e.status().as_u16()).or_default();
        if !codes.contains(&e.code()) {
            codes.push(e.code());
        }
    }
    by
}

/// Adds the operations a route group declares on its handlers (`#[utoipa::path]`, collected
/// by its router) to `api`, with the document's rules for every operation: the id made of its
/// method and path (`get_apps_slug`), and who may call it: any of Portico's bearer tokens,
/// unless the handler declares `security(())` (public).
pub fn add_declared(api: &mut OpenApi, declared: OpenApi) {
    for (path, mut item) in declared.paths.paths {
        // A parameter with more path after it: a `%3F` in it leaves a shorter path (see the
        // document's description), which may serve other methods.
        let cut_short = path.find('}').is_some_and(|end| path[end..].contains('/'));
        for (method, op) in operations_mut(&mut item) {
            op.operation_id = Some(operation_id(method, &path));
            if cut_short {
                op.responses
                    .responses
                    .entry("405".into())
                    .or_insert_with(|| Ref::from_response_name(error_response_name(405)).into());
            }
            op.security = match op.security.take() {
                None => Some(bearer_security()),
                // `security(())` is one empty requirement: no token needed.
                Some(declared) if declared.iter().all(is_empty_requirement) => Some(vec![]),
                // Another way in (a cookie), besides the bearer tokens.
                Some(mut declared) => {
                    declared.extend(bearer_security());
                    Some(declared)
                }
            };
        }
        match api.paths.paths.get_mut(&path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                api.paths.paths.insert(path, item);
            }
        }
    }
    if let Some(components) = declared.components {
        let schemas = &mut api.components.get_or_insert_with(Default::default).schemas;
        for (name, schema) in components.schemas {
            // Two types of one name would be one schema, the last one's: a route's answer
            // documented as another's (a debug build stops here; the suite builds every route).
            if let Some(existing) = schemas.get(&name) {
                let same = serde_json::to_value(existing).ok() == serde_json::to_value(&schema).ok();
                debug_assert!(same, "two different schemas are both named {name}");
            }
            schemas.insert(name, schema);
        }
    }
}

/// Each operation of `item`, with its method's name.
fn operations_mut(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut utoipa::openapi::path::Operation)> {
    let ops = [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("head", &mut item.head),
        ("options", &mut item.options),
        ("trace", &mut item.trace),
    ];
    ops.into_iter().filter_map(|(m, op)| op.as_mut().map(|op| (m, op))).collect()
}

/// `get_apps_slug` for `GET /apps/{slug}`: the method, then the path's words.
pub(crate) fn operation_id(method: &str, path: &str) -> String {
    format!("{method}{path}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// The shared error responses (`#/components/responses/Error<status>`), for handlers'
/// declarations: `(status = 404, response = Error404)`.
pub mod errors {
    macro_rules! error_responses {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("`#/components/responses/", stringify!($name), "`.")]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                    (stringify!($name), utoipa::openapi::Ref::from_response_name(stringify!($name)).into())
                }
            }
        )*};
    }
    error_responses!(
        Error400, Error401, Error403, Error404, Error405, Error409, Error412, Error413, Error415, Error422, Error500,
        Error502, Error503, Error504
    );

    /// The error statuses a kind of route answers, each the shared response of its status;
    /// for handlers' declarations: `responses((status = 200, ...), ReadErrors)`.
    macro_rules! error_sets {
        ($($(#[$doc:meta])* $name:ident = [$($status:literal),*];)*) => {$(
            $(#[$doc])*
            pub struct $name;

            impl utoipa::IntoResponses for $name {
                fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
                    [$($status),*]
                        .into_iter()
                        .map(|s: u16| {
                            let name = super::error_response_name(s);
                            (s.to_string(), utoipa::openapi::Ref::from_response_name(name).into())
                        })
                        .collect()
                }
            }
        )*};
    }
    error_sets! {
        /// A read of one resource by a signed-in caller.
        ReadErrors = [401, 404, 503];
        /// A read of one resource that needs a permission or an administrator.
        GuardedReadErrors = [401, 403, 404, 503];
        /// A page of a listing.
        ListErrors = [400, 401, 403, 503];
        /// A write with a JSON body.
        WriteErrors = [400, 401, 403, 404, 409, 413, 415, 503];
        /// A read of one resource that asks an upstream (Argo).
        UpstreamReadErrors = [401, 404, 502, 503, 504];
        /// A change that asks an upstream (Argo).
        UpstreamChangeErrors = [401, 404, 409, 502, 503, 504];
        /// A read of the caller's own record.
        CallerErrors = [401, 503];
        /// A create-or-replace under `If-Match` / `If-None-Match`.
        ConditionalWriteErrors = [400, 401, 403, 409, 412, 413, 415, 503];
        /// A delete under `If-Match`.
        ConditionalDeleteErrors = [400, 401, 403, 404, 412, 503];
    }
}

/// The document as served and committed: pretty JSON, keys in a stable order.
pub fn to_json(api: &OpenApi) -> String {
    let value: Value = serde_json::to_value(api).expect("the document serializes");
    serde_json::to_string_pretty(&value).expect("a JSON value serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_codes_error_code_gives() {
        let by = error_codes_by_status();
        assert_eq!(by[&400][..3], ["invalid_json", "invalid_body", "invalid_field"]);
        assert!(by[&400].contains(&"invalid_recipe"));
        assert_eq!(by[&401], ["unauthorized"]);
        assert_eq!(by[&409], ["conflict", "app_unavailable", "quota_exceeded"]);
        assert_eq!(by[&503], ["upstream_unavailable", "unavailable"]);
        let doc: Value = serde_json::from_str(&to_json(&spec())).unwrap();
        let header = &doc["components"]["responses"]["Error503"]["headers"]["Retry-After"];
        assert_eq!(header["schema"]["type"], "integer", "503s say when to come back");
        assert!(!error_codes().contains(&"invalid_request"), "OAuth2 errors have their own body");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_security_scheme() {
        let doc: Value = serde_json::from_str(&to_json(&spec())).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes.len(), 5);
        assert_eq!(schemes["password"]["flows"]["password"]["tokenUrl"], "/auth/token");
        assert_eq!(schemes[PORTAL_COOKIE_SCHEME]["in"], "cookie");
        assert_eq!(schemes[PORTAL_COOKIE_SCHEME]["name"], "id_token");
        assert_eq!(schemes["portico"]["scheme"], "bearer");
        assert_eq!(
            doc["components"]["responses"]["Error403"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
    }
}
