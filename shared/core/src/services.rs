//! The platform's clients every route group shares, built once per process: the store, the
//! secrets, identity, delegated login and outbound HTTPS. A domain's own clients are built by
//! its crate, in the functions that use them (`portico_streaming::Streaming`,
//! `portico_jobs::JobClients`).

use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenVerifier;
use crate::auth::oidc::OidcTokens;
use crate::auth::own::Keyring;
use crate::auth::reload::FromSecret;
use crate::auth::web::WebTokens;
use crate::authz::{Action, Principal};
use crate::config::{SecretsKind, StoreKind};
use crate::identity::Identity;
use crate::login::{HttpLoginProvider, LoginProvider};
use crate::outbound::Outbound;
use crate::secrets::{LocalSecrets, Secrets, SecretsManager};
use crate::store::dynamo::{DynamoTable, Patience};
use crate::store::{Table, memory::MemoryTable};
use crate::web::{ApiRequest, bearer};
use crate::{Config, Error};

/// The platform's clients (see the module's documentation).
pub struct Services {
    pub config: Config,
    pub table: Arc<dyn Table>,
    pub secrets: Arc<dyn Secrets>,
    pub identity: Identity,
    pub login_provider: Option<Arc<dyn LoginProvider>>,
    /// Outbound HTTPS (rustls), shared by every client of an outside service, built on first use.
    pub http: Outbound,
    /// The process's AWS configuration (region, credentials), when the store or the secrets
    /// are AWS's: for the clients a function adds (the relay's Management API, S3 links).
    pub aws: Option<aws_config::SdkConfig>,
}

impl Services {
    /// Builds the store, secrets and token sources that `config` names. The AWS
    /// configuration (region, credentials) is resolved once, for every client.
    pub async fn from_config(config: Config) -> Result<Services, Error> {
        let needs_aws = config.store == StoreKind::Dynamodb
            || config.secrets == SecretsKind::Secretsmanager
            || config.bridge_queue_url.is_some();
        let aws = match needs_aws {
            true => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
            false => None,
        };
        let table: Arc<dyn Table> = match (&aws, config.store) {
            (Some(aws), StoreKind::Dynamodb) => {
                let patience = Patience::of(&config);
                let client = DynamoTable::client(aws, config.dynamodb_endpoint.as_deref(), &patience);
                Arc::new(DynamoTable::new(client, config.table_name.clone()).with_patience(patience))
            }
            _ => Arc::new(MemoryTable::new()),
        };
        let secrets: Arc<dyn Secrets> = match (&aws, config.secrets) {
            (Some(aws), SecretsKind::Secretsmanager) => Arc::new(SecretsManager::new(
                SecretsManager::client(aws),
                Duration::from_secs(config.secrets_cache_ttl),
            )),
            _ => Arc::new(LocalSecrets::new(config.local_secrets.clone())),
        };
        let mut services = Services::with(config, table, secrets).await?;
        services.aws = aws;
        Ok(services)
    }

    /// Builds the services over a given store and secrets (tests, the emulator): reads the
    /// signing keyring and, if configured, the web-token secret; sets up OIDC.
    pub async fn with(config: Config, table: Arc<dyn Table>, secrets: Arc<dyn Secrets>) -> Result<Services, Error> {
        let http = Outbound::default();
        let every = Duration::from_secs(config.secrets_cache_ttl);
        let keys_config = config.clone();
        let own = FromSecret::load(Arc::clone(&secrets), &config.signing_keys_secret_id, every, move |raw| {
            Keyring::from_json(raw, &keys_config)
        })
        .await?;
        let web = match &config.web_token_secret_id {
            Some(id) => {
                let web_config = config.clone();
                let build = move |raw: &str| WebTokens::new(raw.as_bytes(), &web_config);
                Some(FromSecret::load(Arc::clone(&secrets), id, every, build).await?)
            }
            None => None,
        };
        let oidc = OidcTokens::from_config(&config, http.clone())?;
        let identity = Identity::new(TokenVerifier::new(own, oidc, web), Arc::clone(&table), &config);
        let login_provider = config
            .login_provider_url
            .clone()
            .map(|url| Arc::new(HttpLoginProvider::new(url, http.clone())) as Arc<dyn LoginProvider>);
        Ok(Services { config, table, secrets, identity, login_provider, http, aws: None })
    }

