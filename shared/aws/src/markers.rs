//! Small items that make deliveries and requests idempotent: processed webhook deliveries,
//! requested analyses, a provider's numeric project id resolved to its path, and the cheap read
//! of a job's status.

use crate::errors::{store_error, written};
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::RepoPath;
use buildlore_core::deliver_webhook::ProjectAliases;
use buildlore_core::keys;
use buildlore_core::ports::{JobStatuses, Markers, StoreError};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use chrono::{Duration, Utc};

const MARKER_SORT_KEY: &str = "MARKER";

impl Markers for DynamoStore {
    async fn set_marker(&self, partition: &str, keep: Duration) -> Result<bool, StoreError> {
        let expires = (Utc::now() + keep).timestamp();
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(partition.to_string()))
            .item(SORT_KEY, AttributeValue::S(MARKER_SORT_KEY.into()))
            .item("entity", AttributeValue::S("marker".into()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires.to_string()))
            // An expired marker counts as unset: DynamoDB's TTL deletes items days late.
            .condition_expression("attribute_not_exists(#pk) OR #ttl < :now")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(
                ":now",
                AttributeValue::N(Utc::now().timestamp().to_string()),
            )
            .send()
            .await;
        written(result)
    }

    async fn clear_marker(&self, partition: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(partition.to_string()))
            .key(SORT_KEY, AttributeValue::S(MARKER_SORT_KEY.into()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn has_marker(&self, partition: &str) -> Result<bool, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(partition.to_string()))
            .key(SORT_KEY, AttributeValue::S(MARKER_SORT_KEY.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let now = Utc::now().timestamp();
        Ok(output.item.is_some_and(|item| {
            item.get(TTL_ATTRIBUTE)
                .and_then(|value| value.as_n().ok())
                .and_then(|expires| expires.parse::<i64>().ok())
                .is_none_or(|expires| expires >= now)
        }))
    }
}

impl ProjectAliases for DynamoStore {
    /// Remembers which repo a provider's numeric project id names.
    async fn remember_project_alias(
        &self,
        provider: &str,
        project_id: &str,
        repo: &RepoPath,
    ) -> Result<(), StoreError> {
        let partition = keys::project_alias(provider, project_id);
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(partition))
            .item(SORT_KEY, AttributeValue::S("PROJECT".into()))
            .item("entity", AttributeValue::S("project_alias".into()))
            .item("repo", AttributeValue::S(repo.to_string()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

impl JobStatuses for DynamoStore {
    async fn job_status(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
    ) -> Result<Option<buildlore_core::BuildStatus>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(
                PARTITION_KEY,
                AttributeValue::S(buildlore_core::keys::repo_partition(repo)),
            )
            .key(
                SORT_KEY,
                AttributeValue::S(buildlore_core::keys::job_sort_key(provider, job_id)),
            )
            .projection_expression("#status")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .map_err(store_error)?;
        Ok(output
            .item
            .and_then(|item| item.get("status")?.as_s().ok().cloned())
            .and_then(|status| buildlore_core::BuildStatus::parse(&status).ok()))
    }
}
