//! The apps catalog (the Omniverse portal sample): apps that a portal lists and streams.
//!
//! Storage: one item per app at `pk = "APP"`, `sk = <slug>`, holding the app document in
//! `doc` and copies of the filterable fields `category` and `product_area`. Calls per
//! operation: get 1 read; list 1 query; delete 1 read (the app's group decides who may) + 1
//! conditional delete; put 1 read + 1 conditional write (the read keeps `published_at` and
//! tells the current group; the condition stops lost updates), or a single conditional
//! write with `If-None-Match: *`.
//!
//! Each app has an authorization group (`group`, default `""`): publishing needs
//! `app.publish` on the app's group (on both groups when a replace moves it), deleting needs
//! `app.delete` on it.

use serde::{Deserialize, Serialize};

use crate::authz::{Action, Principal, validate_group};
use crate::store::rmw;
use crate::store::{Condition, Cursor, Item, Key, Query, StoreError, Table};
use crate::{Error, codes};

const PARTITION: &str = "APP";
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 4000;
const MAX_SHORT: usize = 100;
const MAX_ID: usize = 128;
const MAX_URL: usize = 2048;

/// A published app, as stored and returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct App {
    pub slug: String,
    pub function_id: String,
    pub function_version_id: String,
    pub title: String,
    pub description: String,
    pub version: String,
    pub image: Option<String>,
    pub icon: Option<String>,
    pub category: String,
    pub product_area: String,
    /// Authorization group of the app.
    #[serde(default)]
    pub group: String,
    /// What the app's stream needs of the user (the streaming portal's setting).
    #[serde(default)]
    pub authentication_type: AuthenticationType,
    /// First publication (RFC 3339, UTC); kept when the app is replaced.
    pub published_at: String,
    /// Last write (RFC 3339, UTC).
    pub updated_at: String,
}

/// What an app's stream needs of the user, passed to NVCF when its signaling socket opens (the
/// streaming portal's `authentication_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AuthenticationType {
    /// Nothing.
    #[default]
    #[serde(rename = "NONE")]
    None,
    /// The user's ID token, as `User-Token`.
    #[serde(rename = "OPENID")]
    Openid,
    /// The user's Nucleus token (its `nucleus_token` cookie), as `Nucleus-Token`.
    #[serde(rename = "NUCLEUS")]
    Nucleus,
}

/// The body of `PUT /apps/{slug}`. Unknown fields are refused; the server-managed
/// `published_at` / `updated_at` are accepted and ignored, so a fetched app can be sent back.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppInput {
    /// The path's slug, if given.
    #[serde(default)]
    // `names::SLUG`'s pattern (a derive takes literals only; the suite checks they agree).
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub slug: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub function_id: String,
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub function_version_id: String,
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
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub version: String,
    /// An absolute http(s) URL with a host, without whitespace.
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = "^[hH][tT][tT][pP][sS]?://[^/?#\\s\\x00-\\x1f\\x7f-\\x9f]+([/?#][^\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub image: Option<String>,
    /// As `image`.
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = "^[hH][tT][tT][pP][sS]?://[^/?#\\s\\x00-\\x1f\\x7f-\\x9f]+([/?#][^\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub icon: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub category: String,
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub product_area: String,
    /// Up to 64 of `[A-Za-z0-9._:/-]`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:/-]{0,64}$")]
    pub group: String,
    /// Default `NONE`.
    #[serde(default)]
    pub authentication_type: AuthenticationType,
    // Accepted and ignored: not part of the documented input.
    #[serde(default, rename = "published_at")]
    #[schema(ignore)]
    _published_at: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    #[schema(ignore)]
    _updated_at: Option<serde::de::IgnoredAny>,
}

/// Checks a slug ([`crate::names::SLUG`]).
pub fn validate_slug(slug: &str) -> Result<(), Error> {
    crate::names::SLUG.check(slug)
}

