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

pub fn pipeline_sort_key(provider: &str, pipeline_id: &str) -> String {
    format!("PIPELINE#{provider}#{pipeline_id}")
}

pub fn job_sort_key(provider: &str, job_id: &str) -> String {
    format!("JOB#{provider}#{job_id}")
}

/// Sort key of the last green run of a job name on a branch (in the repo's partition). The
/// name's length comes first, so a `#` in a job name or branch cannot make two keys one.
pub fn green_run_sort_key(provider: &str, job_name: &str, branch: &str) -> String {
    format!("GREEN#{provider}#{}:{job_name}#{branch}", job_name.len())
}

/// Index partition of a repo's pipelines by time (summaries' recent pipelines).
pub fn pipelines_by_repo(repo: &RepoPath) -> String {
    format!("PIPELINES#{repo}")
}

/// Index partition of a repo's jobs by time (flaky-job analysis).
pub fn jobs_by_repo(repo: &RepoPath) -> String {
    format!("JOBS#{repo}")
}

/// Index partition of one pipeline's jobs.
pub fn jobs_of_pipeline(provider: &str, repo: &RepoPath, pipeline_id: &str) -> String {
    format!("JOBS#{provider}#{repo}#{pipeline_id}")
}

/// A provider's numeric project id, resolved to the repo path.
pub fn project_alias(provider: &str, project_id: &str) -> String {
    format!("PROJECT#{provider}#{project_id}")
}

/// A webhook delivery already processed.
pub fn delivery(provider: &str, delivery_id: &str) -> String {
    format!("DELIVERY#{provider}#{delivery_id}")
}

/// The stored log of one job.
pub fn trace_partition(provider: &str, repo: &RepoPath, job_id: &str) -> String {
    format!("TRACE#{provider}#{repo}#{job_id}")
}

/// The marker that one analysis was requested for a job.
pub fn analysis_request(provider: &str, repo: &RepoPath, job_id: &str) -> String {
    format!("ANALYSIS_REQUEST#{provider}#{repo}#{job_id}")
}

/// The analysis of one job.
pub fn analysis_partition(provider: &str, repo: &RepoPath, job_id: &str) -> String {
    format!("ANALYSIS#{provider}#{repo}#{job_id}")
}

/// Index partition of a repo's analyses by time.
pub fn analyses_by_repo(repo: &RepoPath) -> String {
    format!("ANALYSES#{repo}")
}

/// Index partition of every analysis by time (history).
pub const ANALYSES_HISTORY: &str = "ANALYSES";

/// The partition of the per-day counts of analyses (`DAY#<yyyy-mm-dd>`), which make the
/// history's total one small query.
pub const ANALYSIS_COUNTS: &str = "ANALYSIS_COUNTS";

/// The latest analysis of one failure fingerprint.
pub fn fingerprint_partition(fingerprint: &str) -> String {
    format!("FINGERPRINT#{fingerprint}")
}

/// A repo's recurring failures, one item per fingerprint.
pub fn failures_of_repo(repo: &RepoPath) -> String {
    format!("FAILURES#{repo}")
}

pub fn failure_sort_key(fingerprint: &str) -> String {
    format!("FP#{fingerprint}")
}

/// The uploaded test reports of one job, one item per upload (sort key `UPLOAD#<digest>`).
pub fn junit_job_partition(provider: &str, repo: &RepoPath, job_id: &str) -> String {
    format!("JUNIT#{provider}#{repo}#{job_id}")
}

pub fn junit_upload_sort_key(digest: &str) -> String {
    format!("UPLOAD#{digest}")
}

/// A repo's tracked tests: one state item per test, plus the set of tracked ids.
pub fn tests_partition(repo: &RepoPath) -> String {
    format!("TESTS#{repo}")
}

pub fn test_state_sort_key(test_id: &str) -> String {
    format!("TEST#{test_id}")
}

/// The item holding the set of a repo's tracked test ids (sorts before every `TEST#`).
pub const TRACKED_TESTS_SORT_KEY: &str = "#TRACKED";

/// The marker that a pipeline's test report was fetched from the provider (once).
pub fn junit_fetch_marker(provider: &str, repo: &RepoPath, pipeline_id: &str) -> String {
    format!("JUNITFETCH#{provider}#{repo}#{pipeline_id}")
}

/// Every action taken on a provider (retry, cancel), newest last by sort key.
pub const ACTIONS_PARTITION: &str = "ACTIONS";

/// A repository's opt-ins (merge request comments, automatic retry), in its partition.
pub const REPO_SETTINGS_SORT_KEY: &str = "SETTINGS";

/// A repository's newest pipelines and builds as the summary lists them, in its partition.
pub const RECENT_RUNS_SORT_KEY: &str = "RECENT_RUNS";

/// The automatic retry of one job, taken at most once.
pub fn auto_retry_marker(provider: &str, repo: &RepoPath, job_id: &str) -> String {
    format!("AUTORETRY#{provider}#{repo}#{job_id}")
}
