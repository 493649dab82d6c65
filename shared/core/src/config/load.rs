//! Where settings come from, layered by figment: the defaults, then the settings file, then
//! `PORTICO_*` environment variables (`PORTICO_RPC_METHOD_RULES__VIEWER` sets
//! `rpc_method_rules.viewer`). Every field is overridable by a variable, with no list to keep
//! (text settings take any value as text, see [`text`]).
//!
//! Unknown settings are refused, from the file and from `PORTICO_*` variables alike (a
//! misspelt variable is an error, not a default silently kept), except the variables Portico
//! reads for other purposes ([`NOT_SETTINGS`]). Errors name the setting and what was expected,
//! never the value: a settings file may hold local secrets.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::error::Kind;
use figment::providers::{Env, Serialized};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use super::{Config, ConfigError};

/// `PORTICO_*` variables that are not settings: the settings file's path, local secrets
/// (`PORTICO_SECRET_<ID>`), the emulator's first password, the CLI's, and the test harness's.
const NOT_SETTINGS: [&str; 6] = ["settings", "bootstrap_password", "url", "token", "username", "password"];
const NOT_SETTINGS_PREFIXES: [&str; 2] = ["secret_", "test_"];

pub(super) fn load() -> Result<Config, ConfigError> {
    let file = std::env::var_os("PORTICO_SETTINGS").map(PathBuf::from).or_else(|| {
        let default = PathBuf::from("settings.toml");
        default.exists().then_some(default)
    });
    let file = file.map(|path| read_file(&path)).transpose()?;
    let config = extract(layers(file))?;
    config.validate()?;
    Ok(config)
}

/// The settings file as a TOML table. A syntax error names the place, never the line's text.
fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    text.parse::<toml::Table>().map_err(|e| {
        let at = e.span().map(|s| format!(" (at byte {})", s.start)).unwrap_or_default();
        ConfigError(format!("{}: {}{at}", path.display(), e.message()))
    })
}

fn layers(file: Option<toml::Table>) -> Figment {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(table) = file {
        figment = figment.merge(Serialized::defaults(table));
    }
    let is_setting = |key: &str| {
        let key = key.to_ascii_lowercase();
        !NOT_SETTINGS.contains(&key.as_str()) && !NOT_SETTINGS_PREFIXES.iter().any(|p| key.starts_with(p))
    };
    figment.merge(Env::prefixed("PORTICO_").split("__").filter(move |key| is_setting(key.as_str())))
}

fn extract(figment: Figment) -> Result<Config, ConfigError> {
    figment.extract().map_err(|errors| ConfigError(errors.into_iter().map(describe).collect::<Vec<_>>().join("; ")))
}

/// One figment error, naming the setting (as the variable, if it came from one) and what was
/// expected, without figment's `found ...` (the value).
fn describe(error: figment::Error) -> String {
    let path = &error.path;
    let from_env = error.metadata.as_ref().is_some_and(|m| m.name.contains("environment"));
    let place = if from_env {
        format!("PORTICO_{}", path.join("__").to_ascii_uppercase())
    } else {
        format!("settings file, '{}'", path.join("."))
    };
    let what = match &error.kind {
        Kind::UnknownField(..) => "not a setting".to_owned(),
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => format!("expected {expected}"),
        Kind::UnknownVariant(_, expected) => format!("expected one of: {}", expected.join(", ")),
        Kind::InvalidLength(_, expected) => format!("expected {expected}"),
        Kind::DuplicateField(_) => "given twice".to_owned(),
        Kind::MissingField(name) => format!("misses '{name}'"),
        // Messages of the helpers below and of serde's derives, which quote no value.
        Kind::Message(message) => message.clone(),
        _ => "an unusable value".to_owned(),
    };
    format!("{place}: {what}")
}

/// A variable's value as figment read it: `PORTICO_TABLE_NAME=2024` arrives as a number and
/// `PORTICO_X=true` as a boolean, yet a text setting means the text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Unsigned(n) => n.to_string(),
            Scalar::Signed(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// A text setting (see [`Scalar`]).
pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Scalar::deserialize(d).map(Scalar::into_text).map_err(|_| D::Error::custom("expected a text"))
}

