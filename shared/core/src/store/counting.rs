//! A [`Table`] wrapper that counts calls, so tests can assert how many storage round trips a
//! route makes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Condition, Counter, Item, Key, Page, Query, StoreError, Table};

/// Calls made through a [`CountingTable`], by operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    pub get: u64,
    pub put: u64,
    pub delete: u64,
    pub query: u64,
    pub add: u64,
}

impl Calls {
    pub fn total(&self) -> u64 {
        self.get + self.put + self.delete + self.query + self.add
    }
}

/// Counts every call, then forwards it to the inner table.
pub struct CountingTable {
    inner: Arc<dyn Table>,
    get: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    query: AtomicU64,
    add: AtomicU64,
}

impl CountingTable {
    pub fn new(inner: Arc<dyn Table>) -> Self {
        CountingTable {
            inner,
            get: AtomicU64::new(0),
            put: AtomicU64::new(0),
            delete: AtomicU64::new(0),
            query: AtomicU64::new(0),
            add: AtomicU64::new(0),
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Calls {
        Calls {
            get: self.get.load(Ordering::SeqCst),
            put: self.put.load(Ordering::SeqCst),
            delete: self.delete.load(Ordering::SeqCst),
            query: self.query.load(Ordering::SeqCst),
            add: self.add.load(Ordering::SeqCst),
        }
    }

    /// Returns the calls so far and starts counting from zero.
    pub fn take(&self) -> Calls {
        Calls {
            get: self.get.swap(0, Ordering::SeqCst),
            put: self.put.swap(0, Ordering::SeqCst),
            delete: self.delete.swap(0, Ordering::SeqCst),
            query: self.query.swap(0, Ordering::SeqCst),
            add: self.add.swap(0, Ordering::SeqCst),
        }
    }
}

#[async_trait::async_trait]
impl Table for CountingTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.put.fetch_add(1, Ordering::SeqCst);
        self.inner.put(item, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError> {
        self.delete.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.query.fetch_add(1, Ordering::SeqCst);
        self.inner.query(query).await
    }

    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError> {
        self.add.fetch_add(1, Ordering::SeqCst);
        self.inner.add(key, counters, expires_at).await
    }
}
