//! Authorization: may this principal do this action on a resource of this group?
//!
//! Routes ask an [`Authorizer`]; they never inspect roles themselves. The interim policy,
//! [`AdminWrites`], lets any authenticated principal read and only administrators write. The
//! identity issue replaces it with roles and (role, group, action) permissions.

use crate::{Error, auth::Principal};

/// What a route wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read the catalog.
    AppRead,
    /// Create or replace an app.
    AppPublish,
    /// Delete an app.
    AppDelete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AppRead => "app.read",
            Action::AppPublish => "app.publish",
            Action::AppDelete => "app.delete",
        }
    }
}

/// Decides whether `principal` may do `action` on a resource in authorization `group`.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    async fn authorize(&self, principal: &Principal, action: Action, group: &str) -> Result<(), Error>;
}

/// Reads for everyone authenticated, writes for administrators only.
pub struct AdminWrites;

#[async_trait::async_trait]
impl Authorizer for AdminWrites {
    async fn authorize(&self, principal: &Principal, action: Action, _group: &str) -> Result<(), Error> {
        match action {
            Action::AppRead => Ok(()),
            _ if principal.admin => Ok(()),
            _ => Err(Error::Forbidden(format!("'{}' needs an administrator", action.as_str()))),
        }
    }
}