/// A list: an array (settings file), or one comma-separated string (a variable).
pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        Commas(Scalar),
        Items(Vec<Scalar>),
    }
    let refused = |_| D::Error::custom("expected a list of strings or one comma-separated string");
    Ok(match List::deserialize(d).map_err(refused)? {
        List::Commas(s) => {
            s.into_text().split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        }
        List::Items(items) => items.into_iter().map(Scalar::into_text).collect(),
    })
}

/// An optional text; empty means unset (a deployment template passes `""` for "off").
pub(super) fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Scalar>::deserialize(d).map_err(|_| D::Error::custom("expected a text"))?;
    Ok(value.map(Scalar::into_text).filter(|s| !s.is_empty()))
}

/// Nested settings: a table (settings file, nested variables) or a JSON text (one variable,
/// `PORTICO_RPC_UPSTREAMS='[{"endpoint": "https://cuebot:8443"}]'`, as a template passes it).
pub(super) fn json_or_value<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Json(String),
        Value(T),
    }
    match Either::<T>::deserialize(d).map_err(|_| D::Error::custom("expected a table or a JSON text of one"))? {
        Either::Value(value) => Ok(value),
        // Empty: none (whichever of a list or a map `T` is).
        Either::Json(text) if text.trim().is_empty() => serde_json::from_str("[]")
            .or_else(|_| serde_json::from_str("{}"))
            .map_err(|_| D::Error::custom("expected a table or a JSON text of one")),
        Either::Json(text) => serde_json::from_str(&text)
            .map_err(|e| D::Error::custom(format!("not usable JSON: {}", crate::input::shape_message(&e.to_string())))),
    }
}

