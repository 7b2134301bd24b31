//! Traces on DynamoDB. A head item holds the length and the current generation; chunk items
//! (`CHUNK#<generation>#<offset>`) hold gzip-compressed slices. An append is one transaction
//! (the head's length moves from `start` to `end` only if it still is `start`, plus the new
//! chunks), so concurrent appends never lose or duplicate bytes. A replacement writes a new
//! generation's chunks first and then switches the head to it, so readers never see a mix.

use crate::build_item::Item;
use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use buildlore_core::compression::{gunzip_capped, gzip};
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use buildlore_core::trace::{
    AppendOutcome, CHUNK_RAW_BYTES, Replacement, TraceKey, TraceSlice, TraceStore, chunks,
};
use chrono::Utc;
use std::collections::HashMap;

const HEAD: &str = "HEAD";
const BATCH_WRITE_LIMIT: usize = 25;
const REPLACE_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy)]
struct Head {
    length: u64,
    generation: u64,
}

fn partition(key: &TraceKey) -> String {
    keys::trace_partition(&key.provider, &key.repo, &key.job_id)
}

fn chunk_sort_key(generation: u64, offset: u64) -> String {
    format!("CHUNK#{generation:06}#{offset:012}")
}

fn chunk_prefix(generation: u64) -> String {
    format!("CHUNK#{generation:06}#")
}

fn number(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("trace item has a bad `{name}`"))),
        _ => Err(StoreError::Corrupt(format!("trace item lacks `{name}`"))),
    }
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn is_conditional_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

impl DynamoStore {
    fn expires_at(&self) -> Option<AttributeValue> {
        self.retention()
            .map(|retention| n((Utc::now() + retention).timestamp().max(0) as u64))
    }

    fn chunk_item(
        &self,
        key: &TraceKey,
        generation: u64,
        offset: u64,
        raw: &[u8],
        expires_at: Option<AttributeValue>,
    ) -> Item {
        let mut item = HashMap::from([
            (PARTITION_KEY.to_string(), AttributeValue::S(partition(key))),
            (
                SORT_KEY.to_string(),
                AttributeValue::S(chunk_sort_key(generation, offset)),
            ),
            (
                "entity".to_string(),
                AttributeValue::S("trace_chunk".into()),
            ),
            ("offset".to_string(), n(offset)),
            ("raw_len".to_string(), n(raw.len() as u64)),
            ("data".to_string(), AttributeValue::B(Blob::new(gzip(raw)))),
        ]);
        if let Some(expires) = expires_at {
            item.insert(TTL_ATTRIBUTE.into(), expires);
        }
        item
    }

    fn head_item(
        &self,
        key: &TraceKey,
        length: u64,
        generation: u64,
        expires_at: Option<AttributeValue>,
    ) -> Item {
        let mut head = HashMap::from([
            (PARTITION_KEY.to_string(), AttributeValue::S(partition(key))),
            (SORT_KEY.to_string(), AttributeValue::S(HEAD.into())),
            ("entity".to_string(), AttributeValue::S("trace".into())),
            ("length".to_string(), n(length)),
            ("generation".to_string(), n(generation)),
            (
                "updated_at".to_string(),
                AttributeValue::S(Utc::now().to_rfc3339()),
            ),
        ]);
        if let Some(expires) = expires_at {
            head.insert(TTL_ATTRIBUTE.into(), expires);
        }
        head
    }

