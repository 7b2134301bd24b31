//! The analyze function: the `/api/ai/*` API. `POST /api/ai/analyse` answers at once from a
//! stored analysis of the job or of the same failure elsewhere (no LLM call), else queues the
//! job for the worker (`202`, poll `/api/ai/cache`), or with no LLM configured answers with the
//! triage right away.

use crate::auth::{Caller, Scope};
use crate::body::read_json;
use crate::error::ApiError;
use crate::params::{QueryParams, non_empty, query_params, whole_number};
use crate::routes::project::{JobTarget, job_target, project_target};
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildlore_core::RepoPath;
use buildlore_core::analysis_request::AnalysisQueue;
use buildlore_core::ask_followup::{AskedFollowUp, FollowUpReply, ask_followup};
use buildlore_core::details::id_value;
use buildlore_core::explain::DEFAULT_SYSTEM_PROMPT;
use buildlore_core::job_analysis::{AnalysisStore, JobAnalysis, JobToAnalyse, Llm};
use buildlore_core::request_analysis::{
    AnalysisAnswer, AnalysisPorts, AnalysisRequestStore, LlmAccess, RequestedAnalysis,
    request_analysis,
};
use buildlore_core::system_prompt::{SystemPrompts, replace_system_prompt};
use buildlore_core::time::sortable;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Largest `POST /api/ai/analyse` body (a log may come with it).
const ANALYSE_BODY_LIMIT: usize = 6 * 1024 * 1024;
/// Longest `wait` a caller may ask for, in seconds.
const MAX_WAIT_SECONDS: u64 = 20;

/// The analysis as readable text (gitlab-summary's `analysis`): root cause, explanation and
/// fix as Markdown, or why there is none.
fn analysis_text(analysis: &JobAnalysis) -> String {
    let note = analysis
        .test_report
        .as_ref()
        .and_then(|report| report.note())
        .map(|note| format!("\n\n**Test report:** {note}"))
        .unwrap_or_default();
    match (&analysis.result, &analysis.error) {
        (Some(result), _) => format!(
            "**Root cause:** {}\n\n**Explanation:** {}\n\n**Fix:** {}{note}",
            result.root_cause, result.explanation, result.fix
        ),
        (None, Some(error)) => format!("The job could not be analysed: {error}"),
        (None, None) => "The job could not be analysed.".to_string(),
    }
}

/// The question-and-answer turns after the first analysis, as gitlab-summary lists them.
fn conversation_pairs(analysis: &JobAnalysis) -> Vec<Value> {
    let turns = &analysis.conversation;
    let mut pairs = Vec::new();
    let mut at = 0;
    while at < turns.len() {
        if turns[at].role == "user" {
            let answer = turns
                .get(at + 1)
                .filter(|next| next.role == "assistant")
                .map(|next| next.content.clone());
            pairs.push(json!({
                "question": turns[at].content,
                "answer": answer,
                // Turns carry no time of their own: the analysis's.
                "timestamp": sortable(analysis.analysed_at),
            }));
            at += if answer.is_some() { 2 } else { 1 };
        } else {
            at += 1;
        }
    }
    pairs
}

/// The analysis as the API answers it: gitlab-summary's fields (`analysis` as text, integer
/// ids, `conversation` as question-and-answer pairs, `timestamp`) and ours beside them.
fn analysis_body(analysis: &JobAnalysis, project_id: &str, cached: bool) -> Value {
    let mut body = serde_json::to_value(analysis).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.insert("analysis".into(), json!(analysis_text(analysis)));
        object.insert("projectId".into(), id_value(project_id));
        object.insert("projectName".into(), json!(analysis.repo));
        object.insert(
            "pipelineId".into(),
            analysis
                .pipeline_id
                .as_deref()
                .map_or(Value::Null, id_value),
        );
        object.insert("jobId".into(), id_value(&analysis.job_id));
        object.insert("jobName".into(), json!(analysis.job_name));
        object.insert("stage".into(), Value::Null);
        object.insert("conversation".into(), json!(conversation_pairs(analysis)));
        object.insert("timestamp".into(), json!(sortable(analysis.analysed_at)));
        object.insert("cached".into(), json!(cached));
    }
    body
}

