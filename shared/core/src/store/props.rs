//! Property tests of the listing cursor: the cursor of an item decodes to that item's keys for
//! its own listing and for no other; any string a client makes up is [`StoreError::InvalidCursor`]
//! or a position inside the listing it was given to, never a panic and never another
//! listing's key.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::testing::config;

/// Key text of every kind: quotes, backslashes, control characters, any plane. Up to 60
/// characters, so that even four keys of 6-byte JSON escapes fit the 2048-character cursor
/// (Portico's own keys are ASCII and at most about 100 bytes: see the test below).
fn key_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 1..=60).prop_map(|c| c.into_iter().collect())
}

fn encode(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A query of `partition`, maybe with a prefix of `sk`'s first `cut` characters.
fn query(partition: Partition, sk: &str, cut: Option<usize>) -> Query {
    let mut q = match partition {
        Partition::Table(pk) => Query::table(pk, 10),
        Partition::Index(pk) => Query::index(pk, 10),
    };
    q.sk_prefix = cut.map(|n| sk.chars().take(n).collect());
    q
}

/// What a forged cursor must decode to, by the rules of [`Cursor::position`]: the keys when
/// they are all strings DynamoDB takes and belong to `query`'s listing, else nothing.
fn expected(forged: &Value, query: &Query) -> Option<(Key, Option<Key>)> {
    let obj = forged.as_object()?;
    let text = |name: &str, max: usize| -> Option<Option<String>> {
        match obj.get(name) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Some(Some(s.clone())),
            Some(_) => None,
        }
    };
    let (pk, sk) = (text("pk", 2048)??, text("sk", 1024)??);
    let (ipk, isk) = (text("ipk", 2048)?, text("isk", 1024)?);
    let prefix_ok = |s: &str| query.sk_prefix.as_deref().is_none_or(|p| s.starts_with(p));
    match (&query.partition, ipk, isk) {
        (Partition::Table(p), None, None) if *p == pk && prefix_ok(&sk) => Some((Key::new(pk, sk), None)),
        (Partition::Index(p), Some(ipk), Some(isk)) if *p == ipk && prefix_ok(&isk) => {
            Some((Key::new(pk, sk), Some(Key::new(ipk, isk))))
        }
        _ => None,
    }
}

