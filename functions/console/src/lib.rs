//! The web console (Lambda function `console`): the portal people use in a browser, rendered
//! on the server from the same route groups the API serves, called in process with the
//! signed-in user's token, so every page is authorized and validated exactly as the API is.
//!
//! | route | who may call | what |
//! |-------|--------------|------|
//! | `GET /console` | anyone | to the catalog, or to sign in |
//! | `GET`, `POST /console/signin`; `POST /console/signout` | anyone / signed in | password sign-in; sign-out clears the cookie |
//! | `GET /console/oidc/start`, `GET /console/oidc/callback` | anyone | OIDC authorization code flow with PKCE (when configured) |
//! | `GET /console/assets/{name}` | anyone | the stylesheet and script, cached for a year under digest names |
//! | `/console/apps...` | signed in | the catalog, an app, launching a session ([`pages::catalog`]) |
//! | `/console/sessions...` | signed in | my sessions: live view, rejoin, stop ([`pages::sessions`]) |
//! | `/console/jobs...` | signed in | my jobs: submit, status, logs, output, cancel ([`pages::jobs`]) |
//! | `/console/profile` | signed in | roles, permissions, quota and usage ([`pages::profile`]) |
//! | `/console/admin...` | administrators | apps, users, roles, all sessions and jobs ([`pages::admin`]) |
//!
//! The session is a Portico token in an `HttpOnly; Secure; SameSite=Lax` cookie scoped to
//! `/console`; every form post must come from the console's own origin and carry the
//! session's CSRF token. Every answer carries a strict Content-Security-Policy (no inline
//! script), `nosniff`, frame denial and a same-origin referrer policy.

pub mod assets;
pub mod backend;
pub mod guard;
pub mod layout;
pub mod pages;

use std::sync::Arc;

use http::{Method, StatusCode, header};
use portico_core::web::{self, ApiRequest, ApiResponse, RequestMeta, RouteGroup};
use portico_core::{Config, Error, Services};

pub use crate::backend::Domains;
use crate::backend::{ApiError, Backend, Call};
use crate::guard::{BASE, SESSION_COOKIE};
use crate::layout::Viewer;

/// The console route group.
pub struct Console {
    pub(crate) services: Arc<Services>,
    pub(crate) backend: Backend,
    pub(crate) oidc: pages::oidc::OidcClient,
    relay_origin: String,
}

impl Console {
    /// The console over `services` and the domains' clients (the API groups it calls share them).
    pub fn new(services: Arc<Services>, domains: Domains) -> Console {
        let relay_origin = guard::origin_of(&services.config.relay_url);
        Console {
            backend: Backend::new(Arc::clone(&services), domains),
            oidc: pages::oidc::OidcClient::default(),
            services,
            relay_origin,
        }
    }
}

#[async_trait::async_trait]
impl RouteGroup for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn route_keys(&self) -> Vec<String> {
        vec!["ANY /console".into(), "ANY /console/{proxy+}".into()]
    }

    fn config(&self) -> &Config {
        &self.services.config
    }

    /// Every answer is a page (never Portico's JSON error), with the security headers.
    async fn route(&self, req: &ApiRequest) -> Result<ApiResponse, Error> {
        let response = match self.dispatch(req).await {
            Ok(r) => r,
            Err(e) => pages::error_page(&e),
        };
        Ok(guard::secure(response, &self.relay_origin))
    }
}

/// A signed-in request: who, with which token, and the request itself.
pub struct Ctx<'a> {
    pub console: &'a Console,
    pub req: &'a ApiRequest,
    pub viewer: Viewer,
    token: String,
    meta: RequestMeta,
}

impl Ctx<'_> {
    /// A call to the API as the signed-in user.
    pub fn api(&self, method: Method, path: impl Into<String>) -> Call<'_> {
        self.console.backend.call(method, path, Some(&self.token)).within(&self.meta)
    }

    /// The value of query parameter `name` (empty when absent).
    pub fn query(&self, name: &str) -> String {
        guard::query_param(self.req, name).unwrap_or_default()
    }

    /// The posted form's fields.
    pub fn form(&self) -> Form {
        Form(guard::form(self.req))
    }

    pub fn config(&self) -> &Config {
        &self.console.services.config
    }
}