/// A JSON body's fields as text (ids may come as whole numbers; `1e308` is no id).
fn text_fields(body: &Value) -> Result<HashMap<String, String>, ApiError> {
    let mut fields = HashMap::new();
    for (name, value) in body.as_object().into_iter().flatten() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
            Value::Number(n) => {
                return Err(ApiError::bad_request(format!(
                    "`{name}` must be a whole number or a string, not {n}"
                )));
            }
            _ => continue,
        };
        fields.insert(name.clone(), text);
    }
    Ok(fields)
}

/// Our repo key, or a 404 when a GitLab numeric id has not been introduced yet.
fn known_repo(repo: Option<&RepoPath>, provider_project: &str) -> Result<RepoPath, ApiError> {
    repo.cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "project {provider_project} is not known here yet: use its path (group/project), or let a webhook or build record introduce it"
        ))
    })
}

/// The job a request names, with our key for its repo (which must be known here).
async fn known_job<'a>(
    state: &AppState,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<(JobTarget, RepoPath), ApiError> {
    let target = job_target(state, get).await?;
    let repo = known_repo(target.repo.as_ref(), &target.provider_project)?;
    Ok((target, repo))
}

pub(crate) async fn analyse(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    query: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let body = read_json(&headers, body, ANALYSE_BODY_LIMIT).await?;
    let fields = analysis_fields(&body)?;
    let field = |name: &str| non_empty(&fields, name);
    let (target, repo) = known_job(&state, field).await?;
    let project_id = field("projectId").or(field("repo")).unwrap_or_default();
    let wait = wait_seconds(field("wait").or(params.get("wait").map(String::as_str)))?;
    let log = sent_log(&body)?;
    authorize_analysis(&state, &headers, log.is_some())?;
    let requested = RequestedAnalysis {
        job: asked_job(&target, &repo, field),
        log: log.map(str::as_bytes),
        caller_key: &caller.key_id,
        wait,
    };
    let policy = state.config.analysis_policy();
    let answer = request_analysis(&analysis_ports(&state), &policy, requested).await?;
    Ok(match answer {
        AnalysisAnswer::Ready { analysis, cached } => {
            Json(analysis_body(&analysis, project_id, cached)).into_response()
        }
        AnalysisAnswer::Queued => queued(json!({
            "status": "queued",
            "cached": false,
            "projectId": project_id,
            "jobId": target.job_id,
            "poll": poll_path(&target, &repo),
        })),
    })
}

/// The fields of an analysis request's body (a JSON object), as text.
fn analysis_fields(body: &Value) -> Result<HashMap<String, String>, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object with `projectId` and `jobId`",
        ));
    }
    text_fields(body)
}

/// The job a request names, with what the request says about it.
fn asked_job<'a>(
    target: &'a JobTarget,
    repo: &'a RepoPath,
    field: impl Fn(&str) -> Option<&'a str>,
) -> JobToAnalyse<'a> {
    JobToAnalyse {
        provider: &target.provider,
        repo,
        job_id: &target.job_id,
        pipeline_id: field("pipelineId"),
        job_name: field("jobName"),
        stage: field("stage"),
        branch: field("branch"),
        report: None,
    }
}

/// The `log` a request sends to be stored and analysed, if any.
fn sent_log(body: &Value) -> Result<Option<&str>, ApiError> {
    match body.get("log") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(log)) if log.is_empty() => Err(ApiError::bad_request(
            "`log` is empty: send the job's log text, or leave `log` out to analyse the stored or fetchable log",
        )),
        Some(Value::String(log)) => Ok(Some(log.as_str())),
        Some(_) => Err(ApiError::bad_request("`log` must be a string")),
    }
}

/// A read key asks about a stored or fetchable log; a request carrying the log stores it,
/// which takes the ingest scope (known only once the body says which it is).
fn authorize_analysis(
    state: &AppState,
    headers: &HeaderMap,
    sends_log: bool,
) -> Result<(), ApiError> {
    let keys = &state.config.keys;
    if sends_log {
        keys.authorize(headers, Scope::Ingest).map_err(|_| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "a `log` in the request is stored as the job's log and needs a key with the ingest scope; leave `log` out to analyse the stored or fetchable log with a read key",
            )
        })?;
    } else {
        keys.authorize(headers, Scope::Read)?;
    }
    Ok(())
}

