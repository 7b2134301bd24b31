//! One comment per merge request (GitLab) or pull request (GitHub), where developers look:
//! posted when a pipeline of it fails and an analysis of a failing job is ready, updated on
//! later failures (never a second comment), and updated to say so when a pipeline passes
//! again. Opt-in per repository.

use crate::details::DetailsSource;
use crate::job_analysis::{AnalysisStatus, AnalysisStore, JobAnalysis};
use crate::ports::{Markers, StoreError};
use crate::provider_actions::{CommentError, ForgeProject, ReviewComments, ReviewThread};
use crate::recorded_actions::forge_of;
use crate::repo::RepoPath;
use crate::repo_settings::RepoSettingsStore;
use crate::review_comment::{CommentedPipeline, failing_comment, passing_again_comment};
use crate::status::BuildStatus;
use serde::{Deserialize, Serialize};
use std::future::Future;

/// How long the right to post a merge request's first comment is held: longer than posting
/// takes, short enough that a writer that died does not block the comment for long.
const CREATING_LOCK_MINUTES: i64 = 5;

/// The comment buildlore keeps on a merge request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptComment {
    /// The provider's id of the comment (what an update names).
    pub comment_id: String,
    pub url: Option<String>,
    /// The pipeline it last spoke of, and whether that one passed.
    pub pipeline_id: String,
    pub passing: bool,
}

/// Where the comment of each merge request is remembered.
pub trait KeptComments: Send + Sync {
    fn kept_comment(
        &self,
        provider: &str,
        repo: &RepoPath,
        merge_request: u64,
    ) -> impl Future<Output = Result<Option<KeptComment>, StoreError>> + Send;

    fn keep_comment(
        &self,
        provider: &str,
        repo: &RepoPath,
        merge_request: u64,
        comment: &KeptComment,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Everything the comment reads and writes in the table.
pub trait CommentStore:
    RepoSettingsStore + DetailsSource + AnalysisStore + KeptComments + Markers
{
}
impl<S> CommentStore for S where
    S: RepoSettingsStore + DetailsSource + AnalysisStore + KeptComments + Markers
{
}

/// What became of a pipeline's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    /// The repository has not opted in, or the pipeline ran for no merge request.
    NotWanted,
    /// Nothing to say yet: no failing job of the pipeline has an analysis, or it passed and
    /// there is no comment to update.
    NothingToSay,
    Created(KeptComment),
    Updated(KeptComment),
}

#[derive(Debug, thiserror::Error)]
pub enum MergeRequestCommentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] CommentError),
    /// Another writer is posting the first comment right now: try again shortly (then it
    /// is an update).
    #[error("another writer is posting this merge request's comment; retry shortly")]
    Busy,
}

/// Brings the comment of `pipeline_id`'s merge request up to date with what is stored.
pub async fn refresh_merge_request_comment<S: CommentStore, C: ReviewComments>(
    store: &S,
    comments: &C,
    provider: &str,
    repo: &RepoPath,
    pipeline_id: &str,
    dashboard_origin: &str,
) -> Result<CommentOutcome, MergeRequestCommentError> {
    let Ok(forge) = forge_of(provider) else {
        return Ok(CommentOutcome::NotWanted);
    };
    let wanted = store
        .repo_settings(repo)
        .await?
        .is_some_and(|settings| settings.merge_request_comments);
    let pipeline = store.pipeline(repo, provider, pipeline_id).await?;
    let (Some(pipeline), true) = (pipeline, wanted) else {
        return Ok(CommentOutcome::NotWanted);
    };
    let Some(number) = pipeline.merge_request else {
        return Ok(CommentOutcome::NotWanted);
    };
    let commented = CommentedPipeline {
        forge,
        pipeline_id,
        url: pipeline.url.as_deref(),
        sha: pipeline.sha.as_deref(),
        dashboard_origin,
    };
    let thread = ReviewThread {
        project: ForgeProject {
            forge,
            path: repo.clone(),
            id: pipeline.project_id.clone(),
        },
        number,
    };
    let kept = store.kept_comment(provider, repo, number).await?;
    if kept
        .as_ref()
        .is_some_and(|kept| is_older(pipeline_id, &kept.pipeline_id))
    {
        // A late analysis of an earlier pipeline: the comment speaks of a newer one.
        return Ok(CommentOutcome::NothingToSay);
    }
    let passing = pipeline.status == BuildStatus::Success;
    let body = if passing {
        // A comment is never started to say all is well.
        match &kept {
            Some(kept) if !kept.passing || kept.pipeline_id != pipeline_id => {
                passing_again_comment(&commented)
            }
            _ => return Ok(CommentOutcome::NothingToSay),
        }
    } else {
        let analyses = failing_analyses(store, repo, provider, pipeline_id).await?;
        if analyses.is_empty() {
            return Ok(CommentOutcome::NothingToSay);
        }
        failing_comment(&commented, &analyses)
    };
    let keep = |posted: crate::provider_actions::PostedComment| KeptComment {
        comment_id: posted.id,
        url: posted.url,
        pipeline_id: pipeline_id.to_string(),
        passing,
    };
    let update =
        async |kept: KeptComment| -> Result<Option<CommentOutcome>, MergeRequestCommentError> {
            match comments
                .update_comment(&thread, &kept.comment_id, &body)
                .await
            {
                Ok(posted) => {
                    let updated = keep(posted);
                    store.keep_comment(provider, repo, number, &updated).await?;
                    Ok(Some(CommentOutcome::Updated(updated)))
                }
                // Deleted by someone: a new one is posted.
                Err(CommentError::NotFound) => Ok(None),
                Err(error) => Err(error.into()),
            }
        };
    if let Some(kept) = kept
        && let Some(updated) = update(kept).await?
    {
        return Ok(updated);
    }
    // Of concurrent writers, exactly one posts the merge request's first comment; the lock
    // expires, so a writer that died holding it blocks the comment for minutes only.
    let lock = format!("MRCOMMENT#{provider}#{repo}#{number}");
    if !store
        .set_marker(&lock, chrono::Duration::minutes(CREATING_LOCK_MINUTES))
        .await?
    {
        return Err(MergeRequestCommentError::Busy);
    }
    // Another writer may have posted it between the read above and the lock.
    if let Some(kept) = store.kept_comment(provider, repo, number).await?
        && let Some(updated) = update(kept).await?
    {
        store.clear_marker(&lock).await?;
        return Ok(updated);
    }
    let created = match comments.create_comment(&thread, &body).await {
        Ok(posted) => keep(posted),
        // The provider may have posted it (a timeout, a 5xx): the lock stays until it expires
        // rather than let a retry post a second comment at once.
        Err(error @ (CommentError::Unavailable(_) | CommentError::RateLimited(_))) => {
            return Err(error.into());
        }
        Err(error) => {
            store.clear_marker(&lock).await?;
            return Err(error.into());
        }
    };
    store.keep_comment(provider, repo, number, &created).await?;
    store.clear_marker(&lock).await?;
    Ok(CommentOutcome::Created(created))
}

