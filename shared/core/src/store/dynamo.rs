//! The DynamoDB store: one table, keys `pk`/`sk`, listing index `gsi1`, TTL attribute `ttl`
//! (see the key design in [`super`]). Every method is one DynamoDB call, tried again (at most
//! `dynamodb_max_attempts` times within `dynamodb_timeout_ms`) when it failed on the way.
//!
//! Retries are Portico's, not the SDK's, because a write whose answer was lost may have
//! landed: a blind retry would apply a counter change twice. Each write carries a fresh
//! revision token, and a retried write recognizes its own earlier attempt by it (a conditional
//! put or a counter change that finds its own revision has landed); a conditional delete that
//! cannot tell says so ([`StoreError::Unavailable`]). Calls that cannot be made in time end as
//! [`StoreError::Unavailable`] (503 to the client), never as a hang.

mod counters;
mod items;
mod refusal;
mod retry;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{Condition, Counter, Cursor, Item, Key, Page, Partition, Query, StoreError, Table, cut_page, now_epoch};
use items::{condition_expr, from_map, live_old, to_map};
use refusal::written;
pub use retry::Patience;
use retry::{Step, backend, call, failed, step};

/// Name of the listing index.
pub const INDEX_NAME: &str = "gsi1";
/// Name of the TTL attribute.
pub const TTL_ATTR: &str = "ttl";

type AttrMap = HashMap<String, AttributeValue>;

/// A [`Table`] on a DynamoDB table.
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    patience: Patience,
}

