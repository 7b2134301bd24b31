//! One pipeline with its user, commit and jobs (gitlab-summary's pipeline details).

use crate::ports::StoreError;
use crate::repo::RepoPath;
use crate::runs::{Job, Pipeline};
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

fn job_view(job: &Job) -> Value {
    let mut view = json!(job);
    if let Some(object) = view.as_object_mut() {
        object.insert("id".into(), json!(job.job_id));
        object.insert(
            "duration".into(),
            json!(job.duration_ms.map(|ms| ms as f64 / 1000.0)),
        );
    }
    view
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
    let mut view = json!(pipeline);
    if let Some(object) = view.as_object_mut() {
        object.insert("id".into(), json!(pipeline.pipeline_id));
        object.insert(
            "duration".into(),
            json!(pipeline.duration_ms.map(|ms| ms as f64 / 1000.0)),
        );
        object.remove("user");
        object.remove("commit");
    }
    Ok(Ok(json!({
        "pipeline": view,
        "user": pipeline.user,
        "commit": pipeline.commit,
        "jobs": jobs.iter().map(job_view).collect::<Vec<_>>(),
    })))
}
