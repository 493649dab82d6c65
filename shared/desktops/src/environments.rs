//! Desktop environments (CalipsoPlus's "images"): what an administrator offers, and users start.
//! A `kubernetes` environment runs a container desktop reached over VNC or RDP; a `link` one is
//! a static link (CalipsoPlus's `static_link`) and reserves nothing. Users never give images,
//! ports or hosts: they name an environment.
//!
//! Storage: one item per environment at `ENVIRONMENTS` / `<name>`, the environment as a JSON
//! document; the registry is small, listed in name order.

use portico_core::Error;
use portico_core::apps::{check_text, check_url};
use portico_core::authz::{Action, Principal, validate_group};
use portico_core::directory::now_rfc3339;
use portico_core::names::ENVIRONMENT;
use portico_core::store::{Condition, Cursor, Item, Key, Query, StoreError, Table};
use serde::{Deserialize, Serialize};

const PARTITION: &str = "ENVIRONMENTS";

/// The longest a desktop may run, whatever its environment says: a week.
pub const MAX_LIFETIME: u64 = 7 * 24 * 3600;
/// The shortest maximum lifetime an environment may give: five minutes.
pub const MIN_LIFETIME: u64 = 300;

/// What an environment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentKind {
    /// A container desktop, one Pod per desktop.
    Kubernetes,
    /// A static link; nothing runs, nothing is reserved.
    Link,
}

/// How Guacamole reaches a desktop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesktopProtocol {
    Vnc,
    Rdp,
}

/// An environment, as stored and returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    #[schema(example = "xfce-analysis")]
    pub name: String,
    pub title: String,
    pub description: String,
    pub kind: EnvironmentKind,
    /// The container image (`kubernetes`).
    pub image: Option<String>,
    pub protocol: Option<DesktopProtocol>,
    /// The desktop's port in the container (`kubernetes`).
    pub port: Option<u16>,
    /// The link (`link`).
    pub link: Option<String>,
    /// Millicores a desktop reserves (requests and limits).
    pub cpu: i64,
    /// MiB.
    pub memory: i64,
    /// GiB of scratch space.
    pub storage: i64,
    /// Seconds a desktop may run, extensions included.
    pub max_lifetime: u64,
    /// Authorization group: `desktop.start` on it starts this environment's desktops.
    pub group: String,
    /// Last write (RFC 3339, UTC).
    pub updated_at: String,
}

/// The body of `PUT /environments/{name}`. Unknown fields are refused; `name` (if given) must
/// be the path's and `updated_at` is ignored, so a fetched environment can be sent back.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInput {
    /// The path's name, if given.
    #[serde(default)]
    // `names::ENVIRONMENT`'s pattern (a derive takes literals only; the suite checks they agree).
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,39}$")]
    pub name: Option<String>,
    /// Not blank; no control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub title: String,
    /// Lines and tabs, no other control characters.
    #[serde(default)]
    #[schema(max_length = 4000, pattern = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$")]
    pub description: String,
    pub kind: EnvironmentKind,
    /// `kubernetes`: an image reference (`registry/repository[:tag][@sha256:digest]`).
    #[serde(default)]
    #[schema(
        max_length = 255,
        pattern = "^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[a-f0-9]{64})?$"
    )]
    pub image: Option<String>,
    /// `kubernetes`: `vnc` or `rdp`.
    #[serde(default)]
    pub protocol: Option<DesktopProtocol>,
    /// `kubernetes`: the desktop's port in the container.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
    /// `link`: an absolute http(s) URL with a host, without whitespace.
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = "^[hH][tT][tT][pP][sS]?://[^/?#\\s\\x00-\\x1f\\x7f-\\x9f]+([/?#][^\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub link: Option<String>,
    /// Millicores (`kubernetes`: 1 to 64000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 64000)]
    pub cpu: i64,
    /// MiB (`kubernetes`: 1 to 262144).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 262144)]
    pub memory: i64,
    /// GiB (0 to 1024).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1024)]
    pub storage: i64,
    /// Seconds (300 to 604800).
    #[schema(minimum = 300, maximum = 604800)]
    pub max_lifetime: u64,
    /// Up to 64 of `[A-Za-z0-9._:/-]`; default `""`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:/-]{0,64}$")]
    pub group: String,
    #[serde(default, rename = "updated_at")]
    #[schema(ignore)]
    _updated_at: Option<serde::de::IgnoredAny>,
}

