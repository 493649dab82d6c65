//! One time-to-live cache for what a warm process keeps between requests (secret values,
//! resolved identities, userinfo groups, the streaming platform's function list): each entry
//! is fresh for the cache's TTL after it was stored; a full cache starts over rather than
//! growing without bound.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A map whose entries are fresh for `ttl` after they were stored.
pub struct TtlCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache of entries fresh for `ttl`, holding at most `max_entries` (then emptied).
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlCache { ttl, max_entries: max_entries.max(1), entries: Mutex::new(HashMap::new()) }
    }

    /// The entry at `key`, if it is fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        self.get_even_stale(key).filter(|(_, fresh)| *fresh).map(|(value, _)| value)
    }

    /// The entry at `key`, fresh or not, and whether it is fresh (for callers that would
    /// rather answer from a stale copy than fail).
    pub fn get_even_stale(&self, key: &K) -> Option<(V, bool)> {
        let entries = self.lock();
        entries.get(key).map(|(value, at)| (value.clone(), at.elapsed() < self.ttl))
    }

    /// Stores `value` at `key`, fresh from now.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic while holding the lock leaves a map that is still whole: carry on with it.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_fresh_for_the_ttl_then_only_stale() {
        let cache = TtlCache::new(Duration::from_millis(40), 10);
        cache.insert("k", 1);
        assert_eq!(cache.get(&"k"), Some(1));
        assert_eq!(cache.get_even_stale(&"k"), Some((1, true)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&"k"), None);
        assert_eq!(cache.get_even_stale(&"k"), Some((1, false)));
    }

    #[test]
    fn a_full_cache_starts_over_but_replacing_an_entry_does_not_empty_it() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.insert(1, "a");
        cache.insert(2, "b");
        cache.insert(2, "b2");
        assert_eq!((cache.get(&1), cache.get(&2)), (Some("a"), Some("b2")));
        cache.insert(3, "c");
        assert_eq!((cache.get(&1), cache.get(&2), cache.get(&3)), (None, None, Some("c")));
        cache.clear();
        assert_eq!(cache.get(&3), None);
    }
}