#[cfg(test)]
// figment's Jail closures return its (large) error type; nothing here is on a hot path.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;
    use crate::config::{RpcUnknownFields, RpcUpstream, StoreKind};

    fn file(text: &str) -> Option<toml::Table> {
        Some(text.parse().expect("test TOML"))
    }

    #[test]
    fn variables_override_the_file_which_overrides_the_defaults() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTICO_ALLOWED_ORIGINS", "https://a.example, https://b.example");
            jail.set_env("PORTICO_PAGE_SIZE_MAX", "40");
            jail.set_env("PORTICO_STORE", "memory");
            jail.set_env("PORTICO_OIDC_AUDIENCE", "");
            jail.set_env("PORTICO_SECRET_PORTICO_SIGNING_KEYS", "not a setting, a local secret");
            jail.set_env("PORTICO_TEST_DYNAMODB", "http://127.0.0.1:1");
            let c =
                extract(layers(file("admin_group = \"ops\"\npage_size_max = 50\noidc_audience = \"x\"\n"))).unwrap();
            assert_eq!(c.admin_group, "ops");
            assert_eq!(c.page_size_max, 40);
            assert_eq!(c.allowed_origins, ["https://a.example", "https://b.example"]);
            assert_eq!(c.store, StoreKind::Memory);
            assert_eq!(c.oidc_audience, None, "an empty variable unsets");
            assert_eq!(c.token_leeway, Config::default().token_leeway);
            Ok(())
        });
    }

    /// The settings the hand-kept list of overridable fields once missed (the streaming
    /// platform's URLs, the relay's) and the nested ones.
    #[test]
    fn every_setting_and_nested_keys_can_come_from_variables() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTICO_STREAM_LAUNCH_URL", "https://launch.example");
            jail.set_env("PORTICO_RELAY_URL", "wss://relay.example/ws");
            jail.set_env("PORTICO_SESSION_TTL", "600");
            jail.set_env("PORTICO_RPC_UNKNOWN_FIELDS", "reject");
            jail.set_env("PORTICO_RPC_METHOD_RULES__VIEWER", r#"["*/Get*", "*/Find*"]"#);
            jail.set_env("PORTICO_RPC_UPSTREAMS", r#"[{"endpoint": "https://cuebot:8443", "services": ["show."]}]"#);
            jail.set_env("PORTICO_SECRETS_LOCAL__SOME_KEY", "value");
            let c = extract(layers(None)).unwrap();
            assert_eq!(c.stream_launch_url.as_deref(), Some("https://launch.example"));
            assert_eq!(c.relay_url, "wss://relay.example/ws");
            assert_eq!(c.session_ttl, 600);
            assert_eq!(c.rpc_unknown_fields, RpcUnknownFields::Reject);
            assert_eq!(c.rpc_method_rules["viewer"], ["*/Get*", "*/Find*"]);
            let cuebot = RpcUpstream {
                endpoint: "https://cuebot:8443".into(),
                services: vec!["show.".into()],
                group: "opencue".into(),
                ca_file: None,
            };
            assert_eq!(c.rpc_upstreams, [cuebot]);
            assert_eq!(c.local_secrets["some_key"], "value");
            Ok(())
        });
    }

    // Every test runs in a Jail: it serializes the tests that read the process environment.
    /// figment reads `2024` as a number and `true` as a boolean; text settings keep the text.
    #[test]
    fn text_settings_take_values_that_look_like_numbers() {
        Jail::expect_with(|jail| {
            jail.set_env("PORTICO_TABLE_NAME", "2024");
            jail.set_env("PORTICO_OIDC_AUDIENCE", "123456");
            jail.set_env("PORTICO_BOOTSTRAP_ADMINS", "1001");
            jail.set_env("PORTICO_ADMIN_GROUP", "true");
            let c = extract(layers(None)).unwrap();
            assert_eq!((c.table_name.as_str(), c.oidc_audience.as_deref()), ("2024", Some("123456")));
            assert_eq!((c.bootstrap_admins, c.admin_group), (vec!["1001".to_owned()], "true".to_owned()));
            Ok(())
        });
    }

    #[test]
    fn nested_tables_come_from_the_file() {
        Jail::expect_with(|_| {
            let c = extract(layers(file(
                "[[rpc_upstreams]]\nendpoint = \"http://a:1\"\ngroup = \"farm-a\"\n[rpc_method_rules]\nviewer = [\"*/Get*\"]\n",
            )))
            .unwrap();
            let farm = &c.rpc_upstreams[0];
            assert_eq!((farm.group.as_str(), farm.services.as_slice()), ("farm-a", &[String::new()][..]));
            assert_eq!(c.rpc_method_rules["viewer"], ["*/Get*"]);
            Ok(())
        });
    }

    #[test]
    fn unknown_settings_and_bad_values_are_refused_without_quoting_them() {
        Jail::expect_with(|jail| {
            let err = extract(layers(file("admin_grup = \"x\""))).unwrap_err();
            assert_eq!(err.0, "settings file, 'admin_grup': not a setting");
            let err = extract(layers(file("[[rpc_upstreams]]\nendpoint = \"http://a:1\"\nsecret = \"s3cr3t\"\n")))
                .unwrap_err();
            assert!(err.0.contains("'rpc_upstreams") && !err.0.contains("s3cr3t"), "{}", err.0);
            jail.set_env("PORTICO_TOKEN_LEEWAY", "soon-s3cr3t");
            let err = extract(layers(None)).unwrap_err();
            assert!(err.0.starts_with("PORTICO_TOKEN_LEEWAY: expected"), "{}", err.0);
            assert!(!err.0.contains("s3cr3t"), "{}", err.0);
            jail.set_env("PORTICO_TOKEN_LEEWAY", "30");
            jail.set_env("PORTICO_ALOWED_ORIGINS", "*");
            assert_eq!(extract(layers(None)).unwrap_err().0, "PORTICO_ALOWED_ORIGINS: not a setting");
            jail.set_env("PORTICO_ALOWED_ORIGINS", "");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("PORTICO_STORE", "postgres");
            let err = extract(layers(None)).unwrap_err();
            assert!(err.0.starts_with("PORTICO_STORE: expected one of") && !err.0.contains("postgres"), "{}", err.0);
            jail.set_env("PORTICO_STORE", "memory");
            jail.set_env("PORTICO_RPC_UPSTREAMS", r#"[{"endpoint": 918273645501}]"#);
            let err = extract(layers(None)).unwrap_err();
            assert!(err.0.starts_with("PORTICO_RPC_UPSTREAMS") && !err.0.contains("918273645501"), "{}", err.0);
            Ok(())
        });
    }

    #[test]
    fn syntax_errors_in_the_file_never_quote_it() {
        let dir = std::env::temp_dir().join(format!("portico-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("settings.toml");
        std::fs::write(&path, "[secrets_local]\nkey = \"s3cr3t\\q\"\n").unwrap();
        let err = read_file(&path).unwrap_err();
        assert!(!err.0.contains("s3cr3t"), "{}", err.0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