    /// The client `make` builds for the outside service at `url`, if one is configured, from
    /// the configuration, the secrets and the outbound HTTPS client.
    pub fn outside<T>(
        &self,
        url: &Option<String>,
        make: impl FnOnce(&Config, String, Arc<dyn Secrets>, Outbound) -> T,
    ) -> Option<T> {
        let url = url.clone()?;
        Some(make(&self.config, url, Arc::clone(&self.secrets), self.http.clone()))
    }

    /// The caller of `req`; 401 without valid credentials.
    pub async fn principal(&self, req: &ApiRequest) -> Result<Principal, Error> {
        let who = self.identity.authenticate(bearer(req)?).await?;
        crate::web::note_caller(&who.username);
        Ok(who)
    }

    /// The caller of a route a browser portal calls with its cookies (the streaming portal's
    /// `id_token`): the bearer if `req` has an `Authorization` header, else the token in
    /// cookie `name`. A cookie rides along on any site's request, so a cookie-authenticated
    /// request that changes something must come from this origin or an allowed one
    /// (`allowed_origins`): else 403.
    pub async fn principal_by_cookie(&self, req: &ApiRequest, name: &str) -> Result<Principal, Error> {
        if req.headers().contains_key(http::header::AUTHORIZATION) {
            return self.principal(req).await;
        }
        let token = crate::web::cookie(req.headers(), name)
            .ok_or_else(|| Error::Unauthorized(format!("missing bearer token or '{name}' cookie")))?;
        let safe = matches!(*req.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        if !safe && !self.origin_allowed(req.headers()) {
            return Err(Error::Forbidden("a cookie-authenticated request from another origin".into()));
        }
        let who = self.identity.authenticate(token).await?;
        crate::web::note_caller(&who.username);
        Ok(who)
    }

    /// Whether a request with `headers` comes from no browser page (no `Origin`), this origin
    /// (`Host`: behind CloudFront it is the API's own host, so list the portal's origin), or one
    /// named in `allowed_origins`. A `*` there (CORS for bearer tokens) does not let another
    /// site's page use a cookie.
    pub fn origin_allowed(&self, headers: &http::HeaderMap) -> bool {
        let Some(origin) = headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
        let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let own = origin.split_once("://").is_some_and(|(_, authority)| !host.is_empty() && authority == host);
        own || self.config.allowed_origins.iter().any(|o| o == origin)
    }

    /// The caller of `req`, if allowed to do `action` on a resource of `group`; else 401/403.
    pub async fn require(&self, req: &ApiRequest, action: Action, group: &str) -> Result<Principal, Error> {
        let principal = self.principal(req).await?;
        principal.require(action, group)?;
        Ok(principal)
    }

    /// The caller of `req`, if an administrator; else 401/403.
    pub async fn require_admin(&self, req: &ApiRequest) -> Result<Principal, Error> {
        let principal = self.principal(req).await?;
        principal.require_admin()?;
        Ok(principal)
    }

    /// The OAuth2 password grant (`/auth/token`, `/ogdc/token`) with the freshest keyring.
    pub async fn grant_password(&self, form: crate::login::TokenRequest) -> Result<crate::login::Issued, Error> {
        let keys = self.fresh_keys().await;
        let grant = crate::login::PasswordGrant {
            table: self.table.as_ref(),
            keys: &keys,
            config: &self.config,
            provider: self.login_provider.as_deref(),
        };
        grant.grant(form).await
    }

    /// The Portico keyring as last loaded (issues tokens, publishes the JWKS).
    pub fn keys(&self) -> Arc<Keyring> {
        self.identity.tokens.own.current()
    }

    /// The Portico keyring, reloaded first if `secrets_cache_ttl` has passed since the last
    /// check, so a rotation reaches warm processes.
    pub async fn fresh_keys(&self) -> Arc<Keyring> {
        self.identity.tokens.own.fresh().await
    }
}
