//! Authorization (Open-RMF's model): roles; permissions are (role, authorization group,
//! action); users hold roles; administrators may do anything. Resources carry an
//! authorization group (`""` by default); a permission on group `*` covers every group.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::auth::TokenSource;
use crate::quotas::Resources;

/// What a route wants to do on a resource of some group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Action {
    #[serde(rename = "app.publish")]
    AppPublish,
    #[serde(rename = "app.delete")]
    AppDelete,
    #[serde(rename = "session.start")]
    SessionStart,
    #[serde(rename = "session.manage")]
    SessionManage,
    #[serde(rename = "job.submit")]
    JobSubmit,
    #[serde(rename = "job.cancel")]
    JobCancel,
    #[serde(rename = "rpc.call")]
    RpcCall,
    /// Start a remote desktop of an environment of the group.
    #[serde(rename = "desktop.start")]
    DesktopStart,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::AppPublish,
        Action::AppDelete,
        Action::SessionStart,
        Action::SessionManage,
        Action::JobSubmit,
        Action::JobCancel,
        Action::RpcCall,
        Action::DesktopStart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::AppPublish => "app.publish",
            Action::AppDelete => "app.delete",
            Action::SessionStart => "session.start",
            Action::SessionManage => "session.manage",
            Action::JobSubmit => "job.submit",
            Action::JobCancel => "job.cancel",
            Action::RpcCall => "rpc.call",
            Action::DesktopStart => "desktop.start",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Checks an authorization group name: `*`, or up to 64 of `[A-Za-z0-9._:/-]` (may be empty).
pub fn validate_group(group: &str) -> Result<(), Error> {
    let ok = group == "*"
        || (group.len() <= 64
            && group.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')));
    if ok { Ok(()) } else { Err(Error::invalid_field("group", "must be '*' or up to 64 of [A-Za-z0-9._:/-]")) }
}

/// A permission: `action` on resources of `group`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// `*` (every group), or up to 64 of `[A-Za-z0-9._:/-]` (`""` is the default group).
    #[schema(pattern = "^(\\*|[A-Za-z0-9._:/-]{0,64})$")]
    pub group: String,
    pub action: Action,
}

/// Who is calling, with everything authorization needs.
#[derive(Clone, Debug)]
pub struct Principal {
    pub username: String,
    pub source: TokenSource,
    /// Groups asserted by the token's issuer.
    pub groups: Vec<String>,
    pub admin: bool,
    pub roles: Vec<String>,
    pub permissions: Arc<BTreeSet<Permission>>,
    /// Effective quota limits.
    pub limits: Resources,
}

impl Principal {
    /// Whether the principal may do `action` on a resource of `group`.
    pub fn may(&self, action: Action, group: &str) -> bool {
        self.admin || self.permissions.iter().any(|p| p.action == action && (p.group == group || p.group == "*"))
    }

    /// Whether the principal may do `action` on some group (to refuse early, before reading
    /// a body or a record).
    pub fn may_somewhere(&self, action: Action) -> bool {
        self.admin || self.permissions.iter().any(|p| p.action == action)
    }

    /// [`Principal::may`], as a 403 when not.
    pub fn require(&self, action: Action, group: &str) -> Result<(), Error> {
        if self.may(action, group) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "'{}' on group '{group}' is not granted to '{}'",
                action.as_str(),
                self.username
            )))
        }
    }

    /// [`Principal::may_somewhere`], as a 403 when not.
    pub fn require_somewhere(&self, action: Action) -> Result<(), Error> {
        if self.may_somewhere(action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("'{}' is not granted to '{}'", action.as_str(), self.username)))
        }
    }

    /// A 403 unless the principal is an administrator.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.admin { Ok(()) } else { Err(Error::Forbidden("this route is for administrators".into())) }
    }
}
