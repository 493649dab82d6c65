//! Items as DynamoDB attribute maps, and conditions as DynamoDB condition expressions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{AttrMap, DynamoTable, TTL_ATTR};
use crate::store::{Attr, Condition, Item, Key, StoreError};

/// A condition expression with its names and values, ready for a write request's
/// `set_*` methods (all `None` for [`Condition::Always`]).
#[derive(Default)]
pub(super) struct ConditionExpr {
    pub(super) expression: Option<String>,
    pub(super) names: Option<HashMap<String, String>>,
    pub(super) values: Option<AttrMap>,
}

/// The expression of `condition` evaluated at `now`. Expired items are absent, whether or not
/// DynamoDB has deleted them yet.
pub(super) fn condition_expr(condition: &Condition, now: i64) -> ConditionExpr {
    let live = "(attribute_not_exists(#ttl) OR #ttl > :now)";
    let (expression, rev) = match condition {
        Condition::Always => return ConditionExpr::default(),
        Condition::Absent => ("attribute_not_exists(pk) OR #ttl <= :now".to_owned(), None),
        Condition::Exists => (format!("attribute_exists(pk) AND {live}"), None),
        Condition::Rev(rev) => (format!("#rev = :rev AND {live}"), Some(rev)),
    };
    let mut names = HashMap::from([("#ttl".to_owned(), TTL_ATTR.to_owned())]);
    let mut values = HashMap::from([(":now".to_owned(), AttributeValue::N(now.to_string()))]);
    if let Some(rev) = rev {
        names.insert("#rev".into(), "rev".into());
        values.insert(":rev".into(), AttributeValue::S(rev.clone()));
    }
    ConditionExpr { expression: Some(expression), names: Some(names), values: Some(values) }
}

pub(super) fn to_map(item: Item) -> AttrMap {
    let mut map = DynamoTable::key_map(&item.key);
    map.insert("rev".into(), AttributeValue::S(item.rev));
    if let Some(ik) = item.index_key {
        map.insert("gsi1pk".into(), AttributeValue::S(ik.pk));
        map.insert("gsi1sk".into(), AttributeValue::S(ik.sk));
    }
    if let Some(t) = item.expires_at {
        map.insert(TTL_ATTR.into(), AttributeValue::N(t.to_string()));
    }
    for (name, value) in item.attrs {
        let v = match value {
            Attr::S(s) => AttributeValue::S(s),
            Attr::N(n) => AttributeValue::N(n.to_string()),
        };
        map.insert(name, v);
    }
    map
}

pub(super) fn from_map(mut map: AttrMap) -> Result<Item, StoreError> {
    let mut take_s = |name: &str| match map.remove(name) {
        Some(AttributeValue::S(s)) => Ok(Some(s)),
        None => Ok(None),
        Some(other) => Err(StoreError::Backend(format!("attribute {name} has an unexpected type: {other:?}"))),
    };
    let pk = take_s("pk")?.ok_or_else(|| StoreError::Backend("item without pk".into()))?;
    let sk = take_s("sk")?.ok_or_else(|| StoreError::Backend("item without sk".into()))?;
    let rev = take_s("rev")?.unwrap_or_default();
    let index_key = match (take_s("gsi1pk")?, take_s("gsi1sk")?) {
        (Some(p), Some(s)) => Some(Key::new(p, s)),
        _ => None,
    };
    let mut attrs = std::collections::BTreeMap::new();
    let mut expires_at = None;
    for (name, value) in map {
        let parsed = match value {
            AttributeValue::S(s) => Attr::S(s),
            AttributeValue::N(n) => {
                Attr::N(n.parse().map_err(|_| StoreError::Backend(format!("attribute {name} is not an integer")))?)
            }
            other => {
                return Err(StoreError::Backend(format!("attribute {name} has an unexpected type: {other:?}")));
            }
        };
        match (name.as_str(), parsed) {
            (TTL_ATTR, Attr::N(t)) => expires_at = Some(t),
            (_, parsed) => {
                attrs.insert(name, parsed);
            }
        }
    }
    Ok(Item { key: Key::new(pk, sk), index_key, rev, expires_at, attrs })
}

/// The live item of an `ALL_OLD` return, if any.
pub(super) fn live_old(map: Option<&AttrMap>, now: i64) -> Result<Option<Item>, StoreError> {
    match map {
        Some(m) if !m.is_empty() => Ok(Some(from_map(m.clone())?).filter(|i| !i.is_expired(now))),
        _ => Ok(None),
    }
}