impl DynamoTable {
    /// The table `table` through `client`, with the default [`Patience`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoTable { client, table: table.into(), patience: Patience::default() }
    }

    /// The same table, trying each call as `patience` says (match the client's, see
    /// [`DynamoTable::client`]).
    pub fn with_patience(mut self, patience: Patience) -> Self {
        self.patience = patience;
        self
    }

    /// A client from the process's AWS configuration, optionally for another `endpoint`, with
    /// `patience`'s timeouts and no retries of its own (the table retries, see the module).
    pub fn client(aws: &aws_config::SdkConfig, endpoint: Option<&str>, patience: &Patience) -> Client {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(aws);
        if let Some(url) = endpoint {
            builder = builder.endpoint_url(url);
        }
        Client::from_conf(Self::tuned(builder, patience).build())
    }

    /// A client for a local engine (DynamoDB Local) at `endpoint`, with static dummy
    /// credentials (local engines accept any) and the default [`Patience`].
    pub fn local_client(endpoint: &str) -> Client {
        Self::local_client_with(endpoint, &Patience::default())
    }

    /// As [`DynamoTable::local_client`], with `patience`'s timeouts.
    pub fn local_client_with(endpoint: &str, patience: &Patience) -> Client {
        let builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_credential_types::Credentials::from_keys("local", "local", None));
        Client::from_conf(Self::tuned(builder, patience).build())
    }

    fn tuned(builder: aws_sdk_dynamodb::config::Builder, patience: &Patience) -> aws_sdk_dynamodb::config::Builder {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(patience.connect)
            .operation_attempt_timeout(patience.attempt)
            .build();
        builder.retry_config(RetryConfig::disabled()).timeout_config(timeouts)
    }

    /// Creates the table with Portico's key design if it does not exist (local runs and
    /// tests; in AWS the table comes from `infra/template.yaml`).
    pub async fn create_if_missing(&self) -> Result<(), StoreError> {
        if self.client.describe_table().table_name(&self.table).send().await.is_ok() {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("key schema")
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(INDEX_NAME)
            .key_schema(key("gsi1pk", KeyType::Hash))
            .key_schema(key("gsi1sk", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .expect("gsi");
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .attribute_definitions(attr("gsi1pk"))
            .attribute_definitions(attr("gsi1sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .global_secondary_indexes(index)
            .send()
            .await
            .map_err(backend)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().enabled(true).attribute_name(TTL_ATTR).build().expect("ttl spec"),
            )
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    fn key_map(key: &Key) -> AttrMap {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
        ])
    }
}

#[async_trait::async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let req =
            self.client.get_item().table_name(&self.table).set_key(Some(Self::key_map(key))).consistent_read(true);
        let out = call(self.patience, "GetItem", |_| {
            let req = req.clone();
            async move { step(req.send().await) }
        })
        .await?;
        live_old(out.item(), now_epoch())
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<Option<Item>, StoreError> {
        let now = now_epoch();
        let cond = condition_expr(&condition, now);
        let rev = item.rev.clone();
        let absent = condition == Condition::Absent;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_map(item)))
            .set_condition_expression(cond.expression)
            .set_expression_attribute_names(cond.names)
            .set_expression_attribute_values(cond.values)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        call(self.patience, "PutItem", |n| {
            let (req, rev) = (req.clone(), rev.clone());
            async move {
                written(req.send().await, now, PutItemOutput::attributes, |current| {
                    // The item bears this very write's revision: an earlier attempt landed and
                    // only its answer was lost. (For `Rev`, the item replaced is not known.)
                    if n > 1 && current.as_ref().is_some_and(|c| c.rev == rev) {
                        return Ok(if absent { None } else { current });
                    }
                    Err(StoreError::ConditionFailed { current: current.map(Box::new) })
                })
            }
        })
        .await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StoreError> {
        let now = now_epoch();
        let cond = condition_expr(&condition, now);
        let req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key_map(key)))
            .set_condition_expression(cond.expression)
            .set_expression_attribute_names(cond.names)
            .set_expression_attribute_values(cond.values)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        call(self.patience, "DeleteItem", |n| {
            let req = req.clone();
            async move {
                written(req.send().await, now, DeleteItemOutput::attributes, |current| {
                    // Gone, but perhaps by an earlier attempt of this call whose answer was lost.
                    if n > 1 && current.is_none() {
                        let unknown = "DeleteItem: the item is gone, perhaps by an attempt whose answer was lost";
                        return Err(StoreError::Unavailable(unknown.into()));
                    }
                    Err(StoreError::ConditionFailed { current: current.map(Box::new) })
                })
            }
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let position = query.after.as_ref().map(|c| c.position(query)).transpose()?;
        let now = now_epoch();
        let (pk_name, sk_name, pk_value) = match &query.partition {
            Partition::Table(pk) => ("pk", "sk", pk),
            Partition::Index(ipk) => ("gsi1pk", "gsi1sk", ipk),
        };
        let mut key_cond = "#pk = :pk".to_owned();
        let mut values: AttrMap = HashMap::from([
            (":pk".to_owned(), AttributeValue::S(pk_value.clone())),
            (":now".to_owned(), AttributeValue::N(now.to_string())),
        ]);
        let mut names =
            HashMap::from([("#pk".to_owned(), pk_name.to_owned()), ("#ttl".to_owned(), TTL_ATTR.to_owned())]);
        if let Some(prefix) = &query.sk_prefix {
            key_cond.push_str(" AND begins_with(#sk, :prefix)");
            names.insert("#sk".into(), sk_name.into());
            values.insert(":prefix".into(), AttributeValue::S(prefix.clone()));
        }
        let mut filter = "(attribute_not_exists(#ttl) OR #ttl > :now)".to_owned();
        for (i, (name, value)) in query.filters.iter().enumerate() {
            filter.push_str(&format!(" AND #f{i} = :f{i}"));
            names.insert(format!("#f{i}"), name.clone());
            values.insert(format!(":f{i}"), AttributeValue::S(value.clone()));
        }
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_cond)
            .filter_expression(filter)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .limit(query.limit as i32 + 1);
        match &query.partition {
            Partition::Table(_) => req = req.consistent_read(true),
            Partition::Index(_) => req = req.index_name(INDEX_NAME),
        }
        if let Some((key, index_key)) = position {
            let mut start = Self::key_map(&key);
            if let Some(ik) = index_key {
                start.insert("gsi1pk".into(), AttributeValue::S(ik.pk));
                start.insert("gsi1sk".into(), AttributeValue::S(ik.sk));
            }
            req = req.set_exclusive_start_key(Some(start));
        }
        let out = call(self.patience, "Query", |_| {
            let req = req.clone();
            async move { step(req.send().await) }
        })
        .await?;
        let matched = out.items().iter().cloned().map(from_map).collect::<Result<Vec<_>, _>>()?;
        let last_evaluated = match out.last_evaluated_key() {
            Some(lek) if !lek.is_empty() => {
                Some(from_map(lek.clone()).map(|i| Cursor::after_item(&i, &query.partition))?)
            }
            _ => None,
        };
        Ok(cut_page(query, matched, last_evaluated))
    }

    async fn add(&self, key: &Key, counters: &[Counter], expires_at: Option<i64>) -> Result<Item, StoreError> {
        super::check_counters(counters)?;
        // An expired item not yet swept by DynamoDB must count as absent, as it does on reads:
        // the update requires a live (or no) item; if an expired one is in the way, it is
        // removed (only if unchanged) and the update tried once more.
        for round in 0..2 {
            match self.add_once(key, counters, expires_at).await? {
                Ok(item) => return Ok(item),
                Err(Some(expired)) if round == 0 => {
                    let removed = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(Self::key_map(key)))
                        .condition_expression("#rev = :rev")
                        .expression_attribute_names("#rev", "rev")
                        .expression_attribute_values(":rev", AttributeValue::S(expired.rev));
                    call(self.patience, "DeleteItem", |_| {
                        let removed = removed.clone();
                        async move {
                            match removed.send().await {
                                Ok(_) => Step::Done(Ok(())),
                                Err(err) => match err.as_service_error() {
                                    // Changed or removed meanwhile: the next update decides.
                                    Some(DeleteItemError::ConditionalCheckFailedException(_)) => Step::Done(Ok(())),
                                    _ => failed(err),
                                },
                            }
                        }
                    })
                    .await?;
                }
                Err(_) => break,
            }
        }
        let current = self.get(key).await?.map(Box::new);
        Err(StoreError::ConditionFailed { current })
    }
}
