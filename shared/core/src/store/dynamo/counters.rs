//! Counter updates: one conditional `UpdateItem` that applies once, its retries included.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::items::from_map;
use super::retry::{Step, call, failed};
use super::{DynamoTable, TTL_ATTR};
use crate::store::{Counter, Item, Key, StoreError, new_rev, now_epoch};

impl DynamoTable {
    /// One conditional `UpdateItem` (tried as [`DynamoTable::call`] says): the new item, or the
    /// refusal with the expired item that blocked it (if that was the reason). The update
    /// sets a fresh revision and requires the item not to bear it yet, so a retry whose first
    /// attempt landed unseen is refused and recognizes its own revision: applied once.
    pub(super) async fn add_once(
        &self,
        key: &Key,
        counters: &[Counter],
        expires_at: Option<i64>,
    ) -> Result<Result<Item, Option<Item>>, StoreError> {
        let now = now_epoch();
        let rev = new_rev();
        let (mut sets, mut adds, mut removes) = (vec!["#rev = :rev".to_owned()], Vec::new(), Vec::new());
        let mut conditions = vec![
            "(attribute_not_exists(#ttl) OR #ttl > :now)".to_owned(),
            "(attribute_not_exists(#rev) OR #rev <> :rev)".to_owned(),
        ];
        let mut names =
            HashMap::from([("#rev".to_owned(), "rev".to_owned()), ("#ttl".to_owned(), TTL_ATTR.to_owned())]);
        let mut values = HashMap::from([
            (":rev".to_owned(), AttributeValue::S(rev.clone())),
            (":now".to_owned(), AttributeValue::N(now.to_string())),
        ]);
        for (i, c) in counters.iter().enumerate() {
            names.insert(format!("#c{i}"), c.attr.clone());
            if c.flag {
                if c.delta > 0 {
                    values.insert(":one".into(), AttributeValue::N("1".into()));
                    sets.push(format!("#c{i} = :one"));
                    conditions.push(format!("attribute_not_exists(#c{i})"));
                } else {
                    removes.push(format!("#c{i}"));
                    conditions.push(format!("attribute_exists(#c{i})"));
                }
                continue;
            }
            values.insert(format!(":d{i}"), AttributeValue::N(c.delta.to_string()));
            adds.push(format!("#c{i} :d{i}"));
            // DynamoDB conditions cannot add, so each bound moves to the other side.
            if c.delta < 0 {
                conditions.push(format!("#c{i} >= :lo{i}"));
                values.insert(format!(":lo{i}"), AttributeValue::N(c.delta.unsigned_abs().to_string()));
            }
            if let Some(max) = c.max {
                let Some(room) = max.checked_sub(c.delta).filter(|r| *r >= 0) else { return Ok(Err(None)) };
                conditions.push(format!("(attribute_not_exists(#c{i}) OR #c{i} <= :hi{i})"));
                values.insert(format!(":hi{i}"), AttributeValue::N(room.to_string()));
            }
        }
        if let Some(t) = expires_at {
            sets.push("#ttl = :ttl".into());
            values.insert(":ttl".into(), AttributeValue::N(t.to_string()));
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !adds.is_empty() {
            update.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(key)))
            .update_expression(update)
            .condition_expression(conditions.join(" AND "))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        call(self.patience, "UpdateItem", |n| {
            let (req, rev) = (req.clone(), rev.clone());
            async move {
                let err = match req.send().await {
                    Ok(out) => return Step::Done(from_map(out.attributes().cloned().unwrap_or_default()).map(Ok)),
                    Err(err) => err,
                };
                let Some(UpdateItemError::ConditionalCheckFailedException(e)) = err.as_service_error() else {
                    return failed(err);
                };
                let old = match e.item() {
                    Some(m) if !m.is_empty() => match from_map(m.clone()) {
                        Ok(item) => Some(item),
                        Err(e) => return Step::Done(Err(e)),
                    },
                    _ => None,
                };
                match old {
                    // An earlier attempt landed (its answer was lost): that is the new item.
                    Some(item) if n > 1 && item.rev == rev => Step::Done(Ok(Ok(item))),
                    old => Step::Done(Ok(Err(old.filter(|i| i.is_expired(now))))),
                }
            }
        })
        .await
    }
}