/// An image reference: `registry/repository[:tag][@sha256:digest]`, at most 255 characters.
fn check_image(image: &str) -> Result<(), Error> {
    let (name, digest) = image.split_once('@').map_or((image, None), |(n, d)| (n, Some(d)));
    let (repository, tag) = match name.rsplit_once(':') {
        // A colon before the last slash is a registry's port, not a tag.
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    let repository_ok = repository.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && repository.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-:".contains(&b));
    let tag_ok = tag.is_none_or(|t| {
        (1..=128).contains(&t.len())
            && !t.starts_with(['.', '-'])
            && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    let digest_ok = digest.is_none_or(|d| {
        d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    if image.len() <= 255 && repository_ok && tag_ok && digest_ok {
        Ok(())
    } else {
        Err(Error::invalid_field("image", "must be an image reference: registry/repository[:tag][@sha256:digest]"))
    }
}

fn within(field: &str, value: i64, low: i64, high: i64) -> Result<(), Error> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid_field(field, format_args!("must be between {low} and {high}")))
    }
}

impl EnvironmentInput {
    /// Checks the input for the environment `name`.
    pub fn validate(&self, name: &str) -> Result<(), Error> {
        ENVIRONMENT.check(name)?;
        if self.name.as_deref().is_some_and(|n| n != name) {
            return Err(Error::invalid_field("name", "must be the path's name"));
        }
        check_text("title", &self.title, 200, true, false)?;
        check_text("description", &self.description, 4000, false, true)?;
        validate_group(&self.group)?;
        within("storage", self.storage, 0, 1024)?;
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&self.max_lifetime) {
            return Err(Error::invalid_field(
                "max_lifetime",
                format_args!("must be between {MIN_LIFETIME} and {MAX_LIFETIME} seconds"),
            ));
        }
        match self.kind {
            EnvironmentKind::Kubernetes => {
                check_image(self.image.as_deref().ok_or_else(|| Error::invalid_field("image", "is required"))?)?;
                self.protocol.ok_or_else(|| Error::invalid_field("protocol", "is required"))?;
                if self.port.is_none_or(|p| p == 0) {
                    return Err(Error::invalid_field("port", "is required, 1 to 65535"));
                }
                within("cpu", self.cpu, 1, 64_000)?;
                within("memory", self.memory, 1, 262_144)?;
                if self.link.is_some() {
                    return Err(Error::invalid_field("link", "is for link environments"));
                }
            }
            EnvironmentKind::Link => {
                check_url("link", self.link.as_deref().ok_or_else(|| Error::invalid_field("link", "is required"))?)?;
                for (field, given) in [("image", self.image.is_some()), ("protocol", self.protocol.is_some())] {
                    if given {
                        return Err(Error::invalid_field(field, "is for kubernetes environments"));
                    }
                }
                if self.port.is_some() {
                    return Err(Error::invalid_field("port", "is for kubernetes environments"));
                }
                within("cpu", self.cpu, 0, 0)?;
                within("memory", self.memory, 0, 0)?;
            }
        }
        Ok(())
    }

    fn into_environment(self, name: &str) -> Environment {
        Environment {
            name: name.to_owned(),
            title: self.title,
            description: self.description,
            kind: self.kind,
            image: self.image,
            protocol: self.protocol,
            port: self.port,
            link: self.link,
            cpu: self.cpu,
            memory: self.memory,
            storage: self.storage,
            max_lifetime: self.max_lifetime,
            group: self.group,
            updated_at: now_rfc3339(),
        }
    }
}

fn key(name: &str) -> Key {
    Key::new(PARTITION, name)
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("environment '{}' does not exist", portico_core::input::shown_key(name)))
}

fn from_item(item: &Item) -> Result<Environment, Error> {
    let doc = item.s("doc").ok_or_else(|| Error::Internal(format!("environment {} has no doc", item.key.sk)))?;
    serde_json::from_str(doc).map_err(|e| Error::Internal(format!("environment {}: {e}", item.key.sk)))
}

/// The environments registry over a [`Table`].
pub struct Environments<'a> {
    pub table: &'a dyn Table,
}

impl Environments<'_> {
    /// One environment. 1 read.
    pub async fn get(&self, name: &str) -> Result<Environment, Error> {
        ENVIRONMENT.check(name).map_err(|_| not_found(name))?;
        from_item(&self.table.get(&key(name)).await?.ok_or_else(|| not_found(name))?)
    }

    /// The environment `name`, if `who` may start its desktops (else 404: names do not leak).
    pub async fn startable(&self, who: &Principal, name: &str) -> Result<Environment, Error> {
        let environment = self.get(name).await?;
        if who.may(Action::DesktopStart, &environment.group) { Ok(environment) } else { Err(not_found(name)) }
    }

    /// A page of environments in name order, those `who` may start (every one for an
    /// administrator; pages may be short). 1 query.
    pub async fn list(
        &self,
        who: &Principal,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<Environment>, Option<Cursor>), Error> {
        let mut query = Query::table(PARTITION, limit);
        query.after = after;
        let page = self.table.query(&query).await?;
        let all = page.items.iter().map(from_item).collect::<Result<Vec<_>, _>>()?;
        Ok((all.into_iter().filter(|e| who.may(Action::DesktopStart, &e.group)).collect(), page.next))
    }

    /// Creates or replaces `name`; whether it was created. 1 write.
    pub async fn put(&self, name: &str, input: EnvironmentInput) -> Result<(Environment, bool), Error> {
        input.validate(name)?;
        let environment = input.into_environment(name);
        let previous = self.table.put(Item::new(key(name)).with_doc(&environment), Condition::Always).await?;
        Ok((environment, previous.is_none()))
    }

    /// Deletes `name`; 404 if absent. 1 delete.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        ENVIRONMENT.check(name).map_err(|_| not_found(name))?;
        match self.table.delete(&key(name), Condition::Exists).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { .. }) => Err(not_found(name)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
