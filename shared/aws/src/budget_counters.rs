//! Hourly budget counters: one item per budget and window, `ADD` under a condition, so
//! concurrent requests never spend past the limit.

use crate::errors::written;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::budget::BudgetCounters;
use buildlore_core::ports::StoreError;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use chrono::{DateTime, SecondsFormat, Utc};

impl BudgetCounters for DynamoStore {
    async fn spend_one(
        &self,
        budget: &str,
        window_start: DateTime<Utc>,
        limit: u64,
        expires: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(format!("BUDGET#{budget}")))
            .key(
                SORT_KEY,
                AttributeValue::S(window_start.to_rfc3339_opts(SecondsFormat::Secs, true)),
            )
            .update_expression("ADD #used :one SET #entity = :entity, #ttl = :ttl")
            .condition_expression("attribute_not_exists(#used) OR #used < :limit")
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#entity", "entity")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":entity", AttributeValue::S("budget".into()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires.timestamp().to_string()))
            .send()
            .await;
        written(result)
    }
}
