//! Test reports on DynamoDB. An upload is one item (its totals and failing tests, gzipped
//! JSON) under the job, written only if its digest is new; each tracked test of a repo is
//! one item (its state and recent history, gzipped JSON) written under a revision condition;
//! one item per repo holds the set of tracked ids, so an upload reads one small item to know
//! which of its passing tests need a write.

use crate::build_item::Item;
use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use buildlore_core::RepoPath;
use buildlore_core::compression::{gunzip_capped, gzip};
use buildlore_core::junit::history::{FlakySettings, RunContext, TestState};
use buildlore_core::junit::ingest::{JobKey, StoredUpload, TestReportStore};
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::runs::Job;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};

const DATA: &str = "data";
const REVISION: &str = "revision";
const TRACKED: &str = "tracked";
/// Keys per BatchGetItem call (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;
/// Rounds of retrying the keys a BatchGetItem left unprocessed.
const UNPROCESSED_ROUNDS: usize = 8;
/// More than any stored item holds once decompressed.
const MAX_DATA_BYTES: usize = 8 * 1024 * 1024;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(partition: String, sort: String) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_string(), s(partition)),
        (SORT_KEY.to_string(), s(sort)),
    ])
}

fn packed<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    let json = serde_json::to_vec(value).map_err(|e| StoreError::Failed(e.to_string()))?;
    Ok(AttributeValue::B(gzip(&json).into()))
}

