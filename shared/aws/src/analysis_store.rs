//! Job analyses on DynamoDB: one item per job (the analysis as a JSON document, indexed by repo
//! and for history by time) and one item per failure fingerprint holding its latest finished
//! analysis, which later jobs with the same failure reuse.

use crate::build_item::Item;
use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use buildlore_core::RepoPath;
use buildlore_core::explain::ChatMessage;
use buildlore_core::job_analysis::{
    AnalysisSource, AnalysisStatus, AnalysisStore, JobAnalysis, RecurringFailure,
};
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::table::{
    BY_BRANCH_TIME, BY_REPO_TIME, IndexSpec, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE,
};
use buildlore_core::time::sortable;
use chrono::{NaiveDate, Utc};
use std::collections::HashMap;

const ANALYSIS_SORT_KEY: &str = "ANALYSIS";
const FINGERPRINT_SORT_KEY: &str = "LATEST";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl DynamoStore {
    /// One item by its keys, read consistently.
    pub(crate) async fn consistent_item(
        &self,
        partition: impl Into<String>,
        sort_key: &str,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(partition))
            .key(SORT_KEY, s(sort_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.item)
    }

    /// One analysis document, with its JSON text as stored.
    async fn get_document_text(
        &self,
        partition: String,
        sort_key: &str,
    ) -> Result<Option<(String, JobAnalysis)>, StoreError> {
        let Some(item) = self.consistent_item(partition, sort_key).await? else {
            return Ok(None);
        };
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("analysis item lacks `doc`".into()))?;
        let analysis = serde_json::from_str(doc)
            .map_err(|e| StoreError::Corrupt(format!("analysis item: {e}")))?;
        Ok(Some((doc.clone(), analysis)))
    }

    async fn get_document(
        &self,
        partition: String,
        sort_key: &str,
    ) -> Result<Option<JobAnalysis>, StoreError> {
        Ok(self
            .get_document_text(partition, sort_key)
            .await?
            .map(|(_, analysis)| analysis))
    }
}

/// How often a write re-reads the analysis after losing a race before giving up.
const WRITE_ATTEMPTS: usize = 8;

impl DynamoStore {
    /// Adds `delta` to the number of analyses made on `day` (kept as long as they are).
    fn analysis_count_update(
        &self,
        day: NaiveDate,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(self.table())
            .key(PARTITION_KEY, s(keys::ANALYSIS_COUNTS))
            .key(SORT_KEY, s(analysis_count_day(day)))
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()));
        update = match self.retention() {
            Some(keep) => {
                let expires = (day + chrono::Days::new(1))
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    + keep;
                update
                    .update_expression("ADD #count :delta SET #ttl = :expires")
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(
                        ":expires",
                        AttributeValue::N(expires.timestamp().to_string()),
                    )
            }
            None => update.update_expression("ADD #count :delta"),
        };
        let update = update
            .build()
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// How many analyses are kept: the per-day counts within the retention window.
    async fn analysis_total(&self) -> Result<u64, StoreError> {
        let from = self
            .retention()
            .map(|keep| (Utc::now() - keep).date_naive())
            .unwrap_or(NaiveDate::MIN);
        let days = crate::pages::every_item(
            self.client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND #sk >= :from")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":pk", s(keys::ANALYSIS_COUNTS))
                .expression_attribute_values(":from", s(analysis_count_day(from))),
        )
        .await?;
        let total: i64 = days
            .iter()
            .filter_map(|item| item.get("count")?.as_n().ok()?.parse::<i64>().ok())
            .sum();
        Ok(total.max(0) as u64)
    }
}

fn analysis_count_day(day: NaiveDate) -> String {
    format!("DAY#{}", day.format("%Y-%m-%d"))
}

impl AnalysisStore for DynamoStore {
    async fn get_analysis(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
    ) -> Result<Option<JobAnalysis>, StoreError> {
        self.get_document(
            keys::analysis_partition(provider, repo, job_id),
            ANALYSIS_SORT_KEY,
        )
        .await
    }

