//! The last green run of each job name and branch on DynamoDB: one small item in the repo's
//! partition, replaced by a later green run under a condition on its time, so a retried or
//! late report never brings back an older one.

use crate::build_item::{Item, text};
use crate::errors::store_error;
use crate::record_store::{DynamoStore, ItemCodec};
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::keys;
use buildlore_core::last_green::{GreenRun, GreenRunStore, JobOnBranch, RecordedJob};
use buildlore_core::ports::StoreError;
use buildlore_core::repo::RepoPath;
use buildlore_core::runs::Job;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use buildlore_core::time::sortable;
use buildlore_core::trace::TraceKey;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

const SUCCEEDED_AT: &str = "succeeded_at";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn green_run_key(job: &JobOnBranch<'_>) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_string(), s(keys::repo_partition(job.repo))),
        (
            SORT_KEY.to_string(),
            s(keys::green_run_sort_key(
                job.provider,
                job.job_name,
                job.branch,
            )),
        ),
    ])
}

fn green_run_from_item(item: &Item, repo: &RepoPath) -> Result<GreenRun, StoreError> {
    let succeeded_at = DateTime::parse_from_rfc3339(text(item, SUCCEEDED_AT)?)
        .map_err(|e| StoreError::Corrupt(format!("green run item `{SUCCEEDED_AT}`: {e}")))?
        .with_timezone(&Utc);
    Ok(GreenRun {
        provider: text(item, "provider")?.to_string(),
        repo: repo.clone(),
        job_name: text(item, "job_name")?.to_string(),
        branch: text(item, "branch")?.to_string(),
        job_id: text(item, "job_id")?.to_string(),
        succeeded_at,
    })
}

impl GreenRunStore for DynamoStore {
    async fn keep_green_run(&self, run: &GreenRun) -> Result<bool, StoreError> {
        let mut item = green_run_key(&run.job());
        item.insert("entity".into(), s("green_run"));
        item.insert("provider".into(), s(&run.provider));
        item.insert("job_name".into(), s(&run.job_name));
        item.insert("branch".into(), s(&run.branch));
        item.insert("job_id".into(), s(&run.job_id));
        // Sortable text: the condition below compares times as strings.
        item.insert(SUCCEEDED_AT.into(), s(sortable(run.succeeded_at)));
        if let Some(retention) = self.retention() {
            let expires = (run.succeeded_at + retention).timestamp().max(0);
            item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N(expires.to_string()));
        }
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #at < :at")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#at", SUCCEEDED_AT)
            .expression_attribute_values(":at", s(sortable(run.succeeded_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(store_error(error)),
        }
    }

    async fn green_run(&self, job: &JobOnBranch<'_>) -> Result<Option<GreenRun>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(green_run_key(job)))
            .send()
            .await
            .map_err(store_error)?;
        output
            .item
            .map(|item| green_run_from_item(&item, job.repo))
            .transpose()
    }

    async fn recorded_job(&self, trace: &TraceKey) -> Result<Option<RecordedJob>, StoreError> {
        let key = HashMap::from([
            (
                PARTITION_KEY.to_string(),
                s(keys::repo_partition(&trace.repo)),
            ),
            (
                SORT_KEY.to_string(),
                s(keys::job_sort_key(&trace.provider, &trace.job_id)),
            ),
        ]);
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let job = Job::from_item(&item)?;
        Ok(Some(RecordedJob {
            name: job.name,
            branch: job.git_ref,
            status: job.status,
            finished_at: job.finished_at,
            updated_at: job.updated_at,
        }))
    }
}