fn unpacked<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let bytes = item
        .get(DATA)
        .and_then(|value| value.as_b().ok())
        .ok_or_else(|| StoreError::Corrupt("a test report item has no data".into()))?;
    let json = gunzip_capped(bytes.as_ref(), MAX_DATA_BYTES)
        .map_err(|e| StoreError::Corrupt(format!("test report data: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("test report data: {e}")))
}

fn revision_of(item: &Item) -> u64 {
    item.get(REVISION)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn build_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(error.to_string())
}

impl DynamoStore {
    fn upload_key(job: &JobKey, digest: &str) -> Item {
        key(
            keys::junit_job_partition(&job.provider, &job.repo, &job.job_id),
            keys::junit_upload_sort_key(digest),
        )
    }

    fn state_key(repo: &RepoPath, id: &str) -> Item {
        key(keys::tests_partition(repo), keys::test_state_sort_key(id))
    }

    fn tracked_key(repo: &RepoPath) -> Item {
        key(
            keys::tests_partition(repo),
            keys::TRACKED_TESTS_SORT_KEY.to_string(),
        )
    }

    fn add_tracked(&self, repo: &RepoPath, ids: &[String]) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(self.table())
            .set_key(Some(Self::tracked_key(repo)))
            .update_expression("ADD #tracked :ids SET #entity = :entity")
            .expression_attribute_names("#tracked", TRACKED)
            .expression_attribute_names("#entity", "entity")
            .expression_attribute_values(":ids", AttributeValue::Ss(ids.to_vec()))
            .expression_attribute_values(":entity", s("tracked_tests"))
            .build()
            .map_err(build_error)
    }

    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            for round in 0.. {
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(self.table(), pending)
                    .send()
                    .await
                    .map_err(store_error)?;
                if let Some(mut responses) = output.responses {
                    found.extend(responses.remove(self.table()).unwrap_or_default());
                }
                match output
                    .unprocessed_keys
                    .and_then(|mut rest| rest.remove(self.table()))
                {
                    Some(rest) if !rest.keys().is_empty() => {
                        if round >= UNPROCESSED_ROUNDS {
                            return Err(StoreError::Unavailable(
                                "reading test states was throttled".into(),
                            ));
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20 << round.min(5)))
                            .await;
                        pending = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}

impl TestReportStore for DynamoStore {
    async fn find_upload(
        &self,
        job: &JobKey,
        digest: &str,
    ) -> Result<Option<StoredUpload>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(Self::upload_key(job, digest)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        output.item.as_ref().map(unpacked).transpose()
    }

    async fn record_upload(
        &self,
        job: &JobKey,
        upload: &StoredUpload,
        newly_tracked: &[String],
    ) -> Result<bool, StoreError> {
        let mut item = Self::upload_key(job, &upload.digest);
        item.insert("entity".into(), s("junit_upload"));
        item.insert(DATA.into(), packed(upload)?);
        if let Some(retention) = self.retention() {
            let expires = (upload.uploaded_at + retention).timestamp();
            item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(expires.to_string()));
        }
        if newly_tracked.is_empty() {
            let result = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    Ok(false)
                }
                Err(error) => Err(store_error(error)),
            };
        }
        // The upload and the ids it starts tracking, together or not at all.
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder()
                .update(self.add_tracked(&job.repo, newly_tracked)?)
                .build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn job_uploads(&self, job: &JobKey) -> Result<Vec<StoredUpload>, StoreError> {
        let partition = keys::junit_job_partition(&job.provider, &job.repo, &job.job_id);
        let items = crate::pages::every_item(
            self.client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :upload)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", s(partition.clone()))
                .expression_attribute_values(":upload", s("UPLOAD#"))
                .consistent_read(true),
        )
        .await?;
        let mut uploads = items
            .iter()
            .map(unpacked::<StoredUpload>)
            .collect::<Result<Vec<_>, _>>()?;
        uploads.sort_by_key(|upload| upload.uploaded_at);
        Ok(uploads)
    }

    async fn tracked_tests(&self, repo: &RepoPath) -> Result<HashSet<String>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(Self::tracked_key(repo)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output
            .item
            .and_then(|mut item| item.remove(TRACKED))
            .and_then(|value| value.as_ss().ok().cloned())
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    async fn load_states(
        &self,
        repo: &RepoPath,
        ids: &[String],
    ) -> Result<Vec<(TestState, u64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let unique: Vec<&String> = {
            let mut seen = HashSet::new();
            ids.iter().filter(|id| seen.insert(*id)).collect()
        };
        let keys = unique.iter().map(|id| Self::state_key(repo, id)).collect();
        let items = self.batch_get(keys).await?;
        items
            .iter()
            .map(|item| Ok((unpacked::<TestState>(item)?, revision_of(item))))
            .collect()
    }

    async fn save_state(
        &self,
        repo: &RepoPath,
        state: &TestState,
        revision: Option<u64>,
        settings: &FlakySettings,
    ) -> Result<(), StoreError> {
        let mut item = Self::state_key(repo, &state.id);
        item.insert("entity".into(), s("test_state"));
        item.insert(DATA.into(), packed(state)?);
        let next = revision.map_or(1, |r| r + 1);
        item.insert(REVISION.into(), AttributeValue::N(next.to_string()));
        if let Some(until) = state.tracked_until(settings) {
            item.insert(
                TTL_ATTRIBUTE.into(),
                AttributeValue::N(until.timestamp().to_string()),
            );
        }
        let request = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item));
        let request = match revision {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY),
            Some(revision) => request
                .condition_expression("#revision = :revision")
                .expression_attribute_names("#revision", REVISION)
                .expression_attribute_values(":revision", AttributeValue::N(revision.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(error) => Err(store_error(error)),
        }
    }

    async fn all_states(&self, repo: &RepoPath) -> Result<Vec<TestState>, StoreError> {
        let items = crate::pages::every_item(
            self.client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :test)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", s(keys::tests_partition(repo)))
                .expression_attribute_values(":test", s("TEST#")),
        )
        .await?;
        let states = items
            .iter()
            .map(unpacked::<TestState>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(states)
    }

    async fn track(&self, repo: &RepoPath, id: &str) -> Result<(), StoreError> {
        let update = self.add_tracked(repo, &[id.to_string()])?;
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn untrack(&self, repo: &RepoPath, ids: &[String]) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(Self::tracked_key(repo)))
            .update_expression("DELETE #tracked :ids")
            .expression_attribute_names("#tracked", TRACKED)
            .expression_attribute_values(":ids", AttributeValue::Ss(ids.to_vec()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn job_context(&self, job: &JobKey) -> Result<Option<RunContext>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(
                keys::repo_partition(&job.repo),
                keys::job_sort_key(&job.provider, &job.job_id),
            )))
            .projection_expression("#data")
            .expression_attribute_names("#data", DATA)
            .send()
            .await
            .map_err(store_error)?;
        let Some(text) = output
            .item
            .as_ref()
            .and_then(|item| item.get(DATA))
            .and_then(|value| value.as_s().ok())
        else {
            return Ok(None);
        };
        // A job stored by an older version may not decode: it only fills in context.
        let Ok(stored) = serde_json::from_str::<Job>(text) else {
            return Ok(None);
        };
        Ok(Some(RunContext {
            provider: stored.provider,
            job_id: stored.job_id,
            pipeline_id: stored.pipeline_id,
            commit: stored.sha,
            branch: stored.git_ref,
        }))
    }
}