/// A text field: at most `max` characters, not blank if `required`, no control characters
/// (but line breaks and tabs if `multiline`).
pub fn check_text(field: &str, value: &str, max: usize, required: bool, multiline: bool) -> Result<(), Error> {
    if required && value.trim().is_empty() {
        return Err(Error::invalid_field(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Error::invalid_field(field, format_args!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t'))) {
        return Err(Error::invalid_field(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_id(field: &str, value: &str) -> Result<(), Error> {
    if is_platform_id(value) {
        Ok(())
    } else {
        Err(Error::invalid_field(field, "must be 1-128 characters of [A-Za-z0-9._-]"))
    }
}

/// Whether `value` may be a streaming platform's id (a function's, a version's, a session's):
/// 1 to 128 of `[A-Za-z0-9._-]`.
pub fn is_platform_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An absolute `http` or `https` URL with a host and no whitespace (`field` names it).
pub fn check_url(field: &str, value: &str) -> Result<(), Error> {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &value[8..]
    } else if lower.starts_with("http://") {
        &value[7..]
    } else {
        return Err(Error::invalid_field(field, "must be an http(s) URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if value.chars().count() > MAX_URL || host.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid_field(field, "must be an http(s) URL with a host, at most 2048 characters"));
    }
    Ok(())
}

impl AppInput {
    /// Validates the body for the app at `slug` (the path's slug).
    pub fn validate(&self, slug: &str) -> Result<(), Error> {
        validate_slug(slug)?;
        if let Some(body_slug) = &self.slug
            && body_slug != slug
        {
            return Err(Error::bad_request(
                codes::SLUG_MISMATCH,
                format!("the body's slug differs from the path's '{slug}'"),
            ));
        }
        check_id("function_id", &self.function_id)?;
        check_id("function_version_id", &self.function_version_id)?;
        check_text("title", &self.title, MAX_TITLE, true, false)?;
        check_text("description", &self.description, MAX_DESCRIPTION, false, true)?;
        check_text("version", &self.version, MAX_SHORT, false, false)?;
        check_text("category", &self.category, MAX_SHORT, false, false)?;
        check_text("product_area", &self.product_area, MAX_SHORT, false, false)?;
        if let Some(url) = &self.image {
            check_url("image", url)?;
        }
        if let Some(url) = &self.icon {
            check_url("icon", url)?;
        }
        validate_group(&self.group)?;
        if self.group == "*" {
            return Err(Error::invalid_field("group", "names one group; '*' is only for permissions"));
        }
        Ok(())
    }

    fn into_app(self, slug: &str, published_at: String, now: String) -> App {
        App {
            slug: slug.to_owned(),
            function_id: self.function_id,
            function_version_id: self.function_version_id,
            title: self.title,
            description: self.description,
            version: self.version,
            image: self.image,
            icon: self.icon,
            category: self.category,
            product_area: self.product_area,
            group: self.group,
            authentication_type: self.authentication_type,
            published_at,
            updated_at: now,
        }
    }
}

/// A value with its entity tag (the stored revision).
#[derive(Clone, Debug)]
pub struct Tagged<T> {
    pub value: T,
    pub etag: String,
}

/// Conditional-request headers, parsed (RFC 9110 §13).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Precondition {
    #[default]
    None,
    /// `If-Match: *`
    IfMatchAny,
    /// `If-Match: "a", "b"`: the current entity tag must be one of these.
    IfMatch(Vec<String>),
    /// `If-None-Match: *`: only create.
    IfNoneMatchAny,
}

/// Filters and paging of `GET /apps`.
#[derive(Clone, Debug, Default)]
pub struct AppFilter {
    pub category: Option<String>,
    pub product_area: Option<String>,
}

/// Catalog operations over a [`Table`].
pub struct Catalog<'a> {
    table: &'a dyn Table,
}

fn key(slug: &str) -> Key {
    Key::new(PARTITION, slug)
}

fn to_item(app: &App) -> Item {
    let mut item = Item::new(key(&app.slug))
        .with_doc(app)
        .with_s("category", app.category.clone())
        .with_s("product_area", app.product_area.clone());
    // Written with the app itself, so the index never names an app that is not there.
    item.index_key = Some(Key::new(function_index(&app.function_id, &app.function_version_id), app.slug.clone()));
    item
}

/// Present once a read of the whole catalog found every app in the function index.
static INDEXED_MARKER: std::sync::LazyLock<Key> = std::sync::LazyLock::new(|| Key::new("APP_INDEX", "complete"));

/// The index partition of the apps of one function version.
fn function_index(function_id: &str, version_id: &str) -> String {
    format!("FUNCTION#{function_id}#{version_id}")
}

fn from_item(item: &Item) -> Result<Tagged<App>, Error> {
    let doc = item.s("doc").ok_or_else(|| Error::Internal(format!("app item {} has no doc", item.key.sk)))?;
    let value = serde_json::from_str(doc).map_err(|e| Error::Internal(format!("app item {}: {e}", item.key.sk)))?;
    Ok(Tagged { value, etag: item.rev.clone() })
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .expect("UTC time formats as RFC 3339")
}

fn not_found(slug: &str) -> Error {
    Error::NotFound(format!("app '{slug}' does not exist"))
}

fn changed(slug: &str) -> Error {
    Error::PreconditionFailed(format!("app '{slug}' does not match the request's precondition"))
}

impl<'a> Catalog<'a> {
    pub fn new(table: &'a dyn Table) -> Self {
        Catalog { table }
    }

    /// One app. 1 read.
    pub async fn get(&self, slug: &str) -> Result<Tagged<App>, Error> {
        validate_slug(slug).map_err(|_| not_found(slug))?;
        let item = self.table.get(&key(slug)).await?.ok_or_else(|| not_found(slug))?;
        from_item(&item)
    }

    /// The apps (at most 10, in slug order) that stream `function_id`'s version `version_id`:
    /// what the streaming portal's own routes name. 1 query (index: eventually consistent).
    pub async fn by_function(&self, function_id: &str, version_id: &str) -> Result<Vec<App>, Error> {
        let page = self.table.query(&Query::index(function_index(function_id, version_id), 10)).await?;
        let apps: Vec<App> = page.items.iter().map(|i| from_item(i).map(|t| t.value)).collect::<Result<_, _>>()?;
        if !apps.is_empty() {
            return Ok(apps);
        }
        // Once a pass found every app indexed, a miss is a miss (apps are written indexed).
        if self.table.get(&INDEXED_MARKER).await?.is_some() {
            return Ok(Vec::new());
        }
        self.reindexed(function_id, version_id).await
    }

    /// The apps of a function version the index does not know (published before it was kept),
    /// found by reading the catalog, and indexed on the way (each rewritten as it was, under its
    /// revision): 1 query per 100 apps, until a read finds none unindexed (then a marker says so,
    /// and a miss costs 1 read more).
    async fn reindexed(&self, function_id: &str, version_id: &str) -> Result<Vec<App>, Error> {
        let (mut found, mut unindexed) = (Vec::new(), 0);
        let mut after = None;
        loop {
            let mut query = Query::table(PARTITION, 100);
            query.after = after;
            let page = self.table.query(&query).await?;
            for item in page.items.iter().filter(|i| i.index_key.is_none()) {
                unindexed += 1;
                let app = from_item(item)?.value;
                if app.function_id == function_id && app.function_version_id == version_id {
                    // A concurrent change wrote the index itself.
                    let _ = self.table.put(to_item(&app), Condition::Rev(item.rev.clone())).await;
                    found.push(app);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if unindexed == 0 {
            let _ = self.table.put(Item::new(INDEXED_MARKER.clone()), Condition::Always).await;
        }
        Ok(found)
    }

    /// A page of apps in slug order. 1 query.
    pub async fn list(
        &self,
        filter: &AppFilter,
        limit: u32,
        after: Option<Cursor>,
    ) -> Result<(Vec<App>, Option<Cursor>), Error> {
        let mut query = Query::table(PARTITION, limit);
        query.after = after;
        if let Some(c) = &filter.category {
            query.filters.push(("category".into(), c.clone()));
        }
        if let Some(p) = &filter.product_area {
            query.filters.push(("product_area".into(), p.clone()));
        }
        let page = self.table.query(&query).await?;
        let apps = page.items.iter().map(|i| from_item(i).map(|t| t.value)).collect::<Result<_, _>>()?;
        Ok((apps, page.next))
    }

    /// Creates or replaces the app at `slug` on behalf of `who`; returns it and whether it
    /// was created. 1 read + 1 conditional write (1 write with `If-None-Match: *`).
    pub async fn put(
        &self,
        who: &Principal,
        slug: &str,
        input: AppInput,
        pre: &Precondition,
    ) -> Result<(Tagged<App>, bool), Error> {
        input.validate(slug)?;
        who.require(Action::AppPublish, &input.group)?;
        let now = now_rfc3339();
        if *pre == Precondition::IfNoneMatchAny {
            let app = input.into_app(slug, now.clone(), now);
            return self.write(app, Condition::Absent).await.map_err(|e| match e {
                Error::Conflict(_) => changed(slug),
                other => other,
            });
        }
        // A concurrent writer between our read and write is retried while the request's
        // precondition still holds for what was read (no precondition, or `If-Match: *`):
        // the client asked for create-or-replace, and published_at must survive.
        let retries = matches!(pre, Precondition::None | Precondition::IfMatchAny);
        let attempts = if retries { rmw::attempts() } else { 0..1 };
        for _ in attempts {
            let current = self.table.get(&key(slug)).await?;
            let current = current.map(|i| from_item(&i)).transpose()?;
            let condition = match (&current, pre) {
                (None, Precondition::None) => Condition::Absent,
                (None, _) => return Err(changed(slug)),
                (Some(c), Precondition::IfMatch(tags)) if !tags.contains(&c.etag) => return Err(changed(slug)),
                (Some(c), _) => Condition::Rev(c.etag.clone()),
            };
            if let Some(c) = &current
                && c.value.group != input.group
            {
                // Moving an app out of a group needs the right on that group too.
                who.require(Action::AppPublish, &c.value.group)?;
            }
            let published_at = current.as_ref().map_or_else(|| now.clone(), |c| c.value.published_at.clone());
            let app = input.clone().into_app(slug, published_at, now.clone());
            match self.write(app, condition).await {
                Err(Error::Conflict(_)) if retries => continue,
                Err(Error::Conflict(_)) => return Err(changed(slug)),
                other => return other,
            }
        }
        Err(Error::Conflict(format!("app '{slug}' is being changed concurrently; retry")))
    }

    async fn write(&self, app: App, condition: Condition) -> Result<(Tagged<App>, bool), Error> {
        let item = to_item(&app);
        let etag = item.rev.clone();
        match self.table.put(item, condition).await {
            Ok(previous) => Ok((Tagged { value: app, etag }, previous.is_none())),
            Err(StoreError::ConditionFailed { .. }) => Err(Error::Conflict(format!("app '{}' changed", app.slug))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the app at `slug` on behalf of `who`: 1 read (the app's group decides) + 1
    /// delete conditional on the revision read, so a concurrent change is never deleted
    /// unseen.
    pub async fn delete(&self, who: &Principal, slug: &str, pre: &Precondition) -> Result<(), Error> {
        if *pre == Precondition::IfNoneMatchAny {
            // "Delete only if it does not exist" can never succeed on an existing app.
            return match self.get(slug).await {
                Ok(_) => Err(changed(slug)),
                Err(e) => Err(e),
            };
        }
        let current = self.get(slug).await?;
        who.require(Action::AppDelete, &current.value.group)?;
        if let Precondition::IfMatch(tags) = pre
            && !tags.contains(&current.etag)
        {
            return Err(changed(slug));
        }
        match self.table.delete(&key(slug), Condition::Rev(current.etag)).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed { current: Some(_) }) => Err(changed(slug)),
            Err(StoreError::ConditionFailed { current: None }) => Err(not_found(slug)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["usd-validate", "a", "0", &"a".repeat(63)] {
            assert!(validate_slug(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a b", "é", &"a".repeat(64)] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        for good in ["https://x.example/i.png", "HTTP://h", "https://h:8080/p?q#f"] {
            assert!(check_url("image", good).is_ok(), "{good}");
        }
        for bad in ["javascript:alert(1)", "ftp://h/x", "https://", "https:///p", "https://h/a b", "data:image/png"] {
            assert!(check_url("image", bad).is_err(), "{bad}");
        }
    }
}
