//! Configuration: one typed struct, loaded once per process.
//!
//! Sources, later ones winning: the defaults below, a TOML settings file (`PORTICO_SETTINGS`,
//! else `./settings.toml` if present), then `PORTICO_<SETTING>` environment variables (lists
//! are comma-separated). Every setting is documented in the README's configuration table.

use std::path::PathBuf;

use serde::Deserialize;

/// Which [`crate::store::Table`] backs the services.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Dynamodb,
    Memory,
}

/// Where secrets come from.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretsKind {
    /// AWS Secrets Manager (production).
    Secretsmanager,
    /// `PORTICO_SECRET_<ID>` environment variables and the settings file's `[secrets]` table.
    Local,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreKind,
    pub table_name: String,
    /// DynamoDB endpoint override (DynamoDB Local); `None` means AWS.
    pub dynamodb_endpoint: Option<String>,
    pub secrets: SecretsKind,
    /// Seconds a secret read from Secrets Manager is reused.
    pub secrets_cache_ttl: u64,
    /// Local secrets, by secret id (only with `secrets = "local"`).
    #[serde(rename = "secrets_local")]
    pub local_secrets: std::collections::BTreeMap<String, String>,
    /// Secret id of the HS256 key that signs bearer tokens (interim token source; the identity
    /// issue adds the others).
    pub token_secret_id: String,
    /// Required `iss` of bearer tokens, if set.
    pub token_issuer: Option<String>,
    /// Required `aud` of bearer tokens, if set.
    pub token_audience: Option<String>,
    /// Clock skew allowed on `exp` / `nbf`, in seconds.
    pub token_leeway: u64,
    /// Members of this group (the token's `groups` claim) are administrators.
    pub admin_group: String,
    /// Origins allowed by CORS; empty allows none. `*` allows any (never in production).
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Page size of listings when the client gives no `limit`.
    pub page_size_default: u32,
    /// Largest `limit` honoured; larger ones are clamped to it.
    pub page_size_max: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: StoreKind::Dynamodb,
            table_name: "portico".into(),
            dynamodb_endpoint: None,
            secrets: SecretsKind::Secretsmanager,
            secrets_cache_ttl: 300,
            local_secrets: Default::default(),
            token_secret_id: "portico/token-hs256".into(),
            token_issuer: None,
            token_audience: None,
            token_leeway: 30,
            admin_group: "admin".into(),
            allowed_origins: vec![],
            max_body_bytes: 64 * 1024,
            page_size_default: 25,
            page_size_max: 100,
        }
    }
}

/// A configuration that cannot be used; the process refuses to start.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads the configuration from the settings file and the environment.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var_os("PORTICO_SETTINGS").map(PathBuf::from).or_else(|| {
            let default = PathBuf::from("settings.toml");
            default.exists().then_some(default)
        });
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
                Config::from_toml(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    /// Overrides settings from `PORTICO_<SETTING>` variables, read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |name: &str| var(&format!("PORTICO_{}", name.to_ascii_uppercase()));
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError(format!("PORTICO_{} has an invalid value", name.to_uppercase())))
        }
        if let Some(v) = get("store") {
            self.store = match v.as_str() {
                "dynamodb" => StoreKind::Dynamodb,
                "memory" => StoreKind::Memory,
                _ => {
                    return Err(ConfigError("PORTICO_STORE must be 'dynamodb' or 'memory'".into()));
                }
            };
        }
        if let Some(v) = get("secrets") {
            self.secrets = match v.as_str() {
                "secretsmanager" => SecretsKind::Secretsmanager,
                "local" => SecretsKind::Local,
                _ => {
                    return Err(ConfigError("PORTICO_SECRETS must be 'secretsmanager' or 'local'".into()));
                }
            };
        }
        let opt = |v: String| Some(v).filter(|s| !s.is_empty());
        if let Some(v) = get("table_name") {
            self.table_name = v;
        }
        if let Some(v) = get("dynamodb_endpoint") {
            self.dynamodb_endpoint = opt(v);
        }
        if let Some(v) = get("secrets_cache_ttl") {
            self.secrets_cache_ttl = parse("secrets_cache_ttl", &v)?;
        }
        if let Some(v) = get("token_secret_id") {
            self.token_secret_id = v;
        }
        if let Some(v) = get("token_issuer") {
            self.token_issuer = opt(v);
        }
        if let Some(v) = get("token_audience") {
            self.token_audience = opt(v);
        }
        if let Some(v) = get("token_leeway") {
            self.token_leeway = parse("token_leeway", &v)?;
        }
        if let Some(v) = get("admin_group") {
            self.admin_group = v;
        }
        if let Some(v) = get("allowed_origins") {
            self.allowed_origins = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        if let Some(v) = get("max_body_bytes") {
            self.max_body_bytes = parse("max_body_bytes", &v)?;
        }
        if let Some(v) = get("page_size_default") {
            self.page_size_default = parse("page_size_default", &v)?;
        }
        if let Some(v) = get("page_size_max") {
            self.page_size_max = parse("page_size_max", &v)?;
        }
        Ok(())
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.page_size_max == 0 || self.page_size_default == 0 || self.page_size_default > self.page_size_max {
            return Err(ConfigError("need 0 < page_size_default <= page_size_max".into()));
        }
        if self.page_size_max > 1000 {
            return Err(ConfigError("page_size_max is at most 1000".into()));
        }
        if self.token_leeway > 300 {
            return Err(ConfigError("token_leeway is at most 300 seconds".into()));
        }
        if self.admin_group.is_empty() {
            return Err(ConfigError("admin_group must not be empty".into()));
        }
        if self.table_name.is_empty() {
            return Err(ConfigError("table_name must not be empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_lists_split_on_commas() {
        let mut c = Config::from_toml("admin_group = \"ops\"\npage_size_max = 50\n").unwrap();
        assert_eq!(c.admin_group, "ops");
        c.apply_env(|name| match name {
            "PORTICO_ALLOWED_ORIGINS" => Some("https://a.example, https://b.example".into()),
            "PORTICO_PAGE_SIZE_MAX" => Some("40".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(c.page_size_max, 40);
        assert_eq!(c.admin_group, "ops");
    }

    #[test]
    fn unknown_settings_and_bad_values_are_refused() {
        assert!(Config::from_toml("admin_grup = \"x\"").is_err());
        let mut c = Config::default();
        assert!(c.apply_env(|n| (n == "PORTICO_TOKEN_LEEWAY").then(|| "soon".into())).is_err());
        let c = Config { page_size_default: 500, ..Config::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn production_defaults_allow_no_origin() {
        assert!(Config::default().allowed_origins.is_empty());
        assert_eq!(Config::default().store, StoreKind::Dynamodb);
    }
}
