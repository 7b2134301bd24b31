//! Failure-log push (`POST /api/ingest/log`, the Exlogare contract) and incremental trace
//! upload (`PATCH /api/v1/jobs/{provider}/{project}/{job_id}/trace`, the GitLab runner's
//! semantics), with `GET` of the same path to read the stored bytes.

use crate::body::{gzip_encoded, read_bytes, require_json_content_type};
use crate::error::{ApiError, store_failure};
use crate::params::{QueryParams, query_params, whole_number};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use buildlore_core::BuildStatus;
use buildlore_core::RepoPath;
use buildlore_core::last_green::keep_if_recorded_green;
use buildlore_core::log_push::{LogPushError, check_log_shape, parse_push_job, push_log};
use buildlore_core::log_source::{InvalidLog, JsonLog, LogSource, PlainLog, scan_push_fields};
use buildlore_core::ports::JobStatuses;
use buildlore_core::runs::valid_provider;
use buildlore_core::trace::{AppendOutcome, TraceKey, TraceStore, content_range_start};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

/// A log push as received (compressed or not): under Lambda's 6 MB request limit.
pub const MAX_LOG_REQUEST_BYTES: usize = 6 * 1024 * 1024;
/// The most bytes one `GET …/trace` answers (Lambda answers are limited to 6 MB); the
/// `X-Trace-Next-Offset` header says where the next page starts.
pub const MAX_TRACE_PAGE_BYTES: u64 = 4 * 1024 * 1024;
/// One part of an incremental trace upload.
pub const MAX_TRACE_PART_BYTES: usize = 1024 * 1024;

fn status_word(status: BuildStatus) -> &'static str {
    match status {
        BuildStatus::Pending => "pending",
        BuildStatus::Running => "running",
        BuildStatus::Success => "success",
        BuildStatus::Failure => "failed",
        BuildStatus::Canceled => "canceled",
        BuildStatus::Skipped => "skipped",
    }
}

fn invalid_log(error: InvalidLog) -> ApiError {
    match error {
        InvalidLog::TooLarge(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{error} once decompressed"),
        ),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// `Content-Type: text/plain` (or octet-stream): the body is the log itself.
fn is_plain_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "text/plain" || essence == "application/octet-stream")
}

pub(crate) async fn ingest_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
    body: Body,
) -> Result<Response, ApiError> {
    let plain_text = is_plain_text(&headers);
    if !plain_text {
        require_json_content_type(&headers)?;
    }
    let gzip = gzip_encoded(&headers)?;
    // The body as sent is small (a few MB at most); the log it holds is read from it piece by
    // piece, never decoded whole.
    let raw = read_bytes(body, MAX_LOG_REQUEST_BYTES).await?;
    let max = state.config.providers.max_bytes;
    let now = chrono::Utc::now();
    let (job, log): (_, Box<dyn LogSource + '_>) = if plain_text {
        // The log as the body and the job's fields as query parameters: a CI job can send its
        // log file with `curl --data-binary @job.log` and no JSON tooling.
        let fields: serde_json::Map<String, serde_json::Value> = query_params(query)?
            .into_iter()
            .map(|(name, text)| (name, serde_json::Value::String(text)))
            .collect();
        let job = parse_push_job(&fields, now).map_err(|e| ApiError::bad_request(e.to_string()))?;
        (
            job,
            Box::new(PlainLog {
                raw: &raw,
                gzip,
                max,
            }),
        )
    } else {
        let (fields, shape) = scan_push_fields(&raw, gzip, max).map_err(invalid_log)?;
        let job = parse_push_job(&fields, now)
            .and_then(|job| check_log_shape(shape).map(|()| job))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        (
            job,
            Box::new(JsonLog {
                raw: &raw,
                gzip,
                max,
            }),
        )
    };
    let outcome = push_log(
        &state.store,
        state.analysis_queue.as_ref(),
        job,
        log.as_ref(),
    )
    .await
    .map_err(|error| match error {
        LogPushError::Log(error) => invalid_log(error),
        LogPushError::Record(error) => error.into(),
        LogPushError::Store(error) => store_failure(error),
        LogPushError::Queue(error) => {
            tracing::warn!(%error, "analysis request not queued");
            ApiError::unavailable("the analysis queue is unavailable; retry the push")
        }
    })?;
    let key = &outcome.trace_key;
    tracing::info!(provider = %key.provider, repo = %key.repo, job_id = %key.job_id, bytes = outcome.trace_length, "log stored");
    let body = json!({
        "job_key": format!("{}/{}/{}", key.provider, key.repo, key.job_id),
        "job": outcome.job_outcome.map_or("stale", |o| o.as_str()),
        "trace_length": outcome.trace_length,
        "trace_url": format!(
            "/api/v1/jobs/{}/{}/{}/trace",
            key.provider,
            crate::routes::ingest::percent_encode(key.repo.as_str()),
            crate::routes::ingest::percent_encode(&key.job_id)
        ),
        "analysis_queued": outcome.analysis.queued(),
        "analysis": outcome.analysis.as_str(),
        "kept_as_last_green": outcome.kept_as_green,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

type JobPath = Result<Path<(String, String, String)>, PathRejection>;

fn trace_key(path: JobPath) -> Result<TraceKey, ApiError> {
    let Path((provider, project, job_id)) = path?;
    let provider = valid_provider(&provider).ok_or_else(|| {
        ApiError::bad_request("provider must be a CI name such as gitlab or github")
    })?;
    let repo = RepoPath::parse(&project).map_err(|e| {
        ApiError::bad_request(format!("project (URL-encode its slashes as %2F) {e}"))
    })?;
    let job_id = buildlore_core::job_id::parse_job_id(&job_id).ok_or_else(|| {
        ApiError::bad_request(format!(
            "job id must be {}",
            buildlore_core::job_id::JOB_ID_RULE
        ))
    })?;
    Ok(TraceKey {
        provider,
        repo,
        job_id,
    })
}

/// The trace a path names, a GitLab project's numeric id resolved to the project's path (so
/// a trace sent by id and read by path, or the other way round, is one trace).
async fn resolved_trace_key(state: &AppState, path: JobPath) -> Result<TraceKey, ApiError> {
    use buildlore_core::details::DetailsSource;
    let mut key = trace_key(path)?;
    let project = key.repo.as_str();
    if key.provider == "gitlab" && project.bytes().all(|b| b.is_ascii_digit()) {
        key.repo = state
            .store
            .resolve_project("gitlab", project)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "GitLab project {project} is not known here yet: use its path (URL-encoded, group%2Fproject), or let a webhook introduce it"
                ))
            })?;
    }
    Ok(key)
}

