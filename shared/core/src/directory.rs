//! The directory: users, roles, permissions and quota settings, in the table.
//!
//! | item | `pk` | `sk` | index `gsi1` |
//! |------|------|------|--------------|
//! | user | `USER#<name>` | `PROFILE` (doc + `password_hash`) | `USERS` / name |
//! | user quota override | `USER#<name>` | `QUOTA` | |
//! | user usage counters | `USER#<name>` | `USAGE` | |
//! | role | `ROLE#<name>` | `#ROLE` | `ROLES` / name |
//! | permission | `ROLE#<name>` | `PERM#<action>#<group>` | |
//! | role quota default | `ROLE#<name>` | `QUOTA` | |
//!
//! So one query reads a user with its quota and usage, and one query reads a role with its
//! permissions and quota. A user's roles are references `{name, id}`: a deleted and
//! recreated role gets a new id, so former holders do not silently regain it.

use serde::{Deserialize, Serialize};

use crate::authz::{Action, Permission, validate_group};
use crate::quotas::Resources;
use crate::store::rmw;
use crate::store::{Condition, Cursor, Item, Key, Query, StoreError, Table};
use crate::{Error, codes};

/// Most permissions one role may hold (one query reads them all).
pub const MAX_PERMISSIONS_PER_ROLE: usize = 200;

/// Checks a username ([`crate::names::USERNAME`]).
pub fn validate_username(name: &str) -> Result<(), Error> {
    crate::names::USERNAME.check(name)
}

/// Checks a role name ([`crate::names::ROLE`]).
pub fn validate_role_name(name: &str) -> Result<(), Error> {
    crate::names::ROLE.check(name)
}

/// A user's hold on a role incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    pub name: String,
    pub id: String,
}

/// A user as stored (the password hash is kept beside it, never in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    /// Administrator by flag (bootstrap admins and `admin_group` members are too, without it).
    pub admin: bool,
    pub roles: Vec<RoleRef>,
    /// How the user came to be: `admin` (created by an administrator), `portico`, `oidc`,
    /// `web` (first access with such a token), `login-provider` (delegated login).
    pub source: String,
    pub created_at: String,
    pub has_password: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub id: String,
    pub description: String,
    pub created_at: String,
}

/// A role with everything it grants, as one query reads it.
#[derive(Clone, Debug)]
pub struct RoleSnapshot {
    pub role: Role,
    pub permissions: Vec<Permission>,
    pub quota: Option<Resources>,
}

/// A user's partition: profile, quota override, usage.
#[derive(Clone, Debug, Default)]
pub struct UserEntry {
    pub user: Option<User>,
    pub rev: Option<String>,
    pub password_hash: Option<String>,
    pub quota: Option<Resources>,
}

/// Epoch seconds as RFC 3339 in UTC (`2026-11-24T09:30:00Z`: `Z`, no fractional seconds, as
/// [`now_rfc3339`]); empty for an instant `time` cannot represent.
pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Now, as [`rfc3339`] writes it.
pub fn now_rfc3339() -> String {
    rfc3339(crate::store::now_epoch())
}

fn user_pk(name: &str) -> String {
    format!("USER#{name}")
}

fn role_pk(name: &str) -> String {
    format!("ROLE#{name}")
}

const PROFILE: &str = "PROFILE";
const QUOTA: &str = "QUOTA";
const ROLE_SK: &str = "#ROLE";

fn user_item(user: &User, password_hash: Option<&str>) -> Item {
    let mut item = Item::new(Key::new(user_pk(&user.username), PROFILE)).with_doc(user);
    item.index_key = Some(Key::new("USERS", user.username.clone()));
    match password_hash {
        Some(h) => item.with_s("password_hash", h),
        None => item,
    }
}

fn not_found(what: &str, name: &str) -> Error {
    Error::NotFound(format!("{what} '{name}' does not exist"))
}

/// Directory operations over a [`Table`]; the call count of each is in its doc.
pub struct Directory<'a> {
    table: &'a dyn Table,
}

impl<'a> Directory<'a> {
    pub fn new(table: &'a dyn Table) -> Self {
        Directory { table }
    }

