//! The identity route group for everyone: tokens out, public keys, the current user. Each
//! route is declared on its handler (`#[utoipa::path]`): who may call it, what it answers.

use std::sync::Arc;

use axum::extract::State;
use http::{HeaderValue, StatusCode, header};
use portico_core::auth::TokenSource;
use portico_core::auth::own::Jwks;
use portico_core::authz::Permission;
use portico_core::error::OAuthError;
use portico_core::login::{TokenRequest, invalid_request};
use portico_core::openapi::errors::CallerErrors;
use portico_core::quotas::{Quotas, Resources};
use portico_core::web::{self, ApiResponse, Request, Routes};
use portico_core::{Error, Services};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `POST /auth/token` (RFC 6749 §5.1), sent with `Cache-Control: no-store`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Token {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// Seconds.
    #[schema(minimum = 0)]
    pub expires_in: i64,
}

/// `GET /auth/me`, `GET /user`: the caller.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub username: String,
    pub admin: bool,
    pub source: TokenSource,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub permissions: Vec<Permission>,
    /// Effective limits.
    pub quota: Resources,
    pub usage: Resources,
}

/// The identity route group's state.
pub struct AuthApi {
    services: Arc<Services>,
}

impl AuthApi {
    /// The group, serving `services`.
    pub fn routes(services: Arc<Services>) -> Routes {
        let config = services.config.clone();
        Routes::new("auth", &config, Arc::new(AuthApi { services }), declared())
    }
}

/// Every route of the group, each declared on its handler.
pub fn declared() -> OpenApiRouter<Arc<AuthApi>> {
    OpenApiRouter::new().routes(routes!(token)).routes(routes!(jwks)).routes(routes!(me)).routes(routes!(user))
}

/// Sign in (OAuth2 password grant)
///
/// RFC 6749 §4.3; answers with `Cache-Control: no-store`. Repeated failures lock the username for `login_lockout` seconds.
#[utoipa::path(post, path = "/auth/token", tag = "auth", security(()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A Portico access token", body = Token),
        (status = 400, description = "Refused", body = OAuthError),
        (status = 401, description = "Refused", body = OAuthError),
    ),
)]
async fn token(State(api): State<Arc<AuthApi>>, Request(req): Request) -> Result<ApiResponse, Error> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(invalid_request("the body must be application/x-www-form-urlencoded (RFC 6749 §4.3.2)"));
    }
    if req.body().len() > portico_core::login::MAX_FORM_BYTES {
        return Err(invalid_request("the request is too large"));
    }
    let form = TokenRequest::from_form(req.body())
        .map_err(|name| invalid_request(&format!("parameter '{name}' is repeated")))?;
    let issued = api.services.grant_password(form).await?;
    let token = Token { access_token: issued.access_token, token_type: "bearer".into(), expires_in: issued.expires_in };
    let mut r = web::json(StatusCode::OK, &token);
    // RFC 6749 §5.1: token responses are never cached.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// Portico's public signing keys
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()), responses(
    (status = 200, description = "A JWK set", body = Jwks),
))]
async fn jwks(State(api): State<Arc<AuthApi>>) -> ApiResponse {
    let mut r = web::json(StatusCode::OK, api.services.fresh_keys().await.jwks());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r
}

/// The caller
#[utoipa::path(get, path = "/auth/me", tag = "auth", responses(
    (status = 200, description = "Roles, permissions, quota and usage", body = Me),
    CallerErrors,
))]
async fn me(State(api): State<Arc<AuthApi>>, Request(req): Request) -> Result<ApiResponse, Error> {
    api.me(&req).await
}

/// The caller (alias of /auth/me)
#[utoipa::path(get, path = "/user", tag = "auth", responses(
    (status = 200, description = "Roles, permissions, quota and usage", body = Me),
    CallerErrors,
))]
async fn user(State(api): State<Arc<AuthApi>>, Request(req): Request) -> Result<ApiResponse, Error> {
    api.me(&req).await
}

impl AuthApi {
    async fn me(&self, req: &portico_core::web::ApiRequest) -> Result<ApiResponse, Error> {
        let who = self.services.principal(req).await?;
        let usage = Quotas::new(self.services.table.as_ref()).usage(&who.username).await?;
        let me = Me {
            permissions: who.permissions.iter().cloned().collect(),
            username: who.username,
            admin: who.admin,
            source: who.source,
            groups: who.groups,
            roles: who.roles,
            quota: who.limits,
            usage,
        };
        Ok(web::json(StatusCode::OK, &me))
    }
}
