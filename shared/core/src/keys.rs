//! Storage keys. Every item lives in one table; keys are designed around the access patterns:
//! one build by repo and id, builds of a repo (or of one branch) newest first, and one item of
//! counters per project per day, grouped by day so a window reads `days` partitions.

use crate::repo::RepoPath;
use chrono::{DateTime, NaiveDate, Utc};

pub fn repo_partition(repo: &RepoPath) -> String {
    format!("REPO#{repo}")
}

pub fn build_sort_key(build_id: &str) -> String {
    format!("BUILD#{build_id}")
}

/// Partition of the builds-by-time index for one repo.
pub fn builds_by_repo(repo: &RepoPath) -> String {
    format!("BUILDS#{repo}")
}

/// Partition of the builds-by-time index for one branch of a repo. Repo paths cannot contain
/// `#`, so the key is unambiguous.
pub fn builds_by_branch(repo: &RepoPath, branch: &str) -> String {
    format!("BUILDS#{repo}#BRANCH#{branch}")
}

/// Sort key of both builds-by-time indexes: newest first when read backwards.
pub fn builds_time_key(timestamp: DateTime<Utc>, build_id: &str) -> String {
    format!("{}#{build_id}", crate::time::sortable(timestamp))
}

pub fn counters_partition(day: NaiveDate) -> String {
    format!("DAY#{}", day.format("%Y-%m-%d"))
}

pub fn counters_sort_key(repo: &RepoPath) -> String {
    format!("REPO#{repo}")
}
