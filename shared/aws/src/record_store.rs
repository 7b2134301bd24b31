//! The record store on DynamoDB: one conditional transaction per write (the record plus its
//! day's counters), consistent reads for idempotency checks, index queries for listings.

use crate::build_item::{Item, text};
use crate::errors::store_error;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use buildlore_core::counters::CounterDelta;
use buildlore_core::cursor::Cursor;
use buildlore_core::keys;
use buildlore_core::list_builds::{BuildPage, BuildQuery};
use buildlore_core::ports::{BuildListing, StoreError};
use buildlore_core::record::{Record, RecordStore, Stored};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};
use buildlore_core::{Build, RepoPath};
use chrono::{Duration, NaiveDate};
use std::collections::HashMap;

/// Items read per query call when a status filter is applied (DynamoDB filters after reading).
const FILTERED_PAGE_SIZE: i32 = 100;
/// Query calls one listing may spend looking for filtered matches before returning a cursor.
const MAX_QUERY_CALLS: usize = 10;
/// Attempts of a transaction that lost to another transaction on the same items.
const TRANSACTION_CONFLICT_ATTEMPTS: u32 = 4;
/// Attempts of a record write whose repo's kept recent runs another writer changed first.
const KEPT_RUNS_ATTEMPTS: usize = 8;

/// How a record becomes an item and back. The store adds `counted_on` and `revision`.
pub trait ItemCodec: Record {
    /// `pk` and `sk`.
    fn key(&self) -> Item;
    /// The whole item: key, index attributes, `status`, data, and `expires_at` when the
    /// record expires after `retention`.
    fn to_item(&self, retention: Option<Duration>) -> Item;
    fn from_item(item: &Item) -> Result<Self, StoreError>;
}

const COUNTED_ON: &str = "counted_on";
const REVISION: &str = "revision";

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Option<Duration>,
}

impl DynamoStore {
    /// `retention_days`: records expire that long after they happened (`None`: never).
    pub fn new(client: Client, table: impl Into<String>, retention_days: Option<u32>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            retention: retention_days.map(|days| Duration::days(i64::from(days))),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn retention(&self) -> Option<Duration> {
        self.retention
    }

    fn counters_update(&self, repo: &RepoPath, delta: &CounterDelta) -> Result<Update, StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (index, (counter, amount)) in delta.increments.iter().enumerate() {
            names.insert(format!("#c{index}"), counter.clone());
            values.insert(format!(":c{index}"), AttributeValue::N(amount.to_string()));
            adds.push(format!("#c{index} :c{index}"));
        }
        names.insert("#repo".into(), "repo".into());
        names.insert("#day".into(), "day".into());
        names.insert("#entity".into(), "entity".into());
        values.insert(":repo".into(), AttributeValue::S(repo.to_string()));
        values.insert(
            ":day".into(),
            AttributeValue::S(delta.day.format("%Y-%m-%d").to_string()),
        );
        values.insert(
            ":entity".into(),
            AttributeValue::S("repo_day_counters".into()),
        );
        Update::builder()
            .table_name(&self.table)
            .key(
                PARTITION_KEY,
                AttributeValue::S(keys::counters_partition(delta.day)),
            )
            .key(SORT_KEY, AttributeValue::S(keys::counters_sort_key(repo)))
            .update_expression(format!(
                "SET #repo = :repo, #day = :day, #entity = :entity ADD {}",
                adds.join(", ")
            ))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))
    }

    /// Runs a transaction whose first item carries the condition. A failed condition is a
    /// `Conflict`; a clash with a concurrent transaction is retried briefly.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        match self.transact_items(items).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Condition {
                first_failed: 0, ..
            }) => Err(StoreError::Conflict),
            Err(Cancelled::Condition { error, .. } | Cancelled::Other(error)) => Err(error),
        }
    }

    /// Runs a transaction, retrying clashes with concurrent transactions briefly; says which
    /// item's condition failed when one did.
    async fn transact_items(&self, items: Vec<TransactWriteItem>) -> Result<(), Cancelled> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if let SdkError::ServiceError(service) = &error
                && let TransactWriteItemsError::TransactionCanceledException(cancel) = service.err()
            {
                let codes: Vec<&str> = cancel
                    .cancellation_reasons()
                    .iter()
                    .map(|reason| reason.code().unwrap_or("None"))
                    .collect();
                if let Some(first_failed) = codes
                    .iter()
                    .position(|code| *code == "ConditionalCheckFailed")
                {
                    return Err(Cancelled::Condition {
                        first_failed,
                        error: store_error(error),
                    });
                }
                if codes.contains(&"TransactionConflict") {
                    if attempt < TRANSACTION_CONFLICT_ATTEMPTS {
                        let backoff = 10 * u64::from(attempt) + jitter_ms();
                        tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                        continue;
                    }
                    return Err(Cancelled::Other(StoreError::Unavailable(
                        "transaction kept clashing with concurrent writes".into(),
                    )));
                }
            }
            return Err(Cancelled::Other(store_error(error)));
        }
    }
}

