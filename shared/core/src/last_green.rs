//! The last green run of each job: when a job succeeds and its log is stored (log push, trace
//! upload, a fetch from the provider), that log becomes the last green log of the job's name
//! on its branch, replacing the one before, so at most one is kept per job name and branch
//! (the log itself stays where the trace store keeps it). A later failure of the same job is
//! triaged next to it: the green run of the same branch, else of a default branch.

use crate::ports::StoreError;
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use crate::trace::{TraceKey, TraceStore};
use crate::triage::LastSuccessUse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// A job name on a branch of a repo, as CI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOnBranch<'a> {
    pub provider: &'a str,
    pub repo: &'a RepoPath,
    pub job_name: &'a str,
    pub branch: &'a str,
}

/// The last successful run of a job on a branch: its stored log is the green log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreenRun {
    pub provider: String,
    pub repo: RepoPath,
    pub job_name: String,
    pub branch: String,
    pub job_id: String,
    /// When it finished (else when it was last reported): a later green run replaces it.
    pub succeeded_at: DateTime<Utc>,
}

impl GreenRun {
    pub fn job(&self) -> JobOnBranch<'_> {
        JobOnBranch {
            provider: &self.provider,
            repo: &self.repo,
            job_name: &self.job_name,
            branch: &self.branch,
        }
    }

    pub fn trace_key(&self) -> TraceKey {
        TraceKey {
            provider: self.provider.clone(),
            repo: self.repo.clone(),
            job_id: self.job_id.clone(),
        }
    }
}

/// What the records say about a job, for a log stored by its id alone (a trace upload, a
/// fetch): its name, branch and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedJob {
    pub name: String,
    pub branch: Option<String>,
    pub status: BuildStatus,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

pub trait GreenRunStore: Send + Sync {
    /// Keeps `run` as the last green run of its job on its branch, replacing an earlier one;
    /// `Ok(false)` (nothing written) when the one kept is as recent or more.
    fn keep_green_run(
        &self,
        run: &GreenRun,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn green_run(
        &self,
        job: &JobOnBranch<'_>,
    ) -> impl Future<Output = Result<Option<GreenRun>, StoreError>> + Send;

    /// The recorded job with this id, when a webhook or a push told about it.
    fn recorded_job(
        &self,
        trace: &TraceKey,
    ) -> impl Future<Output = Result<Option<RecordedJob>, StoreError>> + Send;
}

/// After a job's log is stored: when the job succeeded (and its name and branch are known),
/// its log becomes the last green log of its job on its branch. `Ok(true)` when it did.
pub async fn keep_if_green<S: GreenRunStore>(
    store: &S,
    trace: &TraceKey,
    job: &RecordedJob,
) -> Result<bool, StoreError> {
    let Some(branch) = job.branch.as_deref().filter(|b| !b.is_empty()) else {
        return Ok(false);
    };
    if job.status != BuildStatus::Success || job.name.is_empty() {
        return Ok(false);
    }
    store
        .keep_green_run(&GreenRun {
            provider: trace.provider.clone(),
            repo: trace.repo.clone(),
            job_name: job.name.clone(),
            branch: branch.to_string(),
            job_id: trace.job_id.clone(),
            succeeded_at: job.finished_at.unwrap_or(job.updated_at),
        })
        .await
}

/// [`keep_if_green`] for a log stored by the job's id alone: the records say what the job is.
pub async fn keep_if_recorded_green<S: GreenRunStore>(
    store: &S,
    trace: &TraceKey,
) -> Result<bool, StoreError> {
    match store.recorded_job(trace).await? {
        Some(job) => keep_if_green(store, trace, &job).await,
        None => Ok(false),
    }
}

/// The green log a failed job is compared with, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GreenLog {
    Found {
        run: GreenRun,
        log: Vec<u8>,
    },
    /// The job's name or branch is not known.
    Unnamed,
    /// No green run is kept for the job on these branches.
    NoneKept {
        branches: Vec<String>,
    },
    /// The green run's log is no longer stored (it expired).
    LogGone {
        run: GreenRun,
    },
}

/// The last green log of the failed job (`failed_job_id`) named `job`: of its own branch,
/// else of the first default branch that has one. At most `max_bytes` of it are read.
pub async fn green_log_for<S: GreenRunStore + TraceStore>(
    store: &S,
    job: &JobOnBranch<'_>,
    failed_job_id: &str,
    default_branches: &[String],
    max_bytes: u64,
) -> Result<GreenLog, StoreError> {
    if job.job_name.is_empty() || job.branch.is_empty() {
        return Ok(GreenLog::Unnamed);
    }
    let mut branches = vec![job.branch.to_string()];
    for branch in default_branches {
        if !branches.contains(branch) {
            branches.push(branch.clone());
        }
    }
    let mut gone = None;
    for branch in &branches {
        let on_branch = JobOnBranch {
            branch,
            ..job.clone()
        };
        let Some(run) = store.green_run(&on_branch).await? else {
            continue;
        };
        if run.job_id == failed_job_id {
            continue;
        }
        match store.read(&run.trace_key(), 0, Some(max_bytes)).await? {
            Some(slice) if !slice.bytes.is_empty() => {
                return Ok(GreenLog::Found {
                    run,
                    log: slice.bytes,
                });
            }
            _ => {
                gone.get_or_insert(run);
            }
        }
    }
    Ok(match gone {
        Some(run) => GreenLog::LogGone { run },
        None => GreenLog::NoneKept { branches },
    })
}

/// What an analysis says about the last green run: whether it was used, which one, and what
/// the comparison did (counts only: nothing of either log's text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreenRunNote {
    /// Whether the green run's log shaped the excerpt.
    pub used: bool,
    /// The green run's job, when one was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// In words: what was compared, or why nothing was.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<LastSuccessUse>,
}

impl GreenRunNote {
    pub fn from_lookup(lookup: &GreenLog, comparison: Option<LastSuccessUse>) -> Self {
        let of_run = |run: &GreenRun| (Some(run.job_id.clone()), Some(run.branch.clone()));
        let (used, (job_id, branch), detail) = match lookup {
            GreenLog::Found { run, .. } => {
                let used = comparison.is_some_and(|c| c.used);
                let detail = match comparison {
                    Some(c) if c.used => format!(
                        "compared with the log of job {} (the last green run on {}): {} lines new, {} seen in it",
                        run.job_id, run.branch, c.lines_new, c.lines_seen
                    ),
                    _ => format!(
                        "the log of job {} (the last green run on {}) has too little in common with this one to compare",
                        run.job_id, run.branch
                    ),
                };
                (used, of_run(run), detail)
            }
            GreenLog::Unnamed => (
                false,
                (None, None),
                "no green run looked up: the job's name or branch is not known".to_string(),
            ),
            GreenLog::NoneKept { branches } => (
                false,
                (None, None),
                format!(
                    "no green run of this job is kept on {}",
                    branches.join(" or ")
                ),
            ),
            GreenLog::LogGone { run } => (
                false,
                of_run(run),
                format!(
                    "the log of job {} (the last green run on {}) is no longer stored",
                    run.job_id, run.branch
                ),
            ),
        };
        GreenRunNote {
            used,
            job_id,
            branch,
            detail,
            comparison,
        }
    }
}