    async fn trace_head(&self, key: &TraceKey) -> Result<Option<Head>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(partition(key)))
            .key(SORT_KEY, AttributeValue::S(HEAD.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        output
            .item
            .map(|item| {
                Ok(Head {
                    length: number(&item, "length")?,
                    generation: number(&item, "generation")?,
                })
            })
            .transpose()
    }

    /// Writes requests 25 at a time, resending what DynamoDB leaves unprocessed.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for batch in requests.chunks(BATCH_WRITE_LIMIT) {
            let mut pending = batch.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let output = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), pending)
                    .send()
                    .await
                    .map_err(store_error)?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut tables| tables.remove(self.table()))
                    .unwrap_or_default();
                attempt += 1;
                if !pending.is_empty() {
                    if attempt > 8 {
                        return Err(StoreError::Unavailable("writes stayed unprocessed".into()));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6)))
                        .await;
                }
            }
        }
        Ok(())
    }

    /// The query for one generation's chunks, in offset order.
    fn chunks_query(
        &self,
        key: &TraceKey,
        generation: u64,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(partition(key)))
            .expression_attribute_values(":prefix", AttributeValue::S(chunk_prefix(generation)))
    }

    /// The query for the chunks that may hold bytes `offset..end`: no chunk is longer than
    /// [`CHUNK_RAW_BYTES`], so the first one starts after `offset - CHUNK_RAW_BYTES`. Reading
    /// a page deep into a long log thus skips the chunks before it.
    fn chunks_in_range_query(
        &self,
        key: &TraceKey,
        generation: u64,
        offset: u64,
        end: u64,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let first = offset.saturating_sub(CHUNK_RAW_BYTES as u64 - 1);
        self.client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#sk", SORT_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(partition(key)))
            .expression_attribute_values(
                ":first",
                AttributeValue::S(chunk_sort_key(generation, first)),
            )
            .expression_attribute_values(
                ":last",
                AttributeValue::S(chunk_sort_key(generation, end.max(first))),
            )
    }

    /// Sort keys of one generation's chunks.
    async fn chunk_keys(&self, key: &TraceKey, generation: u64) -> Result<Vec<String>, StoreError> {
        let items = crate::pages::every_item(
            self.chunks_query(key, generation)
                .projection_expression("#sk"),
        )
        .await?;
        Ok(items
            .iter()
            .filter_map(|item| item.get(SORT_KEY)?.as_s().ok().cloned())
            .collect())
    }

    /// Best effort: chunks of a generation no head points to any more.
    async fn delete_generation(&self, key: &TraceKey, generation: u64) {
        let result = async {
            let deletes = self
                .chunk_keys(key, generation)
                .await?
                .into_iter()
                .filter_map(|sort_key| {
                    let request = DeleteRequest::builder()
                        .key(PARTITION_KEY, AttributeValue::S(partition(key)))
                        .key(SORT_KEY, AttributeValue::S(sort_key))
                        .build()
                        .ok()?;
                    Some(WriteRequest::builder().delete_request(request).build())
                })
                .collect();
            self.batch_write(deletes).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "old trace chunks were left to expire");
        }
    }
}

/// A generation no other writer picks: the clock in microseconds, kept above the previous
/// one, plus a per-process counter.
fn unique_generation(previous: Option<u64>) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = Utc::now().timestamp_micros().max(0) as u64;
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) % 1000;
    (micros * 1000 + count).max(previous.map_or(1, |p| p + 1))
}