/// Why a transaction was not applied.
enum Cancelled {
    /// The condition of the item at `first_failed` (and maybe later ones) failed.
    Condition {
        first_failed: usize,
        error: StoreError,
    },
    Other(StoreError),
}

/// A few milliseconds of jitter so clashing writers do not retry in lockstep.
fn jitter_ms() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos % 20)
}

impl DynamoStore {
    fn full_item<R: ItemCodec>(&self, record: &R, counted_on: NaiveDate, revision: u64) -> Item {
        let mut item = record.to_item(self.retention);
        item.insert(
            COUNTED_ON.into(),
            AttributeValue::S(counted_on.format("%Y-%m-%d").to_string()),
        );
        item.insert(REVISION.into(), AttributeValue::N(revision.to_string()));
        item
    }

    /// The record's put (carrying `condition`), its counter update and, when the record is
    /// a run that changes them, its repo's kept recent runs, as one transaction. A failed
    /// condition on the record is a `Conflict`; another writer changing the repo's kept runs
    /// meanwhile makes it read them again and retry.
    async fn write_with_counters<R: ItemCodec>(
        &self,
        put: Put,
        record: &R,
        revision: u64,
        counters: &CounterDelta,
    ) -> Result<(), StoreError> {
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        if !counters.is_empty() {
            items.push(
                TransactWriteItem::builder()
                    .update(self.counters_update(record.repo(), counters)?)
                    .build(),
            );
        }
        for _ in 0..KEPT_RUNS_ATTEMPTS {
            let kept = self.kept_runs_update(record, revision).await?;
            let with_kept = kept.is_some();
            let mut transaction = items.clone();
            transaction.extend(kept);
            match self.transact_items(transaction).await {
                Ok(()) => return Ok(()),
                Err(Cancelled::Condition {
                    first_failed: 0, ..
                }) => {
                    return Err(StoreError::Conflict);
                }
                Err(Cancelled::Condition { .. }) if with_kept => {
                    tokio::time::sleep(std::time::Duration::from_millis(jitter_ms())).await;
                }
                Err(Cancelled::Condition { error, .. } | Cancelled::Other(error)) => {
                    return Err(error);
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "the recent runs of {} kept changing under concurrent writes",
            record.repo()
        )))
    }
}

