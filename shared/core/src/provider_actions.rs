//! What the core asks of GitLab and GitHub besides logs: act on jobs and pipelines (retry,
//! cancel), read their history a page at a time, and comment on merge and pull requests.
//! The adapters in `buildlore-providers` implement these ports over HTTP; nothing here knows
//! about HTTP. Each use case has its own error, and a refused token says which scope the
//! operation needs.

use crate::repo::RepoPath;
use crate::runs::{Job, Pipeline};
use crate::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// A code-hosting provider buildlore can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    GitLab,
    GitHub,
}

impl Forge {
    /// The provider's name in records (`gitlab`, `github`).
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::GitLab => crate::webhooks::gitlab::PROVIDER,
            Forge::GitHub => crate::webhooks::github::PROVIDER,
        }
    }

    /// The forge a record's provider names, if buildlore can act on it.
    pub fn of_provider(provider: &str) -> Option<Forge> {
        match crate::runs::valid_provider(provider)?.as_str() {
            "gitlab" => Some(Forge::GitLab),
            "github" => Some(Forge::GitHub),
            _ => None,
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Forge::GitLab => "GitLab",
            Forge::GitHub => "GitHub",
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// A project on a forge: its path (GitLab `group/sub/app`, GitHub `owner/name`), which is what
/// records are keyed by, and its numeric id when known (GitLab's URLs then use the id rather
/// than the encoded path; GitHub's records carry it as `project_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeProject {
    pub forge: Forge,
    pub path: RepoPath,
    #[serde(default)]
    pub id: Option<String>,
}

/// What an operator (or the auto-retry policy) asks a provider to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ProviderAction {
    /// GitLab: `POST /projects/:id/jobs/:job_id/retry` (a new job). GitHub:
    /// `POST /repos/{o}/{r}/actions/jobs/{job_id}/rerun` (the job and its dependants, as a
    /// new attempt of the run).
    RetryJob { job_id: String },
    /// GitLab: `POST /projects/:id/jobs/:job_id/cancel`. GitHub cannot cancel one job.
    CancelJob { job_id: String },
    /// The failed jobs of a pipeline again. GitLab: `POST /projects/:id/pipelines/:id/retry`
    /// (which retries the failed and canceled jobs); GitHub:
    /// `POST /repos/{o}/{r}/actions/runs/{id}/rerun-failed-jobs`, the same thing.
    RetryPipeline { pipeline_id: String },
    /// GitLab: `POST /projects/:id/pipelines/:id/cancel`; GitHub:
    /// `POST /repos/{o}/{r}/actions/runs/{id}/cancel`.
    CancelPipeline { pipeline_id: String },
}

impl ProviderAction {
    /// The job or pipeline acted on.
    pub fn target_id(&self) -> &str {
        match self {
            ProviderAction::RetryJob { job_id } | ProviderAction::CancelJob { job_id } => job_id,
            ProviderAction::RetryPipeline { pipeline_id }
            | ProviderAction::CancelPipeline { pipeline_id } => pipeline_id,
        }
    }

    /// The action in words, for audit records and answers ("retry job 42").
    pub fn describe(&self) -> String {
        match self {
            ProviderAction::RetryJob { job_id } => format!("retry job {job_id}"),
            ProviderAction::CancelJob { job_id } => format!("cancel job {job_id}"),
            ProviderAction::RetryPipeline { pipeline_id } => {
                format!("retry the failed jobs of pipeline {pipeline_id}")
            }
            ProviderAction::CancelPipeline { pipeline_id } => {
                format!("cancel pipeline {pipeline_id}")
            }
        }
    }
}

/// What the provider did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub action: ProviderAction,
    /// What now runs or stopped: GitLab's retry of a job makes a new job with a new id;
    /// everything else (and every GitHub action, which re-runs in place as a new attempt)
    /// keeps the id acted on.
    pub resulting_id: String,
    /// Its status as the provider answered it (`pending`, `canceling`); `None` when the
    /// provider answers without one (GitHub's empty 201 and 202).
    pub provider_status: Option<String>,
    pub status: Option<BuildStatus>,
}

/// A scope or permission a token needs for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// GitLab reads (history, logs).
    GitLabReadApi,
    /// GitLab writes (retry, cancel, notes).
    GitLabApi,
    /// GitHub fine-grained `actions: read` (classic: `repo`).
    GitHubActionsRead,
    /// GitHub fine-grained `actions: write` (classic: `repo`).
    GitHubActionsWrite,
    /// GitHub fine-grained `pull-requests: write` or `issues: write` (classic: `repo`).
    GitHubPullRequestsWrite,
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenScope::GitLabReadApi => "a GitLab token with the `read_api` scope (or `api`)",
            TokenScope::GitLabApi => "a GitLab token with the `api` scope",
            TokenScope::GitHubActionsRead => {
                "a GitHub token with `actions: read` (classic tokens: `repo`)"
            }
            TokenScope::GitHubActionsWrite => {
                "a GitHub token with `actions: write` (classic tokens: `repo`)"
            }
            TokenScope::GitHubPullRequestsWrite => {
                "a GitHub token with `pull-requests: write` or `issues: write` (classic tokens: `repo`)"
            }
        })
    }
}

/// Why an action was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no {0} token is configured")]
    NoToken(Forge),
    #[error("the provider has no such project, job or pipeline (or the token cannot see it)")]
    NotFound,
    #[error("the provider refused the token (HTTP {status}); this needs {needs}")]
    Rejected { status: u16, needs: TokenScope },
    /// The provider refuses the action in the current state (a job that is not retryable, a
    /// run that already finished).
    #[error("the provider refused: {0}")]
    NotPossible(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("the provider's rate limit is exhausted for another {0} s")]
    RateLimited(u64),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// Acting on jobs and pipelines.
