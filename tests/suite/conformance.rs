//! The storage conformance suite: the same test functions run against the in-memory store and
//! against DynamoDB Local (AWS's own engine), so both give the same answers to the same calls.

use std::collections::BTreeSet;
use std::sync::Arc;

use portico_core::store::{Condition, Counter, Cursor, Item, Key, Query, StoreError, Table, now_epoch};

fn item(pk: &str, sk: &str) -> Item {
    Item::new(Key::new(pk, sk)).with_s("doc", format!("{pk}/{sk}")).with_n("count", 7)
}

fn is_condition_failed(r: &Result<Option<Item>, StoreError>) -> Option<Option<Item>> {
    match r {
        Err(StoreError::ConditionFailed { current }) => Some(current.as_deref().cloned()),
        _ => None,
    }
}

async fn get_of_missing_key_is_none(t: Arc<dyn Table>) {
    assert_eq!(t.get(&Key::new("P", "nothing")).await.unwrap(), None);
}

async fn put_then_get_round_trips_every_field(t: Arc<dyn Table>) {
    let mut it = item("P", "a").with_s("empty", "").with_n("neg", -42);
    it.index_key = Some(Key::new("I", "a-index"));
    it.expires_at = Some(now_epoch() + 3600);
    assert_eq!(t.put(it.clone(), Condition::Always).await.unwrap(), None);
    assert_eq!(t.get(&it.key).await.unwrap(), Some(it));
}

async fn put_returns_the_item_it_replaced(t: Arc<dyn Table>) {
    let first = item("P", "a");
    t.put(first.clone(), Condition::Always).await.unwrap();
    let second = item("P", "a").with_s("doc", "second");
    assert_eq!(t.put(second.clone(), Condition::Always).await.unwrap(), Some(first));
    assert_eq!(t.get(&second.key).await.unwrap(), Some(second));
}

async fn absent_condition_refuses_an_existing_item_and_reports_it(t: Arc<dyn Table>) {
    let first = item("P", "a");
    t.put(first.clone(), Condition::Absent).await.unwrap();
    let r = t.put(item("P", "a").with_s("doc", "other"), Condition::Absent).await;
    assert_eq!(is_condition_failed(&r), Some(Some(first.clone())));
    assert_eq!(t.get(&first.key).await.unwrap(), Some(first), "a refused write changes nothing");
}

async fn rev_condition_guards_against_lost_updates(t: Arc<dyn Table>) {
    let first = item("P", "a");
    t.put(first.clone(), Condition::Always).await.unwrap();
    let stale = item("P", "a");
    let r = t.put(stale.clone(), Condition::Rev("not-the-rev".into())).await;
    assert_eq!(is_condition_failed(&r), Some(Some(first.clone())));
    let next = item("P", "a").with_s("doc", "next");
    assert_eq!(t.put(next.clone(), Condition::Rev(first.rev.clone())).await.unwrap(), Some(first.clone()));
    // The old revision no longer matches.
    let r = t.put(stale, Condition::Rev(first.rev.clone())).await;
    assert_eq!(is_condition_failed(&r), Some(Some(next)));
    // Nor does any revision on a missing item.
    let r = t.put(item("P", "b"), Condition::Rev(first.rev)).await;
    assert_eq!(is_condition_failed(&r), Some(None));
    assert_eq!(t.get(&Key::new("P", "b")).await.unwrap(), None);
}

async fn delete_with_conditions(t: Arc<dyn Table>) {
    let key = Key::new("P", "a");
    assert_eq!(is_condition_failed(&t.delete(&key, Condition::Exists).await), Some(None));
    assert_eq!(t.delete(&key, Condition::Always).await.unwrap(), None, "deleting nothing is fine unconditionally");
    let it = item("P", "a");
    t.put(it.clone(), Condition::Always).await.unwrap();
    let r = t.delete(&key, Condition::Rev("other".into())).await;
    assert_eq!(is_condition_failed(&r), Some(Some(it.clone())));
    assert_eq!(t.delete(&key, Condition::Rev(it.rev.clone())).await.unwrap(), Some(it));
    assert_eq!(t.get(&key).await.unwrap(), None);
}

