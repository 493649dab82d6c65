//! The clients and policies every route group shares, built once per process.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Authenticator, Hs256Tokens, Principal};
use crate::authz::{Action, AdminWrites, Authorizer};
use crate::config::{SecretsKind, StoreKind};
use crate::secrets::{LocalSecrets, Secrets, SecretsManager};
use crate::store::{Table, dynamo::DynamoTable, memory::MemoryTable};
use crate::web::{ApiRequest, bearer};
use crate::{Config, Error};

pub struct Services {
    pub config: Config,
    pub table: Arc<dyn Table>,
    pub secrets: Arc<dyn Secrets>,
    pub authenticator: Arc<dyn Authenticator>,
    pub authorizer: Arc<dyn Authorizer>,
}

impl Services {
    /// Builds the store, secrets and token verifier that `config` names.
    /// The AWS configuration (region, credentials) is resolved once, for every client.
    pub async fn from_config(config: Config) -> Result<Services, Error> {
        let needs_aws = config.store == StoreKind::Dynamodb || config.secrets == SecretsKind::Secretsmanager;
        let aws = match needs_aws {
            true => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
            false => None,
        };
        let table: Arc<dyn Table> = match (&aws, config.store) {
            (Some(aws), StoreKind::Dynamodb) => Arc::new(DynamoTable::new(
                DynamoTable::client(aws, config.dynamodb_endpoint.as_deref()),
                config.table_name.clone(),
            )),
            _ => Arc::new(MemoryTable::new()),
        };
        let secrets: Arc<dyn Secrets> = match (&aws, config.secrets) {
            (Some(aws), SecretsKind::Secretsmanager) => Arc::new(SecretsManager::new(
                SecretsManager::client(aws),
                Duration::from_secs(config.secrets_cache_ttl),
            )),
            _ => Arc::new(LocalSecrets::new(config.local_secrets.clone())),
        };
        Services::with(config, table, secrets).await
    }

    /// Builds the services over a given store and secrets (tests, the emulator).
    pub async fn with(config: Config, table: Arc<dyn Table>, secrets: Arc<dyn Secrets>) -> Result<Services, Error> {
        let authenticator = Arc::new(Hs256Tokens::from_secrets(secrets.as_ref(), &config).await?);
        Ok(Services { config, table, secrets, authenticator, authorizer: Arc::new(AdminWrites) })
    }

    /// The caller of `req`; 401 without valid credentials.
    pub async fn principal(&self, req: &ApiRequest) -> Result<Principal, Error> {
        self.authenticator.authenticate(bearer(req)?).await
    }

    /// The caller of `req`, if allowed to do `action` on a resource of `group`; else 401/403.
    pub async fn require(&self, req: &ApiRequest, action: Action, group: &str) -> Result<Principal, Error> {
        let principal = self.principal(req).await?;
        self.authorizer.authorize(&principal, action, group).await?;
        Ok(principal)
    }
}
