//! Job analyses on DynamoDB: one item per job (the analysis as a JSON document, indexed by repo
//! and for history by time) and one item per failure fingerprint holding its latest finished
//! analysis, which later jobs with the same failure reuse.

use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::RepoPath;
use buildlore_core::job_analysis::{AnalysisSource, AnalysisStatus, AnalysisStore, JobAnalysis};
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::table::{BY_BRANCH_TIME, BY_REPO_TIME, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use buildlore_core::time::sortable;
use chrono::Utc;

const ANALYSIS_SORT_KEY: &str = "ANALYSIS";
const FINGERPRINT_SORT_KEY: &str = "LATEST";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

impl DynamoStore {
    async fn get_document(
        &self,
        partition: String,
        sort_key: &str,
    ) -> Result<Option<JobAnalysis>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, s(partition))
            .key(SORT_KEY, s(sort_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("analysis item lacks `doc`".into()))?;
        serde_json::from_str(doc)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("analysis item: {e}")))
    }
}

impl AnalysisStore for DynamoStore {
    async fn get_analysis(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
    ) -> Result<Option<JobAnalysis>, StoreError> {
        self.get_document(
            keys::analysis_partition(provider, repo, job_id),
            ANALYSIS_SORT_KEY,
        )
        .await
    }

    async fn put_analysis(&self, analysis: &JobAnalysis) -> Result<(), StoreError> {
        let doc = serde_json::to_string(analysis).map_err(|e| StoreError::Failed(e.to_string()))?;
        let time_key = format!(
            "{}#{}#{}",
            sortable(analysis.analysed_at),
            analysis.provider,
            analysis.job_id
        );
        let expires = self
            .retention()
            .map(|keep| (Utc::now() + keep).timestamp().to_string());
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item(
                PARTITION_KEY,
                s(keys::analysis_partition(
                    &analysis.provider,
                    &analysis.repo,
                    &analysis.job_id,
                )),
            )
            .item(SORT_KEY, s(ANALYSIS_SORT_KEY))
            .item("entity", s("analysis"))
            .item("doc", s(doc.clone()))
            .item(
                BY_REPO_TIME.key.partition,
                s(keys::analyses_by_repo(&analysis.repo)),
            )
            .item(BY_REPO_TIME.key.sort, s(time_key.clone()))
            .item(BY_BRANCH_TIME.key.partition, s(keys::ANALYSES_HISTORY))
            .item(BY_BRANCH_TIME.key.sort, s(time_key));
        if let Some(expires) = &expires {
            put = put.item(TTL_ATTRIBUTE, AttributeValue::N(expires.clone()));
        }
        put.send().await.map_err(store_error)?;
        // The fingerprint points at the newest original analysis (not at copies of it).
        if let (AnalysisStatus::Done, Some(fingerprint), false) = (
            analysis.status,
            &analysis.fingerprint,
            analysis.source == AnalysisSource::Reused,
        ) {
            let mut put = self
                .client()
                .put_item()
                .table_name(self.table())
                .item(PARTITION_KEY, s(keys::fingerprint_partition(fingerprint)))
                .item(SORT_KEY, s(FINGERPRINT_SORT_KEY))
                .item("entity", s("fingerprint"))
                .item("doc", s(doc));
            if let Some(expires) = expires {
                put = put.item(TTL_ATTRIBUTE, AttributeValue::N(expires));
            }
            put.send().await.map_err(store_error)?;
        }
        Ok(())
    }

    async fn latest_for_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<JobAnalysis>, StoreError> {
        self.get_document(
            keys::fingerprint_partition(fingerprint),
            FINGERPRINT_SORT_KEY,
        )
        .await
    }
}
