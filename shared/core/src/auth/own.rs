//! Portico's own access tokens: ES256, `kid` in the header, `typ: at+jwt` (RFC 9068), and
//! the public keys published at `/.well-known/jwks.json`.
//!
//! The keyring is one secret (Secrets Manager; locally a file) holding JSON
//! `{"keys": [{"kid": "...", "pkcs8": "<base64 PKCS#8 DER of a P-256 key>"}, ...]}`. The first
//! key signs; every key verifies and is published, so a key can be rotated in at the front
//! and retired from the back once the tokens it signed have expired.

use std::collections::HashMap;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{TokenSource, VerifiedToken, jwt_error};
use crate::{Config, Error};

/// The media type of Portico's access tokens (RFC 9068), checked on verification so that no
/// other JWT signed with the same key can pass as an access token.
pub const TOKEN_TYPE: &str = "at+jwt";

/// The stored form of the keyring.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub keys: Vec<StoredKey>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    pub kid: String,
    /// Base64 (standard) PKCS#8 DER of the P-256 private key.
    pub pkcs8: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl KeyFile {
    /// A keyring with one fresh key.
    pub fn generate() -> KeyFile {
        KeyFile { keys: vec![StoredKey::generate()] }
    }

    /// Puts a fresh signing key in front; the others keep verifying.
    pub fn rotate(mut self) -> KeyFile {
        self.keys.insert(0, StoredKey::generate());
        self
    }
}

impl StoredKey {
    pub fn generate() -> StoredKey {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256 key generation");
        let kid = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        StoredKey { kid, pkcs8: STANDARD.encode(doc.as_ref()) }
    }
}

/// Claims of Portico's tokens; on verification only `iss`, `aud`, `sub`, `exp` are required
/// (`nbf` is checked when present).
#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

/// `GET /.well-known/jwks.json`: Portico's public ES256 keys (RFC 7517).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key of the set: a P-256 point, its id, and what it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    #[schema(example = "EC")]
    pub kty: String,
    #[schema(example = "P-256")]
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[schema(example = "ES256")]
    pub alg: Option<String>,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: Option<String>,
}

/// Signs and verifies Portico's access tokens.
pub struct Keyring {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Jwks,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: i64,
}

impl Keyring {
    /// Builds the keyring from its stored JSON; refuses an empty or malformed one.
    pub fn from_json(text: &str, config: &Config) -> Result<Keyring, Error> {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|e| Error::Internal(format!("signing keyring is malformed: {e}")))?;
        Keyring::new(&file, config)
    }

    pub fn new(file: &KeyFile, config: &Config) -> Result<Keyring, Error> {
        let first = file.keys.first().ok_or_else(|| Error::Internal("signing keyring has no key".into()))?;
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        for key in &file.keys {
            let der = STANDARD
                .decode(&key.pkcs8)
                .map_err(|_| Error::Internal(format!("signing key '{}' is not base64", key.kid)))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                .map_err(|_| Error::Internal(format!("signing key '{}' is not a P-256 PKCS#8 key", key.kid)))?;
            // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
            let point = pair.public_key().as_ref();
            let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
            let decoding = DecodingKey::from_ec_components(&x, &y)
                .map_err(|e| Error::Internal(format!("signing key '{}': {e}", key.kid)))?;
            verifying.insert(key.kid.clone(), decoding);
            published.push(Jwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x,
                y,
                kid: key.kid.clone(),
                alg: Some("ES256".into()),
                use_: Some("sig".into()),
            });
        }
        let der = STANDARD.decode(&first.pkcs8).expect("checked above");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = config.token_leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.token_issuer]);
        validation.set_audience(&[&config.token_audience]);
        Ok(Keyring {
            signing_kid: first.kid.clone(),
            signing: EncodingKey::from_ec_der(&der),
            verifying,
            jwks: Jwks { keys: published },
            validation,
            issuer: config.token_issuer.clone(),
            audience: config.token_audience.clone(),
            ttl: config.access_token_ttl as i64,
        })
    }

    /// The public keys, as a JWK set.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Whether `kid` names one of Portico's keys.
    pub fn knows(&self, kid: &str) -> bool {
        self.verifying.contains_key(kid)
    }

    /// A fresh access token for `username`; also returns its lifetime in seconds.
    pub fn issue(&self, username: &str) -> (String, i64) {
        let now = crate::store::now_epoch();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: username.to_owned(),
            exp: now + self.ttl,
            iat: Some(now),
            nbf: Some(now),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.signing_kid.clone());
        header.typ = Some(TOKEN_TYPE.into());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing).expect("ES256 signing with a checked key");
        (token, self.ttl)
    }

    /// Verifies one of Portico's tokens whose header has already been read.
    pub(super) fn verify(&self, token: &str, header: &Header) -> Result<VerifiedToken, Error> {
        if header.typ.as_deref().is_none_or(|t| !t.eq_ignore_ascii_case(TOKEN_TYPE)) {
            return Err(Error::Unauthorized("bearer token is not a Portico access token".into()));
        }
        let key = header.kid.as_deref().and_then(|k| self.verifying.get(k));
        let key = key.ok_or_else(|| Error::Unauthorized("bearer token key is unknown".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(jwt_error)?;
        Ok(VerifiedToken {
            source: TokenSource::Portico,
            username: data.claims.sub,
            groups: vec![],
            expires_at: data.claims.exp,
        })
    }
}