    async fn append_conversation(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
        turns: &[ChatMessage],
    ) -> Result<Option<Vec<ChatMessage>>, StoreError> {
        let partition = keys::analysis_partition(provider, repo, job_id);
        for _ in 0..WRITE_ATTEMPTS {
            let Some((stored, mut analysis)) = self
                .get_document_text(partition.clone(), ANALYSIS_SORT_KEY)
                .await?
                .filter(|(_, analysis)| analysis.status == AnalysisStatus::Done)
            else {
                return Ok(None);
            };
            analysis.conversation.extend_from_slice(turns);
            let doc =
                serde_json::to_string(&analysis).map_err(|e| StoreError::Failed(e.to_string()))?;
            // Written only over the document just read: a turn appended meanwhile, or a new
            // analysis of the job, makes this attempt read again.
            let written = self
                .client()
                .update_item()
                .table_name(self.table())
                .key(PARTITION_KEY, s(partition.clone()))
                .key(SORT_KEY, s(ANALYSIS_SORT_KEY))
                .update_expression("SET #doc = :doc")
                .condition_expression("#doc = :stored")
                .expression_attribute_names("#doc", "doc")
                .expression_attribute_values(":doc", s(doc))
                .expression_attribute_values(":stored", s(stored))
                .send()
                .await;
            match written {
                Ok(_) => return Ok(Some(analysis.conversation)),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    continue;
                }
                Err(error) => return Err(store_error(error)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn put_analysis(&self, analysis: &JobAnalysis) -> Result<(), StoreError> {
        let doc = serde_json::to_string(analysis).map_err(|e| StoreError::Failed(e.to_string()))?;
        let partition =
            keys::analysis_partition(&analysis.provider, &analysis.repo, &analysis.job_id);
        let time_key = format!(
            "{}#{}#{}",
            sortable(analysis.analysed_at),
            analysis.provider,
            analysis.job_id
        );
        let expires = self
            .retention()
            .map(|keep| (Utc::now() + keep).timestamp().to_string());
        let mut item = HashMap::from([
            (PARTITION_KEY.to_string(), s(partition.clone())),
            (SORT_KEY.to_string(), s(ANALYSIS_SORT_KEY)),
            ("entity".to_string(), s("analysis")),
            ("doc".to_string(), s(doc.clone())),
            (
                BY_REPO_TIME.key.partition.to_string(),
                s(keys::analyses_by_repo(&analysis.repo)),
            ),
            (BY_REPO_TIME.key.sort.to_string(), s(time_key.clone())),
            (
                BY_BRANCH_TIME.key.partition.to_string(),
                s(keys::ANALYSES_HISTORY),
            ),
            (BY_BRANCH_TIME.key.sort.to_string(), s(time_key)),
        ]);
        if let Some(expires) = &expires {
            item.insert(
                TTL_ATTRIBUTE.to_string(),
                AttributeValue::N(expires.clone()),
            );
        }
        // The item and the per-day count of analyses change together: written only over the
        // item just read (or where there was none), so a racing writer makes this read again.
        let mut written = false;
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self
                .get_document_text(partition.clone(), ANALYSIS_SORT_KEY)
                .await?;
            let mut put = Put::builder()
                .table_name(self.table())
                .set_item(Some(item.clone()))
                .expression_attribute_names("#pk", PARTITION_KEY);
            put = match &stored {
                None => put.condition_expression("attribute_not_exists(#pk)"),
                Some((stored_doc, _)) => put
                    .condition_expression("attribute_exists(#pk) AND #doc = :stored")
                    .expression_attribute_names("#doc", "doc")
                    .expression_attribute_values(":stored", s(stored_doc.clone())),
            };
            let mut items = vec![
                TransactWriteItem::builder()
                    .put(put.build().map_err(|e| StoreError::Failed(e.to_string()))?)
                    .build(),
            ];
            let day = analysis.analysed_at.date_naive();
            match &stored {
                None => items.push(self.analysis_count_update(day, 1)?),
                Some((_, previous)) if previous.analysed_at.date_naive() != day => {
                    items.push(self.analysis_count_update(previous.analysed_at.date_naive(), -1)?);
                    items.push(self.analysis_count_update(day, 1)?);
                }
                Some(_) => {}
            }
            match self.transact(items).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error),
            }
        }
        if !written {
            return Err(StoreError::Conflict);
        }
        // The fingerprint points at the newest original analysis (not at copies of it).
        if let (AnalysisStatus::Done, Some(fingerprint), false) = (
            analysis.status,
            &analysis.fingerprint,
            analysis.source == AnalysisSource::Reused,
        ) {
            let mut put = self
                .client()
                .put_item()
                .table_name(self.table())
                .item(PARTITION_KEY, s(keys::fingerprint_partition(fingerprint)))
                .item(SORT_KEY, s(FINGERPRINT_SORT_KEY))
                .item("entity", s("fingerprint"))
                .item("doc", s(doc));
            if let Some(expires) = expires {
                put = put.item(TTL_ATTRIBUTE, AttributeValue::N(expires));
            }
            put.send().await.map_err(store_error)?;
        }
        Ok(())
    }

