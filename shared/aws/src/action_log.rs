//! The audit list of actions taken on GitLab and GitHub: one partition, sorted by time, each
//! record kept for `ACTION_RECORD_DAYS`.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::keys::ACTIONS_PARTITION;
use buildlore_core::ports::StoreError;
use buildlore_core::recorded_actions::{ACTION_RECORD_DAYS, ActionLog, ActionRecord};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};

impl ActionLog for DynamoStore {
    async fn record_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        let text = serde_json::to_string(record)
            .map_err(|error| StoreError::Failed(format!("an action record: {error}")))?;
        let expires = (record.at + chrono::Duration::days(ACTION_RECORD_DAYS)).timestamp();
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(ACTIONS_PARTITION.into()))
            .item(SORT_KEY, AttributeValue::S(record.id.clone()))
            .item("entity", AttributeValue::S("action".into()))
            .item("record", AttributeValue::S(text))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires.to_string()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn recent_actions(
        &self,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", AttributeValue::S(ACTIONS_PARTITION.into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        query = match before {
            Some(before) => query
                .key_condition_expression("#pk = :pk AND #sk < :before")
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":before", AttributeValue::S(before.to_string())),
            None => query.key_condition_expression("#pk = :pk"),
        };
        let output = query.send().await.map_err(store_error)?;
        output
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let text = item
                    .get("record")
                    .and_then(|value| value.as_s().ok())
                    .ok_or_else(|| StoreError::Corrupt("an action has no `record`".into()))?;
                serde_json::from_str(text)
                    .map_err(|error| StoreError::Corrupt(format!("an action record: {error}")))
            })
            .collect()
    }
}