fn range_header(length: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{length}")).unwrap_or(HeaderValue::from_static("0-0"))
}

pub(crate) async fn append_trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: JobPath,
    body: Body,
) -> Result<Response, ApiError> {
    let key = resolved_trace_key(&state, path).await?;
    let range = headers.get(header::CONTENT_RANGE).ok_or_else(|| {
        ApiError::bad_request("Content-Range is required: `start-end` of this part in bytes")
    })?;
    let start = content_range_start(range.to_str().unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let part = read_bytes(body, MAX_TRACE_PART_BYTES).await?;
    let max_log_bytes = state.config.providers.max_bytes as u64;
    if start.saturating_add(part.len() as u64) > max_log_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a trace is kept up to {max_log_bytes} bytes (TRACE_MAX_BYTES); this part would end at byte {}",
                start.saturating_add(part.len() as u64)
            ),
        ));
    }
    let outcome = state.store.append(&key, start, &part).await?;
    let job_status = state
        .store
        .job_status(&key.provider, &key.repo, &key.job_id)
        .await?;
    if matches!(outcome, AppendOutcome::Appended { .. }) && job_status == Some(BuildStatus::Success)
    {
        // The job already succeeded: the trace is its green log. Not keeping it costs only
        // the comparison of a later failure, so a storage hiccup here does not fail the part.
        if let Err(error) = keep_if_recorded_green(&state.store, &key).await {
            tracing::warn!(%error, "an appended trace was not kept as the last green log");
        }
    }
    let job_status = job_status.map_or("unknown", status_word);
    let (status, length, body) = match outcome {
        AppendOutcome::Appended { length } => {
            (StatusCode::ACCEPTED, length, json!({"length": length}))
        }
        AppendOutcome::OutOfRange { length } => {
            let error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "this part starts at byte {start} but the stored trace is {length} bytes long; send the part that starts at {length}"
                ),
            );
            (error.status, length, error.body())
        }
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RANGE, range_header(length));
    if let Ok(value) = HeaderValue::from_str(job_status) {
        response.headers_mut().insert("build-status", value);
    }
    Ok(response)
}

pub(crate) async fn read_trace(
    State(state): State<AppState>,
    path: JobPath,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let key = resolved_trace_key(&state, path).await?;
    let params = query_params(query)?;
    let offset = whole_number(&params, "offset", u64::MAX)?.unwrap_or(0);
    let limit =
        whole_number(&params, "limit", MAX_TRACE_PAGE_BYTES)?.unwrap_or(MAX_TRACE_PAGE_BYTES);
    if limit == 0 {
        return Err(ApiError::bad_request(format!(
            "`limit` must be 1 to {MAX_TRACE_PAGE_BYTES} bytes"
        )));
    }
    let slice = state
        .store
        .read(&key, offset, Some(limit))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no trace is stored for {} job {} of {}",
                key.provider, key.job_id, key.repo
            ))
        })?;
    let content_type = if std::str::from_utf8(&slice.bytes).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let next = slice.offset + slice.bytes.len() as u64;
    let mut response = (StatusCode::OK, slice.bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-trace-length", HeaderValue::from(slice.total_length));
    headers.insert("x-trace-offset", HeaderValue::from(slice.offset));
    if next < slice.total_length {
        headers.insert("x-trace-next-offset", HeaderValue::from(next));
    }
    Ok(response)
}
