//! A backfill's progress: one item, its counters added to atomically by the steps that run
//! at once, kept for `BACKFILL_KEEP_DAYS`.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::backfill::{BackfillLog, BackfillProgress, ProgressDelta};
use buildlore_core::ports::StoreError;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const PROGRESS_SORT_KEY: &str = "PROGRESS";
const BACKFILL_KEEP_DAYS: i64 = 30;
const COUNTERS: [&str; 6] = [
    "projects",
    "pages",
    "pipelines",
    "jobs",
    "pending",
    "errors",
];

fn partition(backfill_id: &str) -> String {
    format!("BACKFILL#{backfill_id}")
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl BackfillLog for DynamoStore {
    async fn start_backfill(&self, progress: &BackfillProgress) -> Result<(), StoreError> {
        let request = serde_json::to_string(&progress.request)
            .map_err(|error| StoreError::Failed(format!("a backfill request: {error}")))?;
        let expires =
            (progress.started_at + chrono::Duration::days(BACKFILL_KEEP_DAYS)).timestamp();
        let counted = [
            progress.projects as i64,
            progress.pages as i64,
            progress.pipelines as i64,
            progress.jobs as i64,
            progress.pending,
            progress.errors as i64,
        ];
        let mut item: HashMap<String, AttributeValue> = COUNTERS
            .iter()
            .zip(counted)
            .map(|(name, value)| (name.to_string(), number(value)))
            .collect();
        item.extend([
            (
                PARTITION_KEY.to_string(),
                AttributeValue::S(partition(&progress.id)),
            ),
            (
                SORT_KEY.to_string(),
                AttributeValue::S(PROGRESS_SORT_KEY.into()),
            ),
            ("entity".to_string(), AttributeValue::S("backfill".into())),
            ("request".to_string(), AttributeValue::S(request)),
            (
                "started_at".to_string(),
                AttributeValue::S(progress.started_at.to_rfc3339()),
            ),
            (
                "updated_at".to_string(),
                AttributeValue::S(progress.updated_at.to_rfc3339()),
            ),
            (TTL_ATTRIBUTE.to_string(), number(expires)),
        ]);
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn add_progress(
        &self,
        backfill_id: &str,
        delta: &ProgressDelta,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let added = [
            delta.projects as i64,
            delta.pages as i64,
            delta.pipelines as i64,
            delta.jobs as i64,
            delta.pending,
            i64::from(delta.error.is_some()),
        ];
        let mut update = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(partition(backfill_id)))
            .key(SORT_KEY, AttributeValue::S(PROGRESS_SORT_KEY.into()))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#updated", "updated_at")
            .expression_attribute_values(":now", AttributeValue::S(now.to_rfc3339()));
        let mut adds = Vec::new();
        for (index, (name, value)) in COUNTERS.iter().zip(added).enumerate() {
            update = update
                .expression_attribute_names(format!("#c{index}"), *name)
                .expression_attribute_values(format!(":c{index}"), number(value));
            adds.push(format!("#c{index} :c{index}"));
        }
        let mut sets = vec!["#updated = :now".to_string()];
        if let Some(error) = &delta.error {
            update = update
                .expression_attribute_names("#last_error", "last_error")
                .expression_attribute_values(":error", AttributeValue::S(error.clone()));
            sets.push("#last_error = :error".into());
        }
        update
            .update_expression(format!("SET {} ADD {}", sets.join(", "), adds.join(", ")))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn backfill(&self, backfill_id: &str) -> Result<Option<BackfillProgress>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(partition(backfill_id)))
            .key(SORT_KEY, AttributeValue::S(PROGRESS_SORT_KEY.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("a backfill's {what}"));
        let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok());
        let count = |name: &str| {
            item.get(name)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| corrupt(name))
        };
        let time = |name: &str| {
            text(name)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| corrupt(name))
        };
        let request = serde_json::from_str(text("request").ok_or_else(|| corrupt("request"))?)
            .map_err(|_| corrupt("request"))?;
        let unsigned = |name: &str| count(name).map(|n| n.max(0) as u64);
        Ok(Some(BackfillProgress {
            id: backfill_id.to_string(),
            request,
            started_at: time("started_at")?,
            projects: unsigned("projects")?,
            pages: unsigned("pages")?,
            pipelines: unsigned("pipelines")?,
            jobs: unsigned("jobs")?,
            pending: count("pending")?,
            errors: unsigned("errors")?,
            last_error: text("last_error").cloned(),
            updated_at: time("updated_at")?,
        }))
    }
}
