//! Leased slots of live event streams: one item per key and slot, taken with a conditional
//! put that succeeds only when the slot is free or its lease has run out.

use crate::errors::{store_error, written};
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::ports::StoreError;
use buildlore_core::stream_slots::SlotLeases;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use chrono::{DateTime, Utc};

fn partition(holder: &str) -> String {
    format!("STREAMS#{holder}")
}

fn sort_key(slot: u32) -> String {
    format!("SLOT#{slot:03}")
}

impl SlotLeases for DynamoStore {
    async fn take_slot(
        &self,
        holder: &str,
        slot: u32,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(partition(holder)))
            .item(SORT_KEY, AttributeValue::S(sort_key(slot)))
            .item("entity", AttributeValue::S("stream_slot".into()))
            .item("until", AttributeValue::N(until.timestamp().to_string()))
            .item(
                TTL_ATTRIBUTE,
                AttributeValue::N(until.timestamp().to_string()),
            )
            .condition_expression("attribute_not_exists(#pk) OR #until < :now")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        written(result)
    }

    async fn release_slot(&self, holder: &str, slot: u32) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(partition(holder)))
            .key(SORT_KEY, AttributeValue::S(sort_key(slot)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
