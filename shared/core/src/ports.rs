//! What the core needs from storage. Adapters implement these against DynamoDB.

use crate::list_builds::{BuildPage, BuildQuery};
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's precondition no longer holds: someone else wrote first.
    #[error("the record changed while it was being written")]
    Conflict,
    /// Throttling, timeouts, service errors: the same call may succeed later.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a misconfiguration (missing table, no permission).
    #[error("storage failed: {0}")]
    Failed(String),
    /// A stored item could not be read back into the model.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

pub trait BuildListing: Send + Sync {
    fn list_builds(
        &self,
        query: &BuildQuery,
    ) -> impl Future<Output = Result<BuildPage, StoreError>> + Send;
}

/// Small idempotency markers that expire.
pub trait Markers: Send + Sync {
    /// Sets a marker kept for `keep`; `Ok(false)` if it was already set.
    fn set_marker(
        &self,
        partition: &str,
        keep: chrono::Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn clear_marker(&self, partition: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether the marker is set (and not expired).
    fn has_marker(&self, partition: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The status of recorded jobs, read cheaply (without the whole record).
pub trait JobStatuses: Send + Sync {
    /// The job's recorded status; `None` when it is not recorded.
    fn job_status(
        &self,
        provider: &str,
        repo: &crate::RepoPath,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<crate::BuildStatus>, StoreError>> + Send;
}
