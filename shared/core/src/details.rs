//! One pipeline with its user, commit and jobs (gitlab-summary's pipeline details).

use crate::ports::StoreError;
use crate::repo::RepoPath;
use crate::runs::{Job, Pipeline};
use crate::status::BuildStatus;
use crate::time::sortable;
use serde_json::{Value, json};
use std::future::Future;

pub trait DetailsSource: Send + Sync {
    /// The repo a provider's numeric project id names, when a webhook has told us.
    fn resolve_project(
        &self,
        provider: &str,
        project_id: &str,
    ) -> impl Future<Output = Result<Option<RepoPath>, StoreError>> + Send;

    fn pipeline(
        &self,
        repo: &RepoPath,
        provider: &str,
        pipeline_id: &str,
    ) -> impl Future<Output = Result<Option<Pipeline>, StoreError>> + Send;

    /// The pipeline's jobs, oldest first.
    fn jobs_of(
        &self,
        repo: &RepoPath,
        provider: &str,
        pipeline_id: &str,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetailsError {
    #[error("projectId must be a numeric project id or a URL-encoded project path, got {0:?}")]
    BadProject(String),
    #[error("pipelineId must be a number, got {0:?}")]
    BadPipeline(String),
    #[error(
        "no {provider} project {project:?} is known; it appears once a webhook from it arrives"
    )]
    UnknownProject { provider: String, project: String },
    #[error("no pipeline {pipeline} in {repo}")]
    UnknownPipeline { repo: String, pipeline: String },
}

/// Where a details request points.
pub enum ProjectRef {
    Id(String),
    Path(RepoPath),
}

pub fn parse_project(raw: &str) -> Result<ProjectRef, DetailsError> {
    let shown = || DetailsError::BadProject(raw.chars().take(64).collect());
    if !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(ProjectRef::Id(raw.to_string()));
    }
    if raw.contains('/') {
        return RepoPath::parse(raw)
            .map(ProjectRef::Path)
            .map_err(|_| shown());
    }
    Err(shown())
}

pub fn parse_pipeline_id(raw: &str) -> Result<String, DetailsError> {
    if !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_string())
    } else {
        Err(DetailsError::BadPipeline(raw.chars().take(64).collect()))
    }
}

/// An id as gitlab-summary shows it: a number where the provider's ids are numbers.
pub fn id_value(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(number) if !id.starts_with('0') || id == "0" => json!(number),
        _ => json!(id),
    }
}

/// A status in GitLab's lower-case words (`success`, `failed`, …): the provider's own word for
/// a GitLab run, ours mapped for the others.
pub fn gitlab_status(provider: &str, provider_status: &str, status: BuildStatus) -> String {
    if provider == "gitlab" && !provider_status.is_empty() {
        return provider_status.to_ascii_lowercase();
    }
    match status {
        BuildStatus::Pending => "pending",
        BuildStatus::Running => "running",
        BuildStatus::Success => "success",
        BuildStatus::Failure => "failed",
        BuildStatus::Canceled => "canceled",
        BuildStatus::Skipped => "skipped",
    }
    .to_string()
}

fn time(at: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    at.map_or(Value::Null, |at| json!(sortable(at)))
}

fn seconds(duration_ms: Option<u64>) -> Value {
    json!(duration_ms.map(|ms| ms as f64 / 1000.0))
}

fn job_view(job: &Job) -> Value {
    json!({
        "id": id_value(&job.job_id),
        "name": job.name,
        "stage": job.stage,
        "status": gitlab_status(&job.provider, &job.provider_status, job.status),
        "created_at": time(job.created_at),
        "started_at": time(job.started_at),
        "finished_at": time(job.finished_at),
        "duration": seconds(job.duration_ms),
        // Ours beside gitlab-summary's.
        "normalised_status": job.status,
        "queued_duration": seconds(job.queued_duration_ms),
        "failure_reason": job.failure_reason,
        "allow_failure": job.allow_failure,
        "ref": job.git_ref,
        "runner": job.runner,
        "url": job.url,
    })
}

/// The details body: the pipeline, its user and commit, and its jobs.
pub async fn pipeline_details<S: DetailsSource>(
    source: &S,
    provider: &str,
    project: ProjectRef,
    pipeline_id: &str,
) -> Result<Result<Value, DetailsError>, StoreError> {
    let repo = match project {
        ProjectRef::Path(repo) => repo,
        ProjectRef::Id(id) => match source.resolve_project(provider, &id).await? {
            Some(repo) => repo,
            None => {
                return Ok(Err(DetailsError::UnknownProject {
                    provider: provider.to_string(),
                    project: id,
                }));
            }
        },
    };
    let Some(pipeline) = source.pipeline(&repo, provider, pipeline_id).await? else {
        return Ok(Err(DetailsError::UnknownPipeline {
            repo: repo.to_string(),
            pipeline: pipeline_id.to_string(),
        }));
    };
    let jobs = source.jobs_of(&repo, provider, pipeline_id).await?;
    let user = pipeline.user.as_ref().map(|user| {
        json!({
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "avatar_url": user.avatar_url,
        })
    });
    let commit = pipeline.commit.as_ref().map(|commit| {
        json!({
            "id": commit.id,
            "short_id": commit.id.as_deref().map(|id| id.chars().take(8).collect::<String>()),
            "title": commit.title,
            "message": commit.message,
            "author_name": commit.author_name,
            "author_email": commit.author_email,
            "created_at": time(commit.created_at),
            "url": commit.url,
        })
    });
    // gitlab-summary's flat shape, and ours beside it.
    Ok(Ok(json!({
        "pipeline_id": id_value(&pipeline.pipeline_id),
        "project_id": pipeline.project_id.as_deref().map(id_value),
        "status": gitlab_status(&pipeline.provider, &pipeline.provider_status, pipeline.status),
        "ref": pipeline.git_ref,
        "sha": pipeline.sha,
        "source": pipeline.source,
        "created_at": time(pipeline.created_at),
        "started_at": time(pipeline.started_at),
        "finished_at": time(pipeline.finished_at),
        "duration": seconds(pipeline.duration_ms),
        "user": user,
        "commit": commit,
        "jobs": jobs.iter().map(job_view).collect::<Vec<_>>(),
        "provider": pipeline.provider,
        "project_path": pipeline.repo,
        "name": pipeline.name,
        "normalised_status": pipeline.status,
        "web_url": pipeline.url,
        "attempt": pipeline.attempt,
    })))
}
