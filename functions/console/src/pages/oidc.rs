//! Signing in at the organization's OpenID Connect provider: the authorization code flow
//! with PKCE (RFC 7636, S256) for a public client, `state` and `nonce` checked.
//!
//! | route | what |
//! |-------|------|
//! | `GET /console/oidc/start?then=` | to the provider's authorization endpoint; `state`, `nonce` and the PKCE verifier wait in a short-lived cookie |
//! | `GET /console/oidc/callback?code=&state=` | the code exchanged for an ID token, which becomes the session cookie |
//!
//! Only URLs from configuration are fetched: the discovery document of `oidc_issuer`, and
//! the token endpoint it names. The ID token is checked as every OIDC bearer is (signature
//! by the provider's JWKS, `iss`, `aud`, expiry), then its `nonce` against this browser's.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode, header};
use portico_core::Error;
use portico_core::auth::TokenSource;
use portico_core::web::{ApiRequest, ApiResponse};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::backend::ApiError;
use crate::guard::{self, BASE, SESSION_COOKIE};
use crate::{Console, insert_cookie};

/// The cookie holding one round trip's `state`, `nonce`, PKCE verifier and return path.
const FLOW_COOKIE: &str = "portico_console_oidc";
/// How long a round trip to the provider may take.
const FLOW_TTL_SECONDS: i64 = 600;

/// The parts of the provider's discovery document the console uses.
#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// The provider, as configuration names it; its discovery document is read once.
#[derive(Default)]
pub struct OidcClient {
    discovery: OnceCell<Discovery>,
}

pub async fn route(console: &Console, req: &ApiRequest, step: &str) -> Result<ApiResponse, ApiError> {
    let config = &console.services.config;
    let (Some(client_id), Some(issuer)) = (&config.console_oidc_client_id, &config.oidc_issuer) else {
        return Err(super::not_found());
    };
    let discovery = discover(console, issuer).await?;
    match step {
        "start" => Ok(start(req, client_id, &discovery)),
        "callback" => callback(console, req, client_id, &discovery).await,
        _ => Err(super::not_found()),
    }
}

async fn discover(console: &Console, issuer: &str) -> Result<Discovery, ApiError> {
    let found = console.oidc.discovery.get_or_try_init(|| async {
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let response = console
            .services
            .http
            .client()
            .map_err(|e| super::api_error(&e))?
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!("discovery answered {}", response.status())));
        }
        let discovery: Discovery = response.json().await.map_err(|e| unavailable(&e.to_string()))?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        if discovery.issuer != issuer {
            return Err(unavailable("the discovery document names another issuer"));
        }
        Ok(discovery)
    });
    found.await.cloned()
}

fn unavailable(detail: &str) -> ApiError {
    super::api_error(&Error::Unavailable(format!("OIDC provider: {detail}")))
}

/// The callback URL registered at the provider: this console's own, on the host the request
/// reached (API Gateway sets `Host` and `X-Forwarded-Proto`; clients cannot).
fn redirect_uri(req: &ApiRequest) -> String {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let proto = match header("x-forwarded-proto") {
        "http" => "http",
        _ => "https",
    };
    format!("{proto}://{}{BASE}/oidc/callback", header("host"))
}

fn start(req: &ApiRequest, client_id: &str, discovery: &Discovery) -> ApiResponse {
    let (state, nonce, verifier) = (guard::random_token(), guard::random_token(), guard::random_token());
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    let then = guard::return_path(req);
    let redirect_uri = redirect_uri(req);
    let query = guard::query(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", &redirect_uri),
        ("scope", "openid profile email"),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let separator = if discovery.authorization_endpoint.contains('?') { "&" } else { "?" };
    let location = format!("{}{separator}{}", discovery.authorization_endpoint, &query[1..]);
    let mut r = guard::redirect(&location);
    let flow = [state, nonce, verifier, URL_SAFE_NO_PAD.encode(then)].join(".");
    insert_cookie(&mut r, &guard::set_cookie(FLOW_COOKIE, &flow, FLOW_TTL_SECONDS));
    r
}

/// What the answer of the token endpoint must hold.
#[derive(Deserialize)]
struct Tokens {
    id_token: String,
}

async fn callback(
    console: &Console,
    req: &ApiRequest,
    client_id: &str,
    discovery: &Discovery,
) -> Result<ApiResponse, ApiError> {
    let param = |name: &str| guard::query_param(req, name);
    let flow = guard::cookie(req, FLOW_COOKIE).unwrap_or("").split('.').collect::<Vec<_>>();
    let [state, nonce, verifier, then] = flow[..] else {
        return Err(refused("This sign-in did not start here or took too long; please sign in again."));
    };
    if !param("state").is_some_and(|s| guard::same_secret(&s, state)) {
        return Err(refused("The provider's answer does not belong to this sign-in; please sign in again."));
    }
    if let Some(error) = param("error") {
        // The provider's own refusal (the user declined, the client is not allowed...).
        let said = param("error_description").unwrap_or(error);
        return Err(refused(&format!("The provider did not sign you in: {said}")));
    }
    let code = param("code").ok_or_else(|| refused("The provider's answer has no code."))?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &redirect_uri(req)),
        ("client_id", client_id),
        ("code_verifier", verifier),
    ];
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let response = console
        .services
        .http
        .client()
        .map_err(|e| super::api_error(&e))?
        .request(Method::POST, &discovery.token_endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| unavailable(&e.to_string()))?;
    if !response.status().is_success() {
        return Err(refused("The provider refused to complete the sign-in; please sign in again."));
    }
    let tokens: Tokens = response.json().await.map_err(|e| unavailable(&e.to_string()))?;
    let lifetime = checked_lifetime(console, &tokens.id_token, nonce).await?;
    let then = URL_SAFE_NO_PAD.decode(then).ok().and_then(|b| String::from_utf8(b).ok());
    let mut r = guard::redirect(&guard::safe_return(then.as_deref()));
    insert_cookie(&mut r, &guard::set_cookie(SESSION_COOKIE, &tokens.id_token, lifetime));
    insert_cookie(&mut r, &guard::clear_cookie(FLOW_COOKIE));
    Ok(r)
}

/// Verifies the ID token as Portico verifies any OIDC bearer, then its `nonce`; the seconds
/// it has left.
async fn checked_lifetime(console: &Console, id_token: &str, nonce: &str) -> Result<i64, ApiError> {
    let verified = console.services.identity.tokens.verify(id_token).await;
    let Some(verified) = verified.ok().filter(|v| v.source == TokenSource::Oidc) else {
        return Err(refused("The provider's ID token is not valid here."));
    };
    // The signature is verified above; the payload is read for the claims Portico keeps out
    // of its token model.
    let claims: serde_json::Value = id_token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if !claims["nonce"].as_str().is_some_and(|n| guard::same_secret(n, nonce)) {
        return Err(refused("The provider's ID token was not issued for this sign-in."));
    }
    Ok((verified.expires_at - portico_core::store::now_epoch()).max(0))
}

fn refused(message: &str) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, code: "oidc_refused".into(), message: message.into(), field: None }
}
