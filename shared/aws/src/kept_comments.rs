//! The comment buildlore keeps on each merge or pull request: one item in the repository's
//! partition, so later pipelines update it rather than post another.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::RepoPath;
use buildlore_core::keys::repo_partition;
use buildlore_core::merge_request_comment::{KeptComment, KeptComments};
use buildlore_core::ports::StoreError;
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};

fn sort_key(provider: &str, merge_request: u64) -> String {
    format!("MRCOMMENT#{provider}#{merge_request}")
}

impl KeptComments for DynamoStore {
    async fn kept_comment(
        &self,
        provider: &str,
        repo: &RepoPath,
        merge_request: u64,
    ) -> Result<Option<KeptComment>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(repo_partition(repo)))
            .key(
                SORT_KEY,
                AttributeValue::S(sort_key(provider, merge_request)),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = item
            .get("comment")
            .and_then(|value| value.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("a kept comment without `comment`".into()))?;
        serde_json::from_str(text)
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("a kept comment: {error}")))
    }

    async fn keep_comment(
        &self,
        provider: &str,
        repo: &RepoPath,
        merge_request: u64,
        comment: &KeptComment,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(comment)
            .map_err(|error| StoreError::Failed(format!("a kept comment: {error}")))?;
        self.client()
            .put_item()
            .table_name(self.table())
            .item(PARTITION_KEY, AttributeValue::S(repo_partition(repo)))
            .item(
                SORT_KEY,
                AttributeValue::S(sort_key(provider, merge_request)),
            )
            .item("entity", AttributeValue::S("merge_request_comment".into()))
            .item("comment", AttributeValue::S(text))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
