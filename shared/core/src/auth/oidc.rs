//! Tokens of an external OpenID Connect provider: keys from its `jwks_uri`, cached for
//! `oidc_jwks_ttl`; an unknown `kid` triggers at most one refresh per `oidc_jwks_min_refresh`
//! (a burst of bad `kid`s never becomes a burst of fetches); if the provider is down, the
//! cached keys keep serving. Groups come from the token, or from the `userinfo_endpoint`
//! (cached for `oidc_userinfo_ttl`) when one is configured (the Omniverse portal sample).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::{TokenSource, VerifiedToken, jwt_error};
use crate::cache::TtlCache;
use crate::outbound::Outbound;
use crate::{Config, Error};

/// Largest JWKS or userinfo document read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Userinfo answers kept at most (then the cache starts over).
const MAX_USERINFO_ENTRIES: usize = 10_000;

/// A provider key and the algorithm it is pinned to, if its JWK names one.
type PinnedKey = (Arc<DecodingKey>, Option<Algorithm>);

struct JwksState {
    keys: HashMap<String, PinnedKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_failed: bool,
}

/// The provider's signing keys, cached.
pub struct JwksCache {
    uri: String,
    ttl: Duration,
    min_refresh: Duration,
    http: Outbound,
    state: RwLock<JwksState>,
    /// One fetch at a time; waiters then read what it fetched.
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub fn new(uri: String, ttl: Duration, min_refresh: Duration, http: Outbound) -> JwksCache {
        let state = JwksState { keys: HashMap::new(), fetched_at: None, last_attempt: None, last_failed: false };
        JwksCache { uri, ttl, min_refresh, http, state: RwLock::new(state), fetching: tokio::sync::Mutex::new(()) }
    }

    fn lookup(&self, kid: &str) -> (Option<PinnedKey>, bool) {
        let state = self.state.read().expect("jwks lock");
        let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
        (state.keys.get(kid).cloned(), fresh)
    }

    /// The key `kid`, fetching the JWKS when the cache is stale or the key is unknown (both
    /// rate-limited).
    async fn key(&self, kid: &str) -> Result<PinnedKey, Error> {
        if let (Some(key), true) = self.lookup(kid) {
            return Ok(key);
        }
        {
            let _one_fetch = self.fetching.lock().await;
            // Whoever held the lock may just have fetched what we need.
            let (found, fresh) = self.lookup(kid);
            let (recently_tried, last_failed) = {
                let state = self.state.read().expect("jwks lock");
                (state.last_attempt.is_some_and(|t| t.elapsed() < self.min_refresh), state.last_failed)
            };
            let should_fetch = match (&found, fresh) {
                (Some(_), true) => false,
                // Stale: refresh once the TTL is over, but not again soon after a failure.
                (_, false) => !(recently_tried && last_failed),
                // Unknown kid on a fresh cache: one refresh per min_refresh, whatever the kid.
                (None, true) => !recently_tried,
            };
            if should_fetch {
                self.state.write().expect("jwks lock").last_attempt = Some(Instant::now());
                match self.fetch().await {
                    Ok(keys) => {
                        let mut state = self.state.write().expect("jwks lock");
                        state.keys = keys;
                        state.fetched_at = Some(Instant::now());
                        state.last_failed = false;
                    }
                    Err(e) => {
                        self.state.write().expect("jwks lock").last_failed = true;
                        tracing::warn!(error = %e, uri = %self.uri, "JWKS refresh failed; serving cached keys");
                    }
                }
            }
        }
        self.lookup(kid).0.ok_or_else(|| Error::Unauthorized("bearer token key is unknown".into()))
    }