pub trait ProviderActions: Send + Sync {
    fn act(
        &self,
        project: &ForgeProject,
        action: &ProviderAction,
    ) -> impl Future<Output = Result<ActionOutcome, ActionError>> + Send;
}

/// Where a listing continues. A page number (GitLab's `X-Next-Page`, the `page` of the
/// `rel="next"` link both providers send), never the provider's URL: a cursor read back from
/// a queued message cannot send the token anywhere but the configured host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor {
    pub page: u32,
}

impl PageCursor {
    pub const FIRST: PageCursor = PageCursor { page: 1 };
}

/// One page of a listing: one SQS message's worth of work.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage<T> {
    pub items: Vec<T>,
    /// `None` on the last page.
    pub next: Option<PageCursor>,
    /// Entries the provider sent that could not be normalised, each with why; the rest of the
    /// page is still usable.
    pub skipped: Vec<String>,
}

/// A project found in a GitLab group (or one of its subgroups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProject {
    pub id: String,
    pub path: RepoPath,
    pub web_url: Option<String>,
    /// Projects archived, or with CI/CD turned off, have no pipelines worth reading.
    pub archived: bool,
}

/// Why a page of history could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("no {0} token is configured")]
    NoToken(Forge),
    #[error("the provider has no such project, group or pipeline (or the token cannot see it)")]
    NotFound,
    #[error("the provider refused the token (HTTP {status}); this needs {needs}")]
    Rejected { status: u16, needs: TokenScope },
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("the provider's answer is not a page of the expected shape: {0}")]
    InvalidAnswer(String),
    #[error("the provider's rate limit is exhausted for another {0} s")]
    RateLimited(u64),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// Reading history, a page at a time, into the same records webhooks make.
pub trait PipelineHistory: Send + Sync {
    /// Pipelines updated (GitLab) or created (GitHub, whose listing filters on nothing else)
    /// at or after `since`, newest first.
    fn pipelines_page(
        &self,
        project: &ForgeProject,
        since: DateTime<Utc>,
        page: PageCursor,
    ) -> impl Future<Output = Result<HistoryPage<Pipeline>, HistoryError>> + Send;

    /// The jobs of one pipeline (GitLab) or workflow run (GitHub, its latest attempt).
    fn jobs_page(
        &self,
        project: &ForgeProject,
        pipeline_id: &str,
        page: PageCursor,
    ) -> impl Future<Output = Result<HistoryPage<Job>, HistoryError>> + Send;

    /// A GitLab group's projects, its subgroups' included. GitHub has no groups.
    fn group_projects_page(
        &self,
        forge: Forge,
        group: &str,
        page: PageCursor,
    ) -> impl Future<Output = Result<HistoryPage<GroupProject>, HistoryError>> + Send;
}

/// A merge request (GitLab, by its `iid`) or pull request (GitHub, by its number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewThread {
    pub project: ForgeProject,
    pub number: u64,
}

/// A comment the provider holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedComment {
    /// GitLab's note id or GitHub's issue-comment id: what an update names.
    pub id: String,
    pub url: Option<String>,
}

/// Why a comment was not posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommentError {
    #[error("no {0} token is configured")]
    NoToken(Forge),
    /// The merge request, or the comment being updated, is gone: post a new one.
    #[error("the provider has no such merge request, pull request or comment")]
    NotFound,
    #[error("the provider refused the token (HTTP {status}); this needs {needs}")]
    Rejected { status: u16, needs: TokenScope },
    #[error("the provider refused the comment: {0}")]
    Refused(String),
    #[error("the provider's rate limit is exhausted for another {0} s")]
    RateLimited(u64),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// Comments on merge and pull requests. Bodies are [`crate::review_comment::CommentBody`]s:
/// redacted and within every provider's length limit by construction.
pub trait ReviewComments: Send + Sync {
    fn create_comment(
        &self,
        thread: &ReviewThread,
        body: &crate::review_comment::CommentBody,
    ) -> impl Future<Output = Result<PostedComment, CommentError>> + Send;

    fn update_comment(
        &self,
        thread: &ReviewThread,
        comment_id: &str,
        body: &crate::review_comment::CommentBody,
    ) -> impl Future<Output = Result<PostedComment, CommentError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forges_are_found_by_any_name_records_use() {
        assert_eq!(Forge::of_provider("gitlab_ci"), Some(Forge::GitLab));
        assert_eq!(Forge::of_provider("GitHub-Actions"), Some(Forge::GitHub));
        assert_eq!(Forge::of_provider("jenkins"), None);
        assert_eq!(Forge::GitLab.as_str(), "gitlab");
    }

    #[test]
    fn actions_serialise_with_their_name_for_audit_records() {
        let action = ProviderAction::RetryJob {
            job_id: "42".into(),
        };
        assert_eq!(
            serde_json::to_value(&action).unwrap(),
            serde_json::json!({"action": "retry_job", "job_id": "42"})
        );
        assert_eq!(action.describe(), "retry job 42");
    }

    #[test]
    fn a_rejection_says_which_scope_is_needed() {
        let error = ActionError::Rejected {
            status: 403,
            needs: TokenScope::GitLabApi,
        };
        assert!(error.to_string().contains("`api` scope"), "{error}");
    }
}
