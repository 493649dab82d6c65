//! Storage: one DynamoDB-shaped table behind the [`Table`] trait.
//!
//! # Key design (single table)
//!
//! | attribute | meaning |
//! |-----------|---------|
//! | `pk`, `sk` | table key (strings). Entities choose them: an app is `pk = "APP"`, `sk = <slug>`, so the catalog is one partition, listed in slug order with a strongly consistent `Query`. |
//! | `gsi1pk`, `gsi1sk` | optional key of the listing index `gsi1` (projection ALL), for listings that cross partitions (sessions by user, jobs by user). |
//! | `rev` | revision token, new on every write; the HTTP `ETag` and the optimistic-concurrency check. |
//! | `ttl` | expiry, epoch seconds, the table's TTL attribute. DynamoDB deletes lazily, so every read also treats `ttl <= now` as absent. |
//! | anything else | entity attributes (strings or integers); entities keep their document in `doc` and copy filterable fields next to it. |
//!
//! Both implementations ([`memory::MemoryTable`], [`dynamo::DynamoTable`]) give the same
//! answers to the same calls, which the conformance suite in `tests/` checks against
//! DynamoDB Local. No operation here is a Scan.

pub mod counting;
pub mod dynamo;
pub mod memory;
pub mod rmw;
pub mod sharded;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The primary key of an item.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key { pk: pk.into(), sk: sk.into() }
    }
}

/// A non-key attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    S(String),
    N(i64),
}

/// One stored item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub key: Key,
    /// Key in the listing index `gsi1`, if the item is listed there.
    pub index_key: Option<Key>,
    /// Revision token; callers set a fresh one on every write (see [`new_rev`]).
    pub rev: String,
    /// Expiry in epoch seconds; past it the item reads as absent.
    pub expires_at: Option<i64>,
    pub attrs: BTreeMap<String, Attr>,
}

impl Item {
    pub fn new(key: Key) -> Self {
        Item { key, index_key: None, rev: new_rev(), expires_at: None, attrs: BTreeMap::new() }
    }

    pub fn with_s(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attrs.insert(name.to_owned(), Attr::S(value.into()));
        self
    }

    pub fn with_n(mut self, name: &str, value: i64) -> Self {
        self.attrs.insert(name.to_owned(), Attr::N(value));
        self
    }

    /// `value` as the item's `doc` (the entity as JSON).
    pub fn with_doc<T: Serialize>(self, value: &T) -> Self {
        self.with_s("doc", serde_json::to_string(value).expect("documents serialize"))
    }

    /// The entity kept in `doc`; a missing or unreadable one is an internal error.
    pub fn doc<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::Error> {
        let text = self.s("doc").ok_or_else(|| crate::Error::Internal(format!("item {:?} has no doc", self.key)))?;
        serde_json::from_str(text).map_err(|e| crate::Error::Internal(format!("item {:?}: {e}", self.key)))
    }

    pub fn s(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name) {
            Some(Attr::S(s)) => Some(s),
            _ => None,
        }
    }

    pub fn n(&self, name: &str) -> Option<i64> {
        match self.attrs.get(name) {
            Some(Attr::N(n)) => Some(*n),
            _ => None,
        }
    }

    /// Whether the item is past its expiry at `now` (epoch seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// A fresh revision token.
pub fn new_rev() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Names reserved by the store; entity attributes may not use them.
pub const RESERVED_ATTRS: [&str; 6] = ["pk", "sk", "gsi1pk", "gsi1sk", "rev", "ttl"];

/// A condition a write needs to hold on the current (live) item, checked atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// No live item at the key (an expired one counts as absent).
    Absent,
    /// A live item at the key.
    Exists,
    /// A live item whose `rev` is this one.
    Rev(String),
}

/// Where a query reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Items with this `pk`, in `sk` order.
    Table(String),
    /// Items with this `gsi1pk`, in `gsi1sk` order.
    Index(String),
}

