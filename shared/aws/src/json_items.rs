//! Small items that hold one JSON document under one attribute: settings, kept comments,
//! notification targets. One way to read and write them.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::ports::StoreError;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where a document is kept: its item's keys, its entity name and the attribute holding it.
pub(crate) struct JsonItem<'a> {
    pub partition: String,
    pub sort: String,
    pub entity: &'a str,
    pub attribute: &'a str,
}

impl DynamoStore {
    /// The document, or `None` when there is no item.
    pub(crate) async fn json_item<T: DeserializeOwned>(
        &self,
        at: &JsonItem<'_>,
    ) -> Result<Option<T>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(at.partition.clone()))
            .key(SORT_KEY, AttributeValue::S(at.sort.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = item
            .get(at.attribute)
            .and_then(|value| value.as_s().ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{} without `{}`", at.entity, at.attribute))
            })?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("{}: {error}", at.entity)))
    }

    /// Replaces the document.
    pub(crate) async fn put_json_item<T: Serialize>(
        &self,
        at: &JsonItem<'_>,
        value: &T,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(value)
            .map_err(|error| StoreError::Failed(format!("{}: {error}", at.entity)))?;
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(at.partition.clone()))
            .item(SORT_KEY, AttributeValue::S(at.sort.clone()))
            .item("entity", AttributeValue::S(at.entity.into()))
            .item(at.attribute, AttributeValue::S(text))
            .item(
                "updated_at",
                AttributeValue::S(buildlore_core::time::sortable(chrono::Utc::now())),
            )
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