    /// A user's profile, password hash and quota override. 1 query.
    pub async fn user_entry(&self, name: &str) -> Result<UserEntry, Error> {
        let page = self.table.query(&Query::table(user_pk(name), 10)).await?;
        let mut entry = UserEntry::default();
        for item in &page.items {
            match item.key.sk.as_str() {
                PROFILE => {
                    entry.user = Some(item.doc()?);
                    entry.rev = Some(item.rev.clone());
                    entry.password_hash = item.s("password_hash").map(str::to_owned);
                }
                QUOTA => entry.quota = Some(item.doc()?),
                _ => {}
            }
        }
        Ok(entry)
    }

    /// The user, or 404. 1 query.
    pub async fn user(&self, name: &str) -> Result<User, Error> {
        validate_username(name).map_err(|_| not_found("user", name))?;
        self.user_entry(name).await?.user.ok_or_else(|| not_found("user", name))
    }

    /// Creates a user; 409 if the name is taken. 1 conditional write.
    pub async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<(), Error> {
        validate_username(&user.username)?;
        match self.table.put(user_item(user, password_hash), Condition::Absent).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(Error::Conflict("a user with this username already exists".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A page of users in name order. 1 query.
    pub async fn list_users(&self, limit: u32, after: Option<Cursor>) -> Result<(Vec<User>, Option<Cursor>), Error> {
        self.list_index("USERS", limit, after).await
    }

    /// Changes a user with `change`, guarded against concurrent changes (read, then write if
    /// the revision is unchanged; retried). 2 calls per attempt.
    pub async fn update_user(
        &self,
        name: &str,
        change: impl Fn(&mut User, &mut Option<String>) -> Result<(), Error>,
    ) -> Result<User, Error> {
        validate_username(name).map_err(|_| not_found("user", name))?;
        for _ in rmw::attempts() {
            let entry = self.user_entry(name).await?;
            let (Some(mut user), Some(rev)) = (entry.user, entry.rev) else { return Err(not_found("user", name)) };
            let mut hash = entry.password_hash;
            change(&mut user, &mut hash)?;
            user.has_password = hash.is_some();
            if rmw::written(self.table.put(user_item(&user, hash.as_deref()), Condition::Rev(rev)).await)?.is_some() {
                return Ok(user);
            }
        }
        Err(Error::Conflict(format!("user '{name}' is being changed concurrently; retry")))
    }

    /// Deletes a user with their quota override and usage. 404 if absent. 3 deletes.
    pub async fn delete_user(&self, name: &str) -> Result<(), Error> {
        validate_username(name).map_err(|_| not_found("user", name))?;
        match self.table.delete(&Key::new(user_pk(name), PROFILE), Condition::Exists).await {
            Ok(_) => {}
            Err(StoreError::ConditionFailed { .. }) => return Err(not_found("user", name)),
            Err(e) => return Err(e.into()),
        }
        for sk in [QUOTA, "USAGE"] {
            self.table.delete(&Key::new(user_pk(name), sk), Condition::Always).await?;
        }
        Ok(())
    }

    /// Sets (`Some`) or clears (`None`) a user's quota override. 1 read + 1 write.
    pub async fn set_user_quota(&self, name: &str, quota: Option<&Resources>) -> Result<(), Error> {
        self.user(name).await?;
        self.set_quota(Key::new(user_pk(name), QUOTA), quota).await
    }

    async fn set_quota(&self, key: Key, quota: Option<&Resources>) -> Result<(), Error> {
        match quota {
            Some(q) => {
                q.validate()?;
                self.table.put(Item::new(key).with_doc(q), Condition::Always).await?;
            }
            None => {
                self.table.delete(&key, Condition::Always).await?;
            }
        }
        Ok(())
    }

    /// Creates a role; 409 if it exists. 1 conditional write.
    pub async fn create_role(&self, name: &str, description: &str) -> Result<Role, Error> {
        validate_role_name(name)?;
        if description.chars().count() > 500 {
            return Err(Error::invalid_field("description", "must be at most 500 characters"));
        }
        let role = Role {
            name: name.to_owned(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            description: description.to_owned(),
            created_at: now_rfc3339(),
        };
        let mut item = Item::new(Key::new(role_pk(name), ROLE_SK)).with_doc(&role);
        item.index_key = Some(Key::new("ROLES", name));
        match self.table.put(item, Condition::Absent).await {
            Ok(_) => Ok(role),
            Err(StoreError::ConditionFailed { .. }) => {
                Err(Error::Conflict("a role with this name already exists".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A page of roles in name order. 1 query.
    pub async fn list_roles(&self, limit: u32, after: Option<Cursor>) -> Result<(Vec<Role>, Option<Cursor>), Error> {
        self.list_index("ROLES", limit, after).await
    }

    /// A page of the documents listed under `partition` of the index. 1 query.
    async fn list_index<T: serde::de::DeserializeOwned>(
        &self,
        partition: &str,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<T>, Option<Cursor>), Error> {
        let mut q = Query::index(partition, limit);
        q.after = after;
        let page = self.table.query(&q).await?;
        Ok((page.items.iter().map(Item::doc).collect::<Result<_, _>>()?, page.next))
    }

    /// A role with its permissions and quota default, if it exists. 1 query.
    pub async fn role_snapshot(&self, name: &str) -> Result<Option<RoleSnapshot>, Error> {
        if validate_role_name(name).is_err() {
            return Ok(None);
        }
        let mut q = Query::table(role_pk(name), MAX_PERMISSIONS_PER_ROLE as u32 + 2);
        q.after = None;
        let page = self.table.query(&q).await?;
        let mut role = None;
        let mut permissions = Vec::new();
        let mut quota = None;
        for item in &page.items {
            match item.key.sk.as_str() {
                ROLE_SK => role = Some(item.doc::<Role>()?),
                QUOTA => quota = Some(item.doc()?),
                sk if sk.starts_with("PERM#") => {
                    let (Some(action), Some(group)) = (item.s("action").and_then(Action::parse), item.s("group"))
                    else {
                        continue;
                    };
                    permissions.push(Permission { group: group.to_owned(), action });
                }
                _ => {}
            }
        }
        Ok(role.map(|role| RoleSnapshot { role, permissions, quota }))
    }

    /// The role, or 404. 1 query.
    pub async fn role(&self, name: &str) -> Result<RoleSnapshot, Error> {
        self.role_snapshot(name).await?.ok_or_else(|| not_found("role", name))
    }

    /// Deletes a role with its permissions and quota default. 1 query + 1 delete per item.
    /// Holders keep a reference to the deleted incarnation, which grants nothing.
    pub async fn delete_role(&self, name: &str) -> Result<(), Error> {
        validate_role_name(name).map_err(|_| not_found("role", name))?;
        let page = self.table.query(&Query::table(role_pk(name), MAX_PERMISSIONS_PER_ROLE as u32 + 2)).await?;
        if !page.items.iter().any(|i| i.key.sk == ROLE_SK) {
            return Err(not_found("role", name));
        }
        // The role item goes last, so a half-done delete still shows the role, and can be redone.
        for item in page.items.iter().filter(|i| i.key.sk != ROLE_SK) {
            self.table.delete(&item.key, Condition::Always).await?;
        }
        self.table.delete(&Key::new(role_pk(name), ROLE_SK), Condition::Always).await?;
        Ok(())
    }

    /// Grants `permission` to the role (idempotent). 1 query + 1 write.
    pub async fn add_permission(&self, role: &str, permission: &Permission) -> Result<(), Error> {
        validate_group(&permission.group)?;
        let snapshot = self.role(role).await?;
        if snapshot.permissions.contains(permission) {
            return Ok(());
        }
        if snapshot.permissions.len() >= MAX_PERMISSIONS_PER_ROLE {
            return Err(Error::bad_request(
                codes::INVALID_FIELD,
                format!("role '{role}' already holds {MAX_PERMISSIONS_PER_ROLE} permissions"),
            ));
        }
        let sk = format!("PERM#{}#{}", permission.action.as_str(), permission.group);
        let item = Item::new(Key::new(role_pk(role), sk))
            .with_s("action", permission.action.as_str())
            .with_s("group", permission.group.clone());
        self.table.put(item, Condition::Always).await?;
        Ok(())
    }

    /// Revokes `permission`; 404 if the role does not hold it. 1 conditional delete.
    pub async fn remove_permission(&self, role: &str, permission: &Permission) -> Result<(), Error> {
        validate_role_name(role).map_err(|_| not_found("role", role))?;
        let sk = format!("PERM#{}#{}", permission.action.as_str(), permission.group);
        match self.table.delete(&Key::new(role_pk(role), sk), Condition::Exists).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(Error::NotFound(format!(
                "role '{role}' does not hold '{}' on group '{}'",
                permission.action.as_str(),
                permission.group
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets or clears a role's quota default. 1 query + 1 write.
    pub async fn set_role_quota(&self, name: &str, quota: Option<&Resources>) -> Result<(), Error> {
        self.role(name).await?;
        self.set_quota(Key::new(role_pk(name), QUOTA), quota).await
    }
}
