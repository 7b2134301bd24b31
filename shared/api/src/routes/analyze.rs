//! The analyze function: the `/api/ai/*` API. `POST /api/ai/analyse` answers at once from a
//! stored analysis of the job or of the same failure elsewhere (no LLM call), else queues the
//! job for the worker (`202`, poll `/api/ai/cache`), or with no LLM configured answers with the
//! triage right away.

use super::not_yet;
use crate::auth::Scope;
use crate::body::read_json;
use crate::error::{ApiError, store_failure};
use crate::params::{QueryParams, query_params};
use crate::routes::project::{JobTarget, job_target};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use buildlore_core::RepoPath;
use buildlore_core::analysis_request::{ANALYSIS_REQUEST_VERSION, AnalysisQueue, AnalysisRequest};
use buildlore_core::job_analysis::{
    AnalysisSettings, AnalysisStatus, AnalysisStore, JobAnalysis, JobToAnalyse, analyse_job,
    reuse_for_job,
};
use buildlore_core::trace::{TraceKey, TraceStore};
use buildlore_providers::llm::OpenAiCompatible;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Largest `POST /api/ai/analyse` body (a log may come with it).
const ANALYSE_BODY_LIMIT: usize = 6 * 1024 * 1024;
/// Longest `wait` a caller may ask for, in seconds.
const MAX_WAIT_SECONDS: u64 = 20;
/// The longest stored log read to decide whether a failure was seen before.
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/ai/analyse", post(analyse))
        .route("/api/ai/cache", get(cached_analysis))
        .route("/api/ai/followup", not_yet("POST /api/ai/followup"))
        .route("/api/ai/analyzed", not_yet("GET /api/ai/analyzed"))
        .route("/api/ai/history", not_yet("GET /api/ai/history"))
        .route("/api/ai/system-prompt", not_yet("/api/ai/system-prompt"))
        .route("/api/v1/failures", not_yet("GET /api/v1/failures"))
}

/// The analysis as the API answers it (gitlab-summary's names where it has them).
fn analysis_body(analysis: &JobAnalysis, project_id: &str, cached: bool) -> Value {
    let mut body = serde_json::to_value(analysis).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        let result = object.remove("result").unwrap_or(Value::Null);
        object.insert("analysis".into(), result);
        object.insert("projectId".into(), json!(project_id));
        object.insert("jobId".into(), json!(analysis.job_id));
        object.insert("cached".into(), json!(cached));
    }
    body
}

/// A JSON body's fields as text (ids may come as numbers).
fn text_fields(body: &Value) -> HashMap<String, String> {
    body.as_object()
        .map(|object| {
            object
                .iter()
                .filter_map(|(name, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((name.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn known_repo(target: &JobTarget) -> Result<RepoPath, ApiError> {
    target.repo.clone().ok_or_else(|| {
        ApiError::not_found(format!(
            "project {} is not known here yet: use its path (group/project), or let a webhook or build record introduce it",
            target.provider_project
        ))
    })
}

async fn analyse(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    state.config.keys.authorize(&headers, Scope::Read)?;
    let params = query_params(query)?;
    let body = read_json(&headers, body, ANALYSE_BODY_LIMIT).await?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object with `projectId` and `jobId`",
        ));
    }
    let fields = text_fields(&body);
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let target = job_target(&state, field).await?;
    let repo = known_repo(&target)?;
    let project_id = field("projectId").or(field("repo")).unwrap_or_default();
    let wait = match field("wait").or(params.get("wait").map(String::as_str)) {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request("`wait` must be whole seconds"))?
            .min(MAX_WAIT_SECONDS),
    };
    let log = match body.get("log") {
        None | Some(Value::Null) => None,
        Some(Value::String(log)) => Some(log.as_str()),
        Some(_) => return Err(ApiError::bad_request("`log` must be a string")),
    };
    let job = JobToAnalyse {
        provider: &target.provider,
        repo: &repo,
        job_id: &target.job_id,
        pipeline_id: field("pipelineId"),
        job_name: field("jobName"),
        stage: field("stage"),
    };

    if let Some(existing) = state
        .store
        .get_analysis(&target.provider, &repo, &target.job_id)
        .await
        .map_err(store_failure)?
        .filter(|a| a.status == AnalysisStatus::Done)
    {
        return Ok(Json(analysis_body(&existing, project_id, true)).into_response());
    }

    let trace_key = TraceKey {
        provider: target.provider.clone(),
        repo: repo.clone(),
        job_id: target.job_id.clone(),
    };
    if let Some(log) = log {
        state
            .store
            .replace(&trace_key, log.as_bytes())
            .await
            .map_err(store_failure)?;
    }
    let stored_log = state
        .store
        .read(&trace_key, 0, Some(MAX_LOG_BYTES))
        .await
        .map_err(store_failure)?
        .map(|slice| slice.bytes);
    let settings = AnalysisSettings {
        reuse_within: chrono::Duration::days(i64::from(state.config.analysis_reuse_days)),
        ..AnalysisSettings::default()
    };

    if let Some(log) = &stored_log {
        if let Some(reused) = reuse_for_job(&state.store, &settings, &job, log, state.llm.is_some())
            .await
            .map_err(store_failure)?
        {
            return Ok(Json(analysis_body(&reused, project_id, true)).into_response());
        }
        if state.llm.is_none() {
            // No LLM: the triage is the answer, and it is quick enough to give now.
            let analysis = analyse_job(
                &state.store,
                None::<&OpenAiCompatible>,
                &settings,
                &job,
                log,
            )
            .await
            .map_err(|e| ApiError::internal(&e))?;
            return Ok(Json(analysis_body(&analysis, project_id, false)).into_response());
        }
    }

    let queue = state.analysis_queue.as_ref().ok_or_else(|| {
        ApiError::unavailable("analysis is not available: no analysis queue is configured")
    })?;
    let request = AnalysisRequest {
        version: ANALYSIS_REQUEST_VERSION,
        provider: target.provider.clone(),
        repo: repo.clone(),
        job_id: target.job_id.clone(),
        pipeline_id: job.pipeline_id.map(str::to_string),
        job_name: job.job_name.map(str::to_string),
        requested_at: chrono::Utc::now(),
        origin: "api".into(),
    };
    queue.send(&request).await.map_err(|error| {
        tracing::warn!(%error, "analysis request not queued");
        ApiError::unavailable("the analysis queue is busy; retry in a moment")
    })?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(analysis) = state
            .store
            .get_analysis(&target.provider, &repo, &target.job_id)
            .await
            .map_err(store_failure)?
        {
            return Ok(Json(analysis_body(&analysis, project_id, false)).into_response());
        }
    }
    let poll = format!(
        "/api/ai/cache?provider={}&{}={}&jobId={}",
        target.provider,
        if target.provider == "github" {
            "repo"
        } else {
            "projectId"
        },
        repo,
        target.job_id
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "queued",
            "cached": false,
            "projectId": project_id,
            "jobId": target.job_id,
            "poll": poll,
        })),
    )
        .into_response())
}

async fn cached_analysis(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
) -> Result<Response, ApiError> {
    state.config.keys.authorize(&headers, Scope::Read)?;
    let params = query_params(query)?;
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let target = job_target(&state, get).await?;
    let repo = known_repo(&target)?;
    let project_id = get("projectId").or(get("repo")).unwrap_or_default();
    let analysis = state
        .store
        .get_analysis(&target.provider, &repo, &target.job_id)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "job {} has no analysis yet; POST /api/ai/analyse asks for one",
                target.job_id
            ))
        })?;
    Ok(Json(analysis_body(&analysis, project_id, true)).into_response())
}
