//! The administrator's system prompt on DynamoDB: one item, versioned by a conditional put.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::ports::StoreError;
use buildlore_core::system_prompt::{StoredPrompt, SystemPrompts};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};
use chrono::Utc;

const PROMPT_PARTITION: &str = "SYSTEM_PROMPT";
const PROMPT_SORT_KEY: &str = "CURRENT";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn text(item: &crate::build_item::Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

impl SystemPrompts for DynamoStore {
    async fn system_prompt(&self) -> Result<Option<StoredPrompt>, StoreError> {
        let item = self
            .consistent_item(PROMPT_PARTITION, PROMPT_SORT_KEY)
            .await?;
        Ok(item.map(|item| StoredPrompt {
            prompt: text(&item, "prompt").unwrap_or_default(),
            version: item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            updated_at: text(&item, "updated_at").unwrap_or_default(),
        }))
    }

    async fn put_system_prompt(&self, prompt: &str, previous: u64) -> Result<u64, StoreError> {
        let version = previous + 1;
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, s(PROMPT_PARTITION))
            .item(SORT_KEY, s(PROMPT_SORT_KEY))
            .item("entity", s("system_prompt"))
            .item("prompt", s(prompt))
            .item("version", AttributeValue::N(version.to_string()))
            .item("updated_at", s(Utc::now().to_rfc3339()));
        put = if previous == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY)
        } else {
            put.condition_expression("#version = :previous")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":previous", AttributeValue::N(previous.to_string()))
        };
        match put.send().await {
            Ok(_) => Ok(version),
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
}
