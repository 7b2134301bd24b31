//! The query function: builds now; summaries, pipeline details and analysis follow.

use crate::error::{ApiError, store_failure};
use crate::params::{QueryParams, query_params};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use buildlore_core::RepoPath;
use buildlore_core::list_builds::{BuildQuery, RawBuildQuery};
use buildlore_core::ports::BuildListing;
use buildlore_core::summary;
use serde_json::{Value, json};

pub(crate) async fn list_builds(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let mut params = query_params(query)?;
    let raw = RawBuildQuery {
        repo: params.remove("repo"),
        branch: params.remove("branch"),
        status: params.remove("status"),
        since: params.remove("since"),
        limit: params.remove("limit"),
        cursor: params.remove("cursor"),
    };
    let query = BuildQuery::parse(raw, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let page = state.store.list_builds(&query).await?;
    Ok(Json(json!({
        "repo": query.repo,
        "count": page.builds.len(),
        "builds": page.builds,
        "next_cursor": page.next_cursor.map(|cursor| cursor.encode()),
    })))
}

pub(crate) async fn pipeline_summary(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    let request = SummaryRequest::read(&state, &params).await?;
    let summary = request.summary(&state, chrono::Utc::now()).await?;
    Ok(Json(json!(summary)))
}

/// A summary's window and projects, as a request gives them or, where it gives none, as the
/// settings say (shared by the summary and the event stream).
pub struct SummaryRequest {
    since: Option<String>,
    /// `None`: a numeric project id no webhook has introduced, so no project matches.
    scope: Option<summary::ProjectScope>,
}

impl SummaryRequest {
    pub async fn read(
        state: &AppState,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        use buildlore_core::details::DetailsSource;
        let given = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        // `group=` given empty asks for every group; left out, the settings' group applies.
        let settings = if given("since").is_none() || !params.contains_key("group") {
            Some(super::settings::current_settings(state).await?)
        } else {
            None
        };
        let since = given("since")
            .map(str::to_string)
            .or_else(|| settings.as_ref().map(|s| s.since.clone()));
        let bad = |e: summary::InvalidSummaryQuery| ApiError::bad_request(e.to_string());
        // Validated once up front, so a bad window is a 400 (and not a broken stream).
        summary::parse_since(since.as_deref(), chrono::Utc::now()).map_err(bad)?;
        let project = match given("project") {
            // gitlab-summary's clients pass GitLab's numeric project id.
            Some(id) if id.bytes().all(|b| b.is_ascii_digit()) => {
                match state.store.resolve_project("gitlab", id).await? {
                    Some(repo) => Some(repo.to_string()),
                    None => return Ok(SummaryRequest { since, scope: None }),
                }
            }
            other => other.map(str::to_string),
        };
        let group = match params.get("group") {
            Some(group) => Some(group.clone()).filter(|group| !group.is_empty()),
            None => settings.and_then(|s| s.group),
        };
        let scope = summary::parse_scope(project.as_deref(), group.as_deref()).map_err(bad)?;
        Ok(SummaryRequest {
            since,
            scope: Some(scope),
        })
    }

    pub async fn summary(
        &self,
        state: &AppState,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<summary::Summary, ApiError> {
        let since = summary::parse_since(self.since.as_deref(), now)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        match &self.scope {
            Some(scope) => summary::pipeline_summary(&state.store, since, now, scope)
                .await
                .map_err(store_failure),
            None => Ok(summary::summarise(since, &[])),
        }
    }
}

pub(crate) async fn pipeline_details(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    use buildlore_core::details::{self, DetailsError};
    let Path((project, pipeline_id)) = path?;
    let params = query_params(query)?;
    let provider = params.get("provider").map_or("gitlab", String::as_str);
    let provider = buildlore_core::runs::valid_provider(provider).ok_or_else(|| {
        ApiError::bad_request("provider must be gitlab, github or another CI name")
    })?;
    let details_error = |error: DetailsError| match error {
        DetailsError::BadProject(_) | DetailsError::BadPipeline(_) => {
            ApiError::bad_request(error.to_string())
        }
        _ => ApiError::not_found(error.to_string()),
    };
    let project = details::parse_project(&project).map_err(details_error)?;
    let pipeline_id = details::parse_pipeline_id(&pipeline_id).map_err(details_error)?;
    let body = details::pipeline_details(&state.store, &provider, project, &pipeline_id)
        .await?
        .map_err(details_error)?;
    Ok(Json(body))
}

/// Recurring failures listed in a repo analysis.
const TOP_FAILURES: usize = 5;

pub(crate) async fn repo_analysis(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let Path(repo) = path?;
    let repo = super::project::repo_path_param(&repo)?;
    let params = query_params(query)?;
    let now = chrono::Utc::now();
    let since = summary::parse_since(params.get("since").map(String::as_str), now)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let branch = params
        .get("branch")
        .map(String::as_str)
        .filter(|b| !b.is_empty());
    let mut analysis =
        buildlore_core::analysis::analyse(&state.store, &repo, since, now, branch).await?;
    analysis.top_failures = state
        .store
        .recurring_failures(&repo, since)
        .await?
        .into_iter()
        .take(TOP_FAILURES)
        .map(|failure| json!(failure))
        .collect();
    if analysis.total_runs == 0 && analysis.previous_success_rate.is_none() {
        return Err(ApiError::not_found(format!(
            "no runs of {repo} in this window or the one before; check the repo path"
        )));
    }
    let mut body = json!(analysis);
    body["tests"] = super::test_reports::repo_figures(&state, &repo, now).await?;
    Ok(Json(body))
}

async fn get_build(state: &AppState, repo: &str, build_id: &str) -> Result<Json<Value>, ApiError> {
    let repo = RepoPath::parse(repo).map_err(|e| ApiError::bad_request(format!("repo {e}")))?;
    let build = state
        .store
        .get_build(&repo, build_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("no build {build_id:?} in repo {:?}", repo.as_str()))
        })?;
    Ok(Json(json!(build)))
}

