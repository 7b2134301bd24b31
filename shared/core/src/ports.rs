//! What the core needs from storage. Adapters implement these against DynamoDB.

use crate::build::Build;
use crate::counters::CounterDelta;
use crate::list_builds::{BuildPage, BuildQuery};
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use chrono::NaiveDate;
use std::future::Future;

/// A stored build with the day its counters were recorded on.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBuild {
    pub build: Build,
    pub counted_on: NaiveDate,
}

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

pub trait BuildStore: Send + Sync {
    /// Stores a build that must not exist yet, with its counters, atomically.
    /// `Conflict` if it already exists.
    fn insert_build(
        &self,
        build: &Build,
        counters: &CounterDelta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a stored build whose status is still `expected`, with its counters,
    /// atomically. `Conflict` if the status changed meanwhile.
    fn advance_build(
        &self,
        build: &Build,
        expected: BuildStatus,
        counted_on: NaiveDate,
        counters: &CounterDelta,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_build(
        &self,
        repo: &RepoPath,
        build_id: &str,
    ) -> impl Future<Output = Result<Option<StoredBuild>, StoreError>> + Send;

    fn list_builds(
        &self,
        query: &BuildQuery,
    ) -> impl Future<Output = Result<BuildPage, StoreError>> + Send;
}
