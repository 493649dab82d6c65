//! The identity route group for everyone: tokens out, public keys, the current user.
//!
//! | route | who may call | answer |
//! |-------|--------------|--------|
//! | `POST /auth/token` | anyone (form `grant_type=password&username=&password=`) | `{"access_token", "token_type": "bearer", "expires_in"}`; errors as RFC 6749 §5.2 |
//! | `GET /.well-known/jwks.json` | anyone | Portico's public signing keys |
//! | `GET /auth/me`, `GET /user` | any valid bearer | the caller: roles, permissions, quota and usage |

use std::sync::Arc;

use http::{HeaderValue, Method, StatusCode, header};
use portico_core::authz::Principal;
use portico_core::login::{TokenRequest, invalid_request};
use portico_core::quotas::Quotas;
use portico_core::web::{self, ApiRequest, ApiResponse, RouteGroup};
use portico_core::{Config, Error, Services};
use serde_json::json;

pub struct AuthApi {
    services: Arc<Services>,
}

impl AuthApi {
    pub fn new(services: Arc<Services>) -> Self {
        AuthApi { services }
    }
}

const POST: &[Method] = &[Method::POST];
const GET: &[Method] = &[Method::GET];

#[async_trait::async_trait]
impl RouteGroup for AuthApi {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn route_keys(&self) -> Vec<String> {
        ["ANY /auth/{proxy+}", "ANY /.well-known/{proxy+}", "ANY /user"].map(String::from).into()
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        match (req.method(), web::segments(req).as_slice()) {
            (&Method::POST, ["auth", "token"]) => self.token(req).await,
            (&Method::GET, [".well-known", "jwks.json"]) => Ok(self.jwks().await),
            (&Method::GET, ["auth", "me"] | ["user"]) => self.me(req).await,
            (_, ["auth", "token"]) => Err(web::method_not_allowed(req, POST)),
            (_, [".well-known", "jwks.json"] | ["auth", "me"] | ["user"]) => Err(web::method_not_allowed(req, GET)),
            _ => Err(web::no_route(req)),
        }
    }
}

impl AuthApi {
    async fn token(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return Err(invalid_request("the body must be application/x-www-form-urlencoded (RFC 6749 §4.3.2)"));
        }
        if req.body().len() > portico_core::login::MAX_FORM_BYTES {
            return Err(invalid_request("the request is too large"));
        }
        let form = TokenRequest::from_form(req.body())
            .map_err(|name| invalid_request(&format!("parameter '{name}' is repeated")))?;
        let issued = self.services.grant_password(form).await?;
        let mut r = web::json(
            StatusCode::OK,
            &json!({"access_token": issued.access_token, "token_type": "bearer", "expires_in": issued.expires_in}),
        );
        // RFC 6749 §5.1: token responses are never cached.
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        Ok(r)
    }

    async fn jwks(&self) -> ApiResponse {
        let mut r = web::json(StatusCode::OK, self.services.fresh_keys().await.jwks());
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
        r
    }

    async fn me(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let who: Principal = self.services.principal(req).await?;
        let usage = Quotas::new(self.services.table.as_ref()).usage(&who.username).await?;
        Ok(web::json(
            StatusCode::OK,
            &json!({
                "username": who.username,
                "admin": who.admin,
                "source": who.source,
                "groups": who.groups,
                "roles": who.roles,
                "permissions": who.permissions.iter().collect::<Vec<_>>(),
                "quota": who.limits,
                "usage": usage,
            }),
        ))
    }
}