/// Whether pipeline `id` is older than `than` (provider pipeline ids count up).
fn is_older(id: &str, than: &str) -> bool {
    match (id.parse::<u64>(), than.parse::<u64>()) {
        (Ok(id), Ok(than)) => id < than,
        _ => false,
    }
}

/// The finished analyses of the pipeline's failed jobs, in the pipeline's job order.
async fn failing_analyses<S: DetailsSource + AnalysisStore>(
    store: &S,
    repo: &RepoPath,
    provider: &str,
    pipeline_id: &str,
) -> Result<Vec<JobAnalysis>, StoreError> {
    let mut analyses = Vec::new();
    for job in store.jobs_of(repo, provider, pipeline_id).await? {
        if job.status != BuildStatus::Failure || job.allow_failure == Some(true) {
            continue;
        }
        if let Some(mut analysis) = store
            .get_analysis(provider, repo, &job.job_id)
            .await?
            .filter(|analysis| analysis.status == AnalysisStatus::Done)
        {
            // The record names the job when the analysis request did not.
            if analysis.job_name.is_none() && !job.name.is_empty() {
                analysis.job_name = Some(job.name.clone());
            }
            analyses.push(analysis);
        }
    }
    Ok(analyses)
}

/// A queued refresh of a pipeline's merge request comment (a pipeline of a merge request
/// finished, or a first comment was being posted by another writer). `kind` tells it apart
/// from analysis requests on the same queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentRefresh {
    pub kind: String,
    pub provider: String,
    pub repo: RepoPath,
    pub pipeline_id: String,
}

pub const COMMENT_REFRESH_KIND: &str = "merge_request_comment";

impl CommentRefresh {
    pub fn of(provider: &str, repo: &RepoPath, pipeline_id: &str) -> Self {
        CommentRefresh {
            kind: COMMENT_REFRESH_KIND.into(),
            provider: provider.to_string(),
            repo: repo.clone(),
            pipeline_id: pipeline_id.to_string(),
        }
    }

    /// The refreshes a delivery calls for: each merge request pipeline that passed (a failed
    /// one is commented on once its analyses are ready, by the worker that made them).
    pub fn after_delivery(pipelines: &[crate::runs::Pipeline]) -> Vec<CommentRefresh> {
        pipelines
            .iter()
            .filter(|pipeline| {
                pipeline.merge_request.is_some() && pipeline.status == BuildStatus::Success
            })
            .map(|pipeline| Self::of(&pipeline.provider, &pipeline.repo, &pipeline.pipeline_id))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the work queue is unavailable: {0}")]
pub struct RefreshQueueError(pub String);

pub trait CommentRefreshQueue: Send + Sync {
    fn send_refresh(
        &self,
        refresh: &CommentRefresh,
        delay_seconds: u64,
    ) -> impl Future<Output = Result<(), RefreshQueueError>> + Send;
}
