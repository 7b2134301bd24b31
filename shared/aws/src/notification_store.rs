//! What notifications need from the table: the targets (one item), each default branch's
//! colour (one item per branch, replaced only by a newer pipeline), and how often a failure
//! has been seen.

use crate::errors::store_error;
use crate::json_items::JsonItem;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use buildlore_core::RepoPath;
use buildlore_core::keys::{self, repo_partition};
use buildlore_core::notify::{
    BranchColours, FailureCounts, NotificationTargets, Repainted, StoredTarget,
};
use buildlore_core::ports::StoreError;
use buildlore_core::runs::Pipeline;
use buildlore_core::status::BuildStatus;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};
use buildlore_core::time::sortable;

const TARGETS_PARTITION: &str = "SETTINGS";
const TARGETS_SORT_KEY: &str = "NOTIFICATIONS";

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn targets_at() -> JsonItem<'static> {
    JsonItem {
        partition: TARGETS_PARTITION.into(),
        sort: TARGETS_SORT_KEY.into(),
        entity: "notification_targets",
        attribute: "targets",
    }
}

impl NotificationTargets for DynamoStore {
    async fn notification_targets(&self) -> Result<Vec<StoredTarget>, StoreError> {
        Ok(self.json_item(&targets_at()).await?.unwrap_or_default())
    }

    async fn put_notification_targets(&self, targets: &[StoredTarget]) -> Result<(), StoreError> {
        self.put_json_item(&targets_at(), &targets).await
    }
}

fn status_word(status: BuildStatus) -> &'static str {
    match status {
        BuildStatus::Success => "success",
        BuildStatus::Failure => "failure",
        _ => "other",
    }
}

impl BranchColours for DynamoStore {
    async fn repaint_branch(
        &self,
        repo: &RepoPath,
        provider: &str,
        branch: &str,
        pipeline: &Pipeline,
    ) -> Result<Option<Repainted>, StoreError> {
        let created = format!(
            "{}#{:0>20}",
            sortable(pipeline.created_at.unwrap_or(pipeline.first_seen)),
            pipeline.pipeline_id
        );
        let status = status_word(pipeline.status);
        // Newer than the kept pipeline, or the kept pipeline itself in another colour (a
        // retried pipeline that now passes).
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, s(repo_partition(repo)))
            .item(SORT_KEY, s(format!("BRANCH#{provider}#{branch}")))
            .item("entity", s("branch_colour"))
            .item("created", s(created.clone()))
            .item("pipeline_id", s(pipeline.pipeline_id.clone()))
            .item("status", s(status))
            .condition_expression(
                "attribute_not_exists(#pk) OR #created < :created \
                 OR (#created = :created AND #status <> :status)",
            )
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#created", "created")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":created", s(created))
            .expression_attribute_values(":status", s(status))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .attributes
                .as_ref()
                .and_then(|old| old.get("status"))
                .and_then(|value| value.as_s().ok())
                .and_then(|was| match was.as_str() {
                    "success" => Some(BuildStatus::Success),
                    "failure" => Some(BuildStatus::Failure),
                    _ => None,
                })
                .map(|was| Repainted { was })),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(store_error(error)),
        }
    }
}

impl FailureCounts for DynamoStore {
    async fn failure_count(&self, repo: &RepoPath, fingerprint: &str) -> Result<u64, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(keys::failures_of_repo(repo)))
            .key(SORT_KEY, s(keys::failure_sort_key(fingerprint)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output
            .item
            .as_ref()
            .and_then(|item| item.get("count"))
            .and_then(|value| value.as_n().ok())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0))
    }
}
