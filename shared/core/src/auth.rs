//! Authentication: bearer token in, [`Principal`] out.
//!
//! Routes depend only on the [`Authenticator`] trait. This first implementation,
//! [`Hs256Tokens`], accepts HS256 tokens signed with a configured shared secret (as a trusted
//! web system issues them, seed 001) and makes members of `admin_group` administrators
//! (seed 000). The identity issue plugs further token sources in behind the same trait.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::Deserialize;

use crate::{Config, Error, secrets::Secrets};

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

/// Turns a bearer token into a [`Principal`]; every failure is [`Error::Unauthorized`].
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, Error>;
}

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// HS256 bearer tokens with a shared secret: algorithm pinned, `exp` required, `nbf` checked,
/// issuer and audience checked when configured, small explicit leeway.
pub struct Hs256Tokens {
    key: DecodingKey,
    validation: Validation,
    admin_group: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl Hs256Tokens {
    /// Builds the verifier; refuses a secret shorter than [`MIN_HS256_SECRET_BYTES`].
    pub fn new(secret: &[u8], config: &Config) -> Result<Self, Error> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(Error::Internal(format!(
                "the HS256 token secret must be at least {MIN_HS256_SECRET_BYTES} bytes"
            )));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.token_leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &config.token_issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.token_audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Hs256Tokens { key: DecodingKey::from_secret(secret), validation, admin_group: config.admin_group.clone() })
    }

    /// Reads the secret named by `config.token_secret_id` once, then builds the verifier.
    pub async fn from_secrets(secrets: &dyn Secrets, config: &Config) -> Result<Self, Error> {
        let secret = secrets.get(&config.token_secret_id).await?;
        Self::new(secret.as_bytes(), config)
    }
}

#[async_trait::async_trait]
impl Authenticator for Hs256Tokens {
    async fn authenticate(&self, bearer: &str) -> Result<Principal, Error> {
        if bearer.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthorized("bearer token is too large".into()));
        }
        let data = jsonwebtoken::decode::<Claims>(bearer, &self.key, &self.validation).map_err(|e| {
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
        })?;
        let claims = data.claims;
        let admin = claims.groups.contains(&self.admin_group);
        Ok(Principal { username: claims.preferred_username.unwrap_or(claims.sub), groups: claims.groups, admin })
    }
}

/// Signs `claims` with HS256 (local admin token, tests, benchmarks).
pub fn mint_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .expect("HS256 signing of JSON claims cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        crate::store::now_epoch()
    }

    fn tokens(config: &Config) -> Hs256Tokens {
        Hs256Tokens::new(SECRET, config).unwrap()
    }

    #[tokio::test]
    async fn admin_group_member_is_admin_and_others_are_not() {
        let t = tokens(&Config::default());
        let admin = mint_hs256(SECRET, &json!({"sub": "ann", "groups": ["admin"], "exp": now() + 60}));
        let user = mint_hs256(SECRET, &json!({"sub": "bob", "groups": ["staff"], "exp": now() + 60}));
        assert!(t.authenticate(&admin).await.unwrap().admin);
        let bob = t.authenticate(&user).await.unwrap();
        assert_eq!((bob.username.as_str(), bob.admin), ("bob", false));
    }

    #[tokio::test]
    async fn refuses_expired_missing_exp_future_nbf_wrong_key_and_none() {
        let t = tokens(&Config::default());
        let cases = [
            mint_hs256(SECRET, &json!({"sub": "a", "exp": now() - 120})),
            mint_hs256(SECRET, &json!({"sub": "a"})),
            mint_hs256(SECRET, &json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300})),
            mint_hs256(b"another-secret-another-secret-xx", &json!({"sub": "a", "exp": now() + 60})),
            // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
            format!(
                "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
                base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    json!({"sub": "a", "groups": ["admin"], "exp": now() + 60}).to_string()
                )
            ),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ];
        for (i, token) in cases.iter().enumerate() {
            assert!(matches!(t.authenticate(token).await, Err(Error::Unauthorized(_))), "case {i} was accepted");
        }
    }

    #[tokio::test]
    async fn issuer_and_audience_are_checked_when_configured() {
        let config =
            Config { token_issuer: Some("iss-a".into()), token_audience: Some("aud-a".into()), ..Config::default() };
        let t = tokens(&config);
        let good = mint_hs256(SECRET, &json!({"sub": "a", "iss": "iss-a", "aud": "aud-a", "exp": now() + 60}));
        let bad_iss = mint_hs256(SECRET, &json!({"sub": "a", "iss": "iss-b", "aud": "aud-a", "exp": now() + 60}));
        let bad_aud = mint_hs256(SECRET, &json!({"sub": "a", "iss": "iss-a", "aud": "aud-b", "exp": now() + 60}));
        assert!(t.authenticate(&good).await.is_ok());
        assert!(t.authenticate(&bad_iss).await.is_err());
        assert!(t.authenticate(&bad_aud).await.is_err());
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(Hs256Tokens::new(b"short", &Config::default()).is_err());
    }
}
