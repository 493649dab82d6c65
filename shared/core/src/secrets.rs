//! Secrets: signing keys and API keys, read through [`Secrets`] and never logged.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::Error;
use crate::cache::TtlCache;

/// A source of secret strings, by secret id.
#[async_trait::async_trait]
pub trait Secrets: Send + Sync {
    /// The current value of secret `id`. Errors never contain the value.
    async fn get(&self, id: &str) -> Result<String, Error>;

    /// As [`Secrets::get`], bypassing any cache: for when a value is known to be stale (a
    /// token names a key the cached keyring lacks).
    async fn get_fresh(&self, id: &str) -> Result<String, Error> {
        self.get(id).await
    }
}

/// AWS Secrets Manager, with each value cached for a TTL so that a warm Lambda does not call
/// Secrets Manager per request, yet picks up a rotation within the TTL.
pub struct SecretsManager {
    client: Client,
    cache: TtlCache<String, String>,
}

impl SecretsManager {
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretsManager { client, cache: TtlCache::new(ttl, 1_000) }
    }

    /// A client from the process's AWS configuration.
    pub fn client(aws: &aws_config::SdkConfig) -> Client {
        Client::new(aws)
    }
}

#[async_trait::async_trait]
impl Secrets for SecretsManager {
    async fn get(&self, id: &str) -> Result<String, Error> {
        if let Some(value) = self.cache.get(&id.to_owned()) {
            return Ok(value);
        }
        self.get_fresh(id).await
    }

    #[tracing::instrument(name = "secrets_manager", skip_all, fields(op = "GetSecretValue"))]
    async fn get_fresh(&self, id: &str) -> Result<String, Error> {
        let out = self.client.get_secret_value().secret_id(id).send().await.map_err(|err| match err.code() {
            Some("ResourceNotFoundException") => Error::Internal(format!("secret '{id}' does not exist")),
            Some("ThrottlingException") => Error::Unavailable(format!("reading secret '{id}' throttled")),
            _ => Error::Internal(format!("reading secret '{id}': {}", DisplayErrorContext(err))),
        })?;
        let value = out
            .secret_string()
            .ok_or_else(|| Error::Internal(format!("secret '{id}' has no string value")))?
            .to_owned();
        self.cache.insert(id.to_owned(), value.clone());
        Ok(value)
    }
}

/// Local secrets: `PORTICO_SECRET_<ID>` environment variables (the id upper-cased, every
/// character outside `[A-Z0-9]` replaced by `_`), then the settings file's `[secrets_local]`.
pub struct LocalSecrets {
    values: BTreeMap<String, String>,
}

impl LocalSecrets {
    pub fn new(values: BTreeMap<String, String>) -> Self {
        LocalSecrets { values }
    }

    /// The environment variable that holds secret `id`.
    pub fn env_name(id: &str) -> String {
        let tail: String =
            id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        format!("PORTICO_SECRET_{tail}")
    }
}

#[async_trait::async_trait]
impl Secrets for LocalSecrets {
    async fn get(&self, id: &str) -> Result<String, Error> {
        std::env::var(Self::env_name(id))
            .ok()
            .or_else(|| self.values.get(id).cloned())
            .ok_or_else(|| Error::Internal(format!("local secret '{id}' is not set ({})", Self::env_name(id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_secrets_come_from_settings_and_errors_name_the_variable() {
        let s = LocalSecrets::new(BTreeMap::from([("app/key".to_owned(), "v1".to_owned())]));
        assert_eq!(s.get("app/key").await.unwrap(), "v1");
        let err = s.get("portico/never-set-xyz").await.unwrap_err().to_string();
        assert_eq!(err, "internal error", "the client-facing message hides details");
        let Error::Internal(detail) = s.get("portico/never-set-xyz").await.unwrap_err() else { panic!() };
        assert!(detail.contains("PORTICO_SECRET_PORTICO_NEVER_SET_XYZ"), "{detail}");
    }
}