async fn expired_items_read_as_absent_everywhere(t: Arc<dyn Table>) {
    let mut gone = item("P", "old");
    gone.expires_at = Some(now_epoch() - 10);
    gone.index_key = Some(Key::new("I", "old"));
    t.put(gone.clone(), Condition::Always).await.unwrap();
    assert_eq!(t.get(&gone.key).await.unwrap(), None);
    assert_eq!(is_condition_failed(&t.delete(&gone.key, Condition::Exists).await), Some(None));
    assert_eq!(t.query(&Query::table("P", 10)).await.unwrap().items, vec![]);
    assert_eq!(t.query(&Query::index("I", 10)).await.unwrap().items, vec![]);
    // An expired item does not block a create, and is not reported as replaced.
    let fresh = item("P", "old");
    assert_eq!(t.put(fresh.clone(), Condition::Absent).await.unwrap(), None);
    assert_eq!(t.get(&fresh.key).await.unwrap(), Some(fresh));
}

async fn collect(t: &dyn Table, mut q: Query) -> (Vec<Vec<String>>, usize) {
    let mut pages = Vec::new();
    let mut calls = 0;
    loop {
        let page = t.query(&q).await.unwrap();
        calls += 1;
        assert!(page.items.len() <= q.limit as usize);
        pages.push(page.items.iter().map(|i| i.key.sk.clone()).collect());
        match page.next {
            Some(c) => q.after = Some(c),
            None => return (pages, calls),
        }
        assert!(calls < 100, "pagination does not end");
    }
}

async fn query_pages_in_sort_key_order(t: Arc<dyn Table>) {
    for sk in ["e", "a", "g", "c", "b", "f", "d"] {
        t.put(item("P", sk), Condition::Always).await.unwrap();
    }
    t.put(item("OTHER", "a"), Condition::Always).await.unwrap();
    let (pages, _) = collect(t.as_ref(), Query::table("P", 3)).await;
    assert_eq!(pages, [vec!["a", "b", "c"], vec!["d", "e", "f"], vec!["g"]]);
    // A listing that divides evenly ends without an empty page.
    let (pages, _) = collect(t.as_ref(), Query::table("P", 7)).await;
    assert_eq!(pages, [vec!["a", "b", "c", "d", "e", "f", "g"]]);
    let mut q = Query::table("P", 10);
    q.sk_prefix = Some("c".into());
    assert_eq!(collect(t.as_ref(), q).await.0, [vec!["c"]]);
}

async fn filtered_queries_return_every_match_once(t: Arc<dyn Table>) {
    for (i, sk) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        let colour = if i % 3 == 0 { "red" } else { "blue" };
        t.put(item("P", sk).with_s("colour", colour), Condition::Always).await.unwrap();
    }
    let mut q = Query::table("P", 2);
    q.filters = vec![("colour".into(), "red".into())];
    let (pages, _) = collect(t.as_ref(), q).await;
    let all: Vec<String> = pages.concat();
    assert_eq!(all, ["a", "d", "g"]);
}

async fn index_query_orders_by_index_key(t: Arc<dyn Table>) {
    for (pk, isk) in [("U#1", "2026-03"), ("U#2", "2026-01"), ("U#3", "2026-02"), ("U#4", "2025-12")] {
        let mut it = item(pk, "S");
        it.index_key = Some(Key::new("ALL", isk));
        t.put(it, Condition::Always).await.unwrap();
    }
    t.put(item("U#5", "S"), Condition::Always).await.unwrap(); // not indexed
    let mut q = Query::index("ALL", 3);
    let first = t.query(&q).await.unwrap();
    let pks: Vec<&str> = first.items.iter().map(|i| i.key.pk.as_str()).collect();
    assert_eq!(pks, ["U#4", "U#2", "U#3"]);
    q.after = first.next;
    let second = t.query(&q).await.unwrap();
    assert_eq!(second.items.iter().map(|i| i.key.pk.as_str()).collect::<Vec<_>>(), ["U#1"]);
    assert!(second.next.is_none());
    let mut q = Query::index("ALL", 10);
    q.sk_prefix = Some("2026".into());
    assert_eq!(t.query(&q).await.unwrap().items.len(), 3);
}

