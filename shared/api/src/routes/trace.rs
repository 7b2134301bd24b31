//! The trace function: `GET /api/jobtrace` (gitlab-summary's shape, `{"trace", "complete"}`).
//! It serves traces stored by log push or trace upload; fetching from GitLab and GitHub on a
//! miss is not built yet and the answer says so.

use crate::auth::Scope;
use crate::error::ApiError;
use crate::routes::ingest::record_error;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use buildlore_core::RepoPath;
use buildlore_core::details::{DetailsSource, ProjectRef, parse_project};
use buildlore_core::log_clean::clean_log;
use buildlore_core::record::RecordError;
use buildlore_core::trace::{TraceKey, TraceStore};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;
use std::collections::HashMap;

/// Lines `tail` may ask for.
pub const MAX_TAIL_LINES: usize = 100_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/jobtrace", get(job_trace))
}

fn store_failure(error: buildlore_core::ports::StoreError) -> ApiError {
    record_error(RecordError::Store(error))
}

/// The last `lines` lines of `bytes`.
fn tail(bytes: &[u8], lines: usize) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines.saturating_sub(1))
        .map_or(0, |(at, _)| at + 1);
    if lines == 0 {
        &bytes[bytes.len()..]
    } else {
        &bytes[start..]
    }
}

async fn job_trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    state.config.keys.authorize(&headers, Scope::Read)?;
    let Query(params) =
        query.map_err(|_| ApiError::bad_request("the query string is not valid URL encoding"))?;
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let number = |name: &str, max: u64| -> Result<Option<u64>, ApiError> {
        get(name)
            .map(|v| match v.parse::<u64>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "`{name}` must be a whole number up to {max}"
                ))),
            })
            .transpose()
    };
    let job_id =
        get("jobId").ok_or_else(|| ApiError::bad_request("query parameter `jobId` is required"))?;
    if job_id.len() > 128
        || !job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            "`jobId` must be a job id such as 4711",
        ));
    }
    let provider = get("provider").unwrap_or("gitlab").to_ascii_lowercase();
    let repo = match provider.as_str() {
        "github" => {
            let repo = get("repo")
                .ok_or_else(|| ApiError::bad_request("provider=github needs `repo=owner/name`"))?;
            RepoPath::parse(repo).map_err(|e| ApiError::bad_request(format!("`repo` {e}")))?
        }
        "gitlab" => {
            let project = get("projectId")
                .ok_or_else(|| ApiError::bad_request("query parameter `projectId` is required"))?;
            match parse_project(project).map_err(|e| ApiError::bad_request(e.to_string()))? {
                ProjectRef::Path(repo) => repo,
                ProjectRef::Id(id) => state
                    .store
                    .resolve_project("gitlab", &id)
                    .await
                    .map_err(store_failure)?
                    .ok_or_else(|| ApiError::not_found(format!("no GitLab project {id} is known; it appears once a webhook from it arrives")))?,
            }
        }
        _ => return Err(ApiError::bad_request("`provider` must be gitlab or github")),
    };
    let offset = number("offset", u64::MAX)?.unwrap_or(0);
    let limit = number("limit", u64::MAX)?;
    let tail_lines = number("tail", MAX_TAIL_LINES as u64)?;
    let clean = matches!(get("clean"), Some("true" | "1" | "yes"));
    let key = TraceKey {
        provider: provider.clone(),
        repo: repo.clone(),
        job_id: job_id.to_string(),
    };
    let slice = state
        .store
        .read(&key, offset, limit)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no stored trace for {provider} job {job_id} of {repo}; push it with /api/ingest/log or the trace upload (fetching from {provider} is not available in this version yet)"
            ))
        })?;
    let mut bytes = if clean {
        clean_log(&slice.bytes)
    } else {
        slice.bytes
    };
    if let Some(lines) = tail_lines {
        bytes = tail(&bytes, lines as usize).to_vec();
    }
    let complete = state
        .store
        .job_status(&provider, &repo, job_id)
        .await
        .map_err(store_failure)?
        .is_none_or(|status| status.is_terminal());
    if get("format") == Some("raw") {
        let mut response = (StatusCode::OK, bytes).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        response
            .headers_mut()
            .insert("x-trace-length", HeaderValue::from(slice.total_length));
        return Ok(response);
    }
    let lossless = std::str::from_utf8(&bytes).is_ok();
    Ok(Json(json!({
        "trace": String::from_utf8_lossy(&bytes),
        "complete": complete,
        "offset": slice.offset,
        "total_length": slice.total_length,
        // Bytes that are not UTF-8 are replaced in JSON; `format=raw` serves them exactly.
        "lossless": lossless,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tails_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", 0), b"");
    }
}