/// A page-at-a-time read of one partition.
#[derive(Clone, Debug)]
pub struct Query {
    pub partition: Partition,
    /// Only sort keys that begin with this.
    pub sk_prefix: Option<String>,
    /// Only items whose string attribute equals the value (all must hold).
    pub filters: Vec<(String, String)>,
    /// At most this many items (>= 1).
    pub limit: u32,
    /// Resume after the item this cursor came from.
    pub after: Option<Cursor>,
}

impl Query {
    pub fn table(pk: impl Into<String>, limit: u32) -> Self {
        Query { partition: Partition::Table(pk.into()), sk_prefix: None, filters: vec![], limit, after: None }
    }

    pub fn index(gsi1pk: impl Into<String>, limit: u32) -> Self {
        Query { partition: Partition::Index(gsi1pk.into()), sk_prefix: None, filters: vec![], limit, after: None }
    }
}

/// One page of a query. `next` is present exactly when more matching items may follow.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

/// An opaque position in a listing, safe to hand to clients (base64url JSON of the keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(String);

#[derive(Serialize, Deserialize)]
struct CursorKeys {
    pk: String,
    sk: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    ipk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    isk: Option<String>,
}

impl Cursor {
    /// The cursor that resumes after `item` in a query of `partition`.
    pub fn after_item(item: &Item, partition: &Partition) -> Cursor {
        let (ipk, isk) = match (partition, &item.index_key) {
            (Partition::Index(_), Some(k)) => (Some(k.pk.clone()), Some(k.sk.clone())),
            _ => (None, None),
        };
        let keys = CursorKeys { pk: item.key.pk.clone(), sk: item.key.sk.clone(), ipk, isk };
        let json = serde_json::to_vec(&keys).expect("cursor keys serialize");
        Cursor(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    /// Accepts a cursor string from a client; it is only checked against a query in
    /// [`Cursor::position`].
    pub fn from_client(s: &str) -> Cursor {
        Cursor(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes the cursor for `query`: the table key and, for index queries, the index key.
    /// A cursor from another listing, or garbage, is [`StoreError::InvalidCursor`].
    pub fn position(&self, query: &Query) -> Result<(Key, Option<Key>), StoreError> {
        if self.0.len() > 2048 {
            return Err(StoreError::InvalidCursor);
        }
        let raw =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&self.0).map_err(|_| StoreError::InvalidCursor)?;
        let k: CursorKeys = serde_json::from_slice(&raw).map_err(|_| StoreError::InvalidCursor)?;
        // Keys DynamoDB would reject (empty, or over its 2048/1024-byte key limits) are a
        // client's forgery, not a server failure.
        let key_ok = |v: &str, max: usize| !v.is_empty() && v.len() <= max;
        if !key_ok(&k.pk, 2048)
            || !key_ok(&k.sk, 1024)
            || k.ipk.as_deref().is_some_and(|v| !key_ok(v, 2048))
            || k.isk.as_deref().is_some_and(|v| !key_ok(v, 1024))
        {
            return Err(StoreError::InvalidCursor);
        }
        let prefix_ok = |sk: &str| query.sk_prefix.as_deref().is_none_or(|p| sk.starts_with(p));
        match (&query.partition, k.ipk, k.isk) {
            (Partition::Table(pk), None, None) if *pk == k.pk && prefix_ok(&k.sk) => Ok((Key::new(k.pk, k.sk), None)),
            (Partition::Index(ipk), Some(cipk), Some(cisk)) if *ipk == cipk && prefix_ok(&cisk) => {
                Ok((Key::new(k.pk, k.sk), Some(Key::new(cipk, cisk))))
            }
            _ => Err(StoreError::InvalidCursor),
        }
    }
}

/// One counter change of [`Table::add`]: `attr += delta`, and the new value must stay within
/// `0..=max` (no upper bound when `max` is `None`). A missing attribute counts as 0.
///
/// A *flag* ([`Counter::set_flag`], [`Counter::clear_flag`]) is a presence mark instead of a
/// number: setting it is refused when it is set, clearing it (which removes the attribute) when
/// it is not. Put beside the counters of a reservation, it names who holds it, so the same
/// reservation is never made or given back twice, even by a retry whose first answer was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub attr: String,
    pub delta: i64,
    pub max: Option<i64>,
    /// A presence flag: `delta` 1 sets it, -1 clears it.
    pub flag: bool,
}

impl Counter {
    pub fn new(attr: impl Into<String>, delta: i64, max: Option<i64>) -> Self {
        Counter { attr: attr.into(), delta, max, flag: false }
    }

    /// Sets the flag `attr` (stored as 1); refused if it is set.
    pub fn set_flag(attr: impl Into<String>) -> Self {
        Counter { attr: attr.into(), delta: 1, max: None, flag: true }
    }

    /// Clears (removes) the flag `attr`; refused if it is not set.
    pub fn clear_flag(attr: impl Into<String>) -> Self {
        Counter { attr: attr.into(), delta: -1, max: None, flag: true }
    }
}

/// Refuses counter lists no store can apply: empty, repeated or reserved names.
pub(crate) fn check_counters(counters: &[Counter]) -> Result<(), StoreError> {
    let mut names = std::collections::BTreeSet::new();
    for c in counters {
        if RESERVED_ATTRS.contains(&c.attr.as_str()) || c.attr == "doc" || !names.insert(c.attr.as_str()) {
            return Err(StoreError::Backend(format!("counter '{}' is reserved or repeated", c.attr)));
        }
    }
    if counters.is_empty() {
        return Err(StoreError::Backend("no counters to change".into()));
    }
    if counters.iter().any(|c| c.flag && c.delta.abs() != 1) {
        return Err(StoreError::Backend("a flag is set (+1) or cleared (-1)".into()));
    }
    Ok(())
}

/// Failures of a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's [`Condition`] did not hold; `current` is the live item, if any.
    #[error("condition failed")]
    ConditionFailed { current: Option<Box<Item>> },
    #[error("invalid cursor")]
    InvalidCursor,
    /// The backend could not be reached, throttled or did not answer in time, retries
    /// included, or the outcome of a write is unknown (its answer was lost). Retryable later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Backend(String),
}

/// The storage operations Portico needs; every one is a single round trip.
#[async_trait::async_trait]
pub trait Table: Send + Sync {
    /// The live item at `key` (strongly consistent).
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Writes `item` if `condition` holds; returns the live item it replaced, if any.
    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError>;

