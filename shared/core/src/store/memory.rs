//! The embedded store: the local default, with DynamoDB's semantics (conditions, expiry,
//! pagination windows), so that what works here works on DynamoDB.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use super::{
    Attr, Condition, Counter, Cursor, Item, Key, Page, Partition, Query, StoreError, Table, check_counters, cut_page,
    new_rev, now_epoch,
};

/// An in-memory [`Table`]. One lock guards the table and its index, so every call is atomic
/// as a DynamoDB single-item write is.
#[derive(Default)]
pub struct MemoryTable {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    items: BTreeMap<Key, Item>,
    /// `gsi1`: (index key, table key) -> (). Ties on the index key are ordered by table key.
    index: BTreeMap<(Key, Key), ()>,
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Inner {
    fn live(&self, key: &Key, now: i64) -> Option<&Item> {
        self.items.get(key).filter(|i| !i.is_expired(now))
    }

    fn check(&self, key: &Key, condition: &Condition, now: i64) -> Result<Option<Item>, StoreError> {
        let current = self.live(key, now).cloned();
        let holds = match condition {
            Condition::Always => true,
            Condition::Absent => current.is_none(),
            Condition::Exists => current.is_some(),
            Condition::Rev(rev) => current.as_ref().is_some_and(|c| &c.rev == rev),
        };
        if holds { Ok(current) } else { Err(StoreError::ConditionFailed { current: current.map(Box::new) }) }
    }

    fn remove(&mut self, key: &Key) -> Option<Item> {
        let old = self.items.remove(key)?;
        if let Some(ik) = &old.index_key {
            self.index.remove(&(ik.clone(), key.clone()));
        }
        Some(old)
    }
}

fn matches(item: &Item, query: &Query, now: i64) -> bool {
    !item.is_expired(now) && query.filters.iter().all(|(name, value)| item.s(name) == Some(value.as_str()))
}

#[async_trait::async_trait]
impl Table for MemoryTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let inner = self.inner.lock().expect("memory table lock");
        Ok(inner.live(key, now_epoch()).cloned())
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        let mut inner = self.inner.lock().expect("memory table lock");
        let previous = inner.check(&item.key, &condition, now_epoch())?;
        inner.remove(&item.key);
        if let Some(ik) = &item.index_key {
            inner.index.insert((ik.clone(), item.key.clone()), ());
        }
        inner.items.insert(item.key.clone(), item);
        Ok(previous)
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError> {
        let mut inner = self.inner.lock().expect("memory table lock");
        let previous = inner.check(key, &condition, now_epoch())?;
        inner.remove(key);
        Ok(previous)
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let position = query.after.as_ref().map(|c| c.position(query)).transpose()?;
        let inner = self.inner.lock().expect("memory table lock");
        let now = now_epoch();
        let window = query.limit as usize + 1;
        let prefix = query.sk_prefix.as_deref().unwrap_or("");
        // Evaluate up to `window` items of the partition after the cursor, as DynamoDB does.
        let evaluated: Vec<&Item> = match &query.partition {
            Partition::Table(pk) => {
                let start = match &position {
                    Some((k, _)) => Bound::Excluded(k.clone()),
                    None => Bound::Included(Key::new(pk.clone(), prefix)),
                };
                inner
                    .items
                    .range((start, Bound::Unbounded))
                    .take_while(|(k, _)| k.pk == *pk && k.sk.starts_with(prefix))
                    .take(window)
                    .map(|(_, i)| i)
                    .collect()
            }
            Partition::Index(ipk) => {
                let start = match &position {
                    Some((k, Some(ik))) => Bound::Excluded((ik.clone(), k.clone())),
                    _ => Bound::Included((Key::new(ipk.clone(), prefix), Key::new("", ""))),
                };
                inner
                    .index
                    .range((start, Bound::Unbounded))
                    .take_while(|((ik, _), _)| ik.pk == *ipk && ik.sk.starts_with(prefix))
                    .take(window)
                    .filter_map(|((_, k), _)| inner.items.get(k))
                    .collect()
            }
        };
        let last_evaluated =
            (evaluated.len() == window).then(|| Cursor::after_item(evaluated[window - 1], &query.partition));
        let matched = evaluated.into_iter().filter(|i| matches(i, query, now)).cloned().collect();
        Ok(cut_page(query, matched, last_evaluated))
    }

    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError> {
        check_counters(counters)?;
        let mut inner = self.inner.lock().expect("memory table lock");
        // An expired item counts as absent: its counters start again from zero.
        let mut item = inner.live(key, now_epoch()).cloned().unwrap_or_else(|| Item::new(key.clone()));
        for c in counters {
            if c.flag {
                let set = item.attrs.contains_key(&c.attr);
                if set == (c.delta > 0) {
                    let current = inner.live(key, now_epoch()).cloned().map(Box::new);
                    return Err(StoreError::ConditionFailed { current });
                }
                match c.delta > 0 {
                    true => item.attrs.insert(c.attr.clone(), Attr::N(1)),
                    false => item.attrs.remove(&c.attr),
                };
                continue;
            }
            let value = item.n(&c.attr).unwrap_or(0).checked_add(c.delta);
            let Some(value) = value.filter(|v| *v >= 0 && c.max.is_none_or(|m| *v <= m)) else {
                let current = inner.live(key, now_epoch()).cloned().map(Box::new);
                return Err(StoreError::ConditionFailed { current });
            };
            item.attrs.insert(c.attr.clone(), Attr::N(value));
        }
        item.rev = new_rev();
        if expires_at.is_some() {
            item.expires_at = expires_at;
        }
        inner.remove(key);
        if let Some(ik) = &item.index_key {
            inner.index.insert((ik.clone(), key.clone()), ());
        }
        inner.items.insert(key.clone(), item.clone());
        Ok(item)
    }
}
