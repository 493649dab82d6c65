//! Authentication: a bearer token in, a [`VerifiedToken`] out.
//!
//! Each token source has its own pinned algorithms and rules, and a token of one kind never
//! reaches another kind's validator (RFC 8725 §3.12). The dispatch reads the unverified
//! header only to choose the validator:
//!
//! | header | validator |
//! |--------|-----------|
//! | `alg: HS256` | [`web::WebTokens`] (shared secret), if configured |
//! | `alg: ES256`, `kid` one of Portico's | [`own::Keyring`] (also requires `typ: at+jwt`, Portico's `iss`/`aud`) |
//! | an algorithm in `oidc_algorithms` | [`oidc::OidcTokens`], if configured |
//!
//! Anything else is refused, as are tokens over [`MAX_TOKEN_BYTES`] and headers that carry
//! key material or key URLs (`jku`, `x5u`, `jwk`, `x5c`: never fetched, never trusted). Every
//! source requires `exp`, checks `nbf`, and allows `token_leeway` seconds of skew.

pub mod oidc;
pub mod own;
pub mod web;

use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;

use crate::Error;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Which source vouched for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    Portico,
    Oidc,
    Web,
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub source: TokenSource,
    pub username: String,
    /// Groups asserted by the issuer (`admin_group` membership makes an administrator).
    pub groups: Vec<String>,
}

/// Every configured token source.
pub struct TokenVerifier {
    pub own: own::Keyring,
    pub oidc: Option<oidc::OidcTokens>,
    pub web: Option<web::WebTokens>,
}

impl TokenVerifier {
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthorized("bearer token is too large".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::Unauthorized("bearer token is not a well-formed JWT".into()))?;
        if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() || header.x5c.is_some() {
            return Err(Error::Unauthorized("bearer token header carries key material; refused".into()));
        }
        match header.alg {
            Algorithm::HS256 => match &self.web {
                Some(web) => web.verify(token),
                None => Err(Error::Unauthorized("bearer token algorithm is not accepted".into())),
            },
            Algorithm::ES256 if header.kid.as_deref().is_some_and(|k| self.own.knows(k)) => {
                self.own.verify(token, &header)
            }
            alg => match &self.oidc {
                Some(oidc) if oidc.accepts(alg) => oidc.verify(token, &header).await,
                _ => Err(Error::Unauthorized("bearer token algorithm is not accepted".into())),
            },
        }
    }
}

/// A jsonwebtoken failure as the client sees it.
pub(crate) fn jwt_error(e: jsonwebtoken::errors::Error) -> Error {
    Error::Unauthorized(
        match e.kind() {
            ErrorKind::ExpiredSignature => "bearer token has expired",
            ErrorKind::ImmatureSignature => "bearer token is not valid yet",
            ErrorKind::InvalidIssuer => "bearer token issuer is not accepted",
            ErrorKind::InvalidAudience => "bearer token audience is not accepted",
            ErrorKind::MissingRequiredClaim(_) => "bearer token lacks a required claim",
            _ => "bearer token is invalid",
        }
        .into(),
    )
}