    /// Deletes the item at `key` if `condition` holds; returns the live item deleted, if any.
    /// (A delete retried after a lost answer may not know what it deleted: an unconditional one
    /// then returns `None`, a conditional one [`StoreError::Unavailable`]. Read first what must
    /// be known.)
    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError>;

    /// One page of a partition, in sort-key order.
    async fn query(&self, query: &Query) -> Result<Page, StoreError>;

    /// Applies every counter change at once, creating the item if needed, only if every new
    /// value stays within its bounds; otherwise [`StoreError::ConditionFailed`] and nothing
    /// changes. `expires_at`, when given, becomes the item's expiry. Returns the new item.
    /// This is how quotas are reserved without ever overshooting.
    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError>;
}

/// Current time in epoch seconds.
pub fn now_epoch() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Pagination shared by both stores, so that they cut pages identically.
///
/// A query evaluates at most `limit + 1` items (in DynamoDB: `Limit = limit + 1`, then the
/// filter). If more than `limit` matched, the page is cut after the `limit`-th and the cursor
/// points there; if the evaluation window was exhausted with fewer matches, the cursor is the
/// last evaluated key; otherwise the listing is complete and there is no cursor.
pub(crate) fn cut_page(query: &Query, mut matched: Vec<Item>, last_evaluated: Option<Cursor>) -> Page {
    let limit = query.limit as usize;
    if matched.len() > limit {
        matched.truncate(limit);
        let next = matched.last().map(|i| Cursor::after_item(i, &query.partition));
        Page { items: matched, next }
    } else {
        Page { items: matched, next: last_evaluated }
    }
}

#[cfg(test)]
mod props;