async fn foreign_or_garbage_cursors_are_refused(t: Arc<dyn Table>) {
    for sk in ["a", "b", "c"] {
        t.put(item("P", sk), Condition::Always).await.unwrap();
        t.put(item("Q", sk), Condition::Always).await.unwrap();
    }
    let page = t.query(&Query::table("P", 1)).await.unwrap();
    let from_p = page.next.expect("more pages");
    let mut q = Query::table("Q", 1);
    q.after = Some(from_p.clone());
    assert!(matches!(t.query(&q).await, Err(StoreError::InvalidCursor)));
    let mut q = Query::index("P", 1);
    q.after = Some(from_p);
    assert!(matches!(t.query(&q).await, Err(StoreError::InvalidCursor)));
    for garbage in ["", "!!!", "e30", "bm90IGpzb24"] {
        let mut q = Query::table("P", 1);
        q.after = Some(Cursor::from_client(garbage));
        assert!(matches!(t.query(&q).await, Err(StoreError::InvalidCursor)), "{garbage}");
    }
}

async fn concurrent_creates_have_exactly_one_winner(t: Arc<dyn Table>) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { t.put(item("P", "race").with_n("writer", i), Condition::Absent).await })
        })
        .collect();
    let mut winners = BTreeSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.unwrap().is_ok() {
            winners.insert(i as i64);
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = t.get(&Key::new("P", "race")).await.unwrap().unwrap();
    assert_eq!(stored.n("writer"), winners.first().copied());
}

async fn counters_stay_within_bounds_and_change_all_or_nothing(t: Arc<dyn Table>) {
    let key = Key::new("U#ann", "USAGE");
    let one = |d: i64| [Counter::new("sessions", d, Some(2))];
    assert_eq!(t.add(&key, &one(1), None).await.unwrap().n("sessions"), Some(1));
    assert_eq!(t.add(&key, &one(1), None).await.unwrap().n("sessions"), Some(2));
    match t.add(&key, &one(1), None).await {
        Err(StoreError::ConditionFailed { current: Some(c) }) => assert_eq!(c.n("sessions"), Some(2)),
        other => panic!("over the bound: {other:?}"),
    }
    assert_eq!(t.add(&key, &one(-1), None).await.unwrap().n("sessions"), Some(1));
    assert!(t.add(&key, &one(-2), None).await.is_err(), "never below zero");
    assert!(t.add(&Key::new("U#new", "USAGE"), &one(-1), None).await.is_err(), "a missing counter is zero");
    assert!(t.add(&key, &[Counter::new("sessions", 5, Some(3))], None).await.is_err(), "delta above the bound");
    // Several counters: one out of bounds refuses them all.
    let both = [Counter::new("cpu", 3, Some(4)), Counter::new("memory", 10, Some(5))];
    assert!(t.add(&key, &both, None).await.is_err());
    let now = t.get(&key).await.unwrap().unwrap();
    assert_eq!((now.n("cpu"), now.n("memory"), now.n("sessions")), (None, None, Some(1)));
    let fits = [Counter::new("cpu", 3, Some(4)), Counter::new("memory", 5, Some(5)), Counter::new("jobs", 1, None)];
    let after = t.add(&key, &fits, None).await.unwrap();
    assert_eq!((after.n("cpu"), after.n("memory"), after.n("jobs")), (Some(3), Some(5), Some(1)));
}

/// A flag names who holds a reservation: set once, cleared once, together with the counters
/// or not at all; clearing removes it.
async fn flags_are_set_and_cleared_once_with_their_counters(t: Arc<dyn Table>) {
    let key = Key::new("U#flo", "USAGE");
    let take = |holder: &str| [Counter::new("jobs", 1, Some(2)), Counter::set_flag(format!("held:{holder}"))];
    let give = |holder: &str| [Counter::new("jobs", -1, None), Counter::clear_flag(format!("held:{holder}"))];
    let after = t.add(&key, &take("a"), None).await.unwrap();
    assert_eq!((after.n("jobs"), after.n("held:a")), (Some(1), Some(1)));
    match t.add(&key, &take("a"), None).await {
        Err(StoreError::ConditionFailed { current: Some(c) }) => assert_eq!(c.n("jobs"), Some(1), "not taken twice"),
        other => panic!("a flag set twice: {other:?}"),
    }
    t.add(&key, &take("b"), None).await.unwrap();
    let refused = t.add(&key, &take("c"), None).await;
    assert!(matches!(refused, Err(StoreError::ConditionFailed { .. })), "the bound refuses the flag too: {refused:?}");
    assert_eq!(t.get(&key).await.unwrap().unwrap().n("held:c"), None);
    let after = t.add(&key, &give("a"), None).await.unwrap();
    assert_eq!((after.n("jobs"), after.n("held:a"), after.n("held:b")), (Some(1), None, Some(1)), "removed");
    assert!(!after.attrs.contains_key("held:a"));
    for (counters, what) in
        [(give("a").to_vec(), "given back twice"), (vec![Counter::clear_flag("held:never")], "never set")]
    {
        let refused = t.add(&key, &counters, None).await;
        assert!(matches!(refused, Err(StoreError::ConditionFailed { .. })), "{what}: {refused:?}");
    }
    assert_eq!(t.get(&key).await.unwrap().unwrap().n("jobs"), Some(1), "refusals change nothing");
}