/// A posted form.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Field `name`'s value (the last one sent), or empty.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Whether checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

impl Console {
    async fn dispatch(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        // Forms are read whole: capped as the API caps its bodies, before any is parsed.
        let limit = self.services.config.max_body_bytes;
        if req.body().len() > limit {
            return Err(pages::api_error(&Error::PayloadTooLarge { limit }));
        }
        let segments = web::segments(req);
        let Some((&"console", rest)) = segments.split_first() else {
            return Err(pages::not_found());
        };
        // Open to anyone.
        match (req.method(), rest) {
            (&Method::GET, []) => return Ok(guard::redirect(&format!("{BASE}/apps"))),
            (&Method::GET, ["assets", _]) => return assets::serve(req.uri().path()).ok_or_else(pages::not_found),
            (_, ["signin"]) => return pages::signin::route(self, req).await,
            (&Method::GET, ["oidc", step]) => return pages::oidc::route(self, req, step).await,
            _ => {}
        }
        let Some(ctx) = self.signed_in(req).await? else {
            // Not signed in (or the token expired): sign in first, then come back here.
            let back = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(BASE);
            let mut r = guard::redirect(&format!("{BASE}/signin{}", guard::query(&[("then", back)])));
            if guard::cookie(req, SESSION_COOKIE).is_some() {
                insert_cookie(&mut r, &guard::clear_cookie(SESSION_COOKIE));
            }
            return Ok(r);
        };
        if guard::is_unsafe(req)
            && let Err(refusal) = check_csrf(&ctx)
        {
            // The script's own posts (which send the token as a header) read JSON.
            return Ok(if req.headers().contains_key("x-csrf-token") {
                refusal.json_response()
            } else {
                pages::error_page(&refusal)
            });
        }
        match (req.method(), rest) {
            (&Method::POST, ["signout"]) => Ok(pages::signin::sign_out()),
            (_, ["apps", more @ ..]) => pages::catalog::route(&ctx, more).await,
            (_, ["sessions", more @ ..]) => pages::sessions::route(&ctx, more).await,
            (_, ["jobs", more @ ..]) => pages::jobs::route(&ctx, more).await,
            (_, ["desktops", more @ ..]) => pages::desktops::route(&ctx, more).await,
            (_, ["experiments", more @ ..]) => pages::desktops::experiments_route(&ctx, more).await,
            (&Method::GET, ["profile"]) => pages::profile::show(&ctx).await,
            (_, ["admin", more @ ..]) => pages::admin::route(&ctx, more).await,
            _ => Err(pages::not_found()),
        }
    }

    /// The signed-in user behind the request's cookie; `None` without a valid one.
    async fn signed_in<'a>(&'a self, req: &'a ApiRequest) -> Result<Option<Ctx<'a>>, ApiError> {
        let Some(token) = guard::cookie(req, SESSION_COOKIE) else { return Ok(None) };
        // As `Services::principal` does for a bearer; the verified token is remembered, so the
        // page's API calls with it do not verify its signature again.
        let who = match self.services.identity.authenticate(token.trim()).await {
            Ok(who) => who,
            Err(Error::Unauthorized(_)) => return Ok(None),
            Err(e) => return Err(pages::api_error(&e)),
        };
        web::note_caller(&who.username);
        let meta = req.extensions().get::<RequestMeta>().cloned().unwrap_or_default();
        let viewer = Viewer { username: who.username, admin: who.admin, csrf: guard::csrf_token(token) };
        Ok(Some(Ctx { console: self, req, viewer, token: token.to_owned(), meta }))
    }
}

/// Refuses a state-changing request that is not from the console's own pages.
fn check_csrf(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let sent_header = ctx.req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let sent = sent_header.unwrap_or_else(|| ctx.form().get("_csrf").to_owned());
    if guard::same_origin(ctx.req) && guard::same_secret(&sent, &ctx.viewer.csrf) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "csrf".into(),
            message: "this form did not come from this console's own page; reload the page and try again".into(),
            field: None,
        })
    }
}

/// Adds a `Set-Cookie` header.
pub(crate) fn insert_cookie(r: &mut ApiResponse, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}
