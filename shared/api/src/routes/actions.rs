//! Acting on GitLab and GitHub from buildlore: retry and cancel a job or a pipeline (admin),
//! the audit list of every action taken, and a repository's opt-ins (merge request comments,
//! automatic retry).

use crate::auth::Caller;
use crate::body::read_json;
use crate::error::ApiError;
use crate::params::{QueryParams, query_params};
use crate::routes::project::repo_path_param;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use buildlore_core::RepoPath;
use buildlore_core::details::DetailsSource;
use buildlore_core::provider_actions::{ActionError, ForgeProject, ProviderAction};
use buildlore_core::recorded_actions::{
    ActOnProviderError, ActionLog, ActionRecord, ActionRequest, Actor, act_on_provider, forge_of,
};
use buildlore_core::repo_settings::{RepoSettings, RepoSettingsStore};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

type TargetPath = Result<Path<(String, String, String)>, PathRejection>;

/// Audit records listed per page, by default and at most.
const ACTIONS_PAGE: usize = 50;
const MAX_ACTIONS_PAGE: usize = 200;

/// The project a `{provider}/{project}` path names: a URL-encoded path, or a GitLab numeric
/// id a webhook has introduced (both are then known).
async fn forge_project(
    state: &AppState,
    provider: &str,
    project: &str,
) -> Result<ForgeProject, ApiError> {
    let forge = forge_of(provider).map_err(|error| ApiError::bad_request(error.to_string()))?;
    let numeric =
        !project.is_empty() && project.len() <= 20 && project.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        return Ok(ForgeProject {
            forge,
            path: repo_path_param(project)?,
            id: None,
        });
    }
    let path = state
        .store
        .resolve_project(forge.as_str(), project)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{forge} project {project} is not known here yet: use its URL-encoded path (group%2Fproject), or let a webhook introduce it"
            ))
        })?;
    Ok(ForgeProject {
        forge,
        path,
        id: Some(project.to_string()),
    })
}

/// A job or pipeline id in a path: the provider's numeric id.
fn numeric_id(raw: &str, what: &str) -> Result<String, ApiError> {
    if !raw.is_empty() && raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "the {what} id must be the provider's numeric id"
        )))
    }
}

/// The provider's refusal as the caller sees it; the attempt is in the audit list either way.
fn refused(error: &ActionError) -> ApiError {
    let status = match error {
        ActionError::NoToken(_) => StatusCode::NOT_IMPLEMENTED,
        ActionError::NotFound => StatusCode::NOT_FOUND,
        ActionError::Rejected { .. } | ActionError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        ActionError::NotPossible(_) => StatusCode::CONFLICT,
        ActionError::Unsupported(_) => StatusCode::BAD_REQUEST,
        ActionError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
    };
    let message = match error {
        ActionError::NoToken(forge) => format!(
            "no {forge} token is configured: deploy with the {forge} API credential to act on {forge}"
        ),
        other => other.to_string(),
    };
    let answer = ApiError::new(status, message);
    match error {
        ActionError::RateLimited(seconds) => answer.with_retry_after(*seconds),
        _ => answer,
    }
}

async fn act(
    state: &AppState,
    caller: Caller,
    project: ForgeProject,
    action: ProviderAction,
) -> Result<Response, ApiError> {
    let forge = state
        .forge()
        .ok_or_else(|| ApiError::unavailable("the GitLab and GitHub client could not be built"))?;
    let request = ActionRequest {
        project,
        action,
        actor: Actor::Key {
            key_id: caller.key_id,
        },
        reason: None,
    };
    match act_on_provider(forge, &state.store, request, chrono::Utc::now()).await {
        Ok(record) => Ok(Json(json!({"done": true, "action": record})).into_response()),
        Err(ActOnProviderError::Provider { error, record }) => {
            let answer = refused(&error);
            let mut body = answer.body();
            body["done"] = json!(false);
            body["action"] = json!(record);
            let mut response = (answer.status, Json(body)).into_response();
            if let Some(seconds) = answer.retry_after {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            }
            Ok(response)
        }
        Err(ActOnProviderError::NotRecorded { record, .. }) => Ok((
            StatusCode::OK,
            Json(json!({
                "done": true,
                "action": record,
                "warning": "the provider acted, but the audit record could not be written",
            })),
        )
            .into_response()),
    }
}

async fn act_on_job(
    state: AppState,
    caller: Caller,
    path: TargetPath,
    action: fn(String) -> ProviderAction,
) -> Result<Response, ApiError> {
    let Path((provider, project, job_id)) = path?;
    let project = forge_project(&state, &provider, &project).await?;
    let job_id = numeric_id(&job_id, "job")?;
    act(&state, caller, project, action(job_id)).await
}

async fn act_on_pipeline(
    state: AppState,
    caller: Caller,
    path: TargetPath,
    action: fn(String) -> ProviderAction,
) -> Result<Response, ApiError> {
    let Path((provider, project, pipeline_id)) = path?;
    let project = forge_project(&state, &provider, &project).await?;
    let pipeline_id = numeric_id(&pipeline_id, "pipeline")?;
    act(&state, caller, project, action(pipeline_id)).await
}

pub(crate) async fn retry_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: TargetPath,
) -> Result<Response, ApiError> {
    act_on_job(state, caller, path, |job_id| ProviderAction::RetryJob {
        job_id,
    })
    .await
}

pub(crate) async fn cancel_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: TargetPath,
) -> Result<Response, ApiError> {
    act_on_job(state, caller, path, |job_id| ProviderAction::CancelJob {
        job_id,
    })
    .await
}