impl TraceStore for DynamoStore {
    async fn replace(&self, key: &TraceKey, bytes: &[u8]) -> Result<u64, StoreError> {
        for _ in 0..REPLACE_ATTEMPTS {
            let replacement = self.begin_replacement(key, None).await?;
            if let Err(error) = self.write_replacement(key, &replacement, 0, bytes).await {
                self.discard_replacement(key, replacement).await;
                return Err(error);
            }
            match self
                .commit_replacement(key, replacement, bytes.len() as u64)
                .await
            {
                Ok(()) => return Ok(bytes.len() as u64),
                // Another writer switched the head first: try again on top of theirs.
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Unavailable(
            "the trace kept changing while it was replaced".into(),
        ))
    }

    async fn begin_replacement(
        &self,
        key: &TraceKey,
        keep: Option<chrono::Duration>,
    ) -> Result<Replacement, StoreError> {
        let previous = self.trace_head(key).await?.map(|head| head.generation);
        let expires_at = keep
            .map(|keep| (Utc::now() + keep).timestamp())
            .or_else(|| self.retention().map(|r| (Utc::now() + r).timestamp()));
        Ok(Replacement {
            generation: unique_generation(previous),
            previous,
            expires_at,
        })
    }

    async fn write_replacement(
        &self,
        key: &TraceKey,
        replacement: &Replacement,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let expires = replacement.expires_at.map(|at| n(at.max(0) as u64));
        let puts = chunks(bytes, offset)
            .filter_map(|(offset, raw)| {
                let item =
                    self.chunk_item(key, replacement.generation, offset, raw, expires.clone());
                let put = PutRequest::builder().set_item(Some(item)).build().ok()?;
                Some(WriteRequest::builder().put_request(put).build())
            })
            .collect();
        self.batch_write(puts).await
    }

    async fn commit_replacement(
        &self,
        key: &TraceKey,
        replacement: Replacement,
        length: u64,
    ) -> Result<(), StoreError> {
        let expires = replacement.expires_at.map(|at| n(at.max(0) as u64));
        let head = self.head_item(key, length, replacement.generation, expires);
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(head));
        put = match replacement.previous {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY),
            Some(previous) => put
                .condition_expression("#generation = :generation")
                .expression_attribute_names("#generation", "generation")
                .expression_attribute_values(":generation", n(previous)),
        };
        match put.send().await {
            Ok(_) => {
                if let Some(old) = replacement.previous {
                    self.delete_generation(key, old).await;
                }
                Ok(())
            }
            Err(error) if error.as_service_error().is_some_and(is_conditional_failure) => {
                self.delete_generation(key, replacement.generation).await;
                Err(StoreError::Conflict)
            }
            Err(error) => Err(store_error(error)),
        }
    }

    async fn discard_replacement(&self, key: &TraceKey, replacement: Replacement) {
        self.delete_generation(key, replacement.generation).await;
    }

    async fn append(
        &self,
        key: &TraceKey,
        start: u64,
        part: &[u8],
    ) -> Result<AppendOutcome, StoreError> {
        let current = self.trace_head(key).await?;
        let length = current.map_or(0, |head| head.length);
        if start != length {
            return Ok(AppendOutcome::OutOfRange { length });
        }
        if part.is_empty() {
            return Ok(AppendOutcome::Appended { length });
        }
        let end = start + part.len() as u64;
        let generation = current.map_or(1, |head| head.generation);
        let head_write = match current {
            None => {
                let head = self.head_item(key, end, generation, self.expires_at());
                let put = Put::builder()
                    .table_name(self.table())
                    .set_item(Some(head))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PARTITION_KEY)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                TransactWriteItem::builder().put(put).build()
            }
            Some(head) => {
                let update = Update::builder()
                    .table_name(self.table())
                    .key(PARTITION_KEY, AttributeValue::S(partition(key)))
                    .key(SORT_KEY, AttributeValue::S(HEAD.into()))
                    .update_expression("SET #length = :end, #updated = :now")
                    .condition_expression("#length = :start AND #generation = :generation")
                    .expression_attribute_names("#length", "length")
                    .expression_attribute_names("#updated", "updated_at")
                    .expression_attribute_names("#generation", "generation")
                    .expression_attribute_values(":end", n(end))
                    .expression_attribute_values(":start", n(start))
                    .expression_attribute_values(":generation", n(head.generation))
                    .expression_attribute_values(":now", AttributeValue::S(Utc::now().to_rfc3339()))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                TransactWriteItem::builder().update(update).build()
            }
        };
        let mut items = vec![head_write];
        for (offset, raw) in chunks(part, start) {
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(self.chunk_item(
                    key,
                    generation,
                    offset,
                    raw,
                    self.expires_at(),
                )))
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match self.transact(items).await {
            Ok(()) => Ok(AppendOutcome::Appended { length: end }),
            Err(StoreError::Conflict) => {
                let length = self.trace_head(key).await?.map_or(0, |head| head.length);
                Ok(AppendOutcome::OutOfRange { length })
            }
            Err(other) => Err(other),
        }
    }

    async fn length(&self, key: &TraceKey) -> Result<Option<u64>, StoreError> {
        Ok(self.trace_head(key).await?.map(|head| head.length))
    }

    async fn read(
        &self,
        key: &TraceKey,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<Option<TraceSlice>, StoreError> {
        let Some(head) = self.trace_head(key).await? else {
            return Ok(None);
        };
        let end = limit.map_or(head.length, |limit| {
            offset.saturating_add(limit).min(head.length)
        });
        let mut bytes = Vec::new();
        let mut start_key = None;
        'pages: loop {
            let page = self
                .chunks_in_range_query(key, head.generation, offset, end)
                .consistent_read(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items.unwrap_or_default() {
                let chunk_offset = number(&item, "offset")?;
                let raw_len = number(&item, "raw_len")?;
                if chunk_offset >= end {
                    break 'pages;
                }
                if chunk_offset + raw_len <= offset || chunk_offset >= head.length {
                    continue;
                }
                let data = match item.get("data") {
                    Some(AttributeValue::B(blob)) => blob.as_ref(),
                    _ => return Err(StoreError::Corrupt("trace chunk lacks data".into())),
                };
                let raw = gunzip_capped(data, CHUNK_RAW_BYTES.max(raw_len as usize))
                    .map_err(|e| StoreError::Corrupt(format!("trace chunk: {e}")))?;
                let from = offset.saturating_sub(chunk_offset) as usize;
                let to = (end - chunk_offset).min(raw.len() as u64) as usize;
                if from < to {
                    bytes.extend_from_slice(&raw[from..to]);
                }
            }
            start_key = page.last_evaluated_key;
            if start_key.is_none() {
                break;
            }
        }
        Ok(Some(TraceSlice {
            bytes,
            offset: offset.min(head.length),
            total_length: head.length,
        }))
    }
}
