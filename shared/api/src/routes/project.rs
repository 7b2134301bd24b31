//! Which job a request names: `provider` (gitlab by default), GitLab's `projectId` (numeric
//! id or path) or GitHub's `repo=owner/name`, and `jobId`. Shared by the log and analysis
//! routes so both accept the same forms.

use crate::error::ApiError;
use crate::state::AppState;
use buildlore_core::RepoPath;
use buildlore_core::details::{DetailsSource, ProjectRef, parse_project};

pub(crate) struct JobTarget {
    pub provider: String,
    /// Our key for the project; `None` for a GitLab numeric id no webhook has told us about.
    pub repo: Option<RepoPath>,
    /// How the provider's API names the project.
    pub provider_project: String,
    pub job_id: String,
}

pub(crate) async fn job_target<'a>(
    state: &AppState,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<JobTarget, ApiError> {
    let job_id = get("jobId").ok_or_else(|| ApiError::bad_request("`jobId` is required"))?;
    let job_id = buildlore_core::job_id::parse_job_id(job_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`jobId` must be {}",
            buildlore_core::job_id::JOB_ID_RULE
        ))
    })?;
    let (provider, repo, provider_project) = project_target(state, get).await?;
    Ok(JobTarget {
        provider,
        repo,
        provider_project,
        job_id,
    })
}

/// The provider, our repo key (when known) and the provider's name for the project.
pub(crate) async fn project_target<'a>(
    state: &AppState,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<(String, Option<RepoPath>, String), ApiError> {
    let provider = get("provider").unwrap_or("gitlab").to_ascii_lowercase();
    let (repo, provider_project) = match provider.as_str() {
        "github" => {
            let repo = get("repo")
                .ok_or_else(|| ApiError::bad_request("provider=github needs `repo=owner/name`"))?;
            let repo =
                RepoPath::parse(repo).map_err(|e| ApiError::bad_request(format!("`repo` {e}")))?;
            if repo.as_str().split('/').count() != 2 {
                return Err(ApiError::bad_request(format!(
                    "`repo` {:?} is not a GitHub repository: use owner/name",
                    repo.as_str()
                )));
            }
            (Some(repo.clone()), repo.to_string())
        }
        "gitlab" => {
            let project =
                get("projectId").ok_or_else(|| ApiError::bad_request("`projectId` is required"))?;
            match parse_project(project).map_err(|e| ApiError::bad_request(e.to_string()))? {
                ProjectRef::Path(repo) => (Some(repo.clone()), repo.to_string()),
                ProjectRef::Id(id) => {
                    let repo = state.store.resolve_project("gitlab", &id).await?;
                    (repo, id)
                }
            }
        }
        _ => return Err(ApiError::bad_request("`provider` must be gitlab or github")),
    };
    Ok((provider, repo, provider_project))
}

/// A `{repo}` path parameter (URL-encoded, `group%2Fapp`).
pub(crate) fn repo_path_param(raw: &str) -> Result<RepoPath, ApiError> {
    RepoPath::parse(raw)
        .map_err(|e| ApiError::bad_request(format!("repo (URL-encode its slashes as %2F) {e}")))
}
