//! The comment buildlore keeps on each merge or pull request: one item in the repository's
//! partition, so later pipelines update it rather than post another.

use crate::json_items::JsonItem;
use crate::record_store::DynamoStore;
use buildlore_core::RepoPath;
use buildlore_core::keys::repo_partition;
use buildlore_core::merge_request_comment::{KeptComment, KeptComments};
use buildlore_core::ports::StoreError;

fn kept_at(provider: &str, repo: &RepoPath, merge_request: u64) -> JsonItem<'static> {
    JsonItem {
        partition: repo_partition(repo),
        sort: format!("MRCOMMENT#{provider}#{merge_request}"),
        entity: "merge_request_comment",
        attribute: "comment",
    }
}

impl KeptComments for DynamoStore {
    async fn kept_comment(
        &self,
        provider: &str,
        repo: &RepoPath,
        merge_request: u64,
    ) -> Result<Option<KeptComment>, StoreError> {
        self.json_item(&kept_at(provider, repo, merge_request))
            .await
    }

    async fn keep_comment(
        &self,
        provider: &str,
        repo: &RepoPath,
        merge_request: u64,
        comment: &KeptComment,
    ) -> Result<(), StoreError> {
        self.put_json_item(&kept_at(provider, repo, merge_request), comment)
            .await
    }
}