/// The store, the queue and the LLM as the analysis use cases see them.
fn analysis_ports(
    state: &AppState,
) -> AnalysisPorts<'_, impl AnalysisRequestStore, impl AnalysisQueue, impl Llm> {
    let llm = match state.llm() {
        None => LlmAccess::Absent,
        Some(llm) if llm.worker_only() => LlmAccess::WorkerOnly,
        Some(llm) => LlmAccess::Direct(llm),
    };
    AnalysisPorts {
        store: &state.store,
        queue: state.analysis_queue.as_ref(),
        llm,
    }
}

/// `202 Accepted` with where to look for the answer later.
fn queued(body: Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// `wait`: whole seconds to wait for the worker, at most `MAX_WAIT_SECONDS`.
fn wait_seconds(text: Option<&str>) -> Result<Duration, ApiError> {
    let seconds = match text {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request("`wait` must be whole seconds"))?
            .min(MAX_WAIT_SECONDS),
    };
    Ok(Duration::from_secs(seconds))
}

/// Where a queued analysis or follow-up shows up.
fn poll_path(target: &JobTarget, repo: &RepoPath) -> String {
    use buildlore_providers::percent_encode;
    format!(
        "/api/ai/cache?provider={}&{}={}&jobId={}",
        percent_encode(&target.provider),
        if target.provider == "github" {
            "repo"
        } else {
            "projectId"
        },
        percent_encode(repo.as_str()),
        percent_encode(&target.job_id)
    )
}

pub(crate) async fn cached_analysis(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let get = |name: &str| non_empty(&params, name);
    let (target, repo) = known_job(&state, get).await?;
    let project_id = get("projectId").or(get("repo")).unwrap_or_default();
    let analysis = state
        .store
        .get_analysis(&target.provider, &repo, &target.job_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "job {} has no analysis yet; POST /api/ai/analyse asks for one",
                target.job_id
            ))
        })?;
    Ok(Json(analysis_body(&analysis, project_id, true)).into_response())
}

/// Longest follow-up question, in characters.
const MAX_QUESTION_CHARS: usize = 4_000;

/// `question`: required, at most `MAX_QUESTION_CHARS` characters.
fn asked_question(question: Option<&str>) -> Result<&str, ApiError> {
    let question = question.ok_or_else(|| ApiError::bad_request("`question` is required"))?;
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(ApiError::bad_request(format!(
            "`question` is longer than {MAX_QUESTION_CHARS} characters"
        )));
    }
    Ok(question)
}

pub(crate) async fn followup(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_json(&headers, body, 64 * 1024).await?;
    let fields = text_fields(&body)?;
    let field = |name: &str| non_empty(&fields, name);
    let question = asked_question(field("question"))?;
    let (target, repo) = known_job(&state, field).await?;
    let project_id = field("projectId").or(field("repo")).unwrap_or_default();
    let asked = AskedFollowUp {
        provider: &target.provider,
        repo: &repo,
        job_id: &target.job_id,
        question,
        caller_key: &caller.key_id,
        wait: wait_seconds(field("wait"))?,
    };
    let budget = state.config.analysis_budget;
    Ok(
        match ask_followup(&analysis_ports(&state), budget, asked).await? {
            FollowUpReply::Answered(answered) => Json(json!({
                "answer": answered.answer,
                "timestamp": sortable(chrono::Utc::now()),
                "projectId": id_value(project_id),
                "jobId": id_value(&target.job_id),
                "conversation": answered.conversation,
            }))
            .into_response(),
            FollowUpReply::Queued => queued(json!({
                "status": "queued",
                "projectId": project_id,
                "jobId": target.job_id,
                "poll": poll_path(&target, &repo),
            })),
        },
    )
}

pub(crate) async fn forget_analysis(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let get = |name: &str| non_empty(&params, name);
    let (target, repo) = known_job(&state, get).await?;
    let deleted = state
        .store
        .delete_analysis(&target.provider, &repo, &target.job_id)
        .await?;
    if !deleted {
        return Err(ApiError::not_found(format!(
            "job {} has no analysis to delete",
            target.job_id
        )));
    }
    Ok(Json(json!({
        "success": true,
        "message": format!("the analysis of job {} is forgotten", target.job_id),
    }))
    .into_response())
}