impl<R: ItemCodec> RecordStore<R> for DynamoStore {
    async fn insert(&self, record: &R, counters: &CounterDelta) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.full_item(record, counters.day, 1)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        self.write_with_counters(put, record, 1, counters).await
    }

    async fn advance(
        &self,
        record: &R,
        expected: &Stored<R>,
        counters: &CounterDelta,
    ) -> Result<(), StoreError> {
        let revision = expected.revision + 1;
        let item = self.full_item(record, expected.counted_on, revision);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#revision = :expected")
            .expression_attribute_names("#revision", REVISION)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected.revision.to_string()),
            )
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        self.write_with_counters(put, record, revision, counters)
            .await
    }

    async fn get(&self, like: &R) -> Result<Option<Stored<R>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(like.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("{} item has a bad `{what}`", R::KIND));
        let counted_on = NaiveDate::parse_from_str(text(&item, COUNTED_ON)?, "%Y-%m-%d")
            .map_err(|_| corrupt(COUNTED_ON))?;
        let revision = match item.get(REVISION) {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| corrupt(REVISION))?,
            _ => return Err(corrupt(REVISION)),
        };
        Ok(Some(Stored {
            record: R::from_item(&item)?,
            counted_on,
            revision,
        }))
    }
}

impl DynamoStore {
    /// One build by repo and id.
    pub async fn get_build(
        &self,
        repo: &RepoPath,
        build_id: &str,
    ) -> Result<Option<Build>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(crate::build_item::build_key(repo, build_id)))
            .send()
            .await
            .map_err(store_error)?;
        output.item.as_ref().map(Build::from_item).transpose()
    }
}

impl BuildListing for DynamoStore {
    async fn list_builds(&self, query: &BuildQuery) -> Result<BuildPage, StoreError> {
        let (index, partition) = query.index();
        let mut names = HashMap::from([("#ipk".to_string(), index.key.partition.to_string())]);
        let mut values = HashMap::from([(":ipk".to_string(), AttributeValue::S(partition))]);
        let mut key_condition = "#ipk = :ipk".to_string();
        if let Some(since) = query.since {
            names.insert("#isk".into(), index.key.sort.into());
            values.insert(
                ":since".into(),
                AttributeValue::S(buildlore_core::time::sortable(since)),
            );
            key_condition.push_str(" AND #isk >= :since");
        }
        let filter = query.status.map(|status| {
            names.insert("#status".into(), "status".into());
            values.insert(":status".into(), AttributeValue::S(status.as_str().into()));
            "#status = :status".to_string()
        });

        let mut builds = Vec::new();
        let mut last_items: Vec<Item> = Vec::new();
        let mut start_key: Option<Item> = query.cursor.as_ref().map(|cursor| {
            cursor
                .key
                .iter()
                .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
                .collect()
        });
        let mut more_in_table = false;
        for _ in 0..MAX_QUERY_CALLS {
            let wanted = query.limit + 1 - builds.len();
            let page_size = if filter.is_some() {
                FILTERED_PAGE_SIZE
            } else {
                i32::try_from(wanted).unwrap_or(FILTERED_PAGE_SIZE)
            };
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index.name)
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(page_size)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in output.items.unwrap_or_default() {
                builds.push(Build::from_item(&item)?);
                last_items.push(item);
            }
            start_key = output.last_evaluated_key;
            more_in_table = start_key.is_some();
            if builds.len() > query.limit || !more_in_table {
                break;
            }
        }
        let next_cursor = if builds.len() > query.limit {
            builds.truncate(query.limit);
            last_items
                .get(query.limit - 1)
                .map(|item| cursor_of(item, index.key.partition, index.key.sort))
        } else if more_in_table {
            // Ran out of calls while filtering: continue where the reading stopped.
            start_key.map(|key| cursor_from_key(&key))
        } else {
            None
        };
        Ok(BuildPage {
            builds,
            next_cursor,
        })
    }
}

fn cursor_from_key(key: &Item) -> Cursor {
    Cursor {
        key: key
            .iter()
            .filter_map(|(name, value)| value.as_s().ok().map(|v| (name.clone(), v.clone())))
            .collect(),
    }
}

/// The index key of an item, as `ExclusiveStartKey` wants it.
fn cursor_of(item: &Item, index_partition: &str, index_sort: &str) -> Cursor {
    let key: Item = [PARTITION_KEY, SORT_KEY, index_partition, index_sort]
        .iter()
        .filter_map(|name| {
            item.get(*name)
                .map(|value| (name.to_string(), value.clone()))
        })
        .collect();
    cursor_from_key(&key)
}
