//! What a request's storage calls would cost on DynamoDB on-demand: a [`Table`] wrapper that
//! meters read and write request units from the items the store returns, beside the
//! [`CountingTable`](portico_core::store::counting::CountingTable) that counts the calls.
//!
//! The model (DynamoDB's billing rules, applied to Portico's single table with one index,
//! `gsi1`, projecting every attribute):
//! - `GetItem`, strongly consistent (every get of Portico's is): 1 RRU per 4 KB of the item,
//!   rounded up, at least 1 (a miss costs 1 too).
//! - `Query`: the items' total size rounded up to 4 KB, 1 RRU per 4 KB on the table
//!   (`ConsistentRead`), 0.5 on the index (eventually consistent), at least one unit. Only
//!   the items returned are seen here: items a filter dropped are read (and billed) by
//!   DynamoDB but not counted, so filtered listings are under-estimated.
//! - `PutItem`, `DeleteItem`, `UpdateItem` (the counters' `add`): 1 WRU per 1 KB of the larger
//!   of the item before and after, rounded up, at least 1, refused conditional writes
//!   included; plus the index: 1 write of the new item's size (+100 bytes of index overhead)
//!   when it is indexed, and 1 delete of the old entry when the old item was indexed under
//!   another key (or the item is deleted).
//! - No transactions (the [`Table`] trait has none), so no 2x transactional writes.
//! - Item size: attribute names plus values, UTF-8 bytes for strings, numbers about one byte
//!   per two digits plus one, as DynamoDB documents it.

use std::sync::Arc;
use std::sync::Mutex;

use portico_core::store::{Attr, Condition, Counter, Item, Key, Page, Partition, Query, StoreError, Table};

/// us-east-1 on-demand, since the price cut of 1 November 2024.
pub const USD_PER_MILLION_WRU: f64 = 0.625;
pub const USD_PER_MILLION_RRU: f64 = 0.125;
/// Where the prices come from, printed beside the figures.
pub const PRICES: &str = "DynamoDB on-demand, us-east-1, prices effective 2024-11-01: \
$0.625 per million write request units, $0.125 per million read request units";

/// Request units consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl Units {
    /// US dollars per million requests that each consume these units.
    pub fn usd_per_million(&self) -> f64 {
        self.read.mul_add(USD_PER_MILLION_RRU, self.write * USD_PER_MILLION_WRU)
    }
}

fn number_size(n: i64) -> usize {
    let digits = n.unsigned_abs().to_string().trim_end_matches('0').len().max(1);
    digits.div_ceil(2) + 1
}

/// An item's size as DynamoDB counts it (names + values).
pub fn item_size(item: &Item) -> usize {
    let mut size = "pk".len() + item.key.pk.len() + "sk".len() + item.key.sk.len();
    if let Some(k) = &item.index_key {
        size += "gsi1pk".len() + k.pk.len() + "gsi1sk".len() + k.sk.len();
    }
    size += "rev".len() + item.rev.len();
    if let Some(t) = item.expires_at {
        size += "ttl".len() + number_size(t);
    }
    for (name, value) in &item.attrs {
        size += name.len()
            + match value {
                Attr::S(s) => s.len(),
                Attr::N(n) => number_size(*n),
            };
    }
    size
}

fn units(bytes: usize, per: usize) -> f64 {
    bytes.div_ceil(per).max(1) as f64
}

/// Index overhead per entry, as DynamoDB bills a GSI's storage and writes.
const INDEX_OVERHEAD: usize = 100;

/// Write units of replacing `old` by `new` (either may be absent), index included.
fn write_units(old: Option<&Item>, new: Option<&Item>) -> f64 {
    let size = |i: Option<&Item>| i.map_or(0, item_size);
    let mut wru = units(size(old).max(size(new)), 1024);
    let (old_index, new_index) = (old.and_then(|i| i.index_key.as_ref()), new.and_then(|i| i.index_key.as_ref()));
    if new_index.is_some() {
        wru += units(size(new) + INDEX_OVERHEAD, 1024);
    }
    if old_index.is_some() && old_index != new_index {
        wru += units(size(old) + INDEX_OVERHEAD, 1024);
    }
    wru
}

/// Meters every call to the inner table.
pub struct Metered {
    inner: Arc<dyn Table>,
    used: Mutex<Units>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        Metered { inner, used: Mutex::default() }
    }

    /// The units so far, and starts again from zero.
    pub fn take(&self) -> Units {
        std::mem::take(&mut *self.used.lock().expect("meter"))
    }

    fn charge(&self, read: f64, write: f64) {
        let mut used = self.used.lock().expect("meter");
        used.read += read;
        used.write += write;
    }

    fn refused(&self, e: &StoreError, new: Option<&Item>) {
        // A refused conditional write is billed as a write of the item's size.
        if let StoreError::ConditionFailed { current } = e {
            self.charge(0.0, write_units(current.as_deref(), new));
        }
    }
}

#[async_trait::async_trait]
impl Table for Metered {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let got = self.inner.get(key).await?;
        self.charge(units(got.as_ref().map_or(0, item_size), 4096), 0.0);
        Ok(got)
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        let new = item.clone();
        match self.inner.put(item, condition).await {
            Ok(old) => {
                self.charge(0.0, write_units(old.as_ref(), Some(&new)));
                Ok(old)
            }
            Err(e) => {
                self.refused(&e, Some(&new));
                Err(e)
            }
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError> {
        match self.inner.delete(key, condition).await {
            Ok(old) => {
                self.charge(0.0, write_units(old.as_ref(), None));
                Ok(old)
            }
            Err(e) => {
                self.refused(&e, None);
                Err(e)
            }
        }
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let page = self.inner.query(query).await?;
        let bytes: usize = page.items.iter().map(item_size).sum();
        let per_unit = match query.partition {
            Partition::Table(_) => 1.0,
            Partition::Index(_) => 0.5,
        };
        self.charge(units(bytes, 4096) * per_unit, 0.0);
        Ok(page)
    }

    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError> {
        match self.inner.add(key, counters, expires_at).await {
            Ok(new) => {
                // The item before differs only in the counters' values: about the same size.
                self.charge(0.0, write_units(None, Some(&new)));
                Ok(new)
            }
            Err(e) => {
                self.refused(&e, None);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_units_follow_dynamodbs_rules() {
        let item = Item::new(Key::new("APP", "a")).with_s("doc", "x".repeat(1000)).with_n("since", 1_700_000_000);
        // pk+APP, sk+a, rev+32, doc+1000, since + (17 after the zeros: 1 byte + 1)
        assert_eq!(item_size(&item), 2 + 3 + 2 + 1 + 3 + 32 + 3 + 1000 + 5 + 2);
        assert_eq!(write_units(None, Some(&item)), 2.0, "just over 1 KB");
        assert_eq!(units(item_size(&item), 4096), 1.0);
        let mut indexed = item.clone();
        indexed.index_key = Some(Key::new("OWNER#a", "1"));
        assert_eq!(write_units(Some(&item), Some(&indexed)), 2.0 + 2.0, "table and index");
        assert_eq!(Units { read: 1.0, write: 1.0 }.usd_per_million(), 0.75);
    }
}
