//! `POST /auth/token`: the OAuth2 password grant (RFC 6749 §4.3).
//!
//! Passwords are checked locally (argon2id) or, when `login_provider_url` is set, by a
//! facility service (CalipsoPlus), after which the user is created locally on first success.
//! An unknown user and a wrong password answer alike, in similar time. Failed attempts are
//! counted per username in windows of `login_lockout` seconds; past `login_max_failures`,
//! further attempts in the window are refused without checking the password.
//!
//! Storage calls: 1 read (failure count) + 1 query (user), + 1 counter update on failure
//! (+ 1 write when a delegated login creates the user).

use std::time::Duration;

use serde::Deserialize;

use crate::auth::own::Keyring;
use crate::directory::{Directory, User, now_rfc3339, validate_username};
use crate::outbound::Outbound;
use crate::store::{Counter, Key, Table, now_epoch};
use crate::{Config, Error, passwords};

/// RFC 6749 §5.2 errors.
fn invalid_grant(description: &str) -> Error {
    Error::OAuth { error: "invalid_grant", description: description.into() }
}

pub fn invalid_request(description: &str) -> Error {
    Error::OAuth { error: "invalid_request", description: description.into() }
}

/// The largest token request form read (`/auth/token`, `/ogdc/token`, `/ogdc/create_user`):
/// a username and a password of their longest fit many times over.
pub const MAX_FORM_BYTES: usize = 4096;

/// The form of `POST /auth/token` (other fields are ignored). Read leniently, so that each
/// missing part is refused in RFC 6749's words; documented as what a valid one holds.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PasswordForm)]
pub struct TokenRequest {
    #[schema(value_type = GrantType, required = true)]
    pub grant_type: Option<String>,
    #[schema(value_type = String, required = true)]
    pub username: Option<String>,
    #[schema(value_type = String, required = true)]
    pub password: Option<String>,
}

/// The only grant `POST /auth/token` serves (`unsupported_grant_type` otherwise).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // A schema: the form carries the grant as text.
enum GrantType {
    Password,
}

impl TokenRequest {
    /// An `application/x-www-form-urlencoded` body's `grant_type`, `username` and `password`;
    /// other fields (`scope`, `client_id`) are ignored. A repeated field is refused (which value
    /// was meant is unknown): the error is its name, for each caller to word in its own shape.
    pub fn from_form(body: &[u8]) -> Result<TokenRequest, String> {
        let mut form = TokenRequest { grant_type: None, username: None, password: None };
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "grant_type" => &mut form.grant_type,
                "username" => &mut form.username,
                "password" => &mut form.password,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(name.into_owned());
            }
        }
        Ok(form)
    }
}

/// Checks credentials with a facility service.
#[async_trait::async_trait]
pub trait LoginProvider: Send + Sync {
    /// `Ok(true)` for valid credentials, `Ok(false)` for refused ones; errors mean the
    /// service could not answer.
    async fn check(&self, username: &str, password: &str) -> Result<bool, Error>;
}

/// The HTTPS facility service: `POST <login_provider_url>` with JSON
/// `{"username", "password"}`; 2xx accepts, 401/403 refuses.
pub struct HttpLoginProvider {
    url: String,
    http: Outbound,
}

impl HttpLoginProvider {
    pub fn new(url: String, http: Outbound) -> Self {
        HttpLoginProvider { url, http }
    }
}

#[async_trait::async_trait]
impl LoginProvider for HttpLoginProvider {
    async fn check(&self, username: &str, password: &str) -> Result<bool, Error> {
        let resp = self
            .http
            .client()?
            .post(&self.url)
            .timeout(Duration::from_secs(10))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("login provider: {e}")))?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            400 | 401 | 403 => Ok(false),
            other => Err(Error::Unavailable(format!("login provider answered HTTP {other}"))),
        }
    }
}

/// The password grant.
pub struct PasswordGrant<'a> {
    pub table: &'a dyn Table,
    pub keys: &'a Keyring,
    pub config: &'a Config,
    pub provider: Option<&'a dyn LoginProvider>,
}

/// An issued access token.
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
}

impl PasswordGrant<'_> {
    pub async fn grant(&self, form: TokenRequest) -> Result<Issued, Error> {
        match form.grant_type.as_deref() {
            Some("password") => {}
            Some(_) => {
                return Err(Error::OAuth {
                    error: "unsupported_grant_type",
                    description: "only grant_type=password is supported".into(),
                });
            }
            None => return Err(invalid_request("grant_type is required")),
        }
        let (Some(username), Some(password)) = (form.username, form.password) else {
            return Err(invalid_request("username and password are required"));
        };
        let refused = "invalid username or password";
        if validate_username(&username).is_err() || password.is_empty() || password.len() > passwords::MAX_LEN * 4 {
            passwords::verify_nobody(&password);
            return Err(invalid_grant(refused));
        }
        let window = now_epoch() / self.config.login_lockout as i64;
        let failures_key = Key::new(format!("LOGIN#{username}"), format!("FAIL#{window}"));
        let failures = self.table.get(&failures_key).await?.and_then(|i| i.n("count")).unwrap_or(0);
        if failures >= self.config.login_max_failures {
            return Err(invalid_grant("too many failed attempts for this user; try again later"));
        }
        let accepted = match self.provider {
            Some(provider) => self.delegated(provider, &username, &password).await?,
            None => {
                let entry = Directory::new(self.table).user_entry(&username).await?;
                let password = password.clone();
                // Argon2 takes tens of milliseconds of CPU: off the async workers.
                tokio::task::spawn_blocking(move || match entry.password_hash {
                    Some(hash) => passwords::verify(&password, &hash),
                    None => {
                        passwords::verify_nobody(&password);
                        false
                    }
                })
                .await
                .map_err(|e| Error::Internal(format!("password check: {e}")))?
            }
        };
        if !accepted {
            let window_end = (window + 1) * self.config.login_lockout as i64;
            self.table.add(&failures_key, &[Counter::new("count", 1, None)], Some(window_end)).await?;
            tracing::info!(username = %username, "login refused");
            return Err(invalid_grant(refused));
        }
        let (access_token, expires_in) = self.keys.issue(&username);
        Ok(Issued { access_token, expires_in })
    }

    async fn delegated(&self, provider: &dyn LoginProvider, username: &str, password: &str) -> Result<bool, Error> {
        if !provider.check(username, password).await? {
            return Ok(false);
        }
        let directory = Directory::new(self.table);
        let user = User {
            username: username.to_owned(),
            admin: false,
            roles: vec![],
            source: "login-provider".into(),
            created_at: now_rfc3339(),
            has_password: false,
        };
        match directory.create_user(&user, None).await {
            Ok(()) | Err(Error::Conflict(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_form_reads_its_three_fields_once_each() {
        let form = TokenRequest::from_form(b"grant_type=password&username=ada&password=a%26b&scope=x").unwrap();
        assert_eq!(
            (form.grant_type.as_deref(), form.username.as_deref(), form.password.as_deref()),
            (Some("password"), Some("ada"), Some("a&b"))
        );
        assert_eq!(TokenRequest::from_form(b"username=a&password=b&username=c").err().as_deref(), Some("username"));
        assert_eq!(TokenRequest::from_form(b"scope=a&scope=b").err(), None, "fields not read may repeat");
    }
}
