//! A repository's opt-ins: one item in the repository's partition.

use crate::json_items::JsonItem;
use crate::record_store::DynamoStore;
use buildlore_core::RepoPath;
use buildlore_core::keys::{REPO_SETTINGS_SORT_KEY, repo_partition};
use buildlore_core::ports::StoreError;
use buildlore_core::repo_settings::{RepoSettings, RepoSettingsStore};

fn settings_at(repo: &RepoPath) -> JsonItem<'static> {
    JsonItem {
        partition: repo_partition(repo),
        sort: REPO_SETTINGS_SORT_KEY.into(),
        entity: "repo_settings",
        attribute: "settings",
    }
}

impl RepoSettingsStore for DynamoStore {
    async fn repo_settings(&self, repo: &RepoPath) -> Result<Option<RepoSettings>, StoreError> {
        self.json_item(&settings_at(repo)).await
    }

    async fn put_repo_settings(
        &self,
        repo: &RepoPath,
        settings: &RepoSettings,
    ) -> Result<(), StoreError> {
        self.put_json_item(&settings_at(repo), settings).await
    }
}