async fn counters_keep_other_attributes_and_take_an_expiry(t: Arc<dyn Table>) {
    let mut it = item("P", "counted");
    it.index_key = Some(Key::new("I", "x"));
    t.put(it.clone(), Condition::Always).await.unwrap();
    let expiry = now_epoch() + 900;
    let after = t.add(&it.key, &[Counter::new("count", 1, None)], Some(expiry)).await.unwrap();
    assert_eq!((after.n("count"), after.s("doc"), after.expires_at), (Some(8), Some("P/counted"), Some(expiry)));
    assert_ne!(after.rev, it.rev, "a counter change is a new revision");
    assert_eq!(after.index_key, it.index_key);
    assert_eq!(t.get(&it.key).await.unwrap(), Some(after));
}

async fn counters_of_an_expired_item_start_again(t: Arc<dyn Table>) {
    let mut old = item("P", "window").with_n("count", 5);
    old.expires_at = Some(now_epoch() - 5);
    t.put(old.clone(), Condition::Always).await.unwrap();
    let fresh = t.add(&old.key, &[Counter::new("count", 1, Some(3))], Some(now_epoch() + 60)).await.unwrap();
    assert_eq!((fresh.n("count"), fresh.s("doc")), (Some(1), None), "an expired item counts as absent");
    let repeated = [Counter::new("count", 1, None), Counter::new("count", 1, None)];
    assert!(t.add(&old.key, &repeated, None).await.is_err());
    assert!(t.add(&old.key, &[Counter::new("rev", 1, None)], None).await.is_err());
    assert_eq!(t.get(&old.key).await.unwrap(), Some(fresh), "refused changes change nothing");
}

async fn fifty_concurrent_reservations_against_a_limit_of_three(t: Arc<dyn Table>) {
    let key = Key::new("U#race", "USAGE");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let t = Arc::clone(&t);
            let key = key.clone();
            tokio::spawn(async move { t.add(&key, &[Counter::new("sessions", 1, Some(3))], None).await.is_ok() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += task.await.unwrap() as usize;
    }
    assert_eq!(granted, 3);
    assert_eq!(t.get(&key).await.unwrap().unwrap().n("sessions"), Some(3));
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(std::sync::Arc::new(portico_core::store::memory::MemoryTable::new())).await;
                }
            )*
        }
        mod dynamodb_local {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(std::sync::Arc::new(portico_tests::dynamo_table().await)).await;
                }
            )*
        }
    };
}

conformance!(
    get_of_missing_key_is_none,
    put_then_get_round_trips_every_field,
    put_returns_the_item_it_replaced,
    absent_condition_refuses_an_existing_item_and_reports_it,
    rev_condition_guards_against_lost_updates,
    delete_with_conditions,
    expired_items_read_as_absent_everywhere,
    query_pages_in_sort_key_order,
    filtered_queries_return_every_match_once,
    index_query_orders_by_index_key,
    foreign_or_garbage_cursors_are_refused,
    concurrent_creates_have_exactly_one_winner,
    counters_stay_within_bounds_and_change_all_or_nothing,
    flags_are_set_and_cleared_once_with_their_counters,
    counters_keep_other_attributes_and_take_an_expiry,
    counters_of_an_expired_item_start_again,
    fifty_concurrent_reservations_against_a_limit_of_three,
);