/// A cursor a client might forge: JSON objects with the cursor's field names holding strings
/// (often the listing's own partition), nulls, numbers or nothing, plus stray fields.
fn forged(partition: String) -> impl Strategy<Value = Value> {
    let field = move || {
        let partition = partition.clone();
        prop_oneof![
            3 => Just(Value::String(partition)),
            3 => key_text().prop_map(Value::String),
            1 => Just(Value::String(String::new())),
            1 => Just(Value::String("x".repeat(1025))),
            1 => Just(Value::Null),
            1 => any::<i64>().prop_map(|n| json!(n)),
            1 => Just(json!(["a"])),
        ]
    };
    (
        proptest::option::of(field()),
        proptest::option::of(field()),
        proptest::option::of(field()),
        proptest::option::of(field()),
        any::<bool>(),
    )
        .prop_map(|(pk, sk, ipk, isk, stray)| {
            let mut obj = serde_json::Map::new();
            for (name, v) in [("pk", pk), ("sk", sk), ("ipk", ipk), ("isk", isk)] {
                if let Some(v) = v {
                    obj.insert(name.into(), v);
                }
            }
            if stray {
                obj.insert("other".into(), json!(1));
            }
            Value::Object(obj)
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_table_cursor_decodes_to_its_item_for_its_listing_only(
        pk in key_text(),
        sk in key_text(),
        other in key_text(),
        cut in proptest::option::of(0usize..=60),
    ) {
        let item = Item::new(Key::new(pk.clone(), sk.clone()));
        let cursor = Cursor::after_item(&item, &Partition::Table(pk.clone()));
        prop_assert!(cursor.as_str().len() <= 2048);
        // What a client sends back is what the server issued.
        let back = Cursor::from_client(cursor.as_str());
        let own = query(Partition::Table(pk.clone()), &sk, cut);
        prop_assert_eq!(back.position(&own).unwrap(), (item.key.clone(), None));
        // Another partition, the index, a prefix the key lacks: refused.
        if other != pk {
            prop_assert!(matches!(back.position(&query(Partition::Table(other.clone()), &sk, cut)), Err(StoreError::InvalidCursor)));
        }
        prop_assert!(matches!(back.position(&query(Partition::Index(pk.clone()), &sk, cut)), Err(StoreError::InvalidCursor)));
        if !sk.starts_with(&other) {
            let mut q = query(Partition::Table(pk), &sk, None);
            q.sk_prefix = Some(other);
            prop_assert!(matches!(back.position(&q), Err(StoreError::InvalidCursor)));
        }
    }

    #[test]
    fn an_index_cursor_decodes_to_both_keys_for_its_listing_only(
        keys in (key_text(), key_text(), key_text(), key_text()),
        other in key_text(),
        cut in proptest::option::of(0usize..=60),
    ) {
        let (pk, sk, ipk, isk) = keys;
        let mut item = Item::new(Key::new(pk.clone(), sk));
        item.index_key = Some(Key::new(ipk.clone(), isk.clone()));
        let cursor = Cursor::after_item(&item, &Partition::Index(ipk.clone()));
        prop_assert!(cursor.as_str().len() <= 2048);
        let back = Cursor::from_client(cursor.as_str());
        let own = query(Partition::Index(ipk.clone()), &isk, cut);
        prop_assert_eq!(back.position(&own).unwrap(), (item.key.clone(), item.index_key.clone()));
        if other != ipk {
            prop_assert!(matches!(back.position(&query(Partition::Index(other), &isk, cut)), Err(StoreError::InvalidCursor)));
        }
        prop_assert!(matches!(back.position(&query(Partition::Table(pk), &isk, None)), Err(StoreError::InvalidCursor)));
        // The same item's table cursor is not an index cursor.
        let table_cursor = Cursor::after_item(&item, &Partition::Table(item.key.pk.clone()));
        prop_assert!(matches!(table_cursor.position(&own), Err(StoreError::InvalidCursor)));
    }

    #[test]
    fn any_string_is_an_invalid_cursor_or_a_position_in_the_listing(
        s in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,80}",
            proptest::collection::vec(any::<u8>(), 0..80)
                .prop_map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)),
        ],
        index in any::<bool>(),
    ) {
        let partition = if index { Partition::Index("OWNER#alice".into()) } else { Partition::Table("APP".into()) };
        let q = query(partition.clone(), "", None);
        match Cursor::from_client(&s).position(&q) {
            Err(StoreError::InvalidCursor) => {}
            Err(e) => prop_assert!(false, "{s:?}: {e:?}"),
            Ok((key, index_key)) => match (&partition, index_key) {
                (Partition::Table(p), None) => prop_assert_eq!(&key.pk, p),
                (Partition::Index(p), Some(ik)) => prop_assert_eq!(&ik.pk, p),
                (_, ik) => prop_assert!(false, "{s:?} gave {key:?} {ik:?}"),
            },
        }
    }

    #[test]
    fn a_forged_cursor_positions_only_inside_its_listing(
        (index, value) in any::<bool>().prop_flat_map(|index| {
            let p = if index { "OWNER#alice" } else { "APP" };
            (Just(index), forged(p.to_owned()))
        }),
        prefix in proptest::option::of(prop::sample::select(vec!["", "A", "OWNER#", "x"])),
    ) {
        let partition = if index { Partition::Index("OWNER#alice".into()) } else { Partition::Table("APP".into()) };
        let mut q = query(partition, "", None);
        q.sk_prefix = prefix.map(str::to_owned);
        let got = match Cursor::from_client(&encode(&value)).position(&q) {
            Ok(position) => Some(position),
            Err(StoreError::InvalidCursor) => None,
            Err(e) => return Err(TestCaseError::fail(format!("{value}: {e:?}"))),
        };
        prop_assert_eq!(got, expected(&value, &q), "{}", value);
    }

    #[test]
    fn a_cursor_is_read_up_to_2048_characters_and_refused_past_them(spaces in 0usize..3000) {
        // Valid keys, then JSON's insignificant trailing whitespace, to any length.
        let raw = format!("{}{}", json!({"pk": "APP", "sk": "a"}), " ".repeat(spaces));
        let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let got = Cursor::from_client(&s).position(&query(Partition::Table("APP".into()), "", None));
        if s.len() <= 2048 {
            prop_assert_eq!(got.unwrap(), (Key::new("APP", "a"), None));
        } else {
            prop_assert!(matches!(got, Err(StoreError::InvalidCursor)));
        }
    }
}

/// The longest keys Portico lists by (an index listing of a 64-character username's sessions)
/// make a cursor well within the limit.
#[test]
fn portico_s_own_keys_fit_a_cursor() {
    let user = "u".repeat(64);
    let id = uuid::Uuid::new_v4().to_string();
    let mut item = Item::new(Key::new(format!("USER#{user}"), format!("APPINST#{}", "a".repeat(63))));
    item.index_key = Some(Key::new(format!("OWNER#{user}"), format!("{:012}#{id}", i64::MAX)));
    let cursor = Cursor::after_item(&item, &Partition::Index(format!("OWNER#{user}")));
    assert!(cursor.as_str().len() < 1024, "{}", cursor.as_str().len());
    let q = Query::index(format!("OWNER#{user}"), 10);
    assert_eq!(cursor.position(&q).unwrap(), (item.key.clone(), item.index_key.clone()));
}