pub(crate) async fn retry_pipeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: TargetPath,
) -> Result<Response, ApiError> {
    act_on_pipeline(state, caller, path, |pipeline_id| {
        ProviderAction::RetryPipeline { pipeline_id }
    })
    .await
}

pub(crate) async fn cancel_pipeline(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    path: TargetPath,
) -> Result<Response, ApiError> {
    act_on_pipeline(state, caller, path, |pipeline_id| {
        ProviderAction::CancelPipeline { pipeline_id }
    })
    .await
}

/// `GET /api/v1/admin/actions?limit=&before=`: newest first; `next` continues the list.
pub(crate) async fn list_actions(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    let limit = match params.get("limit") {
        None => ACTIONS_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_ACTIONS_PAGE).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`limit` must be a whole number from 1 to {MAX_ACTIONS_PAGE}"
                ))
            })?,
    };
    let before = params.get("before").map(String::as_str);
    if before.is_some_and(|before| before.len() > 64) {
        return Err(ApiError::bad_request(
            "`before` must be the `next` of an earlier page",
        ));
    }
    let actions: Vec<ActionRecord> = state.store.recent_actions(limit, before).await?;
    let next = (actions.len() == limit)
        .then(|| actions.last().map(|record| record.id.clone()))
        .flatten();
    Ok(Json(json!({"actions": actions, "next": next})))
}

fn repo_settings_body(repo: &RepoPath, settings: &RepoSettings) -> Value {
    json!({"repo": repo, "settings": settings})
}

/// `GET /api/v1/repos/{repo}/settings`: what the repository opted into (defaults: nothing).
pub(crate) async fn read_repo_settings(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(repo) = path?;
    let repo = repo_path_param(&repo)?;
    let settings = state.store.repo_settings(&repo).await?.unwrap_or_default();
    Ok(Json(repo_settings_body(&repo, &settings)))
}

/// `PUT /api/v1/repos/{repo}/settings`: changes the fields the body gives.
pub(crate) async fn change_repo_settings(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Path(repo) = path?;
    let repo = repo_path_param(&repo)?;
    let body = read_json(&headers, body, 4 * 1024).await?;
    let current = state.store.repo_settings(&repo).await?.unwrap_or_default();
    let changed = current
        .changed_by(&body)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    state.store.put_repo_settings(&repo, &changed).await?;
    Ok(Json(repo_settings_body(&repo, &changed)))
}

/// `POST /api/v1/admin/backfill`: records the backfill and queues its first step (202).
pub(crate) async fn start_backfill(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    use buildlore_core::backfill::{BackfillRequest, StartBackfillError};
    let body = read_json(&headers, body, 4 * 1024).await?;
    let now = chrono::Utc::now();
    let request = BackfillRequest::parse(&body, now)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let queue = state.analysis_queue.as_ref().ok_or_else(|| {
        ApiError::unavailable("backfill needs the work queue, and none is configured")
    })?;
    let id = backfill_id(&body, now);
    let progress =
        buildlore_core::backfill::start_backfill(&state.store, queue, request, id.clone(), now)
            .await
            .map_err(|error| match error {
                StartBackfillError::Store(error) => ApiError::from(error),
                StartBackfillError::Queue(error) => {
                    tracing::warn!(%error, "a backfill's first step was not queued");
                    ApiError::unavailable("the work queue is busy; retry in a moment")
                        .with_retry_after(crate::error::RETRY_AFTER_BUSY_SECONDS)
                }
            })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": id,
            "status": "queued",
            "progress": format!("/api/v1/admin/backfill/{id}"),
            "backfill": backfill_body(&progress),
        })),
    )
        .into_response())
}

/// A new backfill's id: its start time and a digest of what it reads.
fn backfill_id(body: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{body}{}", now.timestamp_nanos_opt().unwrap_or(0)));
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", now.format("%Y%m%d%H%M%S"))
}

fn backfill_body(progress: &buildlore_core::backfill::BackfillProgress) -> Value {
    let mut body = json!(progress);
    body["status"] = json!(if progress.finished() {
        "finished"
    } else {
        "running"
    });
    body
}

/// `GET /api/v1/admin/backfill/{id}`: how far it got.
pub(crate) async fn backfill_progress(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    use buildlore_core::backfill::BackfillLog;
    let Path(id) = path?;
    if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ApiError::bad_request(
            "a backfill id is what POST /api/v1/admin/backfill answered",
        ));
    }
    let progress = state
        .store
        .backfill(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no backfill {id}")))?;
    Ok(Json(backfill_body(&progress)))
}

/// `GET /api/v1/admin/notifications`: the targets, without their secrets or URL paths.
pub(crate) async fn read_notification_targets(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    use buildlore_core::notify::NotificationTargets;
    let targets = state.store.notification_targets().await?;
    let shown: Vec<Value> = targets.iter().map(|target| target.shown()).collect();
    Ok(Json(json!({"targets": shown})))
}

/// `PUT /api/v1/admin/notifications`: replaces the targets (all valid, or none is taken).
pub(crate) async fn replace_notification_targets(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    use buildlore_core::notify::{NotificationTargets, parse_targets};
    let body = read_json(&headers, body, 16 * 1024).await?;
    let targets = parse_targets(&body, state.config.notify_allow_loopback_http)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    state.store.put_notification_targets(&targets).await?;
    let shown: Vec<Value> = targets.iter().map(|target| target.shown()).collect();
    Ok(Json(json!({"targets": shown})))
}