    async fn fetch(&self) -> Result<HashMap<String, PinnedKey>, String> {
        let set: JwkSet = get_json(&self.http, &self.uri, None).await?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
            match DecodingKey::from_jwk(&jwk) {
                Ok(key) => {
                    keys.insert(kid, (Arc::new(key), alg));
                }
                Err(e) => tracing::warn!(kid = %kid, error = %e, "skipping unusable JWK"),
            }
        }
        Ok(keys)
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &Outbound,
    url: &str,
    bearer: Option<&str>,
) -> Result<T, String> {
    let mut req = http.client().map_err(|e| e.to_string())?.get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("GET {url}: document too large"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
}

/// Groups learned from the userinfo endpoint, by token digest.
struct Userinfo {
    endpoint: String,
    cache: TtlCache<Vec<u8>, Vec<String>>,
}

pub struct OidcTokens {
    jwks: JwksCache,
    algorithms: Vec<Algorithm>,
    validation: Validation,
    username_claim: String,
    groups_claim: String,
    userinfo: Option<Userinfo>,
    http: Outbound,
}

impl OidcTokens {
    /// The OIDC token source, if `oidc_jwks_uri` is configured.
    pub fn from_config(config: &Config, http: Outbound) -> Result<Option<OidcTokens>, Error> {
        let Some(uri) = &config.oidc_jwks_uri else { return Ok(None) };
        let issuer = config
            .oidc_issuer
            .as_ref()
            .ok_or_else(|| Error::Internal("oidc_issuer is required with oidc_jwks_uri".into()))?;
        let mut algorithms = Vec::new();
        for name in &config.oidc_algorithms {
            match name.parse::<Algorithm>() {
                // Only asymmetric algorithms: an HMAC "key" from a JWKS would be key confusion.
                Ok(a) if !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => algorithms.push(a),
                _ => return Err(Error::Internal(format!("oidc_algorithms: '{name}' is not an accepted algorithm"))),
            }
        }
        let mut validation = Validation::new(algorithms.first().copied().unwrap_or(Algorithm::RS256));
        validation.leeway = config.token_leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        match &config.oidc_audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            }
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iss"]);
            }
        }
        let jwks = JwksCache::new(
            uri.clone(),
            Duration::from_secs(config.oidc_jwks_ttl),
            Duration::from_secs(config.oidc_jwks_min_refresh),
            http.clone(),
        );
        let userinfo = config.oidc_userinfo_endpoint.as_ref().map(|endpoint| Userinfo {
            endpoint: endpoint.clone(),
            cache: TtlCache::new(Duration::from_secs(config.oidc_userinfo_ttl), MAX_USERINFO_ENTRIES),
        });
        Ok(Some(OidcTokens {
            jwks,
            algorithms,
            validation,
            username_claim: config.oidc_username_claim.clone(),
            groups_claim: config.oidc_groups_claim.clone(),
            userinfo,
            http,
        }))
    }

    pub(super) fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    pub(super) async fn verify(&self, token: &str, header: &Header) -> Result<VerifiedToken, Error> {
        let kid = header.kid.as_deref().ok_or_else(|| Error::Unauthorized("bearer token has no key id".into()))?;
        let (key, key_alg) = self.jwks.key(kid).await?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(Error::Unauthorized("bearer token algorithm does not match its key".into()));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(jwt_error)?;
        let claims = data.claims;
        let username = claims
            .get(&self.username_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Unauthorized(format!("bearer token has no '{}' claim", self.username_claim)))?
            .to_owned();
        let expires_at = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let mut groups = string_list(claims.get(&self.groups_claim));
        if let Some(userinfo) = &self.userinfo {
            groups.extend(self.userinfo_groups(userinfo, token).await);
        }
        Ok(VerifiedToken { source: TokenSource::Oidc, username, groups, expires_at })
    }

    async fn userinfo_groups(&self, userinfo: &Userinfo, token: &str) -> Vec<String> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref().to_vec();
        if let Some(groups) = userinfo.cache.get(&digest) {
            return groups;
        }
        match get_json::<Map<String, Value>>(&self.http, &userinfo.endpoint, Some(token)).await {
            Ok(info) => {
                let groups = string_list(info.get(&self.groups_claim));
                userinfo.cache.insert(digest, groups.clone());
                groups
            }
            Err(e) => {
                // Fewer groups means fewer rights: carry on with the token's own groups.
                tracing::warn!(error = %e, "userinfo lookup failed");
                vec![]
            }
        }
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}