    async fn record_failure(&self, analysis: &JobAnalysis) -> Result<(), StoreError> {
        let Some(fingerprint) = &analysis.fingerprint else {
            return Ok(());
        };
        let now = sortable(analysis.analysed_at);
        let tests =
            serde_json::to_string(&analysis.failed_tests.iter().take(10).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into());
        let mut update = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(keys::failures_of_repo(&analysis.repo)))
            .key(SORT_KEY, s(keys::failure_sort_key(fingerprint)))
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":entity", s("failure"))
            .expression_attribute_values(":fingerprint", s(fingerprint.clone()))
            .expression_attribute_values(":category", s(analysis.category.clone()))
            .expression_attribute_values(":tests", s(tests))
            .expression_attribute_values(":job", s(analysis.job_id.clone()));
        let mut set = "entity = :entity, fingerprint = :fingerprint, last_seen = :now, \
                       first_seen = if_not_exists(first_seen, :now), category = :category, \
                       failed_tests = :tests, latest_job = :job"
            .to_string();
        if let Some(root_cause) = analysis.result.as_ref().map(|r| r.root_cause.to_string()) {
            set.push_str(", root_cause = :cause");
            update = update.expression_attribute_values(":cause", s(root_cause));
        }
        if let Some(report) = &analysis.test_report {
            set.push_str(", only_known_noise = :noise");
            update = update.expression_attribute_values(
                ":noise",
                AttributeValue::Bool(report.only_known_noise),
            );
        }
        let mut add = "#count :one".to_string();
        if let Some(branch) = &analysis.branch {
            add.push_str(", branches :branch");
            update = update
                .expression_attribute_values(":branch", AttributeValue::Ss(vec![branch.clone()]));
        }
        if let Some(retention) = self.retention() {
            set.push_str(", expires_at = :expires");
            update = update.expression_attribute_values(
                ":expires",
                AttributeValue::N((Utc::now() + retention).timestamp().to_string()),
            );
        }
        update
            .update_expression(format!("SET {set} ADD {add}"))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn latest_for_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<JobAnalysis>, StoreError> {
        self.get_document(
            keys::fingerprint_partition(fingerprint),
            FINGERPRINT_SORT_KEY,
        )
        .await
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn document(item: &Item) -> Result<JobAnalysis, StoreError> {
    let doc =
        text(item, "doc").ok_or_else(|| StoreError::Corrupt("analysis item lacks `doc`".into()))?;
    serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("analysis item: {e}")))
}

impl DynamoStore {
    /// The query of one by-time index partition, newest first.
    fn newest_first(
        &self,
        index: &IndexSpec,
        partition: String,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client()
            .query()
            .table_name(self.table())
            .index_name(index.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", index.key.partition)
            .expression_attribute_values(":pk", s(partition))
            .scan_index_forward(false)
    }

    /// A repo's analyses, newest first.
    pub async fn analyses_of_repo(
        &self,
        repo: &RepoPath,
        limit: i32,
    ) -> Result<Vec<JobAnalysis>, StoreError> {
        let output = self
            .newest_first(&BY_REPO_TIME, keys::analyses_by_repo(repo))
            .limit(limit)
            .send()
            .await
            .map_err(store_error)?;
        output
            .items
            .unwrap_or_default()
            .iter()
            .map(document)
            .collect()
    }

    /// One page of every analysis, newest first, and how many there are.
    pub async fn analysis_history(
        &self,
        page: usize,
        page_size: usize,
    ) -> Result<(Vec<JobAnalysis>, u64), StoreError> {
        let query = || self.newest_first(&BY_BRANCH_TIME, keys::ANALYSES_HISTORY.to_string());
        let skip = page.saturating_sub(1) * page_size;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = query()
                .set_exclusive_start_key(start)
                .limit((skip + page_size).clamp(1, 1000) as i32)
                .send()
                .await
                .map_err(store_error)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() || items.len() >= skip + page_size {
                break;
            }
        }
        let page_items: Result<Vec<_>, _> = items
            .iter()
            .skip(skip)
            .take(page_size)
            .map(document)
            .collect();
        let total = self.analysis_total().await?;
        Ok((page_items?, total))
    }

