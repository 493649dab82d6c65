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
//! source requires `exp`, checks `nbf`, and allows `token_leeway` seconds of skew. A token
//! that verified is remembered for a minute at most (never past its `exp`), so a client
//! reusing it does not pay for the signature check again.

pub mod oidc;
pub mod own;
pub mod reload;
pub mod web;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;

use crate::Error;
use reload::FromSecret;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Which source vouched for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    Portico,
    Oidc,
    Web,
}

impl TokenSource {
    /// The source's name, as serialized (`portico`, `oidc`, `web`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Portico => "portico",
            TokenSource::Oidc => "oidc",
            TokenSource::Web => "web",
        }
    }
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub source: TokenSource,
    pub username: String,
    /// Groups asserted by the issuer (`admin_group` membership makes an administrator).
    pub groups: Vec<String>,
    /// The token's `exp`, epoch seconds.
    pub expires_at: i64,
}

/// How long a verified token is remembered (never past its `exp`).
const REMEMBER: Duration = Duration::from_secs(60);
/// Verified tokens remembered at most (then the memory starts over).
const REMEMBER_MAX: usize = 10_000;

/// Tokens verified lately, by SHA-256 of the token: clients send the same token with every
/// request, and an ES256 signature check costs ~170 µs where a lookup costs ~1 µs.
#[derive(Default)]
pub struct Verified {
    entries: Mutex<HashMap<[u8; 32], (VerifiedToken, Instant)>>,
}

impl Verified {
    fn digest(token: &str) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        d.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    fn get(&self, digest: &[u8; 32]) -> Option<VerifiedToken> {
        let entries = self.entries.lock().expect("verified tokens");
        let (token, until) = entries.get(digest)?;
        (Instant::now() < *until && crate::store::now_epoch() < token.expires_at).then(|| token.clone())
    }

    fn put(&self, digest: [u8; 32], token: &VerifiedToken) {
        let mut entries = self.entries.lock().expect("verified tokens");
        if entries.len() >= REMEMBER_MAX {
            entries.clear();
        }
        entries.insert(digest, (token.clone(), Instant::now() + REMEMBER));
    }
}

/// Every configured token source.
pub struct TokenVerifier {
    /// Portico's keyring, following its secret.
    pub own: FromSecret<own::Keyring>,
    pub oidc: Option<oidc::OidcTokens>,
    /// The web system's HS256 key, following its secret.
    pub web: Option<FromSecret<web::WebTokens>>,
    pub verified: Verified,
}

impl TokenVerifier {
    pub fn new(
        own: FromSecret<own::Keyring>,
        oidc: Option<oidc::OidcTokens>,
        web: Option<FromSecret<web::WebTokens>>,
    ) -> Self {
        TokenVerifier { own, oidc, web, verified: Verified::default() }
    }

    /// Verifies `token` (or recalls having verified it within the last minute).
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthorized("bearer token is too large".into()));
        }
        let digest = Verified::digest(token);
        if let Some(known) = self.verified.get(&digest) {
            return Ok(known);
        }
        let verified = self.verify_signed(token).await?;
        self.verified.put(digest, &verified);
        Ok(verified)
    }

    /// Full verification, choosing the validator by the header.
    pub async fn verify_signed(&self, token: &str) -> Result<VerifiedToken, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::Unauthorized("bearer token is not a well-formed JWT".into()))?;
        if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() || header.x5c.is_some() {
            return Err(Error::Unauthorized("bearer token header carries key material; refused".into()));
        }
        if header.alg == Algorithm::ES256
            && let Some(own) = self.own_key(header.kid.as_deref()).await
        {
            return own.verify(token, &header);
        }
        match header.alg {
            Algorithm::HS256 => match &self.web {
                Some(web) => match web.fresh().await.verify(token) {
                    // The shared secret may have been rotated: retry once with a fresh read.
                    Err(e) => match web.force_reload().await {
                        (reloaded, true) => reloaded.verify(token),
                        _ => Err(e),
                    },
                    ok => ok,
                },
                None => Err(Error::Unauthorized("bearer token algorithm is not accepted".into())),
            },
            alg => match &self.oidc {
                Some(oidc) if oidc.accepts(alg) => oidc.verify(token, &header).await,
                _ => Err(Error::Unauthorized("bearer token algorithm is not accepted".into())),
            },
        }
    }

    /// Portico's keyring if it knows `kid`; an unknown kid (a key added by a rotation this
    /// process has not seen) forces a reload, rate-limited.
    async fn own_key(&self, kid: Option<&str>) -> Option<Arc<own::Keyring>> {
        let kid = kid?;
        let own = self.own.fresh().await;
        if own.knows(kid) {
            return Some(own);
        }
        match self.own.force_reload().await {
            (reloaded, true) if reloaded.knows(kid) => Some(reloaded),
            _ => None,
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
