//! The dashboard's defaults: one item.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::ports::StoreError;
use buildlore_core::settings::{Settings, SettingsStore};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};

const SETTINGS_PARTITION: &str = "SETTINGS";
const SETTINGS_SORT_KEY: &str = "DASHBOARD";

impl SettingsStore for DynamoStore {
    async fn settings(&self) -> Result<Option<Settings>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(SETTINGS_PARTITION.into()))
            .key(SORT_KEY, AttributeValue::S(SETTINGS_SORT_KEY.into()))
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(Settings {
            group: text("group").filter(|g| !g.is_empty()),
            since: text("since").unwrap_or_else(|| Settings::default().since),
        }))
    }

    async fn put_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(SETTINGS_PARTITION.into()))
            .item(SORT_KEY, AttributeValue::S(SETTINGS_SORT_KEY.into()))
            .item("entity", AttributeValue::S("settings".into()))
            .item(
                "group",
                AttributeValue::S(settings.group.clone().unwrap_or_default()),
            )
            .item("since", AttributeValue::S(settings.since.clone()))
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
