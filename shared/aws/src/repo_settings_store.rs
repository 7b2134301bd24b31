//! A repository's opt-ins: one item in the repository's partition.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::RepoPath;
use buildlore_core::keys::{REPO_SETTINGS_SORT_KEY, repo_partition};
use buildlore_core::ports::StoreError;
use buildlore_core::repo_settings::{RepoSettings, RepoSettingsStore};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};

impl RepoSettingsStore for DynamoStore {
    async fn repo_settings(&self, repo: &RepoPath) -> Result<Option<RepoSettings>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(repo_partition(repo)))
            .key(SORT_KEY, AttributeValue::S(REPO_SETTINGS_SORT_KEY.into()))
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = item
            .get("settings")
            .and_then(|value| value.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("repo settings without `settings`".into()))?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("repo settings: {error}")))
    }

    async fn put_repo_settings(
        &self,
        repo: &RepoPath,
        settings: &RepoSettings,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(settings)
            .map_err(|error| StoreError::Failed(format!("repo settings: {error}")))?;
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(repo_partition(repo)))
            .item(SORT_KEY, AttributeValue::S(REPO_SETTINGS_SORT_KEY.into()))
            .item("entity", AttributeValue::S("repo_settings".into()))
            .item("settings", AttributeValue::S(text))
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