    /// Forgets a job's analysis (and its fingerprint's pointer when it is this one).
    pub async fn delete_analysis(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
    ) -> Result<bool, StoreError> {
        let partition = keys::analysis_partition(provider, repo, job_id);
        // The item and its day's count go together, over the item just read.
        let mut deleted = None;
        for _ in 0..WRITE_ATTEMPTS {
            let Some((stored_doc, existing)) = self
                .get_document_text(partition.clone(), ANALYSIS_SORT_KEY)
                .await?
            else {
                return Ok(false);
            };
            let delete = Delete::builder()
                .table_name(self.table())
                .key(PARTITION_KEY, s(partition.clone()))
                .key(SORT_KEY, s(ANALYSIS_SORT_KEY))
                .condition_expression("#doc = :stored")
                .expression_attribute_names("#doc", "doc")
                .expression_attribute_values(":stored", s(stored_doc))
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            let items = vec![
                TransactWriteItem::builder().delete(delete).build(),
                self.analysis_count_update(existing.analysed_at.date_naive(), -1)?,
            ];
            match self.transact(items).await {
                Ok(()) => {
                    deleted = Some(existing);
                    break;
                }
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error),
            }
        }
        let existing = deleted.ok_or(StoreError::Conflict)?;
        if let Some(fingerprint) = &existing.fingerprint
            && let Some(latest) = self.latest_for_fingerprint(fingerprint).await?
            && latest.job_id == job_id
            && &latest.repo == repo
            && latest.provider == provider
        {
            self.client()
                .delete_item()
                .table_name(self.table())
                .key(PARTITION_KEY, s(keys::fingerprint_partition(fingerprint)))
                .key(SORT_KEY, s(FINGERPRINT_SORT_KEY))
                .send()
                .await
                .map_err(store_error)?;
        }
        if existing.status == AnalysisStatus::Done
            && let Some(fingerprint) = &existing.fingerprint
        {
            self.uncount_failure(repo, fingerprint).await?;
        }
        Ok(true)
    }

    /// Takes a forgotten job off its failure's count; a failure no job is counted for any
    /// more is removed from the listing.
    async fn uncount_failure(&self, repo: &RepoPath, fingerprint: &str) -> Result<(), StoreError> {
        let key = |update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder| {
            update
                .table_name(self.table())
                .key(PARTITION_KEY, s(keys::failures_of_repo(repo)))
                .key(SORT_KEY, s(keys::failure_sort_key(fingerprint)))
        };
        let decremented = key(self.client().update_item())
            .update_expression("ADD #count :minus_one")
            .condition_expression("attribute_exists(#pk) AND #count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        let left = match decremented {
            Ok(output) => output
                .attributes
                .and_then(|a| a.get("count")?.as_n().ok()?.parse::<i64>().ok())
                .unwrap_or(0),
            // Never counted (or already at zero): nothing to take off.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(());
            }
            Err(error) => return Err(store_error(error)),
        };
        if left <= 0 {
            let removed = self
                .client()
                .delete_item()
                .table_name(self.table())
                .key(PARTITION_KEY, s(keys::failures_of_repo(repo)))
                .key(SORT_KEY, s(keys::failure_sort_key(fingerprint)))
                .condition_expression("#count <= :zero")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .send()
                .await;
            match removed {
                Ok(_) => {}
                // Counted again meanwhile: it stays.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => return Err(store_error(error)),
            }
        }
        Ok(())
    }

    /// A repo's failures seen since `since`, most frequent first.
    pub async fn recurring_failures(
        &self,
        repo: &RepoPath,
        since: chrono::DateTime<Utc>,
    ) -> Result<Vec<RecurringFailure>, StoreError> {
        let mut failures = Vec::new();
        let items = crate::pages::every_item(
            self.client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":pk", s(keys::failures_of_repo(repo))),
        )
        .await?;
        for item in items {
            let time = |name: &str| {
                text(&item, name)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            let (Some(first_seen), Some(last_seen)) = (time("first_seen"), time("last_seen"))
            else {
                return Err(StoreError::Corrupt("failure item lacks its times".into()));
            };
            if last_seen < since {
                continue;
            }
            let mut branches: Vec<String> = item
                .get("branches")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            branches.sort();
            failures.push(RecurringFailure {
                fingerprint: text(&item, "fingerprint").unwrap_or_default(),
                count: item
                    .get("count")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                first_seen,
                last_seen,
                branches,
                category: text(&item, "category").unwrap_or_default(),
                failed_tests: text(&item, "failed_tests")
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
                latest_job_id: text(&item, "latest_job").unwrap_or_default(),
                root_cause: text(&item, "root_cause"),
                only_known_noise: item
                    .get("only_known_noise")
                    .and_then(|v| v.as_bool().ok())
                    .copied(),
            });
        }
        failures.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_seen.cmp(&a.last_seen)));
        Ok(failures)
    }
}
