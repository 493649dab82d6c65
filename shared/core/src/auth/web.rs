//! HS256 tokens of a trusted web system (OpenCue's REST gateway): a shared secret from Secrets Manager, at
//! least 32 bytes, checked at start-up.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{TokenSource, VerifiedToken, jwt_error};
use crate::{Config, Error};

/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

pub struct WebTokens {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    groups: Vec<String>,
    /// CueWeb's single `role` claim (OpenCue's REST gateway), taken as one more token group.
    #[serde(default)]
    role: Option<String>,
}

impl WebTokens {
    /// Refuses a secret shorter than [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8], config: &Config) -> Result<WebTokens, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Internal(format!(
                "the web-token HS256 secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.token_leeway;
        validation.validate_nbf = true;
        // A configured iss/aud must be present, not merely right when present.
        let mut required = vec!["exp", "sub"];
        match &config.web_token_issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.web_token_audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(WebTokens { key: DecodingKey::from_secret(secret), validation })
    }

    pub(super) fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(jwt_error)?;
        let mut groups = data.claims.groups;
        groups.extend(data.claims.role);
        Ok(VerifiedToken { source: TokenSource::Web, username: data.claims.sub, groups, expires_at: data.claims.exp })
    }
}
