//! From a bearer token to a [`Principal`]: verify the token, then read (or, on first access,
//! create) the user and their roles, cached for `authz_cache_ttl` seconds.
//!
//! Storage calls: none on a cache hit; otherwise 1 query for the user (plus 1 write the
//! first time a user is seen) and 1 query per role held.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{TokenSource, TokenVerifier, VerifiedToken};
use crate::authz::{Permission, Principal};
use crate::cache::TtlCache;
use crate::directory::{Directory, User, now_rfc3339, validate_username};
use crate::quotas::Resources;
use crate::store::Table;
use crate::{Config, Error};

/// Users whose resolution is kept at most (then the cache starts over).
const MAX_CACHED_USERS: usize = 10_000;

/// What the directory says of a user, cached.
#[derive(Clone, Debug)]
struct Resolved {
    user: User,
    roles: Vec<String>,
    permissions: Arc<BTreeSet<Permission>>,
    limits: Resources,
}

pub struct Identity {
    pub tokens: TokenVerifier,
    table: Arc<dyn Table>,
    admin_group: String,
    bootstrap_admins: HashSet<String>,
    default_limits: Resources,
    cache: TtlCache<String, Arc<Resolved>>,
}

impl Identity {
    pub fn new(tokens: TokenVerifier, table: Arc<dyn Table>, config: &Config) -> Identity {
        Identity {
            tokens,
            table,
            admin_group: config.admin_group.clone(),
            bootstrap_admins: config.bootstrap_admins.iter().cloned().collect(),
            default_limits: Resources::defaults(config),
            cache: TtlCache::new(Duration::from_secs(config.authz_cache_ttl), MAX_CACHED_USERS),
        }
    }

    /// The principal behind `bearer`; 401 for any token problem.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, Error> {
        let token = self.tokens.verify(bearer).await?;
        validate_username(&token.username)
            .map_err(|_| Error::Unauthorized("bearer token names an unacceptable username".into()))?;
        let resolved = self.resolve(&token).await?;
        Ok(self.principal(&token, &resolved))
    }

    fn principal(&self, token: &VerifiedToken, r: &Resolved) -> Principal {
        let admin =
            r.user.admin || self.bootstrap_admins.contains(&token.username) || token.groups.contains(&self.admin_group);
        Principal {
            username: token.username.clone(),
            source: token.source,
            groups: token.groups.clone(),
            admin,
            roles: r.roles.clone(),
            permissions: Arc::clone(&r.permissions),
            limits: r.limits,
        }
    }

    async fn resolve(&self, token: &VerifiedToken) -> Result<Arc<Resolved>, Error> {
        let name = &token.username;
        if let Some(resolved) = self.cache.get(name) {
            return Ok(resolved);
        }
        let directory = Directory::new(self.table.as_ref());
        let entry = directory.user_entry(name).await?;
        let user = match entry.user {
            Some(user) => user,
            None => {
                // First authenticated access: the user starts with no roles (Open-RMF).
                let user = User {
                    username: name.clone(),
                    admin: false,
                    roles: vec![],
                    source: source_name(token.source).into(),
                    created_at: now_rfc3339(),
                    has_password: false,
                };
                match directory.create_user(&user, None).await {
                    Ok(()) => user,
                    // Created concurrently: read the winner's record.
                    Err(Error::Conflict(_)) => directory.user(name).await?,
                    Err(e) => return Err(e),
                }
            }
        };
        let mut roles = Vec::new();
        let mut permissions = BTreeSet::new();
        let mut role_limits: Option<Resources> = None;
        for held in &user.roles {
            let Some(snapshot) = directory.role_snapshot(&held.name).await? else { continue };
            if snapshot.role.id != held.id {
                continue; // a later role with the same name
            }
            roles.push(held.name.clone());
            permissions.extend(snapshot.permissions);
            if let Some(q) = snapshot.quota {
                role_limits = Some(role_limits.map_or(q, |l| l.max(q)));
            }
        }
        let limits = entry.quota.or(role_limits).unwrap_or(self.default_limits);
        let resolved = Arc::new(Resolved { user, roles, permissions: Arc::new(permissions), limits });
        self.cache.insert(name.clone(), Arc::clone(&resolved));
        Ok(resolved)
    }

    /// Forgets what is cached, so changes made through this process apply at once (other
    /// processes see them within `authz_cache_ttl`).
    pub fn forget_all(&self) {
        self.cache.clear();
    }
}

fn source_name(source: TokenSource) -> &'static str {
    match source {
        TokenSource::Portico => "portico",
        TokenSource::Oidc => "oidc",
        TokenSource::Web => "web",
    }
}