pub(crate) async fn get_build_by_query(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let Path(build_id) = path?;
    let params = query_params(query)?;
    let repo = params.get("repo").ok_or_else(|| {
        ApiError::bad_request(
            "query parameter `repo` is required (for example ?repo=group/project)",
        )
    })?;
    get_build(&state, repo, &build_id).await
}

pub(crate) async fn get_build_by_path(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((repo, build_id)) = path?;
    get_build(&state, &repo, &build_id).await
}

/// `GET /api/avatar?url=`: a user's avatar from the GitLab host or the avatar hosts allowed,
/// so the dashboard loads nothing from another origin.
pub(crate) async fn avatar(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use buildlore_providers::avatar::AvatarError;
    use http::{StatusCode, header};
    let params = query_params(query)?;
    let url = params
        .get("url")
        .filter(|url| !url.is_empty())
        .ok_or_else(|| ApiError::bad_request("`url` is required: the avatar's address"))?;
    let client = state.avatars().ok_or_else(|| {
        ApiError::unavailable("avatars are not available: the HTTP client could not be built")
    })?;
    let avatar = client.fetch(url).await.map_err(|error| match error {
        AvatarError::NotAUrl => ApiError::bad_request(error.to_string()),
        AvatarError::HostNotAllowed(_) => ApiError::new(StatusCode::FORBIDDEN, error.to_string()),
        AvatarError::NotAnImage | AvatarError::TooLarge | AvatarError::Upstream(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, error.to_string())
        }
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, avatar.content_type),
            (header::CACHE_CONTROL, "private, max-age=86400".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'".to_string(),
            ),
        ],
        avatar.bytes,
    )
        .into_response())
}

/// Days of project activity a group view looks back over.
const GROUP_LOOKBACK_DAYS: i64 = 30;

/// The paths of the projects under `group` with runs in the last 30 days.
async fn projects_under(state: &AppState, group: &RepoPath) -> Result<Vec<RepoPath>, ApiError> {
    use buildlore_core::summary::{ProjectScope, SummarySource, days_between};
    let now = chrono::Utc::now();
    let days = days_between(now - chrono::Duration::days(GROUP_LOOKBACK_DAYS), now);
    let counters = state
        .store
        .day_counters(&days, &ProjectScope::Group(group.clone()))
        .await?;
    let mut paths: Vec<RepoPath> = counters.into_iter().map(|day| day.repo).collect();
    paths.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    paths.dedup();
    Ok(paths)
}

/// `GET /api/groups/{path}` and `GET /api/groups/{path}/subgroups` (the path may hold
/// slashes), from the projects seen.
pub(crate) async fn group_or_subgroups(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    use buildlore_core::groups;
    let Path(raw) = path?;
    let (group_path, want_subgroups) = match raw.strip_suffix("/subgroups") {
        Some(group) => (group.to_string(), true),
        None => (raw, false),
    };
    if group_path.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::not_found(format!(
            "group {group_path}: numeric group ids are not known here; use the group's path"
        )));
    }
    let group = RepoPath::parse(&group_path)
        .map_err(|e| ApiError::bad_request(format!("group path {e}")))?;
    let projects = projects_under(&state, &group).await?;
    let gitlab = state.config.providers.gitlab_base.as_str();
    if want_subgroups {
        return Ok(Json(json!(groups::subgroups(
            group.as_str(),
            &projects,
            gitlab
        ))));
    }
    groups::group(group.as_str(), &projects, gitlab)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no project under group {group} has run in the last {GROUP_LOOKBACK_DAYS} days"
            ))
        })
}

/// `GET /api/groups/parent/{id}`: groups by numeric parent id need GitLab's groups API.
pub(crate) async fn groups_of_parent(
    State(_state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(parent) = path?;
    Err(ApiError::not_found(format!(
        "group {parent}: numeric group ids are not known here; ask for /api/groups/<path>/subgroups"
    )))
}