/// A line of a listing: enough to pick an analysis to open.
fn summary_line(analysis: &JobAnalysis) -> Value {
    json!({
        "provider": analysis.provider,
        "repo": analysis.repo,
        "jobId": id_value(&analysis.job_id),
        "pipelineId": analysis.pipeline_id.as_deref().map_or(Value::Null, id_value),
        "jobName": analysis.job_name,
        "status": analysis.status,
        "source": analysis.source,
        "category": analysis.category,
        "fingerprint": analysis.fingerprint,
        "root_cause": analysis.result.as_ref().map(|r| r.root_cause.clone()),
        "analysed_at": analysis.analysed_at,
    })
}

pub(crate) async fn analyzed(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let get = |name: &str| non_empty(&params, name);
    let (_, repo, provider_project) = project_target(&state, get).await?;
    let repo = known_repo(repo.as_ref(), &provider_project)?;
    let analyses = state.store.analyses_of_repo(&repo, 100).await?;
    Ok(Json(json!({
        "projectId": get("projectId").or(get("repo")).map_or(Value::Null, id_value),
        "analyzedJobIds": analyses.iter().map(|a| id_value(&a.job_id)).collect::<Vec<_>>(),
        "analyses": analyses.iter().map(summary_line).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// A line of the history: the listing's line with gitlab-summary's fields.
fn history_line(analysis: &JobAnalysis) -> Value {
    let mut line = summary_line(analysis);
    if let Some(object) = line.as_object_mut() {
        // The analysis knows its project by path (the numeric id is not stored with it).
        object.insert("projectId".into(), json!(analysis.repo));
        object.insert("projectName".into(), json!(analysis.repo));
        object.insert("analysis".into(), json!(analysis_text(analysis)));
        object.insert(
            "conversationCount".into(),
            json!(conversation_pairs(analysis).len()),
        );
        object.insert("stage".into(), Value::Null);
        object.insert("timestamp".into(), json!(sortable(analysis.analysed_at)));
    }
    line
}

pub(crate) async fn history(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let page = whole_number(&params, "page", 10_000)?.unwrap_or(1).max(1) as usize;
    let page_size = whole_number(&params, "pageSize", 100)?.unwrap_or(20).max(1) as usize;
    let (items, total) = state.store.analysis_history(page, page_size).await?;
    let analyses: Vec<Value> = items.iter().map(history_line).collect();
    let total_pages = total.div_ceil(page_size as u64);
    Ok(Json(json!({
        "analyses": analyses,
        "pagination": {
            "currentPage": page,
            "pageSize": page_size,
            "totalPages": total_pages,
            "totalCount": total,
        },
        // The names of earlier versions.
        "items": items.iter().map(summary_line).collect::<Vec<_>>(),
        "page": page,
        "total": total,
        "totalPages": total_pages,
    }))
    .into_response())
}

pub(crate) async fn get_system_prompt(State(state): State<AppState>) -> Result<Response, ApiError> {
    let stored = state.store.system_prompt().await?;
    Ok(Json(match stored {
        Some(stored) => json!({
            "prompt": stored.prompt, "version": stored.version,
            "default": false, "updated_at": stored.updated_at,
        }),
        None => json!({
            "prompt": DEFAULT_SYSTEM_PROMPT, "version": 0, "default": true, "updated_at": null,
        }),
    })
    .into_response())
}

pub(crate) async fn put_system_prompt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_json(&headers, body, 128 * 1024).await?;
    let prompt = body
        .get("prompt")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("`prompt` must be a non-empty string"))?;
    let edited = match body.get("version") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().ok_or_else(|| {
            ApiError::bad_request("`version` must be the version you edited (a whole number)")
        })?),
    };
    let version = replace_system_prompt(&state.store, prompt, edited).await?;
    Ok(
        Json(json!({"success": true, "prompt": prompt, "version": version, "default": false}))
            .into_response(),
    )
}

pub(crate) async fn failures(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let params = query_params(query)?;
    let repo = params
        .get("repo")
        .ok_or_else(|| ApiError::bad_request("`repo` is required (group/project or owner/name)"))?;
    let repo = RepoPath::parse(repo).map_err(|e| ApiError::bad_request(format!("`repo` {e}")))?;
    let now = chrono::Utc::now();
    let since = buildlore_core::summary::parse_since(params.get("since").map(String::as_str), now)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let failures = state.store.recurring_failures(&repo, since).await?;
    Ok(Json(json!({"repo": repo, "since": since, "failures": failures})).into_response())
}
